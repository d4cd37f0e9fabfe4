"""Workspace and user mounts, and the blocked-path rules that govern every mount."""

from __future__ import annotations

from .model import Config
from .runspec import RunSpec
from .session import Session


def contribute(cfg: Config, session: Session, spec: RunSpec) -> None:
    """Add the workspace mount, masks over blocked paths inside it, and `filesystem.mounts`."""


def problems(cfg: Config) -> list:
    """Mounts that break the blocked-path rules, as errors.ConfigProblem; run by `validate`."""
    return []
