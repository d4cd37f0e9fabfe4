"""Keys out of reach: the sandbox proxy holds the model credential and the git token.

The agent runs every command it likes, so whatever is in its environment, its files or the
memory of its processes can be sent anywhere an allowed site accepts text (a gist, an issue
comment). So Claude Code gets a placeholder key and a local endpoint
(`ANTHROPIC_BASE_URL=http://127.0.0.1:15090`), served by the sandbox's HAProxy, which runs as its
own user: it swaps the placeholder for the real credential and forwards to the one configured
model endpoint, over TLS with full certificate verification. git is pointed at a second local
endpoint for one host (`url.<local>.insteadOf`), where the proxy adds the token.

The credentials reach the proxy through its environment only: the container's environment
carries them under SECRET_PREFIX names, the root entrypoint takes them out before anything else
runs and hands them to the firewall script, which starts HAProxy with them and forgets them.
No rendered file ever holds one (runtime artifacts are readable by the agent).

Not possible (and then Claude holds its credential as before, with a warning at `up`): without
the firewall's proxy (firewall or name_checks off), behind `network.proxy`, and for Bedrock and
Vertex AI (their requests are signed with the credential, which a proxy cannot do without
holding the signing key in the agent's place; a bearer token for Bedrock would work the same way,
but is not done yet). A `/login` credentials file is the agent's own: see docs/firewall.md.
"""

from __future__ import annotations

import base64
import re
from typing import Mapping, Sequence

from .. import contract
from ..artifacts import Artifact
from ..config.blocked_paths import Locator
from ..config.model import Config, GitCredential, ModelEndpoint
from ..errors import ClaudeDockerError, ConfigProblem
from ..runspec import RunSpec
from ..session import Session
from .base import EndedSession, Injection, RunContext, problem_at, split_environment
from .endpoint import CLAUDE_ENV, claude_environment

# The local endpoints and the secret variables are part of the host/container contract.
MODEL_LISTEN_PORT = contract.MODEL_LISTEN_PORT
GIT_LISTEN_PORT = contract.GIT_LISTEN_PORT
SECRET_PREFIX = contract.SECRET_PREFIX
SECRET_API_KEY = contract.SECRET_API_KEY
SECRET_AUTHORIZATION = contract.SECRET_AUTHORIZATION
SECRET_GIT_AUTHORIZATION = contract.SECRET_GIT_AUTHORIZATION
SECRET_VARIABLES = contract.SECRET_VARIABLES

# What Claude Code holds instead: long enough that its "use this API key?" answer (the last 20
# characters) is the placeholder's, the same for every session.
PLACEHOLDER = "sk-ant-claude-docker-placeholder-held-by-the-sandbox-proxy"

API_KEY_VARIABLE = "ANTHROPIC_API_KEY"  # sent as x-api-key
# Sent as Authorization: Bearer; Claude Code prefers ANTHROPIC_AUTH_TOKEN over the OAuth token.
BEARER_VARIABLES = ("ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN")
CREDENTIAL_VARIABLES = (API_KEY_VARIABLE, *BEARER_VARIABLES)

# The local endpoints' limits: the Messages API's own request limit, and a rate no session needs.
MAX_REQUEST_BYTES = 32 * 1024 * 1024
MAX_REQUESTS_PER_MINUTE = 600
MAX_CONNECTIONS = 64


def credential_environment(
    cfg: Config, environ: Mapping[str, str], file_values: Mapping[str, str] | None = None
) -> dict[str, tuple[str, str]]:
    """Credential variable → (value, where from): the process environment over the env file, the
    only two places a credential is ever read from (never `claude.env`, which `validate` refuses
    for credentials). `file_values`: the env file, when the caller has read it already."""
    return {
        name: found for name, found in claude_environment(cfg, environ, file_values).items() if found[1] != CLAUDE_ENV
    }


def not_injectable(cfg: Config, environ: Mapping[str, str], file_values: Mapping[str, str] | None = None) -> str | None:
    """Why the proxy cannot hold the model credential for this session, in words; None if it can."""
    from .endpoint import claude_environment

    env = claude_environment(cfg, environ, file_values)
    if not cfg.network.firewall:
        return "network.firewall is false (no sandbox proxy runs)"
    if not cfg.network.name_checks:
        return "network.name_checks is false (no sandbox proxy runs)"
    if cfg.network.proxy is not None:
        return "network.proxy is set (the model endpoint is reached through your proxy)"
    if any(_truthy(env.get(name, ("", ""))[0]) for name in ("CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX")):
        return "the provider signs requests with the credential itself (Bedrock, Vertex AI)"
    return None


# HAProxy reads the header value as a log-format string: `%`, quotes, backslashes and spaces
# would change it. Real keys and tokens are letters, digits and `-._~+/=`.
_TOKEN = re.compile(r"^[A-Za-z0-9._~+/=-]{1,4096}\Z")


TOKEN_CHARACTERS = "check the value: letters, digits and -._~+/= only"


def _held(found: Mapping[str, tuple[str, str]]) -> list[str]:
    """The credential variables whose values the proxy puts in a header: the API key, and the
    first bearer token (the others get the placeholder only)."""
    bearer = [name for name in BEARER_VARIABLES if name in found]
    return [name for name in (API_KEY_VARIABLE, *bearer[:1]) if name in found]


def _malformed(name: str, found: Mapping[str, tuple[str, str]]) -> str | None:
    value, where = found[name]
    if _TOKEN.match(value.strip()):
        return None
    return f"{name} (from {where}) holds characters a key or token never has (spaces, quotes, %, ...)"


def _checked(name: str, found: dict[str, tuple[str, str]]) -> str:
    problem = _malformed(name, found)
    if problem:
        raise ClaudeDockerError(problem, TOKEN_CHARACTERS)  # `check` found it first; a backstop
    return found[name][0].strip()


def _truthy(value: str) -> bool:
    return value.strip().lower() not in ("", "0", "false", "no", "off")


def plan(
    cfg: Config, environ: Mapping[str, str], endpoint: ModelEndpoint, file_values: Mapping[str, str] | None = None
) -> Injection:
    """The placeholders, the local endpoints and the secrets for this session."""
    found = credential_environment(cfg, environ, file_values)
    agent_env: dict[str, str] = {}
    secret_env: dict[str, str] = {}
    headers: list[str] = []
    present = [name for name in CREDENTIAL_VARIABLES if name in found]
    reason = not_injectable(cfg, environ, file_values)
    unprotected: tuple[str, ...] = ()
    if present and reason is None:
        if API_KEY_VARIABLE in found:
            secret_env[SECRET_API_KEY] = _checked(API_KEY_VARIABLE, found)
            agent_env[API_KEY_VARIABLE] = PLACEHOLDER
            headers.append("x-api-key")
        bearer = [name for name in BEARER_VARIABLES if name in found]
        if bearer:
            secret_env[SECRET_AUTHORIZATION] = "Bearer " + _checked(bearer[0], found)
            for name in bearer:
                agent_env[name] = PLACEHOLDER
            headers.append("authorization")
        agent_env["ANTHROPIC_BASE_URL"] = local_base_url(endpoint)
    elif present:
        unprotected = (f"{', '.join(present)} reach{'es' if len(present) == 1 else ''} the agent's environment: {reason}",)
    git = cfg.network.git_credential
    if git is not None:
        token = found.get(git.token_variable)
        if token is None:
            raise ClaudeDockerError(
                f"network.git_credential: {git.token_variable} is not set in the environment or the env file", TOKEN_HINT
            )
        basic = base64.b64encode(f"{git.username}:{token[0]}".encode()).decode()
        secret_env[SECRET_GIT_AUTHORIZATION] = "Basic " + basic
        agent_env.update(git_agent_env(git))
    return Injection(tuple(headers), agent_env, secret_env, unprotected)


def local_base_url(endpoint: ModelEndpoint) -> str:
    """Claude's ANTHROPIC_BASE_URL when the proxy holds the key: the local endpoint, keeping the
    configured URL's path (a gateway's /anthropic)."""
    return f"http://127.0.0.1:{MODEL_LISTEN_PORT}{endpoint.path}"


def git_agent_env(git: GitCredential) -> dict[str, str]:
    """git inside reaches https://HOST/ through the local git endpoint (GIT_CONFIG_* is git's own
    environment configuration, read before any file)."""
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"url.http://127.0.0.1:{GIT_LISTEN_PORT}/.insteadOf",
        "GIT_CONFIG_VALUE_0": f"https://{git.host}/",
    }


TOKEN_HINT = "put the token in the env file (e.g. GITHUB_TOKEN=...) or the environment, or remove network.git_credential"


# --- the feature ------------------------------------------------------------------------------


def check(config: Config, environ: Mapping[str, str], locate: Locator | None = None) -> list[ConfigProblem]:
    """What `plan` would refuse: network.git_credential's token set nowhere, and a credential the
    sandbox proxy would hold whose characters no key or token has."""
    process, file_values = split_environment(config, environ)
    found = credential_environment(config, process, file_values)
    problems = []
    git = config.network.git_credential
    if git is not None and git.token_variable not in found:
        message = f"{git.token_variable} is not set in the environment or the env file; {TOKEN_HINT}"
        problems.append(problem_at(config, locate, ("network", "git_credential", "token_variable"), message))
    if not_injectable(config, process, file_values) is None:
        for name in _held(found):
            problem = _malformed(name, found)
            if problem:
                where = config.source_files[-1] if config.source_files else "environment"
                problems.append(ConfigProblem(where, "", None, f"{problem}; {TOKEN_CHARACTERS}"))
    return problems


def runtime_artifacts(config: Config, session: Session) -> dict[str, Artifact]:
    return {}  # the proxy's configuration is the firewall's (haproxy.cfg, from network.injected_headers)


def contribute(ctx: RunContext, spec: RunSpec) -> None:
    """Placeholders and the local endpoints over the credentials Claude Code would hold, and the
    credentials under SECRET_PREFIX names for the entrypoint to hand to the proxy alone, as
    `plan` worked them out for the run context. Runs after claude_settings, whose credential
    variables these replace."""
    injection = ctx.credentials
    assert injection is not None, "runplan.context plans the credentials"
    spec.env.update(injection.agent_env)
    spec.env.update(injection.secret_env)
    spec.warnings.extend(injection.unprotected)


def cleanup(ended: Sequence[EndedSession]) -> list[str]:
    return []


# --- which mode a session is in, for `doctor` ------------------------------------------------


def mode(cfg: Config, environ: Mapping[str, str], endpoint: ModelEndpoint, login_file: bool) -> tuple[str, str]:
    """(mode, what is protected) in words."""
    found = credential_environment(cfg, environ)
    reason = not_injectable(cfg, environ)
    for name, words in (
        ("ANTHROPIC_AUTH_TOKEN", "gateway token (ANTHROPIC_AUTH_TOKEN)"),
        (API_KEY_VARIABLE, "API key (ANTHROPIC_API_KEY)"),
        ("CLAUDE_CODE_OAUTH_TOKEN", "OAuth token (CLAUDE_CODE_OAUTH_TOKEN, from `claude setup-token`)"),
    ):
        if name in found:
            where = found[name][1]
            if reason is None:
                return words, f"from {where}; held by the sandbox proxy, the agent sees a placeholder"
            return words, f"from {where}; in the agent's environment, because {reason}"
    if login_file:
        return (
            "/login credentials file",
            "kept in the agent's config dir, readable by the agent (refresh tokens rotate; a proxy cannot hold them): "
            "prefer CLAUDE_CODE_OAUTH_TOKEN from `claude setup-token` in the env file",
        )
    return "none", "no credential yet: put ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN in the env file, or /login once"
