"""The egress firewall: runtime artifacts (init-firewall.sh, dnsmasq.conf) and run-time needs."""

from __future__ import annotations

from .model import Config
from .runspec import RunSpec
from .session import Session


def runtime_artifacts(cfg: Config, session: Session) -> dict:
    return {}


def contribute(cfg: Config, session: Session, spec: RunSpec) -> None:
    """Capabilities, env and the log mount the firewall needs."""
