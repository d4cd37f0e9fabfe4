"""`claude-docker blocked`: the names, connections and packets the firewall refused, per session,
and how to allow them. DNS refusals come from dnsmasq's log, refused connections from the proxy's,
refused packets from the packet log (NFLOG through ulogd)."""

from __future__ import annotations

from pathlib import Path

import click

from .. import contract
from ..config.pipeline import load_config
from ..errors import ClaudeDockerError
from ..features.firewall import log as firewall_log
from ..paths import project_state_dir
from .options import file_option


def session_logs(project: str) -> list[tuple[str, Path]]:
    """(session id, dns log) for every session of the project that left a log, oldest first.

    The proxy's log lies next to the dns log (`proxy_log`)."""
    sessions = project_state_dir(project) / "sessions"
    logs = [(d.name, d / "log" / contract.DNS_LOG_NAME) for d in sessions.glob("*") if d.is_dir()]
    logs = [(sid, log) for sid, log in logs if log.is_file()]
    return sorted(logs, key=lambda item: item[1].stat().st_mtime)


def proxy_log(dns_log: Path) -> Path:
    return dns_log.with_name(contract.PROXY_LOG_NAME)


def packet_log(dns_log: Path) -> Path:
    return dns_log.with_name(contract.PACKET_LOG_NAME)


@click.command()
@file_option
@click.option("--session", "session_id", default=None, help="Only this session (default: the latest one).")
@click.option("--all", "all_sessions", is_flag=True, help="Every session of the project, not just the latest.")
@click.option(
    "--log",
    "log_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Read this dns.log, proxy.log or packets.log instead of the project's sessions (no config needed).",
)
@click.option("--suggest", is_flag=True, help="Print the YAML lines that would allow the refused names and connections.")
def blocked(config_file: str | None, session_id: str | None, all_sessions: bool, log_file: Path | None, suggest: bool) -> None:
    """List the names the firewall refused to resolve, the connections its proxy refused (name,
    port, reason) and the packets its filter refused (address, port, protocol, reason, uid), with
    the time of the last refusal. Names Claude Code tries at start on its own (its downloads and
    telemetry) are marked and never suggested.

    \b
    Examples:
      claude-docker blocked               # the latest session of this project
      claude-docker blocked --all         # every session
      claude-docker blocked --suggest     # YAML to paste under network.allowed_domains
    """
    if log_file is not None:
        logs = [(log_file.name, log_file)]  # either kind: each parser skips the other's lines
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
        names = firewall_log.read_blocked(log)
        connection_log = log if log_file is not None else proxy_log(log)
        connections = firewall_log.read_refused(connection_log)
        packets_file = log if log_file is not None else packet_log(log)
        packets = firewall_log.read_packets(packets_file)
        if suggest:
            refused.extend(entry.name for entry in names if not entry.private_answer)
            refused.extend(entry.name for entry in connections if entry.reason == "name not allowed")
            continue
        if log_file is None or names or not (connections or packets):
            click.echo(f"session {sid}: {len(names)} refused name{'s' if len(names) != 1 else ''} ({log})")
        for entry in names:
            times = f" ({entry.count}x, first {entry.first:%H:%M:%S})" if entry.count > 1 else ""
            why = "  (allowed, but it resolved to a private address: see allowed_cidrs)" if entry.private_answer else ""
            if firewall_log.is_startup_traffic(entry.name):
                why = "  (Claude Code's own start-up traffic; not needed)"
            click.echo(f"  {entry.last:%Y-%m-%d %H:%M:%S}  {entry.name}{times}{why}")
        if connections:
            plural = "s" if len(connections) != 1 else ""
            click.echo(f"session {sid}: {len(connections)} refused connection{plural} ({connection_log})")
        for conn in connections:
            times = f" ({conn.count}x, first {conn.first:%H:%M:%S})" if conn.count > 1 else ""
            click.echo(f"  {conn.last:%Y-%m-%d %H:%M:%S}  {conn.name} port {conn.port}: {conn.reason}{times}")
        if packets:
            plural = "s" if len(packets) != 1 else ""
            click.echo(f"session {sid}: {len(packets)} refused destination{plural} ({packets_file})")
        for packet in packets:
            times = f" ({packet.count}x, first {packet.first:%H:%M:%S})" if packet.count > 1 else ""
            click.echo(f"  {packet.last:%Y-%m-%d %H:%M:%S}  {packet.describe()}{times}")
    if suggest:
        yaml_lines = firewall_log.suggest_yaml(refused)
        if yaml_lines:
            click.echo("# add to claude-docker.yaml to allow what was refused (only what you trust):")
            click.echo(yaml_lines, nl=False)
        else:
            click.echo("# nothing was refused")


COMMANDS: list[click.Command] = [blocked]
