"""The `claude-docker` command line: the only place that prints to the user or picks an exit code.

Commands live in `claude_docker.commands.*`, one module per area; this module wires them into
one click group and maps ClaudeDockerError to a two-line message and exit code 1.
"""

from __future__ import annotations

import sys

import click

from . import __version__
from .errors import ClaudeDockerError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# `--help` lists commands in the order a session uses them; any other command follows, sorted.
COMMAND_ORDER = (
    "init", "validate", "trust", "up", "ps", "logs", "attach", "shell", "down",
    "build", "config", "render", "blocked", "notify", "reset", "doctor",
    "profiles", "schema", "completion",
)


class _Group(click.Group):
    """Loads commands lazily; turns user-facing errors into a message, lets bugs show a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from .commands import COMMAND_MODULES

        known = [name for name in COMMAND_ORDER if name in COMMAND_MODULES]
        return known + sorted(set(COMMAND_MODULES) - set(known))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from .commands import load_command

        return load_command(cmd_name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ClaudeDockerError as error:
            report_error(error)
            sys.exit(error.exit_code)


def report_error(error: ClaudeDockerError) -> None:
    click.secho(f"error: {error.message}", fg="red", err=True)
    if error.hint:
        click.echo(f"hint: {error.hint}", err=True)


@click.group(cls=_Group, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="claude-docker")
def main() -> None:
    """Run Claude Code unattended in a locked-down Docker container.

    One file, claude-docker.yaml, describes the sandbox: image, workspace, blocked host
    paths, the egress allowlist, what persists between sessions and who gets told when the
    agent is done.

    \b
    Quick start:
      claude-docker init                 # write a commented claude-docker.yaml
      claude-docker validate             # check it
      claude-docker up                   # build if needed and start Claude Code
      claude-docker up -- -p "fix the failing test"   # headless, exits with Claude's code
    """
