"""Where claude-docker keeps things on the host (the container side is in contract.py)."""

from __future__ import annotations

import os
from pathlib import Path


def claude_docker_home() -> Path:
    """`$CLAUDE_DOCKER_HOME`, default `~/.claude-docker`: user config, env file, persisted state."""
    configured = os.environ.get("CLAUDE_DOCKER_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".claude-docker"


def ensure_home() -> tuple[Path, bool]:
    """Create `$CLAUDE_DOCKER_HOME` readable by its owner only (it holds logins and the env
    file); True when it was created now. An existing directory is left as it is."""
    home = claude_docker_home()
    if home.is_dir():
        return home, False
    home.mkdir(parents=True, mode=0o700)
    home.chmod(0o700)  # mkdir's mode is filtered by the umask
    return home, True


def user_config_file() -> Path:
    return claude_docker_home() / "config.yaml"


def default_env_file() -> Path:
    return claude_docker_home() / ".env"


def project_state_dir(project: str) -> Path:
    """Persisted per-project state (auth, history, caches) and its sessions."""
    return claude_docker_home() / "projects" / project


def shared_state_dir() -> Path:
    """State shared by every project (e.g. `persistence.auth: shared`)."""
    return claude_docker_home() / "shared"

