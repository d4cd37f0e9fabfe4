"""Options shared by several commands."""

from __future__ import annotations

import click

file_option = click.option(
    "-f",
    "--file",
    "config_file",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Config file (default: claude-docker.yaml in this directory or the nearest parent).",
)
