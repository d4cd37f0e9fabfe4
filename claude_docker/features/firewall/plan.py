"""The firewall's plan: the allowlist turned into plain data, before anything is rendered.

Which names dnsmasq forwards and which it refuses below them (`plan_dns`), the ipset lines that
tie answers to sets (`plan_ipsets`), the networks and ports opened by address (`plan_cidrs`,
`port_entries`, `exact_openings`), the answers refused as DNS rebinding (`refused_answers`), the
names the proxy matches (`proxy_names`), network.proxy as the proxy's upstream or as a direct
opening, the self-test's names and TLS ClientHellos, the local endpoints where the proxy adds
credentials, and a notifier's own egress inside the sandbox (`NotifierEgress`).

Kept apart from the feature (`firewall/__init__.py`, which renders these into the container's
scripts) so that the run plan, the notifier and the Kubernetes manifests can ask what the
firewall admits without templates: nothing here imports Jinja or reads a file.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import urlsplit

from ... import contract
from ...config.config_values import ValueProblem, parse_cidr
from ...config.model import Config
from ...errors import FirewallError

PROXIED_PORTS = (80, 443)  # decided by name through the proxy; other ports by address only
# The proxy's listeners on loopback; the agent's TCP to admitted addresses is redirected there.
PROXY_TLS_PORT = 15443
PROXY_HTTP_PORT = 15080
PROXY_CHAIN_PORT = 15128  # HTTP(S)_PROXY of the session when it chains to network.proxy
# The model endpoint's addresses when the proxy holds its key: reached on its port by the proxy's
# uid only (the agent goes through the local endpoint).
MODEL_SET = "cd-model"
SELFTEST_REFUSED = "claude-docker-selftest.invalid"  # must be refused; not shown as blocked

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
DOMAIN_NAME = re.compile(rf"^(\*\.)?({_LABEL}\.)*{_LABEL}\Z")


@dataclass(frozen=True)
class DnsPlan:
    """What dnsmasq forwards (`forward`), refuses below a forwarded name (`local`) and tracks."""

    forward: tuple[str, ...]  # dnsmasq domain patterns: "example.com" or "*.example.com"
    local: tuple[str, ...]  # "*.example.com": subdomains of an exact-only name, answered NXDOMAIN
    ipset_zones: tuple[str, ...]  # zones whose resolved addresses enter the allow set


def normalise_domain(entry: str) -> str:
    name = entry.strip().lower().rstrip(".")
    if len(name) > 253 or not DOMAIN_NAME.match(name):
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
        return tuple(sorted({host for host, _ in self.endpoints if not is_ipv4(host)}))

    @property
    def name_ports(self) -> tuple[int, ...]:
        return tuple(sorted({port for host, port in self.endpoints if not is_ipv4(host)}))

    @property
    def address_entries(self) -> tuple[str, ...]:
        return tuple(sorted({f"{host},tcp:{port}" for host, port in self.endpoints if is_ipv4(host)}))


def is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def own_dns(
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
