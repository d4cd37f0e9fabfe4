"""Claude Code's settings.json (hooks) and mcp.json, built as data and written with json.dumps."""

from __future__ import annotations

from .model import Config
from .session import Session


def runtime_artifacts(cfg: Config, session: Session) -> dict:
    return {}
