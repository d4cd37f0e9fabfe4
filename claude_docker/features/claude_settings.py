"""Claude Code's own contract: settings.json (hooks) and mcp.json, the credentials and provider
variables it reads, and the state it expects in its config dir before an unattended start.

settings.json and mcp.json are built as data and written with json.dumps. Both are runtime
artifacts: they are mounted read-only and passed explicitly with `--settings` and
`--mcp-config`, so nothing inside the workspace can change them. The hooks only write the event
into the session outbox; the host turns events into messages, so no notifier credential ever
enters the container.

The first-run state is seeded into the persisted config dir (CLAUDE_CONFIG_DIR, which the
persistence feature prepares earlier in the run): `.claude.json` with onboarding done, the
workspace trusted and the API key approved, and user settings with the bypass-permissions prompt
accepted. The files are read and written with persistence's helpers (damaged files recovered,
planted links never followed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

from .. import paths
from ..artifacts import Artifact
from ..config.blocked_paths import Locator
from ..config.interpolate import referenced_variables
from ..config.loader import KeyPath
from ..config.model import Config, McpServer
from ..contract import HOOK_EVENTS, HOOK_HELPER, PROGRESS_HOOK_HELPER
from ..errors import ClaudeDockerError, ConfigProblem
from ..runspec import RunSpec
from ..session import Session
from . import persistence
from .base import EndedSession, RunContext, merged_environment, problem_at
from .credentials import PLACEHOLDER
from .endpoint import PROVIDER_VARIABLES

SETTINGS_FILE = "settings.json"

# Credentials passed at run time only: never in an image layer or a rendered file.
AUTH_VARIABLES = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_BASE_URL")
# ... and with them what Claude Code reads for its provider and model (endpoint.PROVIDER_VARIABLES).
RUNTIME_VARIABLES = AUTH_VARIABLES + PROVIDER_VARIABLES
MCP_CONFIG_FILE = "mcp.json"

HOOK_TIMEOUT_SECONDS = 10
API_KEY_SUFFIX = 20  # Claude Code remembers an approved API key by its last 20 characters

# Progress records for `logs --follow` (read on the host by features.progress): a tool about to
# run, a finished turn. Installed in every session.
PROGRESS_HOOK_TIMEOUT_SECONDS = 5


def progress_hooks() -> dict[str, list[dict]]:
    command = {"type": "command", "command": PROGRESS_HOOK_HELPER, "timeout": PROGRESS_HOOK_TIMEOUT_SECONDS}
    return {
        "PreToolUse": [{"matcher": "*", "hooks": [command]}],
        "Stop": [{"hooks": [command]}],
    }


def runtime_artifacts(cfg: Config, session: Session) -> dict[str, Artifact]:
    return {
        SETTINGS_FILE: Artifact(_dump(settings_document(cfg))),
        MCP_CONFIG_FILE: Artifact(_dump(mcp_document(cfg))),
    }


def settings_document(cfg: Config) -> dict:
    """The progress hooks (`logs --follow`), and hooks for the events the notifier wants.

    Installing notifier hooks nobody listens to would only fill the outbox, so a project
    without a notifier gets the progress hooks alone.
    """
    document: dict = {"skipDangerousModePermissionPrompt": True}
    hooks: dict[str, list[dict]] = {}
    if cfg.notifier.configured:
        for hook_name, event in HOOK_EVENTS.items():
            if event in cfg.notifier.on:
                command = {
                    "type": "command",
                    "command": f"{HOOK_HELPER} {event}",
                    "timeout": HOOK_TIMEOUT_SECONDS,
                }
                hooks[hook_name] = [{"hooks": [command]}]
    for hook_name, groups in progress_hooks().items():
        hooks[hook_name] = hooks.get(hook_name, []) + groups
    document["hooks"] = hooks
    return document


def mcp_document(cfg: Config) -> dict:
    """`--mcp-config` format. `${VAR}` references stay literal: Claude Code expands them."""
    return {"mcpServers": {server.name: mcp_server_entry(server) for server in cfg.claude.mcp_servers}}


def mcp_server_entry(server: McpServer) -> dict:
    if server.type == "stdio":
        entry: dict = {"command": server.command, "args": list(server.args)}
        if server.env:
            entry["env"] = dict(server.env)
        return entry
    entry = {"type": server.type, "url": server.url}
    if server.headers:
        entry["headers"] = dict(server.headers)
    return entry


def _dump(document: dict) -> bytes:
    """Deterministic bytes: sorted keys, fixed separators, trailing newline."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def auth_env(cfg: Config, environ: Mapping[str, str]) -> dict[str, str]:
    """API key / OAuth token / base URL and the provider's variables: the process environment
    over the env file."""
    return auth_variables(merged_environment(cfg, environ))


def auth_variables(environment: Mapping[str, str]) -> dict[str, str]:
    """The run-time credentials and provider variables found in an already merged environment."""
    return {name: environment[name] for name in RUNTIME_VARIABLES if environment.get(name)}


def mcp_environment(cfg: Config, environment: Mapping[str, str]) -> dict[str, str]:
    """Values of the `${VAR}`s that `claude.mcp_servers` reference, from the environment merged
    with the env file (RunContext.environ).

    They stay references in mcp.json (never written resolved into a file); Claude Code expands
    them from its environment. A notifier credential is refused here: it must never enter the
    container, even when a config asks for it by name.
    """
    names: list[tuple[str, str, bool]] = []  # (server, variable, has a default)
    for server in cfg.claude.mcp_servers:
        values = [server.command or "", server.url or "", *server.args, *server.env.values(), *server.headers.values()]
        for value in values:
            for name in referenced_variables(value):
                has_default = f"${{{name}:-" in value
                names.append((server.name, name, has_default))
    if not names:
        return {}
    from ..notify import notifier_secrets  # (notify loads Jinja for its messages: only when needed)

    secrets = notifier_secrets(cfg.notifier)
    resolved: dict[str, str] = {}
    for server_name, name, has_default in names:
        found = environment.get(name)
        if found is None:
            if has_default:
                continue
            raise ClaudeDockerError(
                f"claude.mcp_servers.{server_name}: variable {name} is not set",
                f"export {name}=… or add it to your env file ({cfg.env_file or '~/.claude-docker/.env'})",
            )
        if found and found in secrets:
            raise ClaudeDockerError(
                f"claude.mcp_servers.{server_name}: {name} holds a notifier credential, which never enters the container",
                "give the MCP server its own credential (e.g. a separate API key)",
            )
        resolved[name] = found
    return resolved


# --- the state Claude Code expects in its config dir -------------------------------------------


def seed_claude_state(
    config_dir: Path, mount_path: str, ids: tuple[int, int], api_key: str | None = None, warnings: list[str] | None = None
) -> None:
    """Mark onboarding done and the workspace trusted in `.claude.json`, and accept the
    bypass-permissions prompt in user settings, keeping every key already there. Without this an
    unattended start stops at a wizard nobody will answer.

    With an API key in the environment, interactive Claude Code asks "Do you want to use this
    API key?" once; the answer is remembered as the key's last 20 characters (what Claude Code
    stores itself), so that is what we pre-approve. The full key never lands in a file.

    A damaged file is set aside and recovered (see `persistence.read_state_or_recover`);
    `warnings` gets one line about it."""
    state_file = config_dir / ".claude.json"
    state = persistence.read_state_or_recover(state_file, warnings)
    state["hasCompletedOnboarding"] = True
    state["bypassPermissionsModeAccepted"] = True
    if api_key and api_key.strip():
        _approve_api_key(state, api_key.strip()[-API_KEY_SUFFIX:])
    projects = state.get("projects")
    if not isinstance(projects, dict):
        projects = {}
    project = projects.get(mount_path)
    if not isinstance(project, dict):
        project = {}
    project["hasTrustDialogAccepted"] = True
    project.setdefault("hasCompletedProjectOnboarding", True)
    projects[mount_path] = project
    state["projects"] = projects
    persistence.write_state(state_file, state, ids)

    settings_file = config_dir / "settings.json"  # the user settings in CLAUDE_CONFIG_DIR
    settings = persistence.read_state_or_recover(settings_file, warnings)
    settings["skipDangerousModePermissionPrompt"] = True
    persistence.write_state(settings_file, settings, ids)


def _approve_api_key(state: dict, suffix: str) -> None:
    responses = state.get("customApiKeyResponses")
    if not isinstance(responses, dict):
        responses = {}
    approved = [item for item in responses.get("approved") or [] if isinstance(item, str)]
    rejected = [item for item in responses.get("rejected") or [] if isinstance(item, str) and item != suffix]
    if suffix not in approved:
        approved.append(suffix)
    state["customApiKeyResponses"] = {**responses, "approved": approved, "rejected": rejected}


def _api_key(ctx: RunContext) -> str | None:
    """The API key the container will get, found the way the run plan finds it: the placeholder
    when the sandbox proxy holds the key (not even the key's end lands in the agent's files)."""
    if "x-api-key" in ctx.config.network.injected_headers:
        return PLACEHOLDER
    return auth_variables(ctx.environ).get("ANTHROPIC_API_KEY") or ctx.config.claude.env.get("ANTHROPIC_API_KEY")


# --- what a newcomer needs to hear ---------------------------------------------------------------

CREDENTIAL_VARIABLES = (
    "ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX",
)


def missing_credential(cfg: Config, environment: Mapping[str, str]) -> str | None:
    """Why Claude Code will start logged out, with the two ways to fix it; None when a key, a
    token or a kept login will be there. (Claude says "Not logged in" only after the first prompt.)
    `environment`: the process environment over the env file (RunContext.environ)."""
    sources = {**auth_variables(environment), **cfg.claude.env}
    if any(sources.get(name) for name in CREDENTIAL_VARIABLES):
        return None
    probe = Session(cfg.project_name, "probe")
    if cfg.persistence.auth != "none" and (persistence.auth_dir(cfg, probe) / ".credentials.json").is_file():
        return None
    if cfg.persistence.import_host_login and (Path.home() / ".claude" / ".credentials.json").is_file():
        return None
    env_file = cfg.env_file or str(paths.default_env_file())
    kept = "" if cfg.persistence.auth == "none" else " (the login is kept for the next session)"
    return (
        f"no Claude Code credential: neither ANTHROPIC_API_KEY nor CLAUDE_CODE_OAUTH_TOKEN is set in the "
        f"environment or in {env_file}, and no login is kept. Either put ANTHROPIC_API_KEY=... (or "
        f"CLAUDE_CODE_OAUTH_TOKEN=... from `claude setup-token`) in {env_file}, or type /login in the "
        f"session once{kept}"
    )


# --- the feature ------------------------------------------------------------------------------


def mcp_references(server: McpServer) -> list[tuple[KeyPath, str]]:
    """(key path, value) of every value of an MCP server that may hold `${VAR}` references."""
    base: KeyPath = ("claude", "mcp_servers", server.name)
    found: list[tuple[KeyPath, str]] = []
    if server.command:
        found.append(((*base, "command"), server.command))
    if server.url:
        found.append(((*base, "url"), server.url))
    found += [((*base, "args", index), arg) for index, arg in enumerate(server.args)]
    found += [((*base, "env", key), value) for key, value in server.env.items()]
    found += [((*base, "headers", key), value) for key, value in server.headers.items()]
    return found


def check(config: Config, environ: Mapping[str, str], locate: Locator | None = None) -> list[ConfigProblem]:
    """What `up` would refuse about the MCP servers' `${VAR}` references: a variable that is set
    nowhere (and has no default), or one that holds a notifier credential."""
    from ..notify import notifier_secrets

    secrets = notifier_secrets(config.notifier)
    env_file = config.env_file or "~/.claude-docker/.env"
    found: list[ConfigProblem] = []
    for server in config.claude.mcp_servers:
        for key_path, value in mcp_references(server):
            for name in referenced_variables(value):
                resolved = environ.get(name)
                if resolved is None and f"${{{name}:-" not in value:
                    message = f"variable {name} is not set; export {name}=… or add it to your env file ({env_file})"
                    found.append(problem_at(config, locate, key_path, message))
                elif resolved and resolved in secrets:
                    message = (f"{name} holds a notifier credential, which never enters the container; "
                               "give the MCP server its own credential (e.g. a separate API key)")
                    found.append(problem_at(config, locate, key_path, message))
    return found


def contribute(ctx: RunContext, spec: RunSpec) -> None:
    """Claude Code's first-run state seeded into the config dir (prepared by persistence, which
    runs earlier), then the run-time values of MCP `${VAR}` references, then the credentials and
    provider variables (these win over `claude.env`)."""
    config_dir = persistence.auth_dir(ctx.config, ctx.session)
    seed_claude_state(config_dir, ctx.config.workspace.mount_path, ctx.ids, api_key=_api_key(ctx), warnings=spec.warnings)
    spec.env.update(mcp_environment(ctx.config, ctx.environ))
    spec.env.update(auth_variables(ctx.environ))


def cleanup(ended: Sequence[EndedSession]) -> list[str]:
    return []
