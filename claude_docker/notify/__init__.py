"""Host-side notifications: hook events from the session outbox → backends."""

from __future__ import annotations

import contextlib
from typing import Iterator

from ..model import Config
from ..runspec import RunSpec
from ..session import Session


def contribute(cfg: Config, session: Session, spec: RunSpec) -> None:
    """Mount the session outbox into the container."""


@contextlib.contextmanager
def session_notifier(cfg: Config, session: Session) -> Iterator[None]:
    """Deliver outbox events while the session runs, and what is left when it ends."""
    yield
