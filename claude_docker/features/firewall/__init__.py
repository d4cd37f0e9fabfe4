"""The egress firewall: runtime artifacts (init-firewall.sh, dnsmasq config) and run-time needs.

DNS is the gate. A dnsmasq inside the container is the only resolver the agent can reach; it
forwards only allowlisted names and adds every address it resolves for them to an ipset before
answering, so wildcards and CDN address changes work without a restart. The packet filter then
admits only that ipset, the allowed CIDRs and loopback.

Names, not addresses, decide: many sites share one address (a CDN edge), so the agent's TCP to
an admitted address is redirected to a name-checking proxy (HAProxy, `container/haproxy.cfg.j2`)
which reads the TLS SNI or HTTP Host, checks it against the same allowlist and connects to the
address *it* resolves for that name. Only the proxy's user may reach admitted addresses itself.

Refused names are logged by dnsmasq, refused connections by the proxy and refused packets (through
NFLOG, rate-limited) by ulogd to the session's log dir, which `claude-docker blocked` reads back
(see `read_blocked`, `read_refused`, `read_packets`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from ... import contract
from ...artifacts import Artifact, render_template
from ...config.blocked_paths import Locator
from ...config.config_values import ValueProblem, parse_cidr
from ...config.model import Config
from ...contract import DNS_LOG_NAME, PACKET_LOG_NAME, PROXY_LOG_NAME  # inside the session log dir
from ...errors import ConfigProblem, FirewallError
from ...runspec import RunSpec
from ...session import Session
from ..base import EndedSession, RunContext

SCRIPT = "init-firewall.sh"
DNSMASQ_CONF = "dnsmasq.conf"
PROXY_CONF = "haproxy.cfg"
PROXY_USER = contract.PROXY_USER  # created by Debian's haproxy package
# The proxy's listeners on loopback; the agent's TCP to admitted addresses is redirected there.
PROXY_TLS_PORT = 15443
PROXY_HTTP_PORT = 15080
PROXY_CHAIN_PORT = 15128  # HTTP(S)_PROXY of the session when it chains to network.proxy
DNSMASQ_SERVERS = "dnsmasq-servers.tmpl"  # server= lines; the script fills in the upstream(s)
# dnsmasq logs every query (~300 bytes), as often as the agent asks. Inside the container a root
# loop moves the log's end to dns.log.1 and empties dns.log past DNS_LOG_MAX_BYTES; the host reads
# at most the last MAX_DNS_LOG_READ bytes of each file.
DNS_LOG_MAX_BYTES = 1024 * 1024
DNS_LOG_KEEP_BYTES = 256 * 1024
DNS_LOG_CHECK_SECONDS = 5
MAX_DNS_LOG_READ = 1024 * 1024
UPSTREAM_PLACEHOLDER = "@UPSTREAM@"
# The packet log: every refused packet the filter logs (rate-limited: a flood to one destination
# is logged LOG_BURST_PER_DESTINATION times, then LOG_RATE_PER_DESTINATION a second; all of them
# together at most LOG_RATE a second after a burst of LOG_BURST) goes to an NFLOG group that ulogd
# (Debian's ulogd2, configured by container/ulogd.conf.j2) writes to packets.log.
ULOGD_CONF = "ulogd.conf"
ULOGD_USER = "ulog"  # created by Debian's ulogd2 package
NFLOG_GROUP = 7
NFLOG_PREFIX = "cd-refused:"  # + the reason, see PACKET_REASONS
LOG_RATE_PER_DESTINATION = 1
LOG_BURST_PER_DESTINATION = 5
LOG_RATE = 20
LOG_BURST = 100
SELFTEST_REFUSED = "claude-docker-selftest.invalid"  # must be refused; not shown as blocked

# Capabilities the entrypoint's root phase needs for the firewall (the agent never has any):
# iptables/ipset (NET_ADMIN, NET_RAW), dnsmasq binding port 53 and dropping to its own user,
# and handing the log dir to root so the agent (same uid as the host user) cannot rewrite it.
CAPABILITIES = frozenset({"NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE", "SETUID", "SETGID", "CHOWN"})
ENV_FLAG = "CLAUDE_DOCKER_FIREWALL"
# Docker opens unprivileged ICMP sockets to every group ("0 2147483647"); an empty range closes
# them, so the agent cannot ping without the raw-socket capability it never has.
SYSCTLS = {"net.ipv4.ping_group_range": "1 0"}
ENV_HOST_ADDRESSES = "CLAUDE_DOCKER_HOST_ADDRESSES"
# The self-test's "none of … resolved" warning is shown once per project: the script leaves this
# file in the session's log dir, and later sessions of the project are told it was seen.
UNRESOLVED_MARKER = "unresolved"
ENV_UNRESOLVED_SEEN = "CLAUDE_DOCKER_UNRESOLVED_SEEN"
DISABLED_WARNING = (
    "network.firewall is false: the agent can reach any address on the network, "
    "including your LAN and cloud metadata services"
)
NAME_CHECKS_OFF_WARNING = (
    "network.name_checks is false: every site sharing an address with an allowed name (on a CDN, "
    "thousands) is reachable on any port and protocol"
)
PROXIED_PORTS = (80, 443)  # decided by name through the proxy; other ports by address only
# The model endpoint's addresses when the proxy holds its key: reached on its port by the proxy's
# uid only (the agent goes through the local endpoint).
MODEL_SET = "cd-model"

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^(\*\.)?({_LABEL}\.)*{_LABEL}$")


@dataclass(frozen=True)
class DnsPlan:
    """What dnsmasq forwards (`forward`), refuses below a forwarded name (`local`) and tracks."""

    forward: tuple[str, ...]  # dnsmasq domain patterns: "example.com" or "*.example.com"
    local: tuple[str, ...]  # "*.example.com": subdomains of an exact-only name, answered NXDOMAIN
    ipset_zones: tuple[str, ...]  # zones whose resolved addresses enter the allow set


def normalise_domain(entry: str) -> str:
    name = entry.strip().lower().rstrip(".")
    if len(name) > 253 or not _DOMAIN.match(name):
        raise FirewallError(
            f"network.allowed_domains: {entry!r} is not a domain name",
            "use letters, digits, '-' and '.', optionally starting with '*.' (e.g. github.com, *.githubusercontent.com)",
        )
    return name


def split_port(entry: str) -> tuple[str, int | None]:
    """`github.com:22` -> ("github.com", 22); a name without a port -> (name, None)."""
    name, colon, port = entry.strip().rpartition(":")
    if not colon:
        return entry, None
    if not (port.isdigit() and 1 <= int(port) <= 65535):
        raise FirewallError(f"network.allowed_domains: port in {entry!r} is not 1-65535", "e.g. github.com:22")
    return name, int(port)


def plan_dns(domains: Iterable[str]) -> DnsPlan:
    """Turn the allowlist into dnsmasq patterns with exact names kept exact.

    dnsmasq's `/example.com/` also matches every subdomain, so an exact name gets a
    `local=/*.example.com/` refusal below it, unless a wildcard already allows those.
    An exact name under an allowed wildcard is covered by it and adds nothing.
    """
    names = sorted({normalise_domain(split_port(d)[0]) for d in domains})
    wildcards = {n[2:] for n in names if n.startswith("*.")}
    exact = [n for n in names if not n.startswith("*.")]

    def under_wildcard(name: str) -> bool:
        return any(name.endswith("." + zone) for zone in wildcards)

    forward: list[str] = []
    local: list[str] = []
    zones: list[str] = []
    for zone in sorted(wildcards):
        if under_wildcard(zone):
            continue  # *.a.example.com inside *.example.com
        forward.append(f"*.{zone}")
        zones.append(zone)
    for name in exact:
        if under_wildcard(name):
            continue
        forward.append(name)
        if name not in wildcards:
            local.append(f"*.{name}")
            zones.append(name)
    return DnsPlan(tuple(forward), tuple(local), tuple(sorted(set(zones))))


@dataclass(frozen=True)
class CidrPlan:
    networks: tuple[str, ...]  # "10.0.0.0/8"
    network_ports: tuple[str, ...]  # "10.0.0.0/8,tcp:443" (hash:net,port entries)


def plan_cidrs(entries: Iterable[str]) -> CidrPlan:
    """Parse `ADDRESS[/PREFIX][:PORT]`; a port allows TCP and UDP to it."""
    networks: list[str] = []
    network_ports: list[str] = []
    for entry in entries:
        try:
            cidr = parse_cidr(entry)  # `validate` reports the same problems with file and line
        except ValueProblem as problem:
            raise FirewallError(f"network.allowed_cidrs: {problem}", "run `claude-docker validate`") from None
        if cidr.port is not None:
            network_ports += [f"{cidr.network},tcp:{cidr.port}", f"{cidr.network},udp:{cidr.port}"]
        else:
            networks.append(cidr.network)
    return CidrPlan(tuple(dict.fromkeys(networks)), tuple(dict.fromkeys(network_ports)))


# Where an answer for an allowlisted name must not point (DNS rebinding). Unless allowed_cidrs
# covers the address, dnsmasq turns such an answer into NXDOMAIN before anything enters the allow
# set, and the filter refuses these ranges for addresses that came from DNS.
# Never a service across the container boundary: "this network", loopback (the container's own)
# and link-local (the cloud metadata service at 169.254.169.254).
LOCAL_NETWORKS = ("0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16")
# The LAN and shared address space (some clouds' metadata, e.g. 100.100.100.200; VPNs):
# admitted from DNS with network.allow_private_answers.
PRIVATE_NETWORKS = ("10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16")


def refused_networks(allow_private_answers: bool) -> tuple[str, ...]:
    return LOCAL_NETWORKS + (() if allow_private_answers else PRIVATE_NETWORKS)


def refused_answers(cidrs: CidrPlan, allow_private_answers: bool = False) -> tuple[str, ...]:
    """The refused ranges minus every network `allowed_cidrs` names (with or without a port)."""
    holes = [ipaddress.IPv4Network(entry.split(",")[0]) for entry in (*cidrs.networks, *cidrs.network_ports)]
    remaining = [ipaddress.IPv4Network(network) for network in refused_networks(allow_private_answers)]
    for hole in holes:
        kept: list[ipaddress.IPv4Network] = []
        for network in remaining:
            if not network.overlaps(hole):
                kept.append(network)
            elif hole.subnet_of(network) and hole != network:
                kept.extend(network.address_exclude(hole))
            # else: the hole covers the whole network
        remaining = kept
    return tuple(str(network) for network in ipaddress.collapse_addresses(remaining))


def _zone(pattern: str) -> str:
    return pattern[2:] if pattern.startswith("*.") else pattern


def port_entries(domains: Iterable[str]) -> tuple[tuple[str, int], ...]:
    """(pattern, port) for every allowlist entry naming a port other than 80 and 443."""
    found = []
    for entry in domains:
        name, port = split_port(entry)
        if port is not None and port not in PROXIED_PORTS:
            found.append((normalise_domain(name), port))
    return tuple(dict.fromkeys(found))


def plan_ipsets(dns: DnsPlan, ports: Iterable[tuple[str, int]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(zone, ipsets) for dnsmasq's `ipset=` lines: every answer enters `cd-dns`, and the
    `cd-port-N` set of each port entry covering the zone.

    dnsmasq uses the longest matching zone only, so a zone's line also lists the ports of the
    wildcards above it. A port is address-level: it opens to every address resolved in its zone.
    """
    ports = tuple(ports)
    zones = set(dns.ipset_zones) | {_zone(pattern) for pattern, _ in ports}
    lines = []
    for zone in sorted(zones):
        extra = sorted(
            {
                port
                for pattern, port in ports
                if _zone(pattern) == zone or (pattern.startswith("*.") and zone.endswith("." + _zone(pattern)))
            }
        )
        lines.append((zone, ("cd-dns", *(f"cd-port-{port}" for port in extra))))
    return tuple(lines)


@dataclass(frozen=True)
class UpstreamProxy:
    """network.proxy as the sandbox proxy's own upstream."""

    host: str  # a name (resolved through dnsmasq) or an IPv4 address
    port: int
    is_address: bool


def upstream_proxy(cfg: Config) -> UpstreamProxy | None:
    """The proxy the sandbox proxy chains to: network.proxy, when names are checked and it is
    an http:// URL. The session's HTTP(S)_PROXY then point at the sandbox proxy, which checks the
    `CONNECT` target or request URI against the allowlist before passing the request on."""
    from urllib.parse import urlsplit

    proxy = cfg.network.proxy
    if proxy is None or not (cfg.network.firewall and cfg.network.name_checks):
        return None
    found: set[tuple[str, int]] = set()
    for url in (proxy.http, proxy.https):
        if not url:
            continue
        parts = urlsplit(url)
        if parts.scheme != "http":
            return None  # a TLS connection to the proxy itself: reached directly, by address
        try:
            found.add(((parts.hostname or "").lower(), parts.port or 80))
        except ValueError:
            return None
    if not found:
        return None
    if len(found) > 1:
        raise FirewallError(
            "network.proxy: http and https name different proxies, but the sandbox proxy chains to one",
            "use the same proxy URL for both",
        )
    ((host, port),) = found
    try:
        ipaddress.IPv4Address(host)
        return UpstreamProxy(host, port, True)
    except ValueError:
        return UpstreamProxy(normalise_domain(host), port, False)


def session_proxy_env(cfg: Config) -> dict[str, str]:
    """HTTP(S)_PROXY for the session: network.proxy's values, pointed at the sandbox proxy's
    chaining listener when it chains (credentials kept, so they reach the upstream proxy)."""
    from urllib.parse import urlsplit, urlunsplit

    from ..image import proxy_build_args

    env = proxy_build_args(cfg.network.proxy)
    if upstream_proxy(cfg) is None:
        return env
    for name, value in env.items():
        if name.lower() in ("http_proxy", "https_proxy"):
            parts = urlsplit(value)
            userinfo = parts.netloc.rpartition("@")[0]
            netloc = (userinfo + "@" if userinfo else "") + f"127.0.0.1:{PROXY_CHAIN_PORT}"
            env[name] = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return env


def proxy_port_entries(cfg: Config) -> tuple[str, ...]:
    """`host:port` of network.proxy when its host is an allowlisted name and the agent's tools
    talk to it directly (no chaining), on a port the name-checking proxy does not serve."""
    from urllib.parse import urlsplit

    proxy = cfg.network.proxy
    if proxy is None or upstream_proxy(cfg) is not None:
        return ()
    patterns = [normalise_domain(split_port(d)[0]) for d in cfg.network.allowed_domains]
    entries = []
    for url in (proxy.http, proxy.https):
        if not url:
            continue
        try:
            parts = urlsplit(url)
            host, port = (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            continue
        if host and port not in PROXIED_PORTS and any(name_allowed(host, patterns)):
            entries.append(f"{host}:{port}")
    return tuple(dict.fromkeys(entries))


def name_allowed(name: str, patterns: Iterable[str]) -> Iterable[bool]:
    for pattern in patterns:
        yield name == pattern or (pattern.startswith("*.") and name.endswith(pattern[1:]))


def describe(cfg: Config) -> list[str]:
    """How egress is decided, in words, for `validate`."""
    if not cfg.network.firewall:
        return ["egress: open (network.firewall is false)"]
    domains = cfg.network.allowed_domains + proxy_port_entries(cfg)
    dns = plan_dns(domains)
    names = len(dns.forward)
    lines = []
    if cfg.network.name_checks:
        lines.append(
            f"egress: {names} allowed name{'s' if names != 1 else ''}, decided by the name asked for on ports 80 and 443 "
            "(TLS SNI, HTTP Host; no TLS decryption)"
        )
        ports = port_entries(domains)
        if ports:
            listed = ", ".join(f"{pattern}:{port}" for pattern, port in ports)
            lines.append(f"egress: by address only (TCP, any site on the same addresses): {listed}")
    else:
        lines.append(
            f"egress: {names} allowed name{'s' if names != 1 else ''}, by address only (network.name_checks is false): "
            "every port and protocol of any address they resolve to"
        )
    if cfg.network.allowed_cidrs:
        lines.append(f"egress: by address: {', '.join(cfg.network.allowed_cidrs)}")
    return lines


@dataclass(frozen=True)
class ProxyNames:
    """The allowlist as the proxy matches it: whole names, and `.zone` suffixes for wildcards."""

    exact: tuple[str, ...]  # "example.com": only itself
    suffixes: tuple[str, ...]  # ".example.com" from "*.example.com": any depth, never the apex


def proxy_names(dns: DnsPlan) -> ProxyNames:
    exact = tuple(p for p in dns.forward if not p.startswith("*."))
    suffixes = tuple(p[1:] for p in dns.forward if p.startswith("*."))
    return ProxyNames(exact, suffixes)


def selftest_names(forward: Iterable[str], limit: int = 3) -> list[str]:
    """Exact allowlisted names the script resolves to prove the allow path works."""
    exact = [p for p in forward if not p.startswith("*.")]
    if "api.anthropic.com" in exact:  # the one name every session needs anyway
        exact.remove("api.anthropic.com")
        exact.insert(0, "api.anthropic.com")
    return exact[:limit]


def client_hello(name: str) -> bytes:
    """A TLS 1.2 ClientHello naming `name` (SNI), for the self-test's probes of the proxy.

    Deterministic (its "random" is a hash of the name), so the rendered script is too. It offers
    the common ECDHE-GCM suites, so a real server answers it with a ServerHello.
    """
    import hashlib

    def sized(data: bytes, width: int = 2) -> bytes:
        return len(data).to_bytes(width, "big") + data

    def extension(kind: int, data: bytes) -> bytes:
        return kind.to_bytes(2, "big") + sized(data)

    extensions = (
        extension(0, sized(b"\x00" + sized(name.encode())))  # server_name: host_name
        + extension(10, sized(bytes.fromhex("001d00170018")))  # supported_groups: x25519, P-256, P-384
        + extension(11, sized(b"\x00", 1))  # ec_point_formats: uncompressed
        + extension(13, sized(bytes.fromhex("040308040401050308050501")))  # signature_algorithms
    )
    suites = bytes.fromhex("c02bc02fc02cc030009c009d")
    body = (
        b"\x03\x03" + hashlib.sha256(name.encode()).digest() + b"\x00" + sized(suites) + b"\x01\x00" + sized(extensions)
    )
    handshake = b"\x01" + sized(body, 3)
    return b"\x16\x03\x01" + sized(handshake)


def printf_escaped(data: bytes) -> str:
    return "".join(f"\\x{byte:02x}" for byte in data)


@dataclass(frozen=True)
class NotifierEgress:
    """A notifier inside the sandbox (the Kubernetes notifier container): only its uid may
    connect to its endpoints, and nothing else may. Its names resolve through dnsmasq into sets
    of their own (`cd-notify`, `cd-notify-exact` for addresses), never into the agent's allow
    set or the proxy's name list; the proxy does not see the notifier's connections."""

    uid: int
    endpoints: tuple[tuple[str, int], ...]  # (name or IPv4 address, TCP port)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted({host for host, _ in self.endpoints if not _is_ipv4(host)}))

    @property
    def name_ports(self) -> tuple[int, ...]:
        return tuple(sorted({port for host, port in self.endpoints if not _is_ipv4(host)}))

    @property
    def address_entries(self) -> tuple[str, ...]:
        return tuple(sorted({f"{host},tcp:{port}" for host, port in self.endpoints if _is_ipv4(host)}))


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def _own_dns(
    names: Iterable[str], own_set: str, dns: DnsPlan, ipsets: tuple[tuple[str, tuple[str, ...]], ...]
) -> tuple[list[str], list[str], tuple[tuple[str, tuple[str, ...]], ...]]:
    """Names resolved for one user of the sandbox only (the notifier, or the proxy for the model
    endpoint it holds the key for), added to dnsmasq: (server patterns, local patterns, ipset lines).

    Each name is forwarded exactly (its subdomains stay refused, so no DNS tunnel opens). Its
    addresses enter `own_set`; where the agent's allowlist covers the name too, also the sets
    the allowlist's own line would have given them (dnsmasq uses the longest matching line)."""
    forward: list[str] = []
    local: list[str] = []
    lines = dict(ipsets)
    for name in names:
        allowed = any(name_allowed(name, dns.forward))
        if not allowed:
            forward.append(name)
            local.append(f"*.{name}")
        covering = [zone for zone in lines if name == zone or name.endswith("." + zone)]
        inherited = lines[max(covering, key=len)] if allowed and covering else ()
        lines[name] = (*inherited, own_set) if own_set not in inherited else inherited
    return forward, local, tuple(sorted(lines.items()))


def runtime_artifacts(cfg: Config, session: Session, notifier: NotifierEgress | None = None) -> dict[str, Artifact]:
    if not cfg.network.firewall:
        return {}
    git_host = [cfg.network.git_credential.host] if cfg.network.git_credential and cfg.network.name_checks else []
    model = local_model_endpoint(cfg)
    # With the key held by the proxy the model endpoint is the proxy's alone (MODEL_SET, its uid
    # only): the agent reaches it through the local endpoint, never directly.
    endpoint_names = endpoint_domains(cfg)
    held_name = str(model["host"]) if model is not None and not model["is_address"] else None
    domains = (*cfg.network.allowed_domains, *proxy_port_entries(cfg), *(endpoint_names if model is None else ()), *git_host)
    dns = plan_dns(domains)
    # The model endpoint is checked before Claude starts, on its own: the self-test proves the allowlist.
    selftest = [name for name in selftest_names(plan_dns(cfg.network.allowed_domains).forward) if name != held_name]
    cidrs = plan_cidrs(cfg.network.allowed_cidrs)
    allow_private = cfg.network.allow_private_answers
    ports = port_entries(domains)
    ipsets = plan_ipsets(dns, ports)
    own_forward: list[str] = []
    if held_name is not None:
        model_forward, model_local, ipsets = _own_dns([held_name], MODEL_SET, dns, ipsets)
        own_forward += model_forward
        dns = DnsPlan(dns.forward, (*dns.local, *model_local), dns.ipset_zones)
    if notifier is not None:
        notifier_forward, notifier_local, ipsets = _own_dns(notifier.names, "cd-notify", dns, ipsets)
        own_forward += notifier_forward
        dns = DnsPlan(dns.forward, (*dns.local, *notifier_local), dns.ipset_zones)
    context = dict(
        dns=dns,
        ipsets=ipsets,
        notifier=notifier,
        extra_ports=sorted({port for _, port in ports}),
        cidrs=cidrs,
        refused_answers=refused_answers(cidrs, allow_private),
        private_networks=refused_networks(allow_private),
        names=proxy_names(dns),
        domain_exact=cfg.network.name_checks,
        proxy_conf=PROXY_CONF,
        proxy_user=PROXY_USER,
        proxy_group=PROXY_USER,
        proxy_log=f"{contract.CONTAINER_LOG_DIR}/{PROXY_LOG_NAME}",
        tls_listen_port=PROXY_TLS_PORT,
        http_listen_port=PROXY_HTTP_PORT,
        chain_listen_port=PROXY_CHAIN_PORT,
        upstream_proxy=upstream_proxy(cfg),
        model=model,
        model_set=MODEL_SET,
        secret_prefix=contract.SECRET_PREFIX,
        secret_api_key=contract.SECRET_API_KEY,
        secret_authorization=contract.SECRET_AUTHORIZATION,
        secret_git_authorization=contract.SECRET_GIT_AUTHORIZATION,
        model_listen_port=contract.MODEL_LISTEN_PORT,
        git_listen_port=contract.GIT_LISTEN_PORT,
        git=local_git_endpoint(cfg),
        ca_file=SYSTEM_CA_FILE,
        resolver="127.0.0.1:53",
        allow_host_network=cfg.network.allow_host_network,
        selftest_names=selftest,
        selftest_hellos=[printf_escaped(client_hello(name)) for name in selftest],
        selftest_refused_hello=printf_escaped(client_hello(SELFTEST_REFUSED)),
        **exact_openings(cfg),
        runtime_dir=contract.CONTAINER_RUNTIME,
        log_dir=contract.CONTAINER_LOG_DIR,
        dns_log=f"{contract.CONTAINER_LOG_DIR}/{DNS_LOG_NAME}",
        dns_log_max_bytes=DNS_LOG_MAX_BYTES,
        dns_log_keep_bytes=DNS_LOG_KEEP_BYTES,
        dns_log_check_seconds=DNS_LOG_CHECK_SECONDS,
        state_dir=FIREWALL_STATE_DIR,
        dnsmasq_conf=DNSMASQ_CONF,
        servers_template=DNSMASQ_SERVERS,
        upstream_placeholder=UPSTREAM_PLACEHOLDER,
        selftest_refused=SELFTEST_REFUSED,
        unresolved_marker=UNRESOLVED_MARKER,
        published_ports=sorted({port.container_port for port in cfg.ports}),
        packet_log=f"{contract.CONTAINER_LOG_DIR}/{PACKET_LOG_NAME}",
        ulogd_conf=ULOGD_CONF,
        ulogd_user=ULOGD_USER,
        nflog_group=NFLOG_GROUP,
        nflog_prefix=NFLOG_PREFIX,
        log_rate=LOG_RATE,
        log_burst=LOG_BURST,
        log_rate_per_destination=LOG_RATE_PER_DESTINATION,
        log_burst_per_destination=LOG_BURST_PER_DESTINATION,
    )
    servers = "".join(f"server=/{p}/{UPSTREAM_PLACEHOLDER}\n" for p in (*dns.forward, *own_forward))
    return {
        SCRIPT: Artifact(render_template("init-firewall.sh.j2", **context).encode(), 0o755),
        DNSMASQ_CONF: Artifact(render_template("dnsmasq.conf.j2", **context).encode()),
        DNSMASQ_SERVERS: Artifact(servers.encode()),
        PROXY_CONF: Artifact(render_template("haproxy.cfg.j2", **context).encode()),
        ULOGD_CONF: Artifact(render_template("ulogd.conf.j2", **context).encode()),
    }


FIREWALL_STATE_DIR = "/run/claude-docker-firewall"  # in-container, root-owned: pid, servers file
# The image's trust store: Debian's CAs plus image.extra_ca_certificates (update-ca-certificates).
SYSTEM_CA_FILE = "/etc/ssl/certs/ca-certificates.crt"


# --- the local endpoints where the proxy adds credentials (see credentials.py) ------------------


def local_model_endpoint(cfg: Config) -> dict[str, object] | None:
    """The model frontend of haproxy.cfg, when the proxy holds the model credential."""
    from .. import credentials

    found = cfg.network.model_endpoint
    if not cfg.network.injected_headers or found is None or not cfg.network.name_checks:
        return None
    default_port = 80 if found.scheme == "http" else 443
    return dict(
        listen_port=contract.MODEL_LISTEN_PORT,
        host=found.host,
        port=found.port,
        host_header=found.host if found.port == default_port else f"{found.host}:{found.port}",
        is_address=found.is_address,
        tls=found.scheme == "https",
        headers=cfg.network.injected_headers,
        max_connections=credentials.MAX_CONNECTIONS,
        max_request_bytes=credentials.MAX_REQUEST_BYTES,
        max_requests_per_minute=credentials.MAX_REQUESTS_PER_MINUTE,
    )


def local_git_endpoint(cfg: Config) -> dict[str, object] | None:
    from .. import credentials

    git = cfg.network.git_credential
    if git is None or not cfg.network.name_checks:
        return None
    return dict(
        listen_port=contract.GIT_LISTEN_PORT,
        host=git.host,
        max_connections=credentials.MAX_CONNECTIONS,
        max_requests_per_minute=credentials.MAX_REQUESTS_PER_MINUTE,
    )


# --- the model endpoint and host ports: one address and TCP port each (see endpoint.py) -------


def endpoint_domains(cfg: Config) -> list[str]:
    """The model endpoint's name joins the allowlist; an address is opened by `exact_openings`."""
    found = cfg.network.model_endpoint
    if found and ":" in found.host:
        raise FirewallError(
            f"the model endpoint {found.host} ({found.source}) is an IPv6 address, and the firewall closes IPv6",
            "point it at an IPv4 address or a name",
        )
    if not found or found.is_address:
        return []
    # Ports other than 80 and 443 are opened by address for that name, like a `name:PORT` entry.
    return [found.host if found.port in PROXIED_PORTS else f"{found.host}:{found.port}"]


def exact_openings(cfg: Config) -> dict[str, object]:
    """What init-firewall.sh opens for one address and port, before it refuses the Docker host
    and private ranges: the model endpoint (an address, or what its name resolves to at start if
    that is a host or private address), `host_ports` on every host address, and `allowed_cidrs`
    entries naming a single address with a port."""
    found = cfg.network.model_endpoint
    single = []
    for entry in cfg.network.allowed_cidrs:
        try:
            cidr = parse_cidr(entry)
        except ValueProblem:
            continue  # plan_cidrs reports it
        if cidr.port is not None and cidr.network.endswith("/32"):
            address = cidr.network[: -len("/32")]
            single += [f"{address},tcp:{cidr.port}", f"{address},udp:{cidr.port}"]
    return dict(
        endpoint_host=found.host if found else "",
        endpoint_port=found.port if found else 0,
        host_ports=list(cfg.network.host_ports),
        exact_entries=list(dict.fromkeys(single)),
    )


def host_address_warnings(cfg: Config, addresses: Iterable[str]) -> list[str]:
    """`allowed_cidrs` entries that cover a Docker host address, which stays closed anyway."""
    if not cfg.network.firewall or cfg.network.allow_host_network:
        return []
    warnings = []
    for entry in cfg.network.allowed_cidrs:
        try:
            cidr = parse_cidr(entry)
        except ValueProblem:
            continue
        network = ipaddress.ip_network(cidr.network)
        covered = [a for a in addresses if ipaddress.ip_address(a) in network]
        if not covered or (cidr.port is not None and network.prefixlen == 32):
            continue  # a single host address with a port is opened exactly
        port = f"[{cidr.port}]" if cidr.port else "[PORT, ...]"
        warnings.append(
            f"network.allowed_cidrs: {entry} covers the Docker host ({', '.join(covered)}), which stays closed; "
            f"open single ports with network.host_ports: {port}, or everything with allow_host_network: true"
        )
    return warnings


def published_port_warnings(cfg: Config) -> list[str]:
    """Published ports bound beyond the host's loopback: reachable from other machines."""
    return [
        f"ports: {port.address}:{port.host_port} publishes container port {port.container_port} beyond the host's "
        f"loopback: {'every machine that reaches this host' if port.address == '0.0.0.0' else 'others on that network'} "
        f"can connect to it; drop the address to publish on 127.0.0.1 only"
        for port in cfg.ports
        if not ipaddress.ip_address(port.address).is_loopback
    ]


def check(config: Config, environ: Mapping[str, str], locate: Locator | None = None) -> list[ConfigProblem]:
    """CIDRs and domains are judged with the config (config_values); what is left are warnings."""
    return []


def cleanup(ended: Sequence[EndedSession]) -> list[str]:
    """The log of refused names stays with the session dir for `blocked`."""
    return []


def contribute(ctx: RunContext, spec: RunSpec) -> None:
    """Capabilities, env and the log mount the firewall needs."""
    cfg, session = ctx.config, ctx.session
    spec.warnings.extend(published_port_warnings(cfg))
    if not cfg.network.firewall:
        spec.env[ENV_FLAG] = "0"
        spec.warnings.append(DISABLED_WARNING)
        return
    spec.env[ENV_FLAG] = "1"
    spec.cap_add |= CAPABILITIES
    spec.sysctls.update(SYSCTLS)
    if not cfg.network.name_checks:
        spec.warnings.append(NAME_CHECKS_OFF_WARNING)
    addresses = host_addresses()  # rejected, or accepted with allow_host_network
    if addresses:
        spec.env[ENV_HOST_ADDRESSES] = " ".join(addresses)
    if unresolved_seen(session):
        spec.env[ENV_UNRESOLVED_SEEN] = "1"
    session.log_dir.mkdir(parents=True, exist_ok=True)
    spec.bind(str(session.log_dir), contract.CONTAINER_LOG_DIR, read_only=False)


def config_warnings(cfg: Config) -> list[str]:
    """What `validate` says before any `up` does: no firewall at all, or a proxy the allowlist
    does not let the container reach."""
    if not cfg.network.firewall:
        return [DISABLED_WARNING, *published_port_warnings(cfg)]
    warnings = published_port_warnings(cfg)
    proxy = cfg.network.proxy
    for key, url in (("http", proxy.http if proxy else None), ("https", proxy.https if proxy else None)):
        if url and not proxy_admitted(url, cfg.network.allowed_domains, cfg.network.allowed_cidrs):
            host = urlsplit(url).hostname or url
            warnings.append(
                f"network.proxy.{key}: the firewall does not admit the proxy host {host}; add it to "
                "network.allowed_domains (a name) or network.allowed_cidrs (an address), or the container cannot reach it"
            )
    warnings += host_address_warnings(cfg, host_addresses())
    return warnings


def proxy_admitted(url: str, domains: Iterable[str], cidrs: Iterable[str]) -> bool:
    """Whether the allowlist lets the container reach the proxy at `url`."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".").lower()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return True  # a malformed port is the schema's to report
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        for entry in domains:
            name = normalise_domain(entry)
            if host == name or (name.startswith("*.") and host.endswith(name[1:])):
                return True
        return False
    for entry in cidrs:
        try:
            cidr = parse_cidr(entry)
        except ValueProblem:
            continue
        if address in ipaddress.ip_network(cidr.network) and cidr.port in (None, port):
            return True
    return False


def unresolved_seen(session: Session) -> bool:
    """Whether an earlier session of the project already warned that no allowlisted name
    resolved; remembered in the project's state, since session dirs are removed over time."""
    remembered = session.state_dir / "firewall-unresolved-seen"
    if remembered.exists():
        return True
    if any((session.state_dir / "sessions").glob(f"*/log/{UNRESOLVED_MARKER}")):
        try:
            remembered.touch()
        except OSError:
            pass
        return True
    return False


def host_addresses(fib_trie: Path = Path("/proc/net/fib_trie")) -> list[str]:
    """This host's own IPv4 addresses (besides loopback), which the container must not reach.

    The bridge gateway is found inside the container; the host's other addresses are only
    visible here. Read from the kernel's routing trie, so no extra dependency is needed.
    """
    try:
        lines = fib_trie.read_text().splitlines()
    except OSError:
        return []
    found: list[str] = []
    previous = ""
    for line in lines:
        if "/32 host LOCAL" in line:
            address = previous.strip().lstrip("|-+` ").strip()
            try:
                ip = ipaddress.IPv4Address(address)
            except ValueError:
                continue
            if not ip.is_loopback and str(ip) not in found:
                found.append(str(ip))
        previous = line
    return found


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
        if "." in n and not n.endswith(".arpa") and _DOMAIN.match(n) and not is_startup_traffic(n)
    ]
    if not wanted:
        return ""
    return "network:\n  allowed_domains:\n" + "".join(f"    - {n}\n" for n in wanted)
