"""claude-docker: run Claude Code unattended inside a locked-down Docker container."""

__version__ = "0.1.0"
