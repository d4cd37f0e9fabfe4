"""`python -m claude_docker` is the `claude-docker` command."""

from .cli import main

main(prog_name="claude-docker")
