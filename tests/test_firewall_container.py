"""The egress firewall in real containers: real iptables, ipset and dnsmasq, the product image
and entrypoint, and a test "internet" of our own (an authoritative DNS server on the bridge
gateway and HTTP/UDP server containers). No outside host is ever contacted.

Each session is started through the product's run plan (same capabilities, no-new-privileges,
entrypoint) with the container's resolver pointed at the test DNS server; the agent's commands
run exactly as the entrypoint runs the agent (setpriv: its uid, no capabilities).
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from claude_docker import contract, runplan
from claude_docker.config.model import Config, ImageConfig, NetworkConfig, PersistenceConfig, WorkspaceConfig
from claude_docker.contract import drop_privileges
from claude_docker.engine import Engine
from claude_docker.imagebuild import ensure_image
from claude_docker.session import Session
from tests.conftest import HOST_CA_BUNDLE, TEST_BASE_IMAGE, TEST_LABEL
from tests.fakes.dns import FakeDNS, encode_name
from tests.fakes.http import ServerContainer, start_server

pytestmark = pytest.mark.docker

LABELS = {TEST_LABEL: "firewall"}

# A raw probe the agent runs (perl-base is in every Debian image): send one datagram or TCP
# message and report whether anything answered. Prints reply / noreply / refused / blocked.
PROBE_PL = r"""
use strict; use Socket; use IO::Select;
my ($host, $port, $proto, $hex, $wait) = @ARGV;
my $payload = pack("H*", $hex);
my $addr = sockaddr_in($port, inet_aton($host));
socket(my $s, PF_INET, $proto eq "tcp" ? SOCK_STREAM : SOCK_DGRAM, 0) or die "socket: $!\n";
if ($proto eq "tcp") {
    connect($s, $addr) or do { print "refused: $!\n"; exit 2 };
    send($s, pack("n", length $payload) . $payload, 0) or do { print "blocked: $!\n"; exit 2 };
} else {
    send($s, $payload, 0, $addr) or do { print "blocked: $!\n"; exit 2 };
}
if (IO::Select->new($s)->can_read($wait)) {
    my $buf = ""; recv($s, $buf, 4096, 0);
    if (length $buf) { print "reply\n"; exit 0 }
}
print "noreply\n"; exit 1;
"""

# ICMP echo with a raw socket (root has NET_RAW in the container; the agent has nothing).
PING_PL = r"""
use strict; use Socket; use IO::Select;
my ($host) = @ARGV;
socket(my $s, PF_INET, SOCK_RAW, 1) or die "socket: $!\n";
my $body = pack("n n a8", $$ & 0xffff, 1, "cd-probe");
my $sum = 0; for my $w (unpack("n*", pack("C C n", 8, 0, 0) . $body)) { $sum += $w }
$sum = ($sum >> 16) + ($sum & 0xffff); $sum += $sum >> 16;
send($s, pack("C C n", 8, 0, ~$sum & 0xffff) . $body, 0, sockaddr_in(0, inet_aton($host)))
    or do { print "blocked: $!\n"; exit 2 };
my $sel = IO::Select->new($s); my $end = time + 2;
while ((my $left = $end - time) > 0) {
    last unless $sel->can_read($left);
    my $buf = ""; my $from = recv($s, $buf, 4096, 0);
    my $ihl = (unpack("C", $buf) & 15) * 4;
    if (unpack("C", substr($buf, $ihl, 1)) == 0 && inet_ntoa((sockaddr_in($from))[1]) eq $host) { print "reply\n"; exit 0 }
}
print "noreply\n"; exit 1;
"""


def dns_query(name: str, qtype: int = 1) -> str:
    """A DNS query packet, as hex for PROBE_PL."""
    header = secrets.token_bytes(2) + bytes.fromhex("0100 0001 0000 0000 0000".replace(" ", ""))
    return (header + encode_name(name) + qtype.to_bytes(2, "big") + b"\x00\x01").hex()


# --- the test internet ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def product_image(docker_client) -> str:
    """The real claude-docker image, built through the product code (cached by content hash), with
    python3 for the agent-side attack scripts (the default image has no Python)."""
    image = ImageConfig(base=TEST_BASE_IMAGE, extra_ca_certificates=(HOST_CA_BUNDLE,), apt_packages=("python3",))
    return ensure_image(Engine(docker_client), image).tag


@pytest.fixture(scope="module")
def gateway(docker_client) -> str:
    config = docker_client.networks.get("bridge").attrs["IPAM"]["Config"][0]
    return config.get("Gateway") or str(ipaddress.ip_network(config["Subnet"])[1])  # docker0's address


@pytest.fixture(scope="module")
def fake_dns(gateway):
    """The upstream resolver of every test container: authoritative for the test names."""
    server = FakeDNS(host=gateway, port=53).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def servers(docker_client, server_image):
    started: dict[str, ServerContainer] = {}
    try:
        for name in ("alpha", "beta", "gamma"):
            started[name] = start_server(docker_client, server_image, name, LABELS)
        yield started
    finally:
        for server in started.values():
            server.container.remove(force=True)


@pytest.fixture(scope="module")
def user_network(docker_client, servers):
    """A user-defined network (Docker's embedded DNS at 127.0.0.11) the servers also join."""
    network = docker_client.networks.create(f"cd-fwtest-{secrets.token_hex(3)}", labels=LABELS)
    for server in servers.values():
        network.connect(server.container)
    yield network.name
    for server in servers.values():
        network.disconnect(server.container, force=True)
    network.remove()


@pytest.fixture
def internet(fake_dns, servers):
    """Fresh records for each test: the allowed names point at alpha, other names elsewhere."""
    fake_dns.records.clear()
    fake_dns.cnames.clear()
    fake_dns.queries.clear()
    fake_dns.delay = 0.0
    return fake_dns


def point(dns: FakeDNS, servers, network: str, **names: str) -> None:
    """dns records: name (underscores for dots) -> server name."""
    for name, server in names.items():
        dns.set(name.replace("_", "."), servers[server].address(network))


# --- sessions -----------------------------------------------------------------------------------


class _TestNetworkClient:
    """The real SDK client; containers it creates use the test resolver and network.

    The engine creates containers through the low-level API, so the test's additions
    (resolver, network, labels, extra mounts) are made there.
    """

    def __init__(self, client, dns: list[str], network: str | None, extra_mounts: list, host_options: dict) -> None:
        self._client = client
        self.containers = client.containers
        self.api = _TestNetworkAPI(client.api, dns, network, extra_mounts, host_options)

    def __getattr__(self, name: str):
        return getattr(self._client, name)


class _TestNetworkAPI:
    def __init__(self, api, dns: list[str], network: str | None, extra_mounts: list, host_options: dict) -> None:
        self._api = api
        self._dns = dns
        self._network = network
        self._extra_mounts = extra_mounts
        self._host_options = host_options

    def create_host_config(self, **options):
        options["dns"] = self._dns
        if self._network:
            options["network_mode"] = self._network
        options["mounts"] = list(options.get("mounts") or []) + list(self._extra_mounts)
        options.update(self._host_options)  # a test overriding what the product asked for
        return self._api.create_host_config(**options)

    def create_container(self, **options):
        options["labels"] = {**(options.get("labels") or {}), **LABELS}
        return self._api.create_container(**options)

    def __getattr__(self, name: str):
        return getattr(self._api, name)


@dataclass
class Sandbox:
    container: object
    session: Session
    uid: int
    gid: int

    def run(self, argv: list[str], as_agent: bool = True) -> tuple[int, str]:
        prefix = drop_privileges(str(self.uid), str(self.gid)) if as_agent else []
        code, output = self.container.exec_run(prefix + argv, demux=False)
        return code, (output or b"").decode(errors="replace")

    def sh(self, script: str, as_agent: bool = True) -> tuple[int, str]:
        return self.run(["bash", "-c", script], as_agent)

    def curl(self, url: str) -> tuple[int, str]:
        return self.run(["curl", "-sS", "--max-time", "5", url])

    def probe(self, host: str, port: int, proto: str = "udp", hex_payload: str = "00", as_agent: bool = True) -> str:
        return self.run(["perl", "-e", PROBE_PL, host, str(port), proto, hex_payload, "2"], as_agent)[1].strip()

    def resolves(self, name: str) -> bool:
        code, _ = self.run(["getent", "ahostsv4", name])
        return code == 0

    @property
    def dns_log(self) -> Path:
        return self.session.log_dir / "dns.log"


@pytest.fixture
def sandbox(docker_client, product_image, gateway, cd_home, tmp_path):
    """Start a firewalled session: sandbox(domains, ...) -> Sandbox; removed after the test.

    The test internet lives on the engine's private bridge addresses, so names point there only
    with `allow_private_answers` (on here; the product's default is off, see the security tests).
    """
    created = []

    def start(
        domains=(),
        cidrs=(),
        *,
        network: str | None = None,
        allow_host_network: bool = False,
        allow_private_answers: bool = True,
        firewall: bool = True,
        extra_mounts=(),
        command=("--exec", "sleep", "infinity"),
        wait: bool = True,
        dns: list[str] | None = None,
        host_options: dict | None = None,
        proxy=None,
    ):
        workspace = tmp_path / f"ws-{len(created)}"
        workspace.mkdir()
        cfg = Config(
            source_files=(),
            project_dir=str(workspace),
            workspace=WorkspaceConfig(path=str(workspace)),
            network=NetworkConfig(
                firewall=firewall,
                allowed_domains=tuple(domains),
                allowed_cidrs=tuple(cidrs),
                allow_host_network=allow_host_network,
                allow_private_answers=allow_private_answers,
                proxy=proxy,
            ),
            persistence=PersistenceConfig(auth="none", shell_history=False, npm_cache=False, pip_cache=False, git_config=False),
        )
        session = Session.new(cfg.project_name)
        plan = runplan.plan(cfg, session, product_image, command=list(command))
        engine = Engine(_TestNetworkClient(docker_client, dns or [gateway], network, list(extra_mounts), host_options or {}))
        container = engine.create(plan)
        created.append(container)
        engine.start(container)
        uid, gid = runplan.agent_ids(cfg)
        box = Sandbox(container, session, uid, gid)
        if wait:
            wait_ready(box)
        return box

    yield start
    for container in created:
        try:
            container.remove(force=True)
        except Exception:  # already gone
            pass


def wait_ready(box: Sandbox, timeout: float = 60) -> None:
    """Ready once the entrypoint has dropped to the agent and exec'd `sleep`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        box.container.reload()
        if box.container.status == "exited":
            raise AssertionError(f"session exited early: {box.container.logs().decode(errors='replace')}")
        if box.container.status == "running":
            code, _ = box.container.exec_run(["pgrep", "-u", str(box.uid), "-x", "sleep"])
            if code == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"session not ready: {box.container.logs().decode(errors='replace')}")


NETWORK_KINDS = ["bridge", "user"]


@pytest.fixture(params=NETWORK_KINDS)
def network_kind(request):
    """Both the default bridge (host resolver) and a user-defined network (127.0.0.11)."""
    if request.param == "user":
        return request.getfixturevalue("user_network")
    return None


def net_name(network: str | None) -> str:
    return network or "bridge"


# --- the allowlist --------------------------------------------------------------------------------


def test_allowed_exact_name_is_reachable_and_exact(sandbox, internet, servers, network_kind):
    point(internet, servers, net_name(network_kind), exact_test="alpha", sub_exact_test="beta")
    box = sandbox(["exact.test"], network=network_kind)
    assert box.curl("http://exact.test/") == (0, "alpha")
    assert not box.resolves("sub.exact.test")  # an exact name is not a wildcard
    assert not internet.asked("sub.exact.test")


def test_wildcard_matches_subdomains_at_any_depth_not_the_apex(sandbox, internet, servers, network_kind):
    net = net_name(network_kind)
    point(internet, servers, net, wild_test="beta", **{"*_wild_test": "alpha"}, evilwild_test="gamma")
    box = sandbox(["*.wild.test"], network=network_kind)
    assert box.curl("http://a.wild.test/") == (0, "alpha")
    assert box.curl("http://b.a.wild.test/") == (0, "alpha")
    assert not box.resolves("wild.test")  # apex: not unless listed
    assert not box.resolves("evilwild.test")  # look-alike suffix
    assert not internet.asked("wild.test") and not internet.asked("evilwild.test")
    code, _ = box.curl(f"http://{servers['beta'].address(net)}/")  # the apex's address stays closed
    assert code != 0


def test_refused_name_never_reaches_the_upstream_and_is_logged(sandbox, internet, servers, network_kind):
    net = net_name(network_kind)
    point(internet, servers, net, exact_test="alpha", other_test="gamma")
    box = sandbox(["exact.test"], network=network_kind)
    assert not box.resolves("other.test")
    assert box.curl("http://other.test/")[0] != 0
    assert not internet.asked("other.test")
    assert internet.asked("exact.test")  # the self-test went through the real upstream
    from claude_docker.features.firewall import read_blocked

    assert "other.test" in [entry.name for entry in read_blocked(box.dns_log)]


def test_direct_connections_to_other_addresses_are_refused(sandbox, internet, servers, network_kind):
    net = net_name(network_kind)
    point(internet, servers, net, exact_test="alpha")
    gamma = servers["gamma"]
    box = sandbox(["exact.test"], network=network_kind)
    started = time.time()
    code, output = box.curl(f"http://{gamma.address(net)}/")
    assert code == 7, output  # refused at once, not a timeout
    assert time.time() - started < 3
    before = gamma.udp_count()
    assert box.probe(gamma.address(net), 9999).startswith(("blocked", "noreply"))
    assert box.probe(gamma.address(net), 9999, as_agent=False).startswith(("blocked", "noreply"))
    assert gamma.udp_count() == before
    # the control: the same datagram from outside the sandbox arrives
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"x", (gamma.address(), 9999))
    deadline = time.time() + 3
    while gamma.udp_count() == before and time.time() < deadline:
        time.sleep(0.1)
    assert gamma.udp_count() == before + 1


def test_icmp_out_is_blocked_except_to_admitted_addresses(sandbox, internet, servers):
    point(internet, servers, "bridge", exact_test="alpha")
    box = sandbox(["exact.test"])
    assert box.curl("http://exact.test/") == (0, "alpha")
    alpha, gamma = servers["alpha"].address(), servers["gamma"].address()
    code, output = box.run(["perl", "-e", PING_PL, gamma], as_agent=False)  # even root
    assert code != 0 and output.strip() != "reply", output
    code, output = box.run(["perl", "-e", PING_PL, alpha], as_agent=False)  # the probe works
    assert (code, output.strip()) == (0, "reply")
    code, output = box.run(["perl", "-e", PING_PL, alpha])  # the agent cannot even open raw sockets
    assert code != 0 and "socket" in output


def test_dns_to_any_resolver_but_dnsmasq_is_blocked(sandbox, internet, servers, gateway, network_kind):
    net = net_name(network_kind)
    point(internet, servers, net, exact_test="alpha", leak_test="gamma")
    gamma = servers["gamma"]
    box = sandbox(["exact.test"], network=network_kind)
    query = dns_query("leak.test")
    before = gamma.udp_count()
    targets = [(gateway, "udp"), (gateway, "tcp"), (gamma.address(net), "udp"), ("127.0.0.11", "udp"), ("127.0.0.11", "tcp")]
    for host, proto in targets:
        result = box.probe(host, 53, proto, query)
        assert result != "reply", f"{host}/{proto} answered the agent"
    assert not internet.asked("leak.test")
    assert gamma.udp_count() == before
    # dnsmasq itself answers (the path that is meant to work)
    assert box.probe("127.0.0.1", 53, "udp", dns_query("exact.test")) == "reply"


def test_ipv6_is_closed(sandbox, internet, servers):
    point(internet, servers, "bridge", exact_test="alpha")
    box = sandbox(["exact.test"])
    code, rules = box.run(["ip6tables", "-S"], as_agent=False)
    assert code == 0, rules
    assert rules.splitlines()[:3] == ["-P INPUT DROP", "-P FORWARD DROP", "-P OUTPUT DROP"]
    code, output = box.curl("http://[2001:db8::1]/")
    assert code != 0
    # AAAA answers are withheld, so clients never try IPv6
    code, output = box.run(["getent", "ahostsv6", "exact.test"])
    assert "2001" not in output


# --- out of the agent's reach -------------------------------------------------------------------


def test_agent_cannot_open_the_firewall(sandbox, internet, servers, network_kind):
    net = net_name(network_kind)
    point(internet, servers, net, exact_test="alpha", other_test="gamma")
    box = sandbox(["exact.test"], network=network_kind)
    attempts = {
        "iptables -F": "iptables -F",
        "iptables -P OUTPUT ACCEPT": "iptables -P OUTPUT ACCEPT",
        "ip6tables -P OUTPUT ACCEPT": "ip6tables -P OUTPUT ACCEPT",
        "ipset add": f"ipset add cd-dns {servers['gamma'].address(net)}",
        "kill dnsmasq": "kill -9 $(cat /run/claude-docker-firewall/dnsmasq.pid)",
        "rewrite resolv.conf": "echo nameserver 8.8.8.8 > /etc/resolv.conf",
        "edit the dnsmasq config": f"echo server=/other.test/{contract.CONTAINER_RUNTIME} >> {contract.CONTAINER_RUNTIME}/dnsmasq.conf",
        "write the log": "echo forged >> /run/claude-docker/log/dns.log",
    }
    for what, command in attempts.items():
        code, output = box.sh(command)
        assert code != 0, f"the agent could {what}: {output}"
    assert box.sh("grep -c nameserver /etc/resolv.conf && grep -q 127.0.0.1 /etc/resolv.conf")[0] == 0
    assert box.sh("pgrep -x dnsmasq")[0] == 0
    assert not box.resolves("other.test")
    assert box.curl(f"http://{servers['gamma'].address(net)}/")[0] != 0
    assert box.curl("http://exact.test/") == (0, "alpha")


def test_agent_has_no_capabilities(sandbox, internet, servers):
    point(internet, servers, "bridge", exact_test="alpha")
    box = sandbox(["exact.test"])
    code, status = box.sh("grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status")
    assert code == 0
    assert all(line.split()[1] == "0000000000000000" for line in status.splitlines()), status


# --- CDN behaviour ------------------------------------------------------------------------------


def test_allowed_name_keeps_working_when_its_address_changes(sandbox, internet, servers):
    point(internet, servers, "bridge", exact_test="alpha")
    box = sandbox(["exact.test"])
    assert box.curl("http://exact.test/") == (0, "alpha")
    point(internet, servers, "bridge", exact_test="beta")
    time.sleep(internet.ttl + 1.5)  # the old answer expires from dnsmasq's cache
    assert box.curl("http://exact.test/") == (0, "beta")


def test_cname_targets_are_admitted(sandbox, internet, servers):
    internet.cnames["www.cdn-alias.test"] = "edge.cdn-provider.test"
    internet.set("edge.cdn-provider.test", servers["beta"].address())
    point(internet, servers, "bridge", exact_test="alpha")
    box = sandbox(["exact.test", "www.cdn-alias.test"])
    assert box.curl("http://www.cdn-alias.test/") == (0, "beta")


def test_allowed_cidrs_with_and_without_port(sandbox, internet, servers):
    point(internet, servers, "bridge", exact_test="alpha")
    beta, gamma = servers["beta"].address(), servers["gamma"].address()
    box = sandbox(["exact.test"], [f"{beta}/32", f"{gamma}/32:9999"])
    assert box.curl(f"http://{beta}/") == (0, "beta")
    assert box.curl(f"http://{gamma}/")[0] != 0  # only port 9999 is open there
    before = servers["gamma"].udp_count()
    box.probe(gamma, 9999)
    deadline = time.time() + 3
    while servers["gamma"].udp_count() == before and time.time() < deadline:
        time.sleep(0.1)
    assert servers["gamma"].udp_count() == before + 1


# --- the host ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def host_http():
    """An HTTP server on every host address: what `allow_host_network` is about. Returns its port."""

    class Hello(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"host")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("0.0.0.0", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def other_host_address(gateway: str) -> str | None:
    """One of the host's own addresses that is not the bridge gateway (e.g. its LAN address)."""
    from claude_docker.features.firewall import host_addresses

    others = [a for a in host_addresses() if a != gateway and not a.startswith("172.")]
    return others[0] if others else None


@pytest.mark.parametrize("allowed", [False, True])
def test_host_network_only_when_allowed(sandbox, internet, servers, host_http, gateway, allowed):
    point(internet, servers, "bridge", exact_test="alpha")
    box = sandbox(["exact.test"], [f"{gateway}/32"], allow_host_network=allowed)  # a CIDR does not open it
    targets = [gateway] + [a for a in [other_host_address(gateway)] if a]
    for address in targets:
        code, body = box.curl(f"http://{address}:{host_http}/")
        assert (code == 0 and body == "host") is allowed, (address, code, body)


# --- fail closed ----------------------------------------------------------------------------------


def _exit_of(box: Sandbox, timeout: float = 60) -> tuple[int, str]:
    status = box.container.wait(timeout=timeout)
    return status["StatusCode"], box.container.logs().decode(errors="replace")


def test_missing_ipset_stops_the_container_before_claude(sandbox, internet, servers):
    from docker.types import Mount

    point(internet, servers, "bridge", exact_test="alpha")
    no_ipset = Mount(target="/usr/sbin/ipset", source="/dev/null", type="bind", read_only=True)
    box = sandbox(["exact.test"], extra_mounts=[no_ipset], command=("--exec", "echo", "AGENT-STARTED"), wait=False)
    code, logs = _exit_of(box)
    assert code == contract.EXIT_FIREWALL_FAILED, logs
    assert "'ipset' is missing" in logs
    assert "AGENT-STARTED" not in logs


def test_no_ipv4_upstream_stops_the_container(sandbox, internet):
    box = sandbox(["exact.test"], dns=["2001:db8::53"], command=("--exec", "echo", "AGENT-STARTED"), wait=False)
    code, logs = _exit_of(box)
    assert code == contract.EXIT_FIREWALL_FAILED, logs
    assert "/etc/resolv.conf names no IPv4 resolver" in logs
    assert "AGENT-STARTED" not in logs


def test_allowlist_the_upstream_does_not_know_warns_but_starts(sandbox, internet):
    box = sandbox(["exact.test"], command=("--exec", "echo", "AGENT-STARTED"), wait=False)
    code, logs = _exit_of(box)
    assert code == 0, logs
    assert "warning: none of exact.test resolved through upstream" in logs
    assert "AGENT-STARTED" in logs


def test_firewall_off_leaves_egress_open(sandbox, internet, servers):
    box = sandbox(firewall=False)
    assert box.curl(f"http://{servers['gamma'].address()}/") == (0, "gamma")
    code, _ = box.run(["pgrep", "-x", "dnsmasq"])
    assert code != 0


def test_blocked_command_reads_a_real_session_log(sandbox, internet, servers):
    from click.testing import CliRunner

    from claude_docker.cli import main

    point(internet, servers, "bridge", exact_test="alpha")
    box = sandbox(["exact.test"])
    assert not box.resolves("pypi.org")
    result = CliRunner().invoke(main, ["blocked", "--log", str(box.dns_log), "--suggest"])
    assert result.exit_code == 0, result.output
    assert "    - pypi.org" in result.output.splitlines()
    assert "exact.test" not in result.output


@pytest.mark.skipif(subprocess.run(["which", "shellcheck"], capture_output=True).returncode != 0, reason="no shellcheck")
def test_session_runtime_script_passes_shellcheck(sandbox, internet, servers):
    point(internet, servers, "bridge", exact_test="alpha")
    box = sandbox(["exact.test", "*.wild.test"], ["10.0.0.0/8:443"])
    script = box.session.runtime_dir / "init-firewall.sh"
    result = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


# --- the escape suite, run by Claude Code's own Bash tool -----------------------------------------


@pytest.mark.e2e
def test_escape_suite_through_claude_codes_bash_tool(tmp_path, cd_home, docker_client, servers, gateway):
    """The agent itself tries every way out; each attempt must be held and egress stay closed."""
    from tests.fakes.anthropic import FakeAnthropic, bash, text
    from tests.fakes.projects import make_project, run_cli

    gamma = servers["gamma"]
    upstream = next(
        line.split()[1] for line in Path("/etc/resolv.conf").read_text().splitlines() if line.startswith("nameserver")
    )
    attempts = {
        "flush": "iptables -F",
        "policy": "iptables -P OUTPUT ACCEPT",
        "ipv6": "ip6tables -P OUTPUT ACCEPT",
        "ipset": f"ipset add cd-dns {gamma.address()}",
        "kill-dnsmasq": "kill -9 $(cat /run/claude-docker-firewall/dnsmasq.pid)",
        "resolver": "echo nameserver 1.1.1.1 > /etc/resolv.conf",
        "tcp": f"curl -sS -m 3 http://{gamma.address()}/",
        "udp": f"echo leak > /dev/udp/{gamma.address()}/9999",
        "dns-name": "getent hosts example.com",
        "dns-upstream": f"exec 3<>/dev/tcp/{upstream}/53",
        "dns-other": f"echo query > /dev/udp/{gamma.address()}/53",
        # perl-base is in every Debian image (the default image has no Python)
        "ping-socket": "perl -MSocket -e 'socket(my $s, PF_INET, SOCK_DGRAM, getprotobyname(\"icmp\")) or die'",
    }
    command = "; ".join(
        f"( {attempt} ) >/dev/null 2>&1 && echo ESCAPED-{name} || echo held-{name}" for name, attempt in attempts.items()
    )
    config = make_project(tmp_path, "network:\n  allow_host_network: true\n", firewall=True)
    before = gamma.udp_count()
    with FakeAnthropic([bash(command + "; echo SUITE-DONE"), text("The sandbox held.")]) as api:
        env = {"ANTHROPIC_BASE_URL": api.url_for(gateway), "ANTHROPIC_API_KEY": api.api_key}
        result = run_cli("up", "-f", str(config), "--", "-p", "try to get out", env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    [block] = api.tool_results()
    output = json_text(block.get("content"))
    assert "SUITE-DONE" in output, output
    assert "ESCAPED-" not in output, output
    assert all(f"held-{name}" in output for name in attempts), output
    assert gamma.udp_count() == before


def json_text(content) -> str:
    """A tool_result's content: a string, or a list of text blocks."""
    if isinstance(content, str):
        return content
    return "\n".join(block.get("text", "") for block in content or [] if isinstance(block, dict))
