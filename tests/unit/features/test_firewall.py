"""Firewall planning, rendering and the blocked-names log, without a Docker engine."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from datetime import datetime

import pytest
from click.testing import CliRunner

from claude_docker import contract
from claude_docker.cli import main
from claude_docker.config.model import Config, NetworkConfig, WorkspaceConfig
from claude_docker.errors import FirewallError
from claude_docker.features import RunContext, firewall
from claude_docker.features.firewall import log as firewall_log
from claude_docker.features.firewall import plan as firewall_plan
from claude_docker.runspec import RunSpec
from claude_docker.session import Session
from tests.support.wait import wait_for


def make_config(tmp_path, **network) -> Config:
    return Config(
        source_files=(),
        project_dir=str(tmp_path),
        workspace=WorkspaceConfig(path=str(tmp_path)),
        network=NetworkConfig(**network),
    )


# --- DNS plan ---------------------------------------------------------------------------------


def test_exact_name_forwards_only_itself():
    plan = firewall_plan.plan_dns(["Example.COM."])
    assert plan.forward == ("example.com",)
    assert plan.local == ("*.example.com",)  # subdomains refused: exact means exact
    assert plan.ipset_zones == ("example.com",)


def test_wildcard_forwards_subdomains_but_not_the_apex():
    plan = firewall_plan.plan_dns(["*.example.com"])
    assert plan.forward == ("*.example.com",)
    assert "example.com" not in plan.forward
    assert plan.local == ()


def test_apex_and_wildcard_together_forward_both_without_refusing_subdomains():
    plan = firewall_plan.plan_dns(["example.com", "*.example.com"])
    assert set(plan.forward) == {"example.com", "*.example.com"}
    assert plan.local == ()


def test_names_under_a_wildcard_add_nothing():
    plan = firewall_plan.plan_dns(["*.example.com", "a.example.com", "*.b.example.com"])
    assert plan.forward == ("*.example.com",)
    assert plan.local == ()


def test_nested_exact_names_both_stay_exact():
    plan = firewall_plan.plan_dns(["example.com", "a.example.com"])
    assert plan.forward == ("a.example.com", "example.com")
    assert plan.local == ("*.a.example.com", "*.example.com")


@pytest.mark.parametrize(
    "bad",
    ["exa mple.com", "example.com\nserver=/#/8.8.8.8", "$(id).com", "*.*.example.com", "-a.com", "a..com", "x" * 254],
)
def test_hostile_or_malformed_domains_are_refused(bad):
    with pytest.raises(FirewallError) as caught:
        firewall_plan.plan_dns([bad])
    assert "is not a domain name" in caught.value.message
    assert caught.value.hint


# --- CIDRs ------------------------------------------------------------------------------------


def test_cidrs_with_and_without_port():
    plan = firewall_plan.plan_cidrs(["10.0.0.0/8", "192.0.2.7", "10.1.2.3/32:443", "10.0.0.0/8"])
    assert plan.networks == ("10.0.0.0/8", "192.0.2.7/32")
    assert plan.network_ports == ("10.1.2.3/32,tcp:443", "10.1.2.3/32,udp:443")


@pytest.mark.parametrize(
    "bad, words",
    [("10.0.0.0/33", "not a valid IP address"), ("fd00::/8", "IPv6"), ("10.0.0.1:0", "1-65535"), ("1.2.3.4;rm", "not a valid IP")],
)
def test_bad_cidrs_are_refused(bad, words):
    with pytest.raises(FirewallError) as caught:
        firewall_plan.plan_cidrs([bad])
    assert words in caught.value.message


# --- rendering --------------------------------------------------------------------------------


def test_runtime_artifacts_render_the_allowlist(tmp_path):
    cfg = make_config(
        tmp_path, allowed_domains=("api.anthropic.com", "*.github.com", "pypi.org"), allowed_cidrs=("10.9.0.0/16", "10.8.0.1:22")
    )
    artifacts = firewall.runtime_artifacts(cfg, Session("p", "s"))
    assert set(artifacts) == {"init-firewall.sh", "dnsmasq.conf", "dnsmasq-servers.tmpl", "haproxy.cfg", "ulogd.conf"}
    assert artifacts["init-firewall.sh"].mode == 0o755
    conf = artifacts["dnsmasq.conf"].content.decode()
    assert "local=/#/" in conf.splitlines()
    assert "local=/*.pypi.org/" in conf.splitlines()
    assert "ipset=/github.com/cd-dns" in conf.splitlines()
    servers = artifacts["dnsmasq-servers.tmpl"].content.decode().splitlines()
    assert servers == ["server=/*.github.com/@UPSTREAM@", "server=/api.anthropic.com/@UPSTREAM@", "server=/pypi.org/@UPSTREAM@"]
    script = artifacts["init-firewall.sh"].content.decode()
    assert "add cd-net 10.9.0.0/16" in script
    assert "add cd-netport 10.8.0.1/32,tcp:22" in script
    assert "readonly SELFTEST_NAMES=(api.anthropic.com pypi.org )" in script
    assert "readonly ALLOW_HOST_NETWORK=0" in script
    # Docker's embedded DNS lives in nat: only our own chain is added there, nothing flushed.
    assert "iptables-restore --noflush" in script and ":CD-PROXY - [0:0]" in script
    assert "-t nat -F" not in script and "-t nat" not in script.replace("iptables -t nat -C", "")
    proxy = artifacts["haproxy.cfg"].content.decode().splitlines()
    assert "    acl name_allowed var(txn.name) -m str api.anthropic.com pypi.org" in proxy
    assert "    acl name_allowed var(txn.name) -m end .github.com" in proxy


def test_private_answers_are_refused_except_where_allowed_cidrs_reach():
    refused = firewall_plan.refused_answers(firewall_plan.plan_cidrs(["10.1.2.3/32:5432", "192.168.0.0/16", "172.17.0.0/16"]))
    networks = [ipaddress.ip_network(n) for n in refused]
    for address in ("10.1.2.4", "10.255.0.1", "169.254.169.254", "127.0.0.1", "100.100.100.200", "172.16.5.5", "0.1.2.3"):
        assert any(ipaddress.ip_address(address) in n for n in networks), address
    for address in ("10.1.2.3", "192.168.7.7", "172.17.3.4", "8.8.8.8", "203.0.113.80"):
        assert not any(ipaddress.ip_address(address) in n for n in networks), address
    assert set(firewall_plan.refused_answers(firewall_plan.plan_cidrs([]))) == {
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16"
    }
    assert firewall_plan.refused_answers(firewall_plan.plan_cidrs(["0.0.0.0/0"])) == ()
    # allow_private_answers admits the LAN, never loopback, link-local or "this network"
    assert firewall_plan.refused_answers(firewall_plan.plan_cidrs([]), True) == ("0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16")


def test_rebinding_protection_renders_unless_private_answers_are_allowed(tmp_path):
    def render(**network):
        artifacts = firewall.runtime_artifacts(make_config(tmp_path, allowed_domains=("example.com",), **network), Session("p", "s"))
        return artifacts["dnsmasq.conf"].content.decode().splitlines(), artifacts["init-firewall.sh"].content.decode()

    conf, script = render(allowed_cidrs=("169.254.169.254/32",))
    assert "bogus-nxdomain=10.0.0.0/8" in conf and "bogus-nxdomain=169.254.169.255/32" in conf
    assert "bogus-nxdomain=169.254.0.0/16" not in conf
    assert "add cd-private 169.254.0.0/16" in script  # the filter: allowed_cidrs are accepted before it
    conf, script = render(allow_private_answers=True)
    assert [line for line in conf if line.startswith("bogus-nxdomain")] == [
        "bogus-nxdomain=0.0.0.0/8", "bogus-nxdomain=127.0.0.0/8", "bogus-nxdomain=169.254.0.0/16"
    ]
    assert "add cd-private 169.254.0.0/16" in script and "add cd-private 10.0.0.0/8" not in script


def test_no_artifacts_when_the_firewall_is_off(tmp_path):
    assert firewall.runtime_artifacts(make_config(tmp_path, firewall=False), Session("p", "s")) == {}


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
@pytest.mark.parametrize("host_network", [False, True])
def test_rendered_script_passes_shellcheck(tmp_path, host_network):
    cfg = make_config(
        tmp_path,
        allowed_domains=("example.com", "*.example.org"),
        allowed_cidrs=("10.0.0.0/8:443",),
        allow_host_network=host_network,
    )
    script = tmp_path / "init-firewall.sh"
    script.write_bytes(firewall.runtime_artifacts(cfg, Session("p", "s"))["init-firewall.sh"].content)
    result = subprocess.run(["shellcheck", "--severity=style", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


# --- run-time needs ---------------------------------------------------------------------------


def test_contribute_adds_caps_env_and_the_log_mount(tmp_path, cd_home):
    session = Session("proj", "abcd1234")
    spec = RunSpec()
    firewall.contribute(RunContext.build(make_config(tmp_path, allowed_domains=("example.com",)), session), spec)
    assert spec.env["CLAUDE_DOCKER_FIREWALL"] == "1"
    assert {"NET_ADMIN", "NET_RAW"} <= spec.cap_add
    assert spec.sysctls == {  # no unprivileged ICMP sockets, no port 53 for the agent
        "net.ipv4.ping_group_range": "1 0", "net.ipv4.ip_unprivileged_port_start": "54"}
    assert session.log_dir.is_dir()
    (mount,) = [m for m in spec.mounts if m.target == contract.CONTAINER_LOG_DIR]
    assert mount.source == str(session.log_dir) and not mount.read_only
    assert spec.warnings == []


def test_firewall_off_warns_and_adds_no_capabilities(tmp_path, cd_home):
    spec = RunSpec()
    firewall.contribute(RunContext.build(make_config(tmp_path, firewall=False), Session("proj", "s1")), spec)
    assert spec.env["CLAUDE_DOCKER_FIREWALL"] == "0"
    assert spec.cap_add == set()
    assert spec.sysctls == {}
    assert len(spec.warnings) == 1 and "network.firewall is false" in spec.warnings[0]


def test_host_addresses_read_from_the_routing_trie(tmp_path):
    trie = tmp_path / "fib_trie"
    trie.write_text(
        "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 127.0.0.1\n        /32 host LOCAL\n"
        "     |-- 192.168.1.20\n        /32 host LOCAL\n     |-- 192.168.1.255\n        /32 link BROADCAST\n"
        "Local:\n     |-- 192.168.1.20\n        /32 host LOCAL\n     |-- 172.17.0.1\n        /32 host LOCAL\n"
    )
    assert firewall.host_addresses(trie) == ["192.168.1.20", "172.17.0.1"]
    assert firewall.host_addresses(tmp_path / "missing") == []


# --- the blocked-names log --------------------------------------------------------------------

LOG = """\
Nov 27 04:24:42 dnsmasq[26]: started, version 2.90 cachesize 1000
Nov 27 04:24:42 dnsmasq[26]: query[A] claude-docker-selftest.invalid from 127.0.0.1
Nov 27 04:24:42 dnsmasq[26]: config claude-docker-selftest.invalid is NXDOMAIN
Nov 27 04:24:42 dnsmasq[26]: forwarded exact.test to 172.17.0.1
Nov 27 04:24:42 dnsmasq[26]: reply exact.test is 10.0.0.1
Nov 27 04:24:43 dnsmasq[26]: query[A] evil.example from 127.0.0.1
Nov 27 04:24:43 dnsmasq[26]: config evil.example is NXDOMAIN
Nov 27 04:25:01 dnsmasq[26]: config pypi.org is NXDOMAIN
Nov 27 04:25:09 dnsmasq[26]: config Evil.example is NXDOMAIN
Nov 27 04:25:10 dnsmasq[26]: config 4.3.2.1.in-addr.arpa is NXDOMAIN
Nov 27 04:25:11 dnsmasq[26]: config wpad is NXDOMAIN
"""


def test_parse_blocked_counts_names_and_orders_by_last_refusal():
    now = datetime(2026, 11, 27, 5, 0, 0)
    entries = firewall_log.parse_blocked(LOG.splitlines(), now)
    assert [e.name for e in entries] == ["pypi.org", "evil.example", "4.3.2.1.in-addr.arpa", "wpad"]
    evil = entries[1]
    assert evil.count == 2
    assert evil.first == datetime(2026, 11, 27, 4, 24, 43)
    assert evil.last == datetime(2026, 11, 27, 4, 25, 9)


def test_parse_blocked_puts_future_stamps_in_last_year():
    (entry,) = firewall_log.parse_blocked(["Dec 31 23:59:59 dnsmasq[1]: config a.example is NXDOMAIN"], datetime(2027, 1, 1, 0, 1))
    assert entry.last.year == 2026


def test_suggest_yaml_skips_reverse_lookups_and_single_labels():
    assert firewall_log.suggest_yaml(["pypi.org", "4.3.2.1.in-addr.arpa", "wpad", "pypi.org", "a.b.example"]) == (
        "network:\n  allowed_domains:\n    - pypi.org\n    - a.b.example\n"
    )
    assert firewall_log.suggest_yaml(["wpad"]) == ""


def test_blocked_command_lists_and_suggests(tmp_path):
    log = tmp_path / "dns.log"
    log.write_text(LOG)
    runner = CliRunner()
    listed = runner.invoke(main, ["blocked", "--log", str(log)])
    assert listed.exit_code == 0, listed.output
    assert "4 refused names" in listed.output
    assert "evil.example (2x, first 04:24:43)" in listed.output
    assert "claude-docker-selftest.invalid" not in listed.output
    suggested = runner.invoke(main, ["blocked", "--log", str(log), "--suggest"])
    assert suggested.exit_code == 0, suggested.output
    assert suggested.output.splitlines()[1:] == ["network:", "  allowed_domains:", "    - pypi.org", "    - evil.example"]


PRIVATE_ANSWER_LOG = """\
Nov 27 04:30:00 dnsmasq[26]: query[A] metadata.test from 127.0.0.1
Nov 27 04:30:00 dnsmasq[26]: forwarded metadata.test to 172.17.0.1
Nov 27 04:30:00 dnsmasq[26]: config metadata.test is NXDOMAIN
Nov 27 04:30:01 dnsmasq[26]: config pypi.org is NXDOMAIN
"""


def test_refused_private_answers_are_listed_but_never_suggested(tmp_path):
    entries = firewall_log.parse_blocked(PRIVATE_ANSWER_LOG.splitlines(), datetime(2026, 11, 27, 5, 0, 0))
    assert [(e.name, e.private_answer) for e in entries] == [("metadata.test", True), ("pypi.org", False)]
    log = tmp_path / "dns.log"
    log.write_text(PRIVATE_ANSWER_LOG)
    listed = CliRunner().invoke(main, ["blocked", "--log", str(log)])
    assert "metadata.test  (allowed, but it resolved to a private address: see allowed_cidrs)" in listed.output
    suggested = CliRunner().invoke(main, ["blocked", "--log", str(log), "--suggest"])
    assert suggested.output.splitlines()[1:] == ["network:", "  allowed_domains:", "    - pypi.org"]


def test_blocked_command_reads_the_latest_session_of_the_project(tmp_path, cd_home, monkeypatch):
    project_dir = tmp_path / "proj"
    project_dir.mkdir()
    (project_dir / "claude-docker.yaml").write_text("version: 1\n")
    monkeypatch.chdir(project_dir)
    from claude_docker.config.pipeline import load_config

    project = load_config(str(project_dir / "claude-docker.yaml")).config.project_name
    runner = CliRunner()
    empty = runner.invoke(main, ["blocked"])
    assert empty.exit_code == 0, empty.output
    assert "no firewall logs yet" in empty.output

    for sid, name, stamp in (("old00001", "old.example", 1_000_000), ("new00002", "new.example", 2_000_000)):
        log = Session(project, sid).log_dir / "dns.log"
        log.parent.mkdir(parents=True)
        log.write_text(f"Nov 27 04:25:01 dnsmasq[1]: config {name} is NXDOMAIN\n")
        os.utime(log, (stamp, stamp))
    latest = runner.invoke(main, ["blocked"])
    assert "session new00002: 1 refused name" in latest.output and "old.example" not in latest.output
    everything = runner.invoke(main, ["blocked", "--all"])
    assert "old.example" in everything.output and "new.example" in everything.output
    missing = runner.invoke(main, ["blocked", "--session", "nope"])
    assert missing.exit_code == 1
    assert "no firewall log for session nope" in missing.output


PROXY_LOG = """\
[NOTICE]   (45) : haproxy version is 2.6.12-1+deb12u4
2026-11-27T04:24:42+0000 claude-docker-proxy refused port=- name=- reason=-
2026-11-27T04:24:42+0000 claude-docker-proxy refused port=80 name=claude-docker-selftest.invalid reason=not-allowed
2026-11-27T04:24:50+0000 claude-docker-proxy refused port=443 name=pypi.org reason=not-allowed
2026-11-27T04:24:51+0000 claude-docker-proxy refused port=443 name=- reason=no-name
2026-11-27T04:24:52+0000 claude-docker-proxy refused port=80 name=172.17.0.3 reason=no-name
2026-11-27T04:24:53+0000 claude-docker-proxy refused port=80 name=api.example reason=upstream-failed
2026-11-27T04:24:59+0000 claude-docker-proxy refused port=443 name=PyPI.org reason=not-allowed
2026-11-27T04:25:00+0000 claude-docker-proxy refused port=80 name=files.pythonhosted.org reason=proxy-request
"""


def test_parse_refused_groups_connections_by_name_port_and_reason():
    entries = firewall_log.parse_refused(PROXY_LOG.splitlines())
    assert [(e.name, e.port, e.reason, e.count) for e in entries] == [
        ("no SNI", "443", "no name", 1),
        ("172.17.0.3", "80", "no name", 1),
        ("pypi.org", "443", "name not allowed", 2),
        ("files.pythonhosted.org", "80", "CONNECT or absolute URI", 1),
    ]
    assert entries[2].first == datetime(2026, 11, 27, 4, 24, 50)
    assert entries[2].last == datetime(2026, 11, 27, 4, 24, 59)


def test_blocked_command_shows_refused_connections_beside_names(tmp_path):
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    (log_dir / "proxy.log").write_text(PROXY_LOG)
    runner = CliRunner()
    listed = runner.invoke(main, ["blocked", "--log", str(log_dir / "proxy.log")])
    assert listed.exit_code == 0, listed.output
    assert "4 refused connections" in listed.output
    assert "2026-11-27 04:24:59  pypi.org port 443: name not allowed (2x, first 04:24:50)" in listed.output
    assert "no SNI port 443: no name" in listed.output
    assert "selftest" not in listed.output and "api.example" not in listed.output
    suggested = runner.invoke(main, ["blocked", "--log", str(log_dir / "proxy.log"), "--suggest"])
    assert suggested.output.splitlines()[1:] == ["network:", "  allowed_domains:", "    - pypi.org"]


def test_blocked_shows_what_the_local_credential_endpoints_refused(tmp_path):
    log = tmp_path / "proxy.log"
    log.write_text("".join(
        f"2026-11-27T04:25:0{i}+0000 claude-docker-proxy refused port=- name=127.0.0.1:15090 reason={reason}\n"
        for i, reason in enumerate(("method", "too-large", "rate", "rate"))
    ))
    listed = CliRunner().invoke(main, ["blocked", "--log", str(log)])
    assert "127.0.0.1:15090 port -: method not allowed at the local endpoint" in listed.output
    assert "request too large (or chunked) for the local endpoint" in listed.output
    assert "over the local endpoint's rate limit (2x" in listed.output
    suggested = CliRunner().invoke(main, ["blocked", "--log", str(log), "--suggest"])
    assert "allowed_domains" not in suggested.output  # limits, not names to allow


def test_blocked_command_reads_both_logs_of_a_session(tmp_path, cd_home, monkeypatch):
    project_dir = tmp_path / "proj"
    project_dir.mkdir()
    (project_dir / "claude-docker.yaml").write_text("version: 1\n")
    monkeypatch.chdir(project_dir)
    from claude_docker.config.pipeline import load_config

    project = load_config(str(project_dir / "claude-docker.yaml")).config.project_name
    log_dir = Session(project, "s0000001").log_dir
    log_dir.mkdir(parents=True)
    (log_dir / "dns.log").write_text(LOG)
    (log_dir / "proxy.log").write_text(PROXY_LOG)
    result = CliRunner().invoke(main, ["blocked"])
    assert "session s0000001: 4 refused names" in result.output
    assert "session s0000001: 4 refused connections" in result.output
    suggested = CliRunner().invoke(main, ["blocked", "--suggest"])
    # a name refused by both DNS and the proxy is suggested once
    assert suggested.output.splitlines()[1:] == ["network:", "  allowed_domains:", "    - pypi.org", "    - evil.example"]


# --- ports and the name-checking proxy --------------------------------------------------------


def test_a_port_adds_an_address_level_set_to_its_zone():
    domains = ["github.com", "github.com:22", "*.corp.example:8443", "a.b.corp.example", "example.org:443", "x.example.org"]
    dns = firewall_plan.plan_dns(domains)
    assert dns.forward == ("*.corp.example", "example.org", "github.com", "x.example.org")
    ports = firewall_plan.port_entries(domains)
    assert ports == (("github.com", 22), ("*.corp.example", 8443))  # 443 is always there, by name
    assert firewall_plan.plan_ipsets(dns, ports) == (
        ("corp.example", ("cd-dns", "cd-port-8443")),
        ("example.org", ("cd-dns",)),
        ("github.com", ("cd-dns", "cd-port-22")),
        ("x.example.org", ("cd-dns",)),
    )


def test_a_port_under_a_wildcard_keeps_the_wildcards_ports():
    domains = ["*.example.com:8443", "api.example.com:22"]
    dns = firewall_plan.plan_dns(domains)
    assert dns.forward == ("*.example.com",)  # the name itself is covered by the wildcard
    assert firewall_plan.plan_ipsets(dns, firewall_plan.port_entries(domains)) == (
        ("api.example.com", ("cd-dns", "cd-port-22", "cd-port-8443")),  # dnsmasq: longest zone only
        ("example.com", ("cd-dns", "cd-port-8443")),
    )


@pytest.mark.parametrize("bad", ["github.com:0", "github.com:65536", "github.com:", "github.com:ssh"])
def test_bad_domain_ports_are_refused(bad):
    with pytest.raises(FirewallError):
        firewall_plan.plan_dns([bad])


def test_rendered_ports_open_by_address_and_names_go_to_the_proxy(tmp_path):
    cfg = make_config(tmp_path, allowed_domains=("github.com:22", "*.example.org"))
    artifacts = firewall.runtime_artifacts(cfg, Session("p", "s"))
    conf = artifacts["dnsmasq.conf"].content.decode().splitlines()
    assert "ipset=/github.com/cd-dns,cd-port-22" in conf and "ipset=/example.org/cd-dns" in conf
    script = artifacts["init-firewall.sh"].content.decode()
    assert "create cd-port-22 hash:ip family inet" in script
    assert "echo '-A OUTPUT -p tcp --dport 22 -m set --match-set cd-port-22 dst -j ACCEPT'" in script
    assert "readonly DOMAIN_EXACT=1" in script
    proxy = artifacts["haproxy.cfg"].content.decode()
    assert "-m str github.com\n" in proxy and "-m end .example.org\n" in proxy


def test_name_checks_off_renders_address_level_rules_and_warns(tmp_path, cd_home):
    cfg = make_config(tmp_path, allowed_domains=("example.com",), name_checks=False)
    script = firewall.runtime_artifacts(cfg, Session("p", "s"))["init-firewall.sh"].content.decode()
    assert "readonly DOMAIN_EXACT=0" in script
    spec = RunSpec()
    firewall.contribute(RunContext.build(cfg, Session("proj", "s2")), spec)
    assert spec.warnings == [firewall.NAME_CHECKS_OFF_WARNING]
    assert "network.name_checks is false" in spec.warnings[0]


def test_a_tls_network_proxy_on_an_allowlisted_name_gets_its_port(tmp_path):
    """A proxy reached over TLS is not chained: the agent's tools reach it directly, by address."""
    from claude_docker.config.model import ProxyConfig

    proxy = ProxyConfig(http="https://proxy.corp.example:3128", https="https://user:pw@proxy.corp.example:3128")
    cfg = make_config(tmp_path, allowed_domains=("*.corp.example",), proxy=proxy)
    assert firewall_plan.proxy_port_entries(cfg) == ("proxy.corp.example:3128",)
    conf = firewall.runtime_artifacts(cfg, Session("p", "s"))["dnsmasq.conf"].content.decode().splitlines()
    assert "ipset=/proxy.corp.example/cd-dns,cd-port-3128" in conf
    elsewhere = make_config(tmp_path, allowed_domains=("example.com",), proxy=proxy)
    assert firewall_plan.proxy_port_entries(elsewhere) == ()  # not allowlisted: nothing opens


def test_the_self_tests_client_hello_names_the_server_and_gets_a_server_hello(tmp_path):
    """The script's hand-written ClientHello is one a real TLS server answers (and the proxy's
    SNI parser reads): a ServerHello comes back."""
    import socket

    from tests.fakes.shared_host import make_certificates

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    _, cert, key = make_certificates(("api.example.test",))
    (tmp_path / "cert.pem").write_text(cert)
    (tmp_path / "key.pem").write_text(key)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", "cert.pem", "-key", "key.pem", "-servername",
         "api.example.test", "-cert2", "cert.pem", "-key2", "key.pem", "-quiet"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:

        def connect() -> socket.socket | None:
            try:
                return socket.create_connection(("127.0.0.1", port), timeout=3)
            except OSError:
                return None

        connection = wait_for(connect, 5, interval=0.05)
        assert connection is not None, "openssl s_server did not listen"
        with connection:
            connection.sendall(firewall_plan.client_hello("api.example.test"))
            reply = connection.recv(16)
    finally:
        server.kill()
        server.wait()
    assert reply[:1] == b"\x16" and reply[5:6] == b"\x02", reply.hex()  # handshake record: ServerHello
    assert firewall_plan.client_hello("a.test") == firewall_plan.client_hello("a.test")  # rendering stays deterministic
    assert firewall.printf_escaped(b"\x16\x03") == "\\x16\\x03"


def test_the_session_proxy_chains_to_an_http_network_proxy(tmp_path):
    from claude_docker.config.model import ProxyConfig

    proxy = ProxyConfig(http="http://u:pw@proxy.corp.example:3128", https="http://u:pw@proxy.corp.example:3128",
                        no_proxy=("localhost",))
    cfg = make_config(tmp_path, allowed_domains=("*.corp.example", "pypi.org"), proxy=proxy)
    assert firewall_plan.upstream_proxy(cfg) == firewall_plan.UpstreamProxy("proxy.corp.example", 3128, False)
    env = firewall_plan.session_proxy_env(cfg)
    assert env["HTTPS_PROXY"] == env["http_proxy"] == "http://u:pw@127.0.0.1:15128"  # credentials go on upstream
    assert env["NO_PROXY"] == "localhost"
    assert firewall_plan.proxy_port_entries(cfg) == ()  # the agent does not reach it directly
    proxy_cfg = firewall.runtime_artifacts(cfg, Session("p", "s"))["haproxy.cfg"].content.decode()
    assert "bind 127.0.0.1:15128" in proxy_cfg
    assert "do-resolve(txn.upstream,sandbox,ipv4) str(proxy.corp.example)" in proxy_cfg
    assert "server upstream 0.0.0.0:3128" in proxy_cfg
    by_address = make_config(tmp_path, allowed_cidrs=("10.1.2.3/32",), proxy=ProxyConfig(https="http://10.1.2.3:8080"))
    assert "server upstream 10.1.2.3:8080" in firewall.runtime_artifacts(by_address, Session("p", "s"))["haproxy.cfg"].content.decode()
    # not chained: names not checked, a TLS proxy URL, no proxy at all
    assert firewall_plan.upstream_proxy(make_config(tmp_path, proxy=proxy, name_checks=False)) is None
    assert firewall_plan.upstream_proxy(make_config(tmp_path, proxy=ProxyConfig(https="https://proxy.corp.example:3129"))) is None
    assert "bind 127.0.0.1:15128" not in firewall.runtime_artifacts(make_config(tmp_path), Session("p", "s"))["haproxy.cfg"].content.decode()
    with pytest.raises(FirewallError) as caught:
        firewall_plan.upstream_proxy(make_config(tmp_path, proxy=ProxyConfig(http="http://a.example:1", https="http://b.example:1")))
    assert "different proxies" in caught.value.message
