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


# --- many names on one address (a CDN edge, a shared host) ---------------------------------------

SHOP = "shop.cdn.test"  # allowlisted
NEIGHBOUR = "pypi.cdn.test"  # same address, never allowlisted
SHARED_NAMES = (SHOP, NEIGHBOUR, "wild.test", "a.wild.test", "a.b.wild.test", "xwild.test")
CA_FILE = "/tmp/shared-ca.pem"


@pytest.fixture(scope="module")
def shared_host(docker_client, product_image):
    from tests.fakes.shared_host import start_shared_host
    from tests.test_firewall_container import LABELS

    host = start_shared_host(docker_client, product_image, SHARED_NAMES, LABELS)
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
    assert code != 0 and NEIGHBOUR not in body and "wild.test" not in body, f"{what} got through: {result}"


@pytest.mark.xfail(strict=True, reason="the firewall admits addresses, not names, so far")
def test_a_neighbour_on_an_allowlisted_address_stays_closed(sandbox, internet, shared_host):
    """The allowlisted name works; every way of asking the same address for another name fails."""
    box, address = edge_sandbox(sandbox, internet, shared_host, [SHOP])
    assert fetch(box, f"https://{SHOP}/") == (0, f"{SHOP} {SHOP}")
    assert fetch(box, f"http://{SHOP}/") == (0, f"- {SHOP}")
    resolve = lambda port: ("--resolve", f"{NEIGHBOUR}:{port}:{address}")  # noqa: E731
    assert_refused(fetch(box, f"https://{NEIGHBOUR}/", *resolve(443)), "TLS SNI")
    assert_refused(fetch(box, f"http://{NEIGHBOUR}/", *resolve(80)), "plaintext Host")
    assert_refused(fetch(box, f"http://{SHOP}/", "-H", f"Host: {NEIGHBOUR}"), "Host on the allowed name's connection")
    assert_refused(fetch(box, f"http://{NEIGHBOUR}/", "-x", f"http://{SHOP}:80"), "absolute URI via HTTP_PROXY")
    assert_refused(fetch(box, f"http://{NEIGHBOUR}/", "-x", f"http://{SHOP}:80", "-H", f"Host: {SHOP}"), "absolute URI, allowed Host")
    assert_refused(fetch(box, f"https://{NEIGHBOUR}/", "-x", f"http://{SHOP}:80"), "CONNECT via HTTPS_PROXY")
    assert_refused(
        box.run(["env", f"https_proxy=http://{SHOP}:80", "curl", "-sSf", "--max-time", "5", "--cacert", CA_FILE, f"https://{NEIGHBOUR}/"]),
        "CONNECT via the https_proxy variable",
    )
    assert_refused(fetch(box, f"https://{NEIGHBOUR}/", *resolve(443), "-H", f"Host: {SHOP}"), "SNI/Host mismatch")
    assert_refused(fetch(box, f"https://{address}/", "-k", "-H", f"Host: {NEIGHBOUR}"), "no SNI (IP literal)")
    assert_refused(fetch(box, f"http://{address}/", "-H", f"Host: {NEIGHBOUR}"), "IP literal, plaintext")
    no_sni = f"printf 'GET / HTTP/1.0\\r\\nHost: {NEIGHBOUR}\\r\\n\\r\\n' | timeout 5 openssl s_client -quiet -noservername -connect {SHOP}:443"
    code, output = box.sh(no_sni + " 2>/dev/null")
    assert NEIGHBOUR not in output, f"no SNI got through: {output}"


@pytest.mark.xfail(strict=True, reason="the firewall admits addresses, not names, so far")
def test_name_checks_keep_the_allowlist_semantics(sandbox, internet, shared_host):
    """Wildcards at any depth but never the apex, no look-alikes, case and trailing dot ignored,
    and only the allowlisted ports."""
    box, address = edge_sandbox(sandbox, internet, shared_host, [SHOP, "*.wild.test"])
    assert fetch(box, "https://a.wild.test/") == (0, "a.wild.test a.wild.test")
    assert fetch(box, "https://a.b.wild.test/") == (0, "a.b.wild.test a.b.wild.test")
    assert fetch(box, f"https://{SHOP.upper()}/")[0] == 0
    assert fetch(box, f"http://{SHOP}/", "-H", f"Host: {SHOP.upper()}.:80") == (0, f"- {SHOP.upper()}.:80")
    for name in ("wild.test", "xwild.test"):
        assert_refused(fetch(box, f"https://{name}/", "--resolve", f"{name}:443:{address}"), name)
        assert_refused(fetch(box, f"http://{name}/", "--resolve", f"{name}:80:{address}"), name)
    assert_refused(fetch(box, f"https://{SHOP}:8443/", "-H", f"Host: {NEIGHBOUR}"), "a port not allowlisted")
