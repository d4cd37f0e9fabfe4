"""The model endpoint: the one destination every session needs, derived from what Claude will use.

Claude Code talks to `ANTHROPIC_BASE_URL` when it is set, to Amazon Bedrock or Google Vertex AI
when `CLAUDE_CODE_USE_BEDROCK` / `CLAUDE_CODE_USE_VERTEX` say so, and to api.anthropic.com
otherwise. The firewall opens exactly that host and port (firewall/plan.py), and the entrypoint
checks it can connect there before Claude starts, so a blocked endpoint fails in seconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence
from urllib.parse import urlsplit

from ..artifacts import Artifact
from ..config.blocked_paths import Locator, blocked_set, conflicts, is_within, real
from ..config.interpolate import read_env_file
from ..config.model import Config, ModelEndpoint
from ..errors import ConfigProblem
from ..runspec import RunSpec
from ..session import Session
from .base import EndedSession, RunContext, split_environment

DEFAULT_HOST = "api.anthropic.com"

# What Claude Code reads for its model and provider. Like the API key they are run-time
# environment only: never in an image layer or a rendered file.
PROVIDER_VARIABLES = (
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_MODEL",
    "ANTHROPIC_SMALL_FAST_MODEL",
    "ANTHROPIC_SMALL_FAST_MODEL_AWS_REGION",
    "ANTHROPIC_DEFAULT_OPUS_MODEL",
    "ANTHROPIC_DEFAULT_SONNET_MODEL",
    "ANTHROPIC_DEFAULT_HAIKU_MODEL",
    "ANTHROPIC_CUSTOM_HEADERS",
    "ANTHROPIC_BEDROCK_BASE_URL",
    "ANTHROPIC_VERTEX_BASE_URL",
    "ANTHROPIC_VERTEX_PROJECT_ID",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "CLAUDE_CODE_SKIP_BEDROCK_AUTH",
    "CLAUDE_CODE_SKIP_VERTEX_AUTH",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_BEARER_TOKEN_BEDROCK",
    "CLOUD_ML_REGION",
    "GOOGLE_CLOUD_PROJECT",
)

# The container's view of it, for the entrypoint's connection check.
ENV_HOST = "CLAUDE_DOCKER_ENDPOINT_HOST"
ENV_PORT = "CLAUDE_DOCKER_ENDPOINT_PORT"
ENV_SOURCE = "CLAUDE_DOCKER_ENDPOINT_SOURCE"
ENV_SCHEME = "CLAUDE_DOCKER_ENDPOINT_SCHEME"  # https: the sandbox proxy verifies its certificate


CLAUDE_ENV = "claude.env"  # where a value came from, in claude_environment's answers


def claude_environment(
    cfg: Config, environ: Mapping[str, str], file_values: Mapping[str, str] | None = None
) -> dict[str, tuple[str, str]]:
    """Name → (value, where from) for what Claude sees: the process environment over the env
    file over `claude.env` (the order runplan applies them in). `file_values`: the env file,
    when the caller has read it already (RunContext)."""
    found: dict[str, tuple[str, str]] = {name: (value, CLAUDE_ENV) for name, value in cfg.claude.env.items()}
    if cfg.env_file:
        if file_values is None:
            file_values = read_env_file(Path(cfg.env_file))
        for name, value in file_values.items():
            if value:
                found[name] = (value, f"env_file {cfg.env_file}")
    for name, value in environ.items():
        if value:
            found[name] = (value, "the environment")
    return found


def _truthy(value: str) -> bool:
    return value.strip().lower() not in ("", "0", "false", "no", "off")


def _from_url(url: str, source: str) -> ModelEndpoint | None:
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        return None
    try:
        port = parts.port or (80 if parts.scheme == "http" else 443)
    except ValueError:
        return None
    scheme = "http" if parts.scheme == "http" else "https"
    return ModelEndpoint(host, port, source, scheme, parts.path.rstrip("/"))


def derive(cfg: Config, environ: Mapping[str, str], file_values: Mapping[str, str] | None = None) -> ModelEndpoint:
    """Where Claude Code will send its model requests."""
    env = claude_environment(cfg, environ, file_values)

    def value(name: str) -> str:
        return env[name][0] if name in env else ""

    if "CLAUDE_CODE_USE_BEDROCK" in env and _truthy(value("CLAUDE_CODE_USE_BEDROCK")):
        if value("ANTHROPIC_BEDROCK_BASE_URL"):
            found = _from_url(value("ANTHROPIC_BEDROCK_BASE_URL"), f"ANTHROPIC_BEDROCK_BASE_URL in {env['ANTHROPIC_BEDROCK_BASE_URL'][1]}")
            if found:
                return found
        region = value("AWS_REGION") or "us-east-1"
        return ModelEndpoint(f"bedrock-runtime.{region.lower()}.amazonaws.com", 443, f"Amazon Bedrock in AWS_REGION {region}")
    if "CLAUDE_CODE_USE_VERTEX" in env and _truthy(value("CLAUDE_CODE_USE_VERTEX")):
        if value("ANTHROPIC_VERTEX_BASE_URL"):
            found = _from_url(value("ANTHROPIC_VERTEX_BASE_URL"), f"ANTHROPIC_VERTEX_BASE_URL in {env['ANTHROPIC_VERTEX_BASE_URL'][1]}")
            if found:
                return found
        region = (value("CLOUD_ML_REGION") or "us-east5").lower()
        host = "aiplatform.googleapis.com" if region == "global" else f"{region}-aiplatform.googleapis.com"
        return ModelEndpoint(host, 443, f"Google Vertex AI in CLOUD_ML_REGION {region}")
    if value("ANTHROPIC_BASE_URL"):
        found = _from_url(value("ANTHROPIC_BASE_URL"), f"ANTHROPIC_BASE_URL in {env['ANTHROPIC_BASE_URL'][1]}")
        if found:
            return found
    return ModelEndpoint(DEFAULT_HOST, 443, "the default: no ANTHROPIC_BASE_URL or provider set")


def container_env(endpoint: ModelEndpoint) -> dict[str, str]:
    return {ENV_HOST: endpoint.host, ENV_PORT: str(endpoint.port), ENV_SOURCE: endpoint.source, ENV_SCHEME: endpoint.scheme}


# --- one credentials file, mounted read-only (never ~/.aws or ~/.config/gcloud) -------------------

# A provider's credentials file named by its usual variable: the file alone is mounted read-only
# and the variable points Claude Code at it inside the container.
CREDENTIAL_FILE_VARIABLES = {
    "GOOGLE_APPLICATION_CREDENTIALS": "google-credentials.json",
    "AWS_SHARED_CREDENTIALS_FILE": "aws-credentials",
}
CONTAINER_CREDENTIALS_DIR = "/run/claude-docker-credentials"


@dataclass(frozen=True)
class CredentialFile:
    variable: str
    host_path: str
    source: str  # where the variable came from

    @property
    def container_path(self) -> str:
        return f"{CONTAINER_CREDENTIALS_DIR}/{CREDENTIAL_FILE_VARIABLES[self.variable]}"


def credential_files(cfg: Config, environ: Mapping[str, str], file_values: Mapping[str, str] | None = None) -> list[CredentialFile]:
    env = claude_environment(cfg, environ, file_values)
    found = []
    for variable in CREDENTIAL_FILE_VARIABLES:
        if variable in env and env[variable][1] != "claude.env":  # claude.env names a container path
            value, source = env[variable]
            found.append(CredentialFile(variable, os.path.abspath(os.path.expanduser(value)), source))
    return found


def credential_file_problems(
    cfg: Config, environ: Mapping[str, str], file_values: Mapping[str, str] | None = None
) -> list[str]:
    """A credentials file must exist, lie outside the workspace (the agent could change it there)
    and outside every blocked path (which never enters the container)."""
    problems = []
    workspace = real(cfg.workspace.path)
    for entry in credential_files(cfg, environ, file_values):
        where = f"{entry.variable} ({entry.source}) names {entry.host_path}"
        if not os.path.isfile(entry.host_path):
            problems.append(f"{where}, which is not a file on this machine")
        elif is_within(real(entry.host_path), workspace):
            problems.append(f"{where}, which lies inside the workspace where the agent can read and change it")
        else:
            for relation, blocked in conflicts(entry.host_path, blocked_set(cfg), real(os.path.expanduser("~"))):
                problems.append(f"{where}, which {'is' if relation == 'is' else 'lies inside'} the blocked path {blocked}")
                break
    return problems


CREDENTIAL_FILE_HINT = (
    "copy the one credentials file the provider needs outside the workspace and outside blocked paths such as "
    "~/.aws and ~/.config/gcloud (e.g. ~/.claude-docker-keys/vertex.json), or use environment credentials"
)


# --- the feature ------------------------------------------------------------------------------


def check(config: Config, environ: Mapping[str, str], locate: Locator | None = None) -> list[ConfigProblem]:
    """A provider's credentials file `up` would refuse to mount (credential_file_problems)."""
    process, file_values = split_environment(config, environ)
    return [
        ConfigProblem(config.source_files[-1] if config.source_files else "environment", "", None, f"{problem}; {CREDENTIAL_FILE_HINT}")
        for problem in credential_file_problems(config, process, file_values)
    ]


def runtime_artifacts(config: Config, session: Session) -> dict[str, Artifact]:
    return {}  # the firewall opens the endpoint (firewall.plan.endpoint_domains)


def contribute(ctx: RunContext, spec: RunSpec) -> None:
    """Where the entrypoint checks the endpoint before Claude starts, and the provider's one
    credentials file, read-only, with its variable pointing at it."""
    model_endpoint = ctx.config.network.model_endpoint or derive(ctx.config, ctx.process_environ, ctx.env_file_values)
    spec.env.update(container_env(model_endpoint))
    for credential in credential_files(ctx.config, ctx.process_environ, ctx.env_file_values):
        spec.bind(credential.host_path, credential.container_path, read_only=True)
        spec.env[credential.variable] = credential.container_path


def cleanup(ended: Sequence[EndedSession]) -> list[str]:
    return []
