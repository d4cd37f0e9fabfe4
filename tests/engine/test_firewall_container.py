"""The egress firewall in real containers: real iptables, ipset and dnsmasq, the product image
and entrypoint, and a test "internet" of our own (an authoritative DNS server on the bridge
gateway and HTTP/UDP server containers). No outside host is ever contacted.

The test internet and the sessions are fixtures of tests/support/sandbox.py.
"""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

from claude_docker import contract
from tests.support.sandbox import PING_PL, Sandbox, dns_query, net_name, point
from tests.support.wait import wait_for

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
    from claude_docker.features.firewall.log import read_blocked

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
    wait_for(lambda: gamma.udp_count() != before, 3)
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
    wait_for(lambda: servers["gamma"].udp_count() != before, 3)
    assert servers["gamma"].udp_count() == before + 1


# --- the host ------------------------------------------------------------------------------------


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
