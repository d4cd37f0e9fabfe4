"""What survives between sessions: login, shell history, package caches, git config, dotfiles."""

from __future__ import annotations

from .model import Config
from .runspec import RunSpec
from .session import Session


def contribute(cfg: Config, session: Session, spec: RunSpec) -> None:
    """Prepare persisted host dirs and add their mounts and env."""
