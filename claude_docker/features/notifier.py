"""The notifier as a feature: an adapter over the notify package (events, delivery, backends).

For a run it adds the session outbox, writable by the agent, where the hook helper and the
`notify` command write events; the host delivers them (notify.session_notifier), so no notifier
credential ever enters the container. The hooks themselves are part of Claude Code's settings
(claude_settings.py).
"""

from __future__ import annotations

from typing import Mapping, Sequence

from ..artifacts import Artifact
from ..config.blocked_paths import Locator
from ..config.loader import KeyPath
from ..config.model import Config
from ..contract import CONTAINER_OUTBOX
from ..errors import ClaudeDockerError, ConfigProblem
from ..runspec import RunSpec
from ..session import Session
from .base import EndedSession, RunContext, agent_writable_dir, problem_at
from .firewall.plan import session_proxy_env

# network.proxy's fields and the variables the session gets them in (firewall.plan.session_proxy_env)
PROXY_FIELDS = {"HTTP_PROXY": "http", "http_proxy": "http", "HTTPS_PROXY": "https", "https_proxy": "https",
                "NO_PROXY": "no_proxy", "no_proxy": "no_proxy"}
SECRET_MESSAGE = ("holds a notifier credential, which never enters the container; notifier secrets stay "
                  "on the host: give the container its own credential")


def check(config: Config, environ: Mapping[str, str], locate: Locator | None = None) -> list[ConfigProblem]:
    """A notifier credential bound for the container, in `claude.env` or the session's proxy
    settings (MCP variables are claude_settings.check's)."""
    from ..notify import notifier_secrets

    secrets = notifier_secrets(config.notifier)
    found: dict[KeyPath, ConfigProblem] = {}
    places: list[tuple[KeyPath, str]] = [(("claude", "env", name), value) for name, value in config.claude.env.items()]
    places += [(("network", "proxy", PROXY_FIELDS.get(name, name)), value) for name, value in session_proxy_env(config).items()]
    for key_path, value in places:
        if key_path not in found and any(secret in value for secret in secrets):
            found[key_path] = problem_at(config, locate, key_path, SECRET_MESSAGE)
    return list(found.values())


def runtime_artifacts(config: Config, session: Session) -> dict[str, Artifact]:
    return {}


def refuse_secrets(cfg: Config) -> None:
    """Notifier credentials never enter the container: MCP variables are checked where they are
    resolved (claude_settings.mcp_environment); the same value in claude.env or the proxy is
    refused too."""
    from ..notify import notifier_secrets  # (notify loads Jinja for its messages: only when needed)

    secrets = notifier_secrets(cfg.notifier)
    values = [(f"claude.env.{name}", value) for name, value in cfg.claude.env.items()]
    values += [(f"network.proxy ({name})", value) for name, value in session_proxy_env(cfg).items()]
    for where, value in values:
        if any(secret in value for secret in secrets):
            raise ClaudeDockerError(
                f"{where} holds a notifier credential, which never enters the container",
                "notifier secrets stay on the host; give the container its own credential",
            )


def contribute(ctx: RunContext, spec: RunSpec) -> None:
    """Mount the session outbox into the container, writable by the agent uid.

    Without a notifier there is no outbox: nothing would deliver it, and the in-container
    `notify` command then says so instead of queueing messages nobody reads.
    """
    if not ctx.config.notifier.configured:
        return
    agent_writable_dir(ctx.session.outbox_dir, ctx)
    spec.bind(str(ctx.session.outbox_dir), CONTAINER_OUTBOX, read_only=False)


def cleanup(ended: Sequence[EndedSession]) -> list[str]:
    """An empty outbox goes; events not yet delivered stay for `notify flush`."""
    for entry in ended:
        if entry.session is not None and entry.container_gone:
            try:
                entry.session.outbox_dir.rmdir()  # only when nothing is left in it
            except OSError:
                pass
    return []
