"""`claude-docker blocked`: the names the firewall refused, per session, and how to allow them."""

from __future__ import annotations

from pathlib import Path

import click

from .. import firewall
from ..errors import ClaudeDockerError
from ..paths import project_state_dir
from ..pipeline import load_config
from .options import file_option


def session_logs(project: str) -> list[tuple[str, Path]]:
    """(session id, dns log) for every session of the project that left a log, oldest first."""
    sessions = project_state_dir(project) / "sessions"
    logs = [(d.name, d / "log" / firewall.DNS_LOG_NAME) for d in sessions.glob("*") if d.is_dir()]
    logs = [(sid, log) for sid, log in logs if log.is_file()]
    return sorted(logs, key=lambda item: item[1].stat().st_mtime)


@click.command()
@file_option
@click.option("--session", "session_id", default=None, help="Only this session (default: the latest one).")
@click.option("--all", "all_sessions", is_flag=True, help="Every session of the project, not just the latest.")
@click.option(
    "--log",
    "log_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Read this dns.log instead of the project's sessions (no config needed).",
)
@click.option("--suggest", is_flag=True, help="Print the YAML lines that would allow the refused names.")
def blocked(config_file: str | None, session_id: str | None, all_sessions: bool, log_file: Path | None, suggest: bool) -> None:
    """List the names the firewall refused to resolve, with the time of the last refusal.

    \b
    Examples:
      claude-docker blocked               # the latest session of this project
      claude-docker blocked --all         # every session
      claude-docker blocked --suggest     # YAML to paste under network.allowed_domains
    """
    if log_file is not None:
        logs = [(log_file.name, log_file)]
    else:
        project = load_config(config_file).config.project_name
        logs = session_logs(project)
        if session_id is not None:
            logs = [(sid, log) for sid, log in logs if sid == session_id]
            if not logs:
                raise ClaudeDockerError(
                    f"no firewall log for session {session_id} of project {project}",
                    "list sessions with `claude-docker ps`, or use --all",
                )
        elif not all_sessions:
            logs = logs[-1:]
        if not logs:
            click.echo(f"no firewall logs yet for project {project} (start a session with `claude-docker up`)")
            return

    refused: list[str] = []
    for sid, log in logs:
        names = firewall.read_blocked(log)
        if suggest:
            refused.extend(entry.name for entry in names if not entry.private_answer)
            continue
        click.echo(f"session {sid}: {len(names)} refused name{'s' if len(names) != 1 else ''} ({log})")
        for entry in names:
            times = f" ({entry.count}x, first {entry.first:%H:%M:%S})" if entry.count > 1 else ""
            why = "  (allowed, but it resolved to a private address: see allowed_cidrs)" if entry.private_answer else ""
            click.echo(f"  {entry.last:%Y-%m-%d %H:%M:%S}  {entry.name}{times}{why}")
    if suggest:
        yaml_lines = firewall.suggest_yaml(refused)
        if yaml_lines:
            click.echo("# add to claude-docker.yaml to allow what was refused (only what you trust):")
            click.echo(yaml_lines, nl=False)
        else:
            click.echo("# nothing was refused")


COMMANDS: list[click.Command] = [blocked]
