"""`claude-docker reset`: forget a project's persisted login, shell history or package caches."""

from __future__ import annotations

import shutil

import click

from ..config.pipeline import load_config
from ..features import persistence
from .options import file_option


@click.command()
@file_option
@click.option("--auth", is_flag=True, help="Forget the Claude login and its state (.claude.json).")
@click.option("--history", is_flag=True, help="Forget the shell history.")
@click.option("--caches", is_flag=True, help="Empty the npm, pip and uv caches.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def reset(config_file: str | None, auth: bool, history: bool, caches: bool, yes: bool) -> None:
    """Clear this project's persisted state (all of it unless you pick some).

    With `persistence.auth: shared`, --auth clears the login every project shares.

    \b
    Examples:
      claude-docker reset --history
      claude-docker reset --auth --yes      # log in again next time
      claude-docker reset                    # everything, after confirmation
    """
    if not (auth or history or caches):
        auth = history = caches = True
    cfg = load_config(config_file).config
    targets = [path for path in persistence.reset_targets(cfg, auth, history, caches) if path.exists()]
    if not targets:
        click.echo(f"nothing to reset for project {cfg.project_name}")
        return
    click.echo(f"this removes, for project {cfg.project_name}:")
    for path in targets:
        click.echo(f"  {path}")
    if not yes:
        click.confirm("continue?", abort=True)
    for path in targets:
        shutil.rmtree(path)
    click.echo("reset done")


COMMANDS: list[click.Command] = [reset]
