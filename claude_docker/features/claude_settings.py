"""Claude Code's settings.json (hooks) and mcp.json, built as data and written with json.dumps.

Both files are runtime artifacts: they are mounted read-only and passed explicitly with
`--settings` and `--mcp-config`, so nothing inside the workspace can change them. The hooks
only write the event into the session outbox; the host turns events into messages, so no
notifier credential ever enters the container.
"""

from __future__ import annotations

import json
from typing import Mapping, Sequence

from ..artifacts import Artifact
from ..config.blocked_paths import Locator
from ..config.interpolate import referenced_variables
from ..config.loader import KeyPath
from ..config.model import Config, McpServer
from ..contract import HOOK_EVENTS, HOOK_HELPER, PROGRESS_HOOK_HELPER
from ..errors import ClaudeDockerError, ConfigProblem
from ..runspec import RunSpec
from ..session import Session
from .base import EndedSession, RunContext, merged_environment, problem_at
from .endpoint import PROVIDER_VARIABLES

SETTINGS_FILE = "settings.json"

# Credentials passed at run time only: never in an image layer or a rendered file.
AUTH_VARIABLES = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_BASE_URL")
# ... and with them what Claude Code reads for its provider and model (endpoint.PROVIDER_VARIABLES).
RUNTIME_VARIABLES = AUTH_VARIABLES + PROVIDER_VARIABLES
MCP_CONFIG_FILE = "mcp.json"

HOOK_TIMEOUT_SECONDS = 10

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
    """The run-time values of MCP `${VAR}` references, then the credentials and provider
    variables (these win over `claude.env`)."""
    spec.env.update(mcp_environment(ctx.config, ctx.environ))
    spec.env.update(auth_variables(ctx.environ))


def cleanup(ended: Sequence[EndedSession]) -> list[str]:
    return []
