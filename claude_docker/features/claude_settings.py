"""Claude Code's settings.json (hooks) and mcp.json, built as data and written with json.dumps.

Both files are runtime artifacts: they are mounted read-only and passed explicitly with
`--settings` and `--mcp-config`, so nothing inside the workspace can change them. The hooks
only write the event into the session outbox; the host turns events into messages, so no
notifier credential ever enters the container.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from ..artifacts import Artifact
from ..config.interpolate import read_env_file
from ..config.model import Config, McpServer
from ..contract import HOOK_EVENTS, HOOK_HELPER
from ..session import Session
from .endpoint import PROVIDER_VARIABLES

SETTINGS_FILE = "settings.json"

# Credentials passed at run time only: never in an image layer or a rendered file.
AUTH_VARIABLES = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_BASE_URL")
# ... and with them what Claude Code reads for its provider and model (endpoint.PROVIDER_VARIABLES).
RUNTIME_VARIABLES = AUTH_VARIABLES + PROVIDER_VARIABLES
MCP_CONFIG_FILE = "mcp.json"

HOOK_TIMEOUT_SECONDS = 10


def runtime_artifacts(cfg: Config, session: Session) -> dict[str, Artifact]:
    return {
        SETTINGS_FILE: Artifact(_dump(settings_document(cfg))),
        MCP_CONFIG_FILE: Artifact(_dump(mcp_document(cfg))),
    }


def settings_document(cfg: Config) -> dict:
    """Hooks for the events the notifier wants; none when no backend would deliver them.

    Installing hooks nobody listens to would only fill the outbox, so a project without a
    notifier gets no hooks at all.
    """
    document: dict = {"skipDangerousModePermissionPrompt": True}
    if not cfg.notifier.configured:
        return document
    hooks = {}
    for hook_name, event in HOOK_EVENTS.items():
        if event in cfg.notifier.on:
            command = {
                "type": "command",
                "command": f"{HOOK_HELPER} {event}",
                "timeout": HOOK_TIMEOUT_SECONDS,
            }
            hooks[hook_name] = [{"hooks": [command]}]
    if hooks:
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
    from_file = read_env_file(Path(cfg.env_file)) if cfg.env_file else {}
    merged = {**from_file, **environ}
    return {name: merged[name] for name in RUNTIME_VARIABLES if merged.get(name)}
