"""One session: a container running Claude Code for a project, and its host-side state."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from .paths import project_state_dir


def new_session_id() -> str:
    return secrets.token_hex(4)


@dataclass(frozen=True)
class Session:
    project: str
    session_id: str

    @classmethod
    def new(cls, project: str) -> Session:
        return cls(project=project, session_id=new_session_id())

    @property
    def container_name(self) -> str:
        return f"claude-docker-{self.project}-{self.session_id}"

    @property
    def state_dir(self) -> Path:
        return project_state_dir(self.project)

    @property
    def session_dir(self) -> Path:
        return self.state_dir / "sessions" / self.session_id

    @property
    def runtime_dir(self) -> Path:
        """Rendered runtime artifacts, mounted read-only at contract.CONTAINER_RUNTIME."""
        return self.session_dir / "runtime"

    @property
    def outbox_dir(self) -> Path:
        """Hook events written by the container, mounted at contract.CONTAINER_OUTBOX."""
        return self.session_dir / "outbox"

    @property
    def progress_dir(self) -> Path:
        """Progress records of the agent's hooks, mounted at contract.CONTAINER_PROGRESS."""
        return self.session_dir / "progress"

    @property
    def log_dir(self) -> Path:
        """Firewall logs (blocked DNS names), mounted at contract.CONTAINER_LOG_DIR."""
        return self.session_dir / "log"
