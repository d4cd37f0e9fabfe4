"""Where claude-docker keeps things, on the host and inside the container."""

from __future__ import annotations

import os
from pathlib import Path

# --- host side -------------------------------------------------------------------------------


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


# --- container side (the contract between the host code and the container templates) -------

CONTAINER_ROOT = "/opt/claude-docker"
CONTAINER_BIN = f"{CONTAINER_ROOT}/bin"  # static helper scripts baked into the image
CONTAINER_RUNTIME = f"{CONTAINER_ROOT}/runtime"  # rendered runtime artifacts, mounted read-only
CONTAINER_OUTBOX = "/run/claude-docker/outbox"  # hook events for the host notifier (agent-writable)
CONTAINER_PROGRESS = "/run/claude-docker/progress"  # progress records of the hooks (agent-writable)
CONTAINER_LOG_DIR = "/run/claude-docker/log"  # firewall logs read by the host (root-writable only)
AGENT_USER = "agent"
AGENT_HOME = "/home/agent"
CLAUDE_CONFIG_DIR = "/home/agent/.claude"  # persisted login + .claude.json (CLAUDE_CONFIG_DIR)

# Exit codes the entrypoint uses before Claude starts (distinct from anything Claude returns).
EXIT_FIREWALL_FAILED = 70
EXIT_SETUP_FAILED = 71
EXIT_ENDPOINT_UNREACHABLE = 72  # the model endpoint refused or did not answer a TCP connection
