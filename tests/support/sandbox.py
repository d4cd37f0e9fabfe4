"""The firewall's test internet and firewalled sessions, as fixtures (a plugin registered in
tests/conftest.py): an authoritative DNS server on the bridge gateway, HTTP/UDP server containers,
an HTTP server on the host, and sessions started through the product's run plan (same
capabilities, no-new-privileges, entrypoint) with the container's resolver pointed at the test DNS
server. The agent's commands run exactly as the entrypoint runs the agent (setpriv: its uid, no
capabilities). Uses port 53 on the gateway: never run two files that use it side by side.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from claude_docker import runplan
from claude_docker.config.model import Config, ImageConfig, NetworkConfig, PersistenceConfig, WorkspaceConfig
from claude_docker.contract import drop_privileges
from claude_docker.engine import Engine
from claude_docker.imagebuild import ensure_image
from claude_docker.session import Session
from tests.fakes.dns import FakeDNS, encode_name
from tests.fakes.http import ServerContainer, start_server
from tests.support.serve import serve_in_background
from tests.support.testbed import HOST_CA_BUNDLE, TEST_BASE_IMAGE, TEST_LABEL
from tests.support.wait import wait_for

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
        return start_box(engine, plan, session, runplan.agent_ids(cfg), created, wait)

    yield start
    remove_all(created)


def start_box(engine: Engine, plan, session: Session, ids: tuple[int, int], created: list, wait: bool) -> Sandbox:
    """Create and start a planned container, remember it for removal, wait for its firewall."""
    container = engine.create(plan)
    created.append(container)
    engine.start(container)
    box = Sandbox(container, session, *ids)
    if wait:
        wait_ready(box)
    return box


def remove_all(created: list) -> None:
    for container in created:
        try:
            container.remove(force=True)
        except Exception:  # already gone
            pass


def wait_ready(box: Sandbox, timeout: float = 60) -> None:
    """Ready once the entrypoint has dropped to the agent and exec'd `sleep`."""

    def ready() -> bool:
        box.container.reload()
        if box.container.status == "exited":
            raise AssertionError(f"session exited early: {box.container.logs().decode(errors='replace')}")
        return box.container.status == "running" and box.container.exec_run(["pgrep", "-u", str(box.uid), "-x", "sleep"])[0] == 0

    assert wait_for(ready, timeout, interval=0.1), f"session not ready: {box.container.logs().decode(errors='replace')}"


NETWORK_KINDS = ["bridge", "user"]


@pytest.fixture(params=NETWORK_KINDS)
def network_kind(request):
    """Both the default bridge (host resolver) and a user-defined network (127.0.0.11)."""
    if request.param == "user":
        return request.getfixturevalue("user_network")
    return None


def net_name(network: str | None) -> str:
    return network or "bridge"


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
    serve_in_background(server)
    yield server.server_address[1]
    server.shutdown()


# --- sessions with a model endpoint or host ports ---------------------------------------------------


@pytest.fixture
def dns(fake_dns):
    fake_dns.records.clear()
    fake_dns.cnames.clear()
    fake_dns.queries.clear()
    fake_dns.delay = 0.0
    return fake_dns


@pytest.fixture
def session_with(docker_client, product_image, gateway, cd_home, tmp_path):
    """start(network=NetworkConfig(...), command=..., environ=..., ports=...) -> Sandbox (strict firewall)."""
    created = []

    def start(network: NetworkConfig, command=("--exec", "sleep", "infinity"), environ=None, wait=True, ports=()) -> Sandbox:
        workspace = tmp_path / f"ws-{len(created)}"
        workspace.mkdir()
        cfg = Config(
            source_files=(),
            project_dir=str(workspace),
            workspace=WorkspaceConfig(path=str(workspace)),
            network=network,
            ports=tuple(ports),
            persistence=PersistenceConfig(auth="none", shell_history=False, npm_cache=False, pip_cache=False, git_config=False),
        )
        session = Session.new(cfg.project_name)
        plan = runplan.plan(cfg, session, product_image, command=list(command), environ=environ or {})
        engine = Engine(_TestNetworkClient(docker_client, [gateway], None, [], {}))
        return start_box(engine, plan, session, runplan.agent_ids(cfg), created, wait)

    yield start
    remove_all(created)
