"""Refused packets logged where they happen, and published ports, through the real firewall.

Sessions run the product image with the firewall in its strict shape; everything the agent does
here runs as the agent (its uid, no capabilities). Refused packets never leave the container: the
destinations are the Docker host (the bridge gateway) on ports nothing listens on, and a container
these tests start.
"""

from __future__ import annotations

import socket
import time
import urllib.request

import pytest

from claude_docker import contract
from claude_docker.config.model import NetworkConfig, PublishedPort
from claude_docker.engine import Engine
from claude_docker.features import firewall
from claude_docker.features.firewall import log as firewall_log
from tests.support.sandbox import Sandbox
from tests.support.testbed import TEST_BASE_IMAGE, TEST_LABEL


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def session(session_with):
    """start(network=NetworkConfig(), ports=()) -> Sandbox, strict firewall; removed after the test."""

    def start(network: NetworkConfig | None = None, ports: tuple[PublishedPort, ...] = ()) -> Sandbox:
        return session_with(network or NetworkConfig(), ports=ports)

    return start


@pytest.fixture(scope="module")
def neighbour(docker_client):
    """Another container on the default bridge, started by the test."""
    container = docker_client.containers.run(
        TEST_BASE_IMAGE, ["sleep", "infinity"], detach=True, labels={TEST_LABEL: "packet-log"}, init=True,
    )
    try:
        container.reload()
        yield container
    finally:
        container.remove(force=True)


def address_of(container) -> str:
    container.reload()
    networks = container.attrs["NetworkSettings"]["Networks"]
    return next(n["IPAddress"] for n in networks.values() if n.get("IPAddress"))


def logged_packets(box: Sandbox, want=lambda packets: bool(packets), timeout: float = 5.0):
    """The session's refused packets, once `want` holds (ulogd writes within milliseconds)."""
    deadline = time.time() + timeout
    while True:
        packets = firewall_log.read_packets(box.session.log_dir / contract.PACKET_LOG_NAME)
        if want(packets) or time.time() > deadline:
            return packets
        time.sleep(0.1)


def connect(box: Sandbox, host: str, port: int) -> tuple[int, str]:
    return box.sh(f"timeout 5 bash -c 'exec 3<>/dev/tcp/{host}/{port}' 2>&1")


# --- the packet log -------------------------------------------------------------------------------


def test_the_agents_refused_connections_are_logged_with_address_port_and_uid(session, gateway, neighbour):
    box = session()
    closed = free_port()
    other = address_of(neighbour)
    assert connect(box, gateway, closed)[0] != 0
    assert connect(box, other, 8123)[0] != 0
    box.sh(f"timeout 3 bash -c 'echo x >/dev/udp/{other}/9999'")  # UDP: refused by ICMP, nothing to wait for
    packets = logged_packets(box, lambda found: len(found) >= 3)
    described = {packet.describe() for packet in packets}
    private = "a private, loopback or link-local address (see network.allowed_cidrs)"
    assert f"{gateway} port {closed} tcp: the Docker host (see network.host_ports), uid {box.uid}" in described
    assert f"{other} port 8123 tcp: {private}, uid {box.uid}" in described
    assert f"{other} port 9999 udp: {private}, uid {box.uid}" in described
    log = (box.session.log_dir / contract.PACKET_LOG_NAME).stat()
    assert (log.st_uid, oct(log.st_mode & 0o777)) == (0, "0o644")

    # Where private answers are allowed, the same address is simply not on the allowlist.
    box = session(NetworkConfig(allow_private_answers=True))
    assert connect(box, other, 8123)[0] != 0
    packets = logged_packets(box)
    assert [packet.describe() for packet in packets] == [f"{other} port 8123 tcp: not allowed, uid {box.uid}"]


def test_the_agent_cannot_write_forge_or_silence_the_packet_log(session):
    box = session()
    log = f"/run/claude-docker/log/{contract.PACKET_LOG_NAME}"
    code, output = box.sh(f"echo 'Dec  1 00:00:00 x cd-refused:host DST=10.0.0.1 PROTO=TCP DPT=1' >> {log}")
    assert code != 0 and "Permission denied" in output
    code, _ = box.sh(f"mv {log} /tmp/gone || rm -f {log}")
    assert code != 0
    code, ulogd = box.run(["pgrep", "-x", "ulogd"])
    assert code == 0, "ulogd is not running"
    pid = ulogd.split()[0]
    code, owner = box.run(["ps", "-o", "user=", "-p", pid])
    assert owner.strip() == firewall.ULOGD_USER
    assert box.run(["kill", "-TERM", pid])[0] != 0
    # Taking over NFLOG group 7 (binding it first, or unbinding ulogd) needs CAP_NET_ADMIN.
    ours, unused = NFLOG_BIND % firewall.NFLOG_GROUP, NFLOG_BIND % (firewall.NFLOG_GROUP + 1)
    assert box.run(["python3", "-c", ours])[1].strip() == "error -1"  # EPERM
    assert box.run(["python3", "-c", unused])[1].strip() == "error -1"  # EPERM: no CAP_NET_ADMIN
    # The same request is well-formed: root may bind an unused group; ulogd's is held by ulogd.
    assert box.run(["python3", "-c", unused], as_agent=False)[1].strip() == "error 0"
    assert box.run(["python3", "-c", ours], as_agent=False)[1].strip() == "error -1"
    assert box.run(["pgrep", "-x", "ulogd"])[0] == 0


# A netlink NFULNL_MSG_CONFIG request with NFULA_CFG_CMD = BIND for one group; prints the errno.
NFLOG_BIND = r"""
import socket, struct
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
s.bind((0, 0))
attr = struct.pack("HHB3x", 5, 1, 1)  # NFULA_CFG_CMD, NFULNL_CFG_CMD_BIND
body = struct.pack("BBH", 2, 0, socket.htons(%d)) + attr
s.send(struct.pack("IHHII", 16 + len(body), (4 << 8) | 1, 1 | 4, 1, 0) + body)
reply = s.recv(4096)
print("error", struct.unpack("i", reply[16:20])[0])
"""

FLOOD = r"""
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
start = time.time()
for i in range(3000):
    s = socket.socket()
    try:
        s.connect((host, port if i < 2000 else port + 1 + i % 500))
    except OSError:
        pass
    s.close()
print(round(time.time() - start, 2))
"""


def test_a_flood_of_refusals_is_rate_limited(session, gateway):
    """The agent floods one destination, then 500 others: the log keeps a handful of the first and
    stays under the overall rate."""
    box = session()
    base = free_port()
    code, seconds = box.run(["python3", "-c", FLOOD, gateway, str(base)])
    assert code == 0, seconds
    elapsed = float(seconds) + 1
    time.sleep(1)
    lines = (box.session.log_dir / contract.PACKET_LOG_NAME).read_text().splitlines()
    packets = firewall_log.parse_packets(lines)
    flooded = [p for p in packets if p.port == str(base)]
    print(f"3000 refused connections in {elapsed - 1:.2f}s: {len(lines)} log lines, {len(packets)} destinations, "
          f"{flooded[0].count if flooded else 0} lines for the flooded one")
    assert flooded and flooded[0].count <= firewall.LOG_BURST_PER_DESTINATION + firewall.LOG_RATE_PER_DESTINATION * elapsed
    assert len(lines) <= firewall.LOG_BURST + firewall.LOG_RATE * elapsed
    assert len(lines) < 3000 / 4
    assert len(packets) > 10  # the other destinations are still seen


# --- published ports ------------------------------------------------------------------------------

SERVER = "import http.server, sys; http.server.test(HandlerClass=http.server.SimpleHTTPRequestHandler, port=int(sys.argv[1]), bind='0.0.0.0')"


def serve_as_agent(box: Sandbox, port: int) -> None:
    """A dev server started by the agent (its uid, no capabilities), listening on every address."""
    box.container.exec_run(
        contract.drop_privileges(str(box.uid), str(box.gid)) + ["python3", "-c", SERVER, str(port)], detach=True, workdir="/tmp",
    )
    for _ in range(100):
        code, _ = box.run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"])
        if code == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"the agent's server on port {port} did not start")


def reachable_from_host(host: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=3) as response:
            return response.status == 200
    except OSError:
        return False


def reachable_from(container, host: str, port: int) -> bool:
    code, _ = container.exec_run(["timeout", "3", "bash", "-c", f"exec 3<>/dev/tcp/{host}/{port}"])
    return code == 0


def test_a_published_port_reaches_the_agents_server_and_nothing_else_does(session, neighbour):
    host_port = free_port()
    box = session(ports=(PublishedPort(host_port, 8000),))
    serve_as_agent(box, 8000)
    serve_as_agent(box, 8001)  # not published
    code, owner = box.run(["bash", "-c", "ps -o uid= -C python3 | sort -u"])
    assert owner.split() == [str(box.uid)]
    inside = address_of(box.container)

    assert reachable_from_host("127.0.0.1", host_port)  # the published port, on the host's loopback
    assert not reachable_from_host(inside, 8001)  # unpublished: not from the host ...
    assert not reachable_from(neighbour, inside, 8001)  # ... nor from another container
    assert reachable_from(neighbour, inside, 8000)  # the published container port itself is open (documented)
    box.container.reload()
    bindings = box.container.attrs["HostConfig"]["PortBindings"]
    assert bindings == {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(host_port)}]}


def test_without_published_ports_nothing_inbound_reaches_the_agents_server(session, neighbour):
    box = session()
    serve_as_agent(box, 8000)
    inside = address_of(box.container)
    assert not reachable_from_host(inside, 8000)
    assert not reachable_from(neighbour, inside, 8000)
    assert box.run(["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8000"])[0] == 0  # it runs


# --- `up` after a failed session ------------------------------------------------------------------


def test_up_prints_the_refusals_of_a_session_that_failed(tmp_path, cd_home, docker_client):
    """The real command: the agent's task fails after the firewall refused a name and the Docker
    host; `up` exits with the task's code and shows both, but not Claude Code's start-up traffic."""
    from claude_docker import lifecycle
    from claude_docker.config.pipeline import load_config
    from tests.fakes.projects import bridge_gateway, make_project, run_cli

    config = make_project(tmp_path, firewall=True)
    gateway_address, closed = bridge_gateway(docker_client), free_port()
    task = (
        "getent hosts downloads.claude.ai; getent hosts pypi.org; "
        f"(exec 3<>/dev/tcp/{gateway_address}/{closed}) 2>/dev/null; exit 3"
    )
    try:
        result = run_cli("up", "-f", str(config), "--", "--exec", "bash", "-c", task, timeout=600)
    finally:
        lifecycle.down(Engine.connect(), load_config(str(config)).config.project_name)
    assert result.returncode == 3, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("the firewall refused in session "))
    block = lines[start:]
    assert any(line.startswith("  pypi.org: name refused") for line in block)
    assert any(line.startswith(f"  {gateway_address} port {closed} tcp: the Docker host") for line in block)
    assert not any("downloads.claude.ai" in line for line in block)
    assert "claude-docker blocked --session" in block[-1]

    succeeded = run_cli("up", "-f", str(config), "--", "--exec", "bash", "-c", "getent hosts pypi.org; true", timeout=600)
    assert succeeded.returncode == 0, succeeded.stderr
    assert "the firewall refused" not in succeeded.stderr
