"""A hostile agent against the egress firewall, with the test internet of
tests/test_firewall_container.py (its fixtures: an authoritative DNS server on the bridge gateway,
HTTP server containers, an HTTP server on the host). Uses port 53 on the gateway: never run it
next to another file that does.
"""

from __future__ import annotations

import time

import pytest

from tests.test_firewall_container import (  # noqa: F401 (fixtures are found by name)
    fake_dns,
    gateway,
    host_http,
    internet,
    product_image,
    sandbox,
    servers,
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
