"""The packet log's parser, Claude Code's start-up traffic, the refusals `up` shows after a failed
session, and published ports (`ports:`, `up -p`) from the file to the plan and the firewall script."""

from __future__ import annotations

from datetime import datetime

import pytest
from click.testing import CliRunner

from claude_docker import lifecycle, planview
from claude_docker.cli import main
from claude_docker.config.config_values import ValueProblem, parse_port_mapping
from claude_docker.config.model import Config, PublishedPort, WorkspaceConfig
from claude_docker.config.pipeline import load_config
from claude_docker.features import firewall
from claude_docker.features.firewall import log as firewall_log
from claude_docker.session import Session

# As ulogd writes them (captured from a session: LOGEMU after NFLOG with our prefix).
PACKETS = """\
Dec  1 21:45:27 5ea392a4abdd cd-refused:host IN= OUT=eth0 MAC= SRC=172.17.0.2 DST=172.17.0.1 LEN=60 TOS=00 PREC=0x00 TTL=64 ID=21570 DF PROTO=TCP SPT=38844 DPT=5432 SEQ=1880668813 ACK=0 WINDOW=64240 SYN URGP=0 UID=1000 GID=1000 MARK=0x0
Dec  1 21:45:28 5ea392a4abdd cd-refused:host IN= OUT=eth0 MAC= SRC=172.17.0.2 DST=172.17.0.1 LEN=60 TOS=00 PREC=0x00 TTL=64 ID=21571 DF PROTO=TCP SPT=38846 DPT=5432 SEQ=1880668814 ACK=0 WINDOW=64240 SYN URGP=0 UID=1000 GID=1000 MARK=0x0
Dec  1 21:45:29 5ea392a4abdd cd-refused:not-allowed IN= OUT=eth0 MAC= SRC=172.17.0.2 DST=172.17.0.9 LEN=29 TOS=00 PREC=0x00 TTL=64 ID=1 DF PROTO=UDP SPT=40000 DPT=443 LEN=9 UID=1000 GID=1000 MARK=0x0
Dec  1 21:45:30 5ea392a4abdd cd-refused:ping IN= OUT=eth0 MAC= SRC=172.17.0.2 DST=172.17.0.9 LEN=84 TOS=00 PREC=0x00 TTL=64 ID=2 DF PROTO=ICMP TYPE=8 CODE=0 ID=5 SEQ=1 MARK=0x0
Dec  1 21:45:31 5ea392a4abdd cd-refused:made-up IN= OUT=eth0 SRC=172.17.0.2 DST=172.17.0.9 PROTO=TCP DPT=1 UID=1000
Dec  1 21:45:32 5ea392a4abdd something else DST=172.17.0.9 PROTO=TCP DPT=2 UID=1000
Dec  1 21:45:33 5ea392a4abdd cd-refused:dns IN= OUT=lo SRC=127.0.0.1 DST=127.0.0.11 LEN=60 PROTO=UDP SPT=5353 DPT=53 LEN=40 UID=1000 GID=1000 MARK=0x0
"""
NOW = datetime(2026, 12, 1, 22, 0, 0)


def test_the_packet_log_is_read_as_address_port_protocol_reason_and_uid():
    packets = firewall_log.parse_packets(PACKETS.splitlines(), NOW)
    assert [(p.address, p.port, p.protocol, p.reason, p.uid, p.count) for p in packets] == [
        ("172.17.0.1", "5432", "tcp", "the Docker host (see network.host_ports)", "1000", 2),
        ("172.17.0.9", "443", "udp", "not allowed", "1000", 1),
        ("172.17.0.9", "-", "icmp", "ping", "", 1),
        ("127.0.0.11", "53", "udp", "DNS past the sandbox's resolver", "1000", 1),
    ]
    assert packets[0].first == datetime(2026, 12, 1, 21, 45, 27)
    assert packets[0].describe() == "172.17.0.1 port 5432 tcp: the Docker host (see network.host_ports), uid 1000"
    assert packets[2].describe() == "172.17.0.9 icmp: ping"


def test_blocked_lists_refused_packets_from_a_packet_log(tmp_path):
    log = tmp_path / "packets.log"
    log.write_text(PACKETS)
    listed = CliRunner().invoke(main, ["blocked", "--log", str(log)])
    assert listed.exit_code == 0, listed.output
    assert "4 refused destinations" in listed.output
    assert "172.17.0.1 port 5432 tcp: the Docker host (see network.host_ports), uid 1000 (2x, first 21:45:27)" in listed.output


@pytest.mark.parametrize("name", [
    "downloads.claude.ai", "statsig.anthropic.com", "o1158394.ingest.us.sentry.io", "sentry.io",
    "http-intake.logs.us5.datadoghq.com", "browser-intake-us5-datadoghq.com", "Downloads.Claude.AI.",
])
def test_claude_codes_start_up_hosts_are_recognised(name):
    assert firewall_log.is_startup_traffic(name)


@pytest.mark.parametrize("name", ["claude.ai", "api.anthropic.com", "pypi.org", "notsentry.io", "evil-sentry.io.example"])
def test_other_names_are_not_start_up_traffic(name):
    assert not firewall_log.is_startup_traffic(name)


DNS_WITH_STARTUP = """\
Dec  1 21:40:00 dnsmasq[26]: config downloads.claude.ai is NXDOMAIN
Dec  1 21:40:00 dnsmasq[26]: config statsig.anthropic.com is NXDOMAIN
Dec  1 21:40:01 dnsmasq[26]: config o1158394.ingest.us.sentry.io is NXDOMAIN
Dec  1 21:40:05 dnsmasq[26]: config pypi.org is NXDOMAIN
"""


def test_suggest_never_proposes_claude_codes_start_up_traffic(tmp_path):
    log = tmp_path / "dns.log"
    log.write_text(DNS_WITH_STARTUP)
    suggested = CliRunner().invoke(main, ["blocked", "--log", str(log), "--suggest"])
    assert suggested.exit_code == 0, suggested.output
    assert suggested.output.splitlines()[1:] == ["network:", "  allowed_domains:", "    - pypi.org"]
    listed = CliRunner().invoke(main, ["blocked", "--log", str(log)])
    assert "downloads.claude.ai  (Claude Code's own start-up traffic; not needed)" in listed.output


def test_the_refusal_summary_leaves_out_start_up_traffic_and_stays_short(tmp_path):
    (tmp_path / "dns.log").write_text(DNS_WITH_STARTUP)
    (tmp_path / "packets.log").write_text(PACKETS)
    lines = firewall_log.refusal_summary(tmp_path, now=NOW)
    assert lines == [
        "pypi.org: name refused",
        "172.17.0.1 port 5432 tcp: the Docker host (see network.host_ports), uid 1000 (2x)",
        "172.17.0.9 port 443 udp: not allowed, uid 1000",
        "172.17.0.9 icmp: ping",
        "127.0.0.11 port 53 udp: DNS past the sandbox's resolver, uid 1000",
    ]
    assert firewall_log.refusal_summary(tmp_path, limit=2, now=NOW) == [
        "... and 3 more before",
        "172.17.0.9 icmp: ping",
        "127.0.0.11 port 53 udp: DNS past the sandbox's resolver, uid 1000",
    ]


def test_the_block_up_prints_names_the_session_and_how_to_see_more(tmp_path, cd_home):
    session = Session("proj-12345678", "abcd1234")
    session.log_dir.mkdir(parents=True)
    assert lifecycle.refusals_block(session) == []
    (session.log_dir / "dns.log").write_text("".join(DNS_WITH_STARTUP.splitlines(keepends=True)[:3]))
    assert lifecycle.refusals_block(session) == []  # start-up traffic alone says nothing
    (session.log_dir / "packets.log").write_text(PACKETS.splitlines(keepends=True)[0])
    block = lifecycle.refusals_block(session)
    assert block[0] == "the firewall refused in session abcd1234:"
    assert block[1].startswith("  172.17.0.1 port 5432 tcp: the Docker host")
    assert "claude-docker blocked --session abcd1234" in block[-1]


# --- published ports ------------------------------------------------------------------------------


@pytest.mark.parametrize(("entry", "expected"), [
    (3000, PublishedPort(3000, 3000)),
    ("3000", PublishedPort(3000, 3000)),
    ("8080:80", PublishedPort(8080, 80)),
    ("127.0.0.1:8080:80", PublishedPort(8080, 80)),
    ("0.0.0.0:8443:443", PublishedPort(8443, 443, "0.0.0.0")),
])
def test_port_mappings_publish_on_loopback_unless_an_address_is_given(entry, expected):
    assert parse_port_mapping(entry) == expected


@pytest.mark.parametrize(("entry", "words"), [
    ("0:80", "out of range"), ("8080:70000", "out of range"), ("a:80", "not a number"),
    ("localhost:80:80", "not an IPv4 address"), ("1:2:3:4", "not a port mapping"), ("::1:80:80", "not a port mapping"),
])
def test_bad_port_mappings_are_refused_in_words(entry, words):
    with pytest.raises(ValueProblem, match=words):
        parse_port_mapping(entry)


def write_config(directory, text):
    directory.mkdir(exist_ok=True)
    (directory / "claude-docker.yaml").write_text(text)
    return directory / "claude-docker.yaml"


def test_validate_reports_bad_ports_with_file_line_and_key(tmp_path, cd_home):
    config = write_config(tmp_path / "p", 'version: 1\nports:\n  - 3000\n  - "9000:70000"\n  - "127.0.0.1:3000:3001"\n')
    result = CliRunner().invoke(main, ["validate", "-f", str(config)])
    assert result.exit_code == 1
    assert f"{config}:4: ports[1]: port 70000 in '9000:70000' is out of range 1-65535" in result.output
    assert f"{config}:5: ports[2]: host port 3000 is already published by 3000" in result.output
    assert "Traceback" not in result.output


def test_validate_warns_about_ports_published_beyond_loopback(tmp_path, cd_home):
    config = write_config(tmp_path / "p", 'version: 1\nports: [3000, "0.0.0.0:8080:80"]\n')
    result = CliRunner().invoke(main, ["validate", "-f", str(config)])
    assert result.exit_code == 0, result.output
    assert "0.0.0.0:8080 publishes container port 80 beyond the host's loopback" in result.output
    assert "3000 publishes" not in result.output


def test_the_firewall_script_admits_exactly_the_published_container_ports(tmp_path):
    cfg = Config(
        source_files=(), project_dir=str(tmp_path), workspace=WorkspaceConfig(path=str(tmp_path)),
        ports=(PublishedPort(8080, 80), PublishedPort(3000, 3000), PublishedPort(8081, 80)),
    )
    script = firewall.runtime_artifacts(cfg, Session("p", "s"))["init-firewall.sh"].content.decode()
    assert "readonly PUBLISHED_PORTS=(80 3000 )" in script
    assert 'echo "-A INPUT -p tcp --dport $port -m conntrack --ctstate NEW -j ACCEPT"' in script


@pytest.fixture
def project(tmp_path, monkeypatch, cd_home):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    directory = tmp_path / "proj"
    write_config(directory, "version: 1\nports: [3000]\npersistence: {git_config: false}\n")
    monkeypatch.chdir(directory)
    return directory


def test_dry_run_shows_the_published_ports_of_the_file_and_of_up_p(project):
    result = CliRunner().invoke(main, ["up", "--trust", "--dry-run", "-p", "8080:80", "-p", "0.0.0.0:9000:90"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = lines.index("published ports (TCP; the firewall admits inbound connections to these only):")
    assert lines[start + 1: start + 4] == ["  127.0.0.1:3000 -> 3000", "  127.0.0.1:8080 -> 80", "  0.0.0.0:9000 -> 90"]
    assert any("0.0.0.0:9000 publishes container port 90 beyond the host's loopback" in line for line in lines)


def test_no_published_ports_are_shown_as_none(project):
    (project / "claude-docker.yaml").write_text("version: 1\npersistence: {git_config: false}\n")
    view = planview.preview(load_config().config, engine=None)
    assert "published ports: none (inbound connections are dropped)" in planview.describe(view)


def test_up_p_with_a_task_instead_of_a_port_says_where_the_task_goes(project):
    result = CliRunner().invoke(main, ["up", "-p", "fix the failing test"])
    assert result.exit_code == 2
    assert "'fix the failing test' is not a port mapping" in result.output or "is not a number" in result.output
    assert "claude-docker up -- -p 'task'" in result.output
    taken = CliRunner().invoke(main, ["up", "--trust", "--dry-run", "-p", "3000:80"])
    assert taken.exit_code == 2
    assert "host port 3000 is already published" in taken.output


def test_config_prints_ports_in_a_form_validate_accepts(tmp_path, cd_home):
    config = write_config(tmp_path / "p", 'version: 1\nports: [3000, "8080:80"]\n')
    printed = CliRunner().invoke(main, ["config", "-f", str(config)])
    assert printed.exit_code == 0, printed.output
    assert "ports:\n- 127.0.0.1:3000:3000\n- 127.0.0.1:8080:80\n" in printed.output
    again = write_config(tmp_path / "q", printed.output)
    assert load_config(str(again)).config.ports == (PublishedPort(3000, 3000), PublishedPort(8080, 80))


def test_an_unquoted_mapping_is_the_mapping_not_a_base_60_number(tmp_path, cd_home):
    # YAML 1.1 reads `22:22` as the integer 1342, a valid port: it would publish the wrong one.
    config = write_config(tmp_path / "p", "version: 1\nports:\n  - 2222:22\n  - 22:22\n")
    assert load_config(str(config)).config.ports == (PublishedPort(2222, 22), PublishedPort(22, 22))
