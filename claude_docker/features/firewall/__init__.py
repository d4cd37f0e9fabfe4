"""The egress firewall feature: its runtime artifacts (init-firewall.sh, dnsmasq, HAProxy and
ulogd configs, rendered from `plan`'s data), what the container needs for it (capabilities, the
ping sysctl, env, the log mount) and its warnings, behind the feature protocol (`check`,
`runtime_artifacts`, `contribute`, `cleanup`). The allowlist's planning is `plan.py`, plain data
without templates; reading the logs back is `log.py`, which `blocked` loads without Jinja.

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
(see `log.py`).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from ... import contract
from ...artifacts import Artifact, render_template
from ...config.blocked_paths import Locator
from ...config.config_values import ValueProblem, parse_cidr
from ...config.model import Config
from ...contract import DNS_LOG_NAME, PACKET_LOG_NAME, PROXY_LOG_NAME  # inside the session log dir
from ...errors import ConfigProblem
from ...runspec import RunSpec
from ...session import Session
from ..base import EndedSession, RunContext
from .log import NFLOG_PREFIX
from .plan import (
    MODEL_SET,
    PROXY_CHAIN_PORT,
    PROXY_HTTP_PORT,
    PROXY_TLS_PORT,
    SELFTEST_REFUSED,
    DnsPlan,
    NotifierEgress,
    client_hello,
    endpoint_domains,
    exact_openings,
    local_git_endpoint,
    local_model_endpoint,
    own_dns,
    plan_cidrs,
    plan_dns,
    plan_ipsets,
    port_entries,
    proxy_admitted,
    proxy_names,
    proxy_port_entries,
    refused_answers,
    refused_networks,
    selftest_names,
    upstream_proxy,
)

SCRIPT = "init-firewall.sh"
DNSMASQ_CONF = "dnsmasq.conf"
PROXY_CONF = "haproxy.cfg"
PROXY_USER = contract.PROXY_USER  # created by Debian's haproxy package
DNSMASQ_SERVERS = "dnsmasq-servers.tmpl"  # server= lines; the script fills in the upstream(s)
# dnsmasq logs every query (~300 bytes), as often as the agent asks. Inside the container a root
# loop moves the log's end to dns.log.1 and empties dns.log past DNS_LOG_MAX_BYTES; the host reads
# at most the last log.MAX_DNS_LOG_READ bytes of each file.
DNS_LOG_MAX_BYTES = 1024 * 1024
DNS_LOG_KEEP_BYTES = 256 * 1024
DNS_LOG_CHECK_SECONDS = 5
UPSTREAM_PLACEHOLDER = "@UPSTREAM@"
# The packet log: every refused packet the filter logs (rate-limited: a flood to one destination
# is logged LOG_BURST_PER_DESTINATION times, then LOG_RATE_PER_DESTINATION a second; all of them
# together at most LOG_RATE a second after a burst of LOG_BURST) goes to an NFLOG group that ulogd
# (Debian's ulogd2, configured by container/ulogd.conf.j2) writes to packets.log.
ULOGD_CONF = "ulogd.conf"
ULOGD_USER = "ulog"  # created by Debian's ulogd2 package
NFLOG_GROUP = 7
LOG_RATE_PER_DESTINATION = 1
LOG_BURST_PER_DESTINATION = 5
LOG_RATE = 20
LOG_BURST = 100

# Capabilities the entrypoint's root phase needs for the firewall (the agent never has any):
# iptables/ipset (NET_ADMIN, NET_RAW), dnsmasq binding port 53 and dropping to its own user,
# and handing the log dir to root so the agent (same uid as the host user) cannot rewrite it.
CAPABILITIES = frozenset({"NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE", "SETUID", "SETGID", "CHOWN"})
ENV_FLAG = "CLAUDE_DOCKER_FIREWALL"
# Docker opens unprivileged ICMP sockets to every group ("0 2147483647"); an empty range closes
# them, so the agent cannot ping without the raw-socket capability it never has.
# Docker also lets every user bind any port (ip_unprivileged_port_start 0). dnsmasq's UDP socket on
# 127.0.0.1:53 allows address reuse, so the agent could bind the same address beside it, receive
# the lookups of the proxy (and of root) and answer them: e.g. point the model endpoint's name at
# its own listener and read the credential the proxy adds. Ports below 54 (DNS's) need the
# capability the agent never has; dev servers keep ports 54 and up (80, 443, 3000, ...).
UNPRIVILEGED_PORT_START = 54
SYSCTLS = {"net.ipv4.ping_group_range": "1 0", "net.ipv4.ip_unprivileged_port_start": str(UNPRIVILEGED_PORT_START)}
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


def printf_escaped(data: bytes) -> str:
    return "".join(f"\\x{byte:02x}" for byte in data)


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
        model_forward, model_local, ipsets = own_dns([held_name], MODEL_SET, dns, ipsets)
        own_forward += model_forward
        dns = DnsPlan(dns.forward, (*dns.local, *model_local), dns.ipset_zones)
    if notifier is not None:
        notifier_forward, notifier_local, ipsets = own_dns(notifier.names, "cd-notify", dns, ipsets)
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
