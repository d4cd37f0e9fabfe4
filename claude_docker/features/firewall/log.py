"""Reading the firewall's logs back on the host: what it refused, and how to allow it.

Three logs in a session's log dir, each written inside the container by a root-owned process and
read here as text the agent may have shaped: dnsmasq's queries (refused names, and allowlisted
names whose answer pointed at a private address), the name-checking proxy's refused connections,
and the packet filter's refused packets (NFLOG through ulogd). Each file and its previous
generation is read up to MAX_DNS_LOG_READ bytes from its end. On top of the parsers: Claude
Code's own start-up traffic (expected refusals), one session's refusals in a few lines for `up`
(`refusal_summary`) and the allowlist lines that would admit refused names (`suggest_yaml`).

Kept apart from the feature so that `claude-docker blocked`, which only parses logs, needs neither
the templates nor Jinja.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable

from ...contract import DNS_LOG_NAME, PACKET_LOG_NAME, PROXY_LOG_NAME  # inside the session log dir
from ...errors import FirewallError
from .plan import DOMAIN_NAME, SELFTEST_REFUSED

# The host reads at most the last MAX_DNS_LOG_READ bytes of each log file and of its previous
# generation: the container rotates them, but they grow as fast as the agent asks.
MAX_DNS_LOG_READ = 1024 * 1024
NFLOG_PREFIX = "cd-refused:"  # + the reason (PACKET_REASONS); init-firewall.sh's log rules write it


# --- the blocked-names log ------------------------------------------------------------------

_BLOCKED_LINE = re.compile(r"^(?P<stamp>\w{3} +\d+ \d\d:\d\d:\d\d) dnsmasq\[\d+\]: config (?P<name>\S+) is NXDOMAIN$")
_FORWARDED_LINE = re.compile(r"^\w{3} +\d+ \d\d:\d\d:\d\d dnsmasq\[\d+\]: forwarded (?P<name>\S+) to \S+$")


@dataclass(frozen=True)
class BlockedName:
    name: str
    first: datetime
    last: datetime
    count: int
    private_answer: bool = False  # allowlisted, but its answer pointed at a private address


def parse_blocked(lines: Iterable[str], now: datetime | None = None) -> list[BlockedName]:
    """Names dnsmasq refused, in order of last refusal, from its `log-queries` output.

    dnsmasq stamps lines without a year; a stamp later than `now` belongs to last year. A name
    dnsmasq forwarded is allowlisted: its NXDOMAIN is a refused private answer (`refused_answers`).
    """
    now = now or datetime.now()
    seen: dict[str, BlockedName] = {}
    forwarded: set[str] = set()
    for line in lines:
        forward = _FORWARDED_LINE.match(line.rstrip("\n"))
        if forward:
            forwarded.add(forward["name"].lower())
            continue
        match = _BLOCKED_LINE.match(line.rstrip("\n"))
        if not match:
            continue
        stamp = _syslog_stamp(match["stamp"], now)
        if stamp is None:
            continue
        name = match["name"].lower()
        if name == SELFTEST_REFUSED:
            continue
        private = name in forwarded
        old = seen.pop(name, None)
        if old is None:
            seen[name] = BlockedName(name, stamp, stamp, 1, private)
        else:
            seen[name] = BlockedName(name, old.first, stamp, old.count + 1, private or old.private_answer)
    return list(seen.values())


# The proxy's refusals (haproxy.cfg.j2's log-format); `upstream-failed` lines are not refusals.
_REFUSED_LINE = re.compile(
    r"^(?P<stamp>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)[+-]\d{4} claude-docker-proxy refused "
    r"port=(?P<port>\d+|-) name=(?P<name>.*) reason=(?P<reason>[a-z-]+)$"
)
REFUSAL_REASONS = {
    "not-allowed": "name not allowed",
    "no-name": "no name",  # no SNI, no Host, or a bare address
    "no-address": "name does not resolve",
    "proxy-request": "CONNECT or absolute URI",
    "names-disagree": "Host and request target disagree",
    "model-endpoint": "the model endpoint (through the local endpoint only)",
    # the local endpoints that hold the credentials (credentials.py): limits, not the allowlist
    "method": "method not allowed at the local endpoint",
    "too-large": "request too large (or chunked) for the local endpoint",
    "rate": "over the local endpoint's rate limit",
}
NO_NAME = {"443": "no SNI", "80": "no Host"}


@dataclass(frozen=True)
class RefusedConnection:
    name: str  # lower case; "no SNI" / "no Host" when the client named nothing
    port: str
    reason: str  # REFUSAL_REASONS' words
    first: datetime
    last: datetime
    count: int


def parse_refused(lines: Iterable[str]) -> list[RefusedConnection]:
    """Connections the proxy refused, grouped by (name, port, reason), in order of last refusal."""
    seen: dict[tuple[str, str, str], RefusedConnection] = {}
    for line in lines:
        match = _REFUSED_LINE.match(line.rstrip("\n"))
        if not match or match["reason"] not in REFUSAL_REASONS:
            continue
        try:
            stamp = datetime.strptime(match["stamp"], "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            continue
        name = match["name"].lower()
        if name == SELFTEST_REFUSED:
            continue
        if name in ("", "-"):
            name = NO_NAME.get(match["port"], "no name")
        name = "".join(c if c.isprintable() else "?" for c in name)[:255]
        key = (name, match["port"], REFUSAL_REASONS[match["reason"]])
        old = seen.pop(key, None)
        if old is None:
            seen[key] = RefusedConnection(*key, stamp, stamp, 1)
        else:
            seen[key] = RefusedConnection(*key, old.first, stamp, old.count + 1)
    return list(seen.values())


def read_refused(log_file: Path) -> list[RefusedConnection]:
    """The proxy's refusals in proxy.log and its previous generation, capped like the DNS log."""
    lines: list[str] = []
    for path in (log_file.with_name(log_file.name + ".1"), log_file):
        lines += _log_tail(path, MAX_DNS_LOG_READ)
    return parse_refused(lines)


def read_blocked(log_file: Path, now: datetime | None = None) -> list[BlockedName]:
    """The refused names in a dns.log and the generation before it (dns.log.1), reading at most
    the last MAX_DNS_LOG_READ bytes of each: the log grows as fast as the agent asks."""
    lines: list[str] = []
    for path in (log_file.with_name(log_file.name + ".1"), log_file):
        lines += _log_tail(path, MAX_DNS_LOG_READ)
    return parse_blocked(lines, now)


def _log_tail(path: Path, limit: int) -> list[str]:
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - limit))
            data = handle.read(limit)
    except FileNotFoundError:
        return []
    except OSError as error:
        raise FirewallError(f"cannot read {path}: {error.strerror}", "check the file's permissions") from None
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[1:] if size > limit else lines  # the first line was cut


# --- the packet log ---------------------------------------------------------------------------

# ulogd's LOGEMU lines (the kernel LOG target's format) behind NFLOG_PREFIX and the reason.
_PACKET_LINE = re.compile(
    r"^(?P<stamp>\w{3} +\d+ \d\d:\d\d:\d\d) \S+ " + re.escape(NFLOG_PREFIX) + r"(?P<reason>[a-z-]+) (?P<fields>.*)$"
)
_PACKET_FIELD = re.compile(r"\b([A-Z]+)=(\S*)")
PACKET_REASONS = {  # the log rules of init-firewall.sh.j2, by the prefix's reason
    "not-allowed": "not allowed",
    "host": "the Docker host (see network.host_ports)",
    "private": "a private, loopback or link-local address (see network.allowed_cidrs)",
    "dns": "DNS past the sandbox's resolver",
    "ping": "ping",
    "model-endpoint": "the model endpoint (through the local endpoint only)",
}


@dataclass(frozen=True)
class RefusedPacket:
    address: str
    port: str  # "-" for protocols without ports (ICMP)
    protocol: str  # "tcp", "udp", "icmp", ...
    reason: str  # PACKET_REASONS' words
    uid: str  # the sender's uid, "" when the kernel did not know it
    first: datetime
    last: datetime
    count: int  # logged packets: past the rate limit, refusals are not counted

    def describe(self) -> str:
        port = f" port {self.port}" if self.port != "-" else ""
        uid = f", uid {self.uid}" if self.uid else ""
        return f"{self.address}{port} {self.protocol}: {self.reason}{uid}"


def _syslog_stamp(text: str, now: datetime) -> datetime | None:
    """A `Mon DD HH:MM:SS` stamp (no year): one later than `now` belongs to last year."""
    try:
        stamp = datetime.strptime(f"{now.year} {text}", "%Y %b %d %H:%M:%S")
    except ValueError:
        return None
    if stamp > now and (stamp - now).days > 1:
        stamp = stamp.replace(year=now.year - 1)
    return stamp


def parse_packets(lines: Iterable[str], now: datetime | None = None) -> list[RefusedPacket]:
    """Packets the filter refused, grouped by (address, port, protocol, reason, uid), in order of
    last refusal. Each line is the kernel's view of a packet, written by ulogd; no part of it is
    text the agent chose."""
    now = now or datetime.now()
    seen: dict[tuple[str, str, str, str, str], RefusedPacket] = {}
    for line in lines:
        match = _PACKET_LINE.match(line.rstrip("\n"))
        if not match or match["reason"] not in PACKET_REASONS:
            continue
        stamp = _syslog_stamp(match["stamp"], now)
        fields = dict(_PACKET_FIELD.findall(match["fields"]))
        address = fields.get("DST", "")
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            continue
        if stamp is None:
            continue
        port = fields.get("DPT", "-")
        uid = fields.get("UID", "")
        key = (
            address,
            port if port.isdigit() else "-",
            fields.get("PROTO", "?").lower()[:10],
            PACKET_REASONS[match["reason"]],
            uid if uid.isdigit() else "",
        )
        old = seen.pop(key, None)
        if old is None:
            seen[key] = RefusedPacket(*key, stamp, stamp, 1)
        else:
            seen[key] = RefusedPacket(*key, old.first, stamp, old.count + 1)
    return list(seen.values())


def read_packets(log_file: Path, now: datetime | None = None) -> list[RefusedPacket]:
    """The refused packets in packets.log and its previous generation, capped like the DNS log."""
    lines: list[str] = []
    for path in (log_file.with_name(log_file.name + ".1"), log_file):
        lines += _log_tail(path, MAX_DNS_LOG_READ)
    return parse_packets(lines, now)


# --- Claude Code's own start-up traffic ----------------------------------------------------------

# Names Claude Code looks up at start whether or not the session needs them: its update and
# native-install downloads and its telemetry (Statsig, Sentry, Datadog). Their refusal is
# expected: `blocked` marks them, `blocked --suggest` never proposes them, and the refusals `up`
# prints after a failed session leave them out. The one list of them.
CLAUDE_STARTUP_HOSTS = (
    "downloads.claude.ai",
    "storage.googleapis.com",  # older versions' update bucket
    "statsig.anthropic.com",
    "statsig.com",
    "*.statsig.com",
    "sentry.io",
    "*.sentry.io",
    "datadoghq.com",
    "*.datadoghq.com",
    "*-datadoghq.com",  # browser-intake-<site>-datadoghq.com
)


def is_startup_traffic(name: str) -> bool:
    """Whether a name is one Claude Code tries at start on its own (CLAUDE_STARTUP_HOSTS)."""
    name = name.lower().rstrip(".")
    for pattern in CLAUDE_STARTUP_HOSTS:
        if name == pattern or (pattern.startswith("*") and name.endswith(pattern[1:]) and len(name) > len(pattern) - 1):
            return True
    return False


# --- one session's refusals ----------------------------------------------------------------------


@dataclass(frozen=True)
class SessionRefusals:
    names: list[BlockedName]
    connections: list[RefusedConnection]
    packets: list[RefusedPacket]


def session_refusals(log_dir: Path, now: datetime | None = None) -> SessionRefusals:
    """Everything the firewall refused in one session, from the three logs of its log dir."""
    return SessionRefusals(
        read_blocked(log_dir / DNS_LOG_NAME, now),
        read_refused(log_dir / PROXY_LOG_NAME),
        read_packets(log_dir / PACKET_LOG_NAME, now),
    )


def refusal_summary(log_dir: Path, limit: int = 8, now: datetime | None = None) -> list[str]:
    """What the firewall refused in a session, one line each, oldest first, without Claude Code's
    own start-up traffic; `up` shows it when a session ends with an error."""
    found = session_refusals(log_dir, now)
    entries: list[tuple[datetime, str]] = []
    for name in found.names:
        if not is_startup_traffic(name.name):
            what = "allowed, but it resolved to a private address" if name.private_answer else "name refused"
            entries.append((name.last, f"{name.name}: {what}{_times(name.count)}"))
    for conn in found.connections:
        if not is_startup_traffic(conn.name):
            entries.append((conn.last, f"{conn.name} port {conn.port}: {conn.reason}{_times(conn.count)}"))
    for packet in found.packets:
        entries.append((packet.last, f"{packet.describe()}{_times(packet.count)}"))
    lines = [text for _, text in sorted(entries, key=lambda entry: entry[0])]
    if len(lines) > limit:
        lines = [f"... and {len(lines) - limit} more before", *lines[-limit:]]
    return lines


def _times(count: int) -> str:
    return f" ({count}x)" if count > 1 else ""


def suggest_yaml(names: Iterable[str]) -> str:
    """The `network.allowed_domains` lines that would allow these names (reverse lookups and
    Claude Code's own start-up traffic skipped)."""
    wanted = [
        n for n in dict.fromkeys(names)
        if "." in n and not n.endswith(".arpa") and DOMAIN_NAME.match(n) and not is_startup_traffic(n)
    ]
    if not wanted:
        return ""
    return "network:\n  allowed_domains:\n" + "".join(f"    - {n}\n" for n in wanted)
