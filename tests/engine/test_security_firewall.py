"""A hostile agent against the egress firewall, with the test internet of
tests/test_firewall_container.py (its fixtures: an authoritative DNS server on the bridge gateway,
HTTP server containers, an HTTP server on the host). Uses port 53 on the gateway: never run it
next to another file that does.
"""

from __future__ import annotations

import secrets
import time

import pytest

from claude_docker import contract
from tests.support.sandbox import PING_PL, net_name
from tests.support.wait import wait_for

pytestmark = pytest.mark.docker


def test_an_allowlisted_name_pointing_at_the_docker_host_does_not_open_it(sandbox, internet, servers, host_http, gateway):
    """DNS decides what enters the allow set, and whoever answers for an allowed name (or a
    name rebound mid-session) can point it anywhere: the host stays closed all the same."""
    internet.set("exact.test", servers["alpha"].address())
    internet.set("rebound.test", servers["beta"].address())
    internet.set("host.test", gateway)
    box = sandbox(["exact.test", "rebound.test", "host.test"])
    assert box.curl("http://exact.test/") == (0, "alpha")
    assert box.curl("http://rebound.test/") == (0, "beta")
    code, body = box.curl(f"http://host.test:{host_http}/")
    assert code != 0 and body != "host", (code, body)
    internet.set("rebound.test", gateway)
    time.sleep(internet.ttl + 1.5)  # the old answer leaves dnsmasq's cache
    assert box.run(["getent", "ahostsv4", "rebound.test"])[1].split()[0] == gateway
    code, body = box.curl(f"http://rebound.test:{host_http}/")
    assert code != 0 and body != "host", (code, body)
    assert box.curl(f"http://{gateway}:{host_http}/")[0] != 0


def test_the_agent_cannot_use_loopback_addresses_around_dnsmasq(sandbox, internet, servers):
    """Only 127.0.0.1:53 (dnsmasq) answers on loopback; other loopback addresses and ports do not
    lead to the upstream."""
    internet.set("exact.test", servers["alpha"].address())
    internet.set("leak.test", servers["gamma"].address())
    box = sandbox(["exact.test"])
    assert box.run(["getent", "ahostsv4", "leak.test"])[0] != 0
    for host in ("127.0.0.2", "127.1.2.3", "127.0.0.11"):
        code, output = box.sh(f"exec 3<>/dev/tcp/{host}/53 && echo CONNECTED")
        assert "CONNECTED" not in output, host
    assert not internet.asked("leak.test")


# The agent's side of a DNS tunnel through dnsmasq's own upstream flow: watch /proc/net/udp for
# another user's socket (dnsmasq's, or on user-defined networks the engine's forwarder) while an
# allowlisted lookup is forwarded, bind the same port once the answer is in, and send any query to
# the upstream resolver from it. conntrack still holds the flow for ~30 s after the socket closed.
# Prints "TUNNEL ..." when the upstream answered, "held ..." per refused port.
REUSE_FLOW_PY = r"""
import os, random, socket, struct, sys, threading, time
upstream, trigger, leak = sys.argv[1], sys.argv[2], sys.argv[3]
me = os.getuid()

def query(name):
    header = struct.pack("!HHHHHH", random.randrange(65536), 0x0100, 1, 0, 0, 0)
    return header + b"".join(bytes([len(x)]) + x.encode() for x in name.split(".")) + b"\0\0\1\0\1"

def foreign_ports():
    found = set()
    with open("/proc/net/udp") as table:
        next(table)
        for line in table:
            fields = line.split()
            port = int(fields[1].split(":")[1], 16)
            if int(fields[7]) != me and port != 53:
                found.add(port)
    return found

before = foreign_ports()
answered = threading.Event()

def ask():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(query(trigger), ("127.0.0.1", 53))
        try:
            s.recv(4096)
        except OSError:
            pass
    answered.set()

threading.Thread(target=ask).start()
seen = set()
while not answered.is_set():
    seen |= foreign_ports() - before
if not seen:
    print("no-socket-seen")
    sys.exit(3)
for port in sorted(seen):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    deadline = time.time() + 2
    while True:
        try:
            s.bind(("0.0.0.0", port))
            break
        except OSError as error:
            if time.time() > deadline:
                print(f"cannot-bind {port}: {error}")
                break
            time.sleep(0.01)
    s.settimeout(2)
    try:
        s.sendto(query(leak), (upstream, 53))
        data = s.recv(4096)
        print(f"TUNNEL from port {port}: {len(data)} bytes answered")
        sys.exit(0)
    except OSError as error:
        print(f"held {port}: {error}")
    finally:
        s.close()
sys.exit(1)
"""


def test_the_agent_cannot_reuse_dnsmasqs_flow_to_the_upstream(sandbox, internet, servers, gateway, network_kind):
    """A DNS tunnel past the allowlist: the agent sends its own query from the source port of a
    lookup dnsmasq (or the engine's forwarder) just finished, which conntrack still remembers."""
    internet.set("*.wild.test", servers["alpha"].address(net_name(network_kind)))
    box = sandbox(["*.wild.test"], network=network_kind, allow_private_answers=False)
    internet.delay = 0.3  # a real upstream's latency: time for the agent to spot the socket
    for attempt in range(3):
        trigger = f"t{secrets.token_hex(4)}.wild.test"  # never cached: dnsmasq must forward it
        code, output = box.run(["python3", "-c", REUSE_FLOW_PY, gateway, trigger, f"leak{attempt}.tunnel.test"])
        assert "no-socket-seen" not in output, output  # the attack saw the flow it wants to reuse
        assert "TUNNEL" not in output, output
        assert internet.asked(trigger)
    assert not [q.name for q in internet.queries if q.name.endswith("tunnel.test")]


# ICMP echo through an unprivileged ping socket (no raw-socket capability needed).
PING_SOCKET_PY = r"""
import socket, struct, sys
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
except OSError as error:
    print(f"no-socket: {error}")
    sys.exit(2)
s.settimeout(2)
try:
    s.sendto(struct.pack("!BBHHH", 8, 0, 0, 0, 1) + b"cd-probe", (sys.argv[1], 0))
    data = s.recv(4096)
except OSError as error:
    print(f"blocked: {error}")
    sys.exit(1)
print("reply" if data[0] == 0 else f"icmp type {data[0]}")
"""


def test_the_agent_cannot_ping_admitted_addresses(sandbox, internet, servers):
    """Docker opens unprivileged ICMP sockets to every group; an admitted address answers pings."""
    alpha = servers["alpha"].address()
    internet.set("exact.test", alpha)
    box = sandbox(["exact.test"], [f"{alpha}/32"], allow_private_answers=False)
    assert box.run(["perl", "-e", PING_PL, alpha], as_agent=False)[1].strip() == "reply"  # alpha answers pings
    code, output = box.run(["python3", "-c", PING_SOCKET_PY, alpha])
    assert output.strip() != "reply", output
    assert output.startswith("no-socket"), output  # closed at the socket, not only in the filter


def test_the_filter_holds_icmp_even_where_ping_sockets_are_open(sandbox, internet, servers):
    """Should an engine ignore the container's ping_group_range, the filter still drops the echo."""
    alpha = servers["alpha"].address()
    internet.set("exact.test", alpha)
    wide_open = {"sysctls": {"net.ipv4.ping_group_range": "0 2147483647"}}
    box = sandbox(["exact.test"], [f"{alpha}/32"], host_options=wide_open, allow_private_answers=False)
    assert box.run(["cat", "/proc/sys/net/ipv4/ping_group_range"])[1].split() == ["0", "2147483647"]
    code, output = box.run(["python3", "-c", PING_SOCKET_PY, alpha])
    assert output.strip().startswith("blocked"), output


def test_allowlisted_names_resolving_to_private_addresses_are_refused(sandbox, internet, servers):
    """DNS rebinding: whoever answers for an allowlisted name points it at the LAN, the cloud
    metadata service or loopback. Only addresses in allowed_cidrs may come back from DNS."""
    alpha, beta = servers["alpha"].address(), servers["beta"].address()
    private = {
        "lan.test": alpha,  # a private address of a container on the bridge
        "metadata.test": "169.254.169.254",
        "loopback.test": "127.0.0.1",
        "ten.test": "10.203.0.7",
        "cgnat.test": "100.100.100.200",
    }
    for name, address in private.items():
        internet.set(name, address)
    internet.set("listed.test", beta)
    box = sandbox([*private, "listed.test"], [f"{beta}/32"], allow_private_answers=False)
    assert box.curl("http://listed.test/") == (0, "beta")  # in allowed_cidrs: resolves and works
    for name, address in private.items():
        code, output = box.run(["getent", "ahostsv4", name])
        assert code != 0, f"{name} resolved: {output}"
        assert box.run(["ipset", "test", "cd-dns", address], as_agent=False)[0] != 0, f"{address} admitted"
    assert all(internet.asked(name) for name in private)  # the upstream did answer
    assert box.curl("http://lan.test/")[0] != 0
    assert box.curl(f"http://{alpha}/")[0] != 0


def test_allowing_private_answers_still_refuses_loopback_and_metadata(sandbox, internet, servers):
    """allow_private_answers is for internal names on the LAN; link-local and loopback answers
    never name a service of the user's, and stay refused."""
    alpha = servers["alpha"].address()
    internet.set("lan.test", alpha)
    internet.set("metadata.test", "169.254.169.254")
    internet.set("loopback.test", "127.0.0.1")
    box = sandbox(["lan.test", "metadata.test", "loopback.test"], allow_private_answers=True)
    assert box.curl("http://lan.test/") == (0, "alpha")
    for name, address in (("metadata.test", "169.254.169.254"), ("loopback.test", "127.0.0.1")):
        assert not box.resolves(name), name
        assert box.run(["ipset", "test", "cd-dns", address], as_agent=False)[0] != 0, f"{address} admitted"
        assert internet.asked(name)


# --- many names on one address (a CDN edge, a shared host) ---------------------------------------

SHOP = "shop.cdn.test"  # allowlisted
NEIGHBOUR = "pypi.cdn.test"  # same address, never allowlisted
SHARED_NAMES = (SHOP, NEIGHBOUR, "wild.test", "a.wild.test", "a.b.wild.test", "xwild.test")
CA_FILE = "/tmp/shared-ca.pem"


@pytest.fixture(scope="module")
def shared_host(docker_client, server_image):
    from tests.fakes.shared_host import start_shared_host
    from tests.support.sandbox import LABELS

    host = start_shared_host(docker_client, server_image, SHARED_NAMES, LABELS)
    yield host
    host.container.remove(force=True)


def edge_sandbox(sandbox, internet, shared_host, domains):
    """A sandbox allowing `domains`, every shared name pointing at the one edge address, the
    edge's CA trusted by the agent's curl."""
    address = shared_host.address()
    for name in SHARED_NAMES:
        internet.set(name, address)
    box = sandbox(domains)
    code, output = box.sh(f"cat > {CA_FILE} <<'PEM'\n{shared_host.ca_pem}PEM")
    assert code == 0, output
    return box, address


def fetch(box, url: str, *options: str) -> tuple[int, str]:
    """curl as the agent: (exit code, body); HTTP errors count as failures (-f)."""
    return box.run(["curl", "-sSf", "--max-time", "5", "--cacert", CA_FILE, *options, url])


def assert_refused(result: tuple[int, str], what: str) -> None:
    code, body = result
    assert code != 0 and "served" not in body, f"{what} got through: {result}"


def test_a_neighbour_on_an_allowlisted_address_stays_closed(sandbox, internet, shared_host):
    """The allowlisted name works; every way of asking the same address for another name fails."""
    box, address = edge_sandbox(sandbox, internet, shared_host, [SHOP])
    assert fetch(box, f"https://{SHOP}/") == (0, f"served {SHOP} {SHOP}")
    assert fetch(box, f"http://{SHOP}/") == (0, f"served - {SHOP}")
    resolve = lambda port: ("--resolve", f"{NEIGHBOUR}:{port}:{address}")  # noqa: E731
    assert_refused(fetch(box, f"https://{NEIGHBOUR}/", *resolve(443)), "TLS SNI")
    assert_refused(fetch(box, f"http://{NEIGHBOUR}/", *resolve(80)), "plaintext Host")
    assert_refused(fetch(box, f"http://{SHOP}/", "-H", f"Host: {NEIGHBOUR}"), "Host on the allowed name's connection")
    assert_refused(fetch(box, f"http://{NEIGHBOUR}/", "-x", f"http://{SHOP}:80"), "absolute URI via HTTP_PROXY")
    assert_refused(fetch(box, f"http://{NEIGHBOUR}/", "-x", f"http://{SHOP}:80", "-H", f"Host: {SHOP}"), "absolute URI, allowed Host")
    assert_refused(fetch(box, f"https://{NEIGHBOUR}/", "-x", f"http://{SHOP}:80"), "CONNECT via HTTPS_PROXY")
    curl = ["curl", "-sSf", "--max-time", "5", "--cacert", CA_FILE, f"https://{NEIGHBOUR}/"]
    assert_refused(box.run(["env", f"https_proxy=http://{SHOP}:80", *curl]), "CONNECT via the https_proxy variable")
    assert_refused(fetch(box, f"https://{NEIGHBOUR}/", *resolve(443), "-H", f"Host: {SHOP}"), "SNI/Host mismatch")
    assert_refused(fetch(box, f"https://{address}/", "-k", "-H", f"Host: {NEIGHBOUR}"), "no SNI (IP literal)")
    assert_refused(fetch(box, f"http://{address}/", "-H", f"Host: {NEIGHBOUR}"), "IP literal, plaintext")
    request = f"GET / HTTP/1.0\\r\\nHost: {NEIGHBOUR}\\r\\n\\r\\n"
    code, output = box.sh(f"printf '{request}' | timeout 5 openssl s_client -quiet -noservername -connect {SHOP}:443 2>/dev/null")
    assert "served" not in output, f"no SNI got through: {output}"


def test_name_checks_keep_the_allowlist_semantics(sandbox, internet, shared_host):
    """Wildcards at any depth but never the apex, no look-alikes, case and trailing dot ignored,
    and only the allowlisted ports."""
    box, address = edge_sandbox(sandbox, internet, shared_host, [SHOP, "*.wild.test"])
    assert fetch(box, "https://a.wild.test/") == (0, "served a.wild.test a.wild.test")
    assert fetch(box, "https://a.b.wild.test/") == (0, "served a.b.wild.test a.b.wild.test")
    assert fetch(box, f"https://{SHOP.upper()}/")[0] == 0
    assert fetch(box, f"http://{SHOP}/", "-H", f"Host: {SHOP.upper()}.:80") == (0, f"served - {SHOP.upper()}.:80")
    for name in ("wild.test", "xwild.test"):
        assert_refused(fetch(box, f"https://{name}/", "--resolve", f"{name}:443:{address}"), name)
        assert_refused(fetch(box, f"http://{name}/", "--resolve", f"{name}:80:{address}"), name)
    assert_refused(fetch(box, f"https://{SHOP}:8443/", "-H", f"Host: {NEIGHBOUR}"), "a port not allowlisted")


# --- around the proxy ----------------------------------------------------------------------------

# Reuse a local port the proxy holds towards an admitted address: bind it (SO_REUSEADDR) and
# connect to that address on another port, then ask for the neighbour in plain HTTP.
REUSE_PORT_PL = r"""
use strict; use Socket;
my ($port, $host, $dport, $name) = @ARGV;
socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!\n";
setsockopt($s, SOL_SOCKET, SO_REUSEADDR, 1);
bind($s, sockaddr_in($port, INADDR_ANY)) or do { print "bind: $!\n"; exit 2 };
connect($s, sockaddr_in($dport, inet_aton($host))) or do { print "connect: $!\n"; exit 2 };
send($s, "GET / HTTP/1.0\r\nHost: $name\r\n\r\n", 0);
my $buf = ""; my $all = "";
while (recv($s, $buf, 4096, 0) && length $buf) { $all .= $buf }
print $all; exit 0;
"""


def proxy_upstream_ports(box, address: str, port: int) -> list[int]:
    """Local ports of the proxy's open connections to address:port, read as the agent can."""
    code, table = box.run(["cat", "/proc/net/tcp"])
    assert code == 0
    wanted = f"{int.from_bytes(bytes(map(int, address.split('.')))[::-1], 'big'):08X}:{port:04X}"
    return [int(fields[1].split(":")[1], 16) for fields in (line.split() for line in table.splitlines()[1:]) if fields[2] == wanted]


def test_the_agent_cannot_reach_admitted_addresses_around_the_proxy(sandbox, internet, shared_host, servers):
    """Other ports, UDP (QUIC), IPv4-mapped IPv6, the listeners themselves, and the proxy's own
    source ports: every path to an admitted address goes through the name check or nowhere."""
    internet.set("exact.test", servers["alpha"].address())
    box, address = edge_sandbox(sandbox, internet, shared_host, [SHOP, "exact.test"])
    assert box.curl("http://exact.test/") == (0, "alpha")
    # other ports and UDP (QUIC) to admitted addresses: closed for the agent
    assert_refused(fetch(box, f"https://{SHOP}:8443/", "-H", f"Host: {NEIGHBOUR}"), "another TCP port")
    alpha = servers["alpha"]
    before = alpha.udp_count()
    assert box.probe(alpha.address(), 9999).startswith(("blocked", "noreply"))
    assert box.probe(address, 443).startswith(("blocked", "noreply"))
    time.sleep(0.5)
    assert alpha.udp_count() == before
    # IPv4-mapped IPv6 addresses leave as IPv4 and meet the same rules
    assert_refused(fetch(box, f"http://[::ffff:{address}]/", "-H", f"Host: {NEIGHBOUR}"), "IPv4-mapped IPv6, HTTP")
    assert_refused(fetch(box, f"https://[::ffff:{address}]/", "-k", "-H", f"Host: {NEIGHBOUR}"), "IPv4-mapped IPv6, TLS")
    # the listeners themselves apply the same checks
    for port in (15443, 15080):
        scheme = "https" if port == 15443 else "http"
        assert_refused(fetch(box, f"{scheme}://{NEIGHBOUR}/", "--connect-to", f"::127.0.0.1:{port}"), f"listener {port}")
    # the proxy's own source port towards the shared address, held open by an allowed connection
    hold = f"sleep 8 | openssl s_client -quiet -connect {SHOP}:443 -servername {SHOP} >/dev/null 2>&1 &"
    assert box.sh(hold)[0] == 0
    ports = wait_for(lambda: proxy_upstream_ports(box, address, 443), 5)
    assert ports, "the proxy's upstream connection was not found"
    for dport in (80, 443, 8443):
        code, output = box.run(["perl", "-e", REUSE_PORT_PL, str(ports[0]), address, str(dport), NEIGHBOUR])
        assert "served" not in output, (dport, output)


def test_the_agent_cannot_stop_or_reconfigure_the_proxy(sandbox, internet, shared_host):
    box, address = edge_sandbox(sandbox, internet, shared_host, [SHOP])
    runtime = contract.CONTAINER_RUNTIME
    attempts = {
        "kill": "kill -9 $(cat /run/claude-docker-firewall/proxy.pid)",
        "stop": "kill -STOP $(cat /run/claude-docker-firewall/proxy.pid)",
        "reload signal": "kill -USR2 $(pgrep -x haproxy)",
        "pkill": "pkill -x haproxy",
        "rewrite the config": f"echo 'frontend x' >> {runtime}/haproxy.cfg",
        "replace the config": f"cp /dev/null {runtime}/haproxy.cfg",
        "drop the nat redirect": "iptables -t nat -F CD-PROXY",
        "bind a listener port": "perl -MSocket -e 'socket(S,PF_INET,SOCK_STREAM,0); setsockopt(S,SOL_SOCKET,SO_REUSEADDR,1);"
        " bind(S,sockaddr_in(15443,INADDR_LOOPBACK)) or exit 1; listen(S,1) or exit 1'",
        "write the proxy log": "echo forged >> /run/claude-docker/log/proxy.log",
    }
    for what, command in attempts.items():
        code, output = box.sh(command)
        assert code != 0, f"the agent could {what}: {output}"
    assert box.sh("pgrep -u haproxy -x haproxy")[0] == 0
    assert box.sh("grep -q '^State:.*[RS]' /proc/$(cat /run/claude-docker-firewall/proxy.pid)/status")[0] == 0
    assert fetch(box, f"https://{SHOP}/") == (0, f"served {SHOP} {SHOP}")
    assert_refused(fetch(box, f"https://{NEIGHBOUR}/", "--resolve", f"{NEIGHBOUR}:443:{address}"), "after the attempts")


def test_refused_connections_are_logged_for_blocked(sandbox, internet, shared_host):
    """Each refusal is logged with time, name (or no SNI), port and reason, where `blocked` reads it."""
    from click.testing import CliRunner

    from claude_docker.cli import main

    box, address = edge_sandbox(sandbox, internet, shared_host, [SHOP])
    fetch(box, f"https://{NEIGHBOUR}/", "--resolve", f"{NEIGHBOUR}:443:{address}")
    fetch(box, f"http://{SHOP}/", "-H", f"Host: {NEIGHBOUR}")
    fetch(box, f"https://{address}/", "-k")
    log = box.session.log_dir / "proxy.log"
    wait_for(lambda: log.read_text().count("reason=no-name") >= 1, 5)  # the last one, written at close
    listed = CliRunner().invoke(main, ["blocked", "--log", str(log)])
    assert listed.exit_code == 0, listed.output
    assert f"{NEIGHBOUR} port 443: name not allowed" in listed.output
    assert f"{NEIGHBOUR} port 80: name not allowed" in listed.output
    assert "no SNI port 443: no name" in listed.output
    assert "selftest" not in listed.output
    suggested = CliRunner().invoke(main, ["blocked", "--log", str(log), "--suggest"])
    assert suggested.output.splitlines()[1:] == ["network:", "  allowed_domains:", f"    - {NEIGHBOUR}"]


def test_a_name_the_agent_sends_reaches_the_proxy_log_without_control_characters(sandbox, internet, shared_host):
    """The agent chooses the name in its ClientHello and Host header: bytes the user's terminal
    obeys (escape sequences) or line breaks that forge a log line must not reach proxy.log,
    which the user may read with `tail -f` as well as through `blocked`."""
    from claude_docker.features.firewall import printf_escaped
    from claude_docker.features.firewall.plan import client_hello

    box, address = edge_sandbox(sandbox, internet, shared_host, [SHOP])
    hostile = "evil\x1b[2J\x1b]0;owned\x07\r\n2026-01-01T00:00:00+0000 claude-docker-proxy refused port=443 name=forged.example"
    hello = printf_escaped(client_hello(hostile))
    code, output = box.sh(f"exec 3<>/dev/tcp/{address}/443 && printf '%b' '{hello}' >&3 && timeout 2 cat <&3 >/dev/null; echo sent")
    assert "sent" in output, output
    box.sh(f"printf 'GET / HTTP/1.0\\r\\nHost: a\\x1b[31mb.example\\r\\n\\r\\n' | timeout 2 bash -c 'exec 3<>/dev/tcp/{address}/80; cat >&3; cat <&3' >/dev/null; echo sent")
    log = box.session.log_dir / "proxy.log"
    wait_for(lambda: log.read_bytes().count(b"evil") >= 1, 5)
    raw = log.read_bytes()
    assert not [byte for byte in raw if (byte < 0x20 and byte != 0x0A) or byte == 0x7F], raw
    assert not [line for line in raw.splitlines() if line.startswith(b"2026-01-01")], raw  # no line of its own making


def test_the_session_proxy_chains_to_network_proxy_by_name(sandbox, internet, shared_host):
    """With network.proxy set, the session's HTTPS_PROXY is the sandbox proxy: CONNECTs for
    allowlisted names go on to the upstream proxy (here the shared host's CONNECT service),
    others are refused before they reach it."""
    from claude_docker.config.model import ProxyConfig

    internet.set("corp-proxy.test", shared_host.address())
    upstream = ProxyConfig(http="http://corp-proxy.test:80", https="http://corp-proxy.test:80")
    for name in SHARED_NAMES:
        internet.set(name, shared_host.address())
    box = sandbox([SHOP, "corp-proxy.test"], proxy=upstream)
    assert box.sh(f"cat > {CA_FILE} <<'PEM'\n{shared_host.ca_pem}PEM")[0] == 0
    code, env = box.sh("echo $HTTPS_PROXY $https_proxy")
    assert env.split() == ["http://127.0.0.1:15128"] * 2, env
    assert fetch(box, f"https://{SHOP}/") == (0, f"served {SHOP} {SHOP}")  # through the chain
    assert_refused(fetch(box, f"https://{NEIGHBOUR}/"), "CONNECT for another name")
    request = f"CONNECT {NEIGHBOUR}:443 HTTP/1.1\\r\\nHost: {SHOP}:443\\r\\n\\r\\n"
    code, output = box.sh(f"exec 3<>/dev/tcp/127.0.0.1/15128; printf '{request}' >&3; timeout 3 head -c 12 <&3")
    assert "200" not in output, output
    # the upstream proxy itself is only for the sandbox proxy
    assert_refused(fetch(box, f"https://{NEIGHBOUR}/", "-x", "http://corp-proxy.test:80"), "the upstream proxy directly")
