"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

file_option = click.option(
    "-f",
    "--file",
    "config_file",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Config file (default: claude-docker.yaml in this directory or the nearest parent).",
)


def output_dir_option(help_text: str) -> Callable[[F], F]:
    """`-o/--output DIR`: where a command writes the files it renders."""
    return click.option(
        "-o",
        "--output",
        "output_dir",
        required=True,
        type=click.Path(file_okay=False, path_type=Path),
        help=help_text,
    )
