"""The host's disk against a real session: the firewall's DNS log is capped inside the container
and `down` prunes the session dirs of long-ended sessions."""

from __future__ import annotations

import os
import time

import pytest

from claude_docker import contract, lifecycle, paths
from claude_docker.config.pipeline import load_config
from claude_docker.engine import Engine
from claude_docker.features import firewall
from tests.fakes.projects import make_project, run_cli

pytestmark = pytest.mark.docker


@pytest.fixture
def project(tmp_path, cd_home):
    config = make_project(tmp_path, firewall=True)
    yield config
    lifecycle.down(Engine.connect(), load_config(str(config)).config.project_name)


def test_a_flood_of_refused_lookups_does_not_grow_the_dns_log_without_limit(project):
    """5000 refused lookups make ~1.5 MB of dnsmasq log; what stays on the host is capped."""
    script = (
        "for i in $(seq 5000); do getent hosts name$i.flood.invalid >/dev/null; done; "
        f"getent hosts last-one.example.org >/dev/null; sleep {firewall.DNS_LOG_CHECK_SECONDS * 2 + 1}; echo AGENT-DONE"
    )
    result = run_cli("up", "-f", str(project), "--", "--exec", "bash", "-c", script, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "AGENT-DONE" in result.stdout
    project_name = load_config(str(project)).config.project_name
    [log] = (paths.project_state_dir(project_name) / "sessions").glob(f"*/log/{contract.DNS_LOG_NAME}")
    rotated = log.with_name(contract.DNS_LOG_NAME + ".1")
    assert rotated.is_file(), "the log was never cut"
    assert rotated.stat().st_size <= firewall.DNS_LOG_KEEP_BYTES
    assert log.stat().st_size <= firewall.DNS_LOG_MAX_BYTES
    assert log.stat().st_blocks * 512 <= firewall.DNS_LOG_MAX_BYTES + 65536  # not a sparse file either
    shown = run_cli("blocked", "-f", str(project))
    assert shown.returncode == 0, shown.stderr
    assert "last-one.example.org" in shown.stdout


def make_session_dir(sessions, name: str, days_old: float):
    session_dir = sessions / name
    (session_dir / "outbox").mkdir(parents=True)
    (session_dir / "outbox" / "1-stop-1-a.json").write_text("{}")
    stamp = time.time() - days_old * 86400
    for path in (session_dir / "outbox" / "1-stop-1-a.json", session_dir / "outbox", session_dir):
        os.utime(path, (stamp, stamp))
    return session_dir


def test_up_and_down_prune_session_dirs_of_long_ended_sessions(project):
    project_name = load_config(str(project)).config.project_name
    sessions = paths.project_state_dir(project_name) / "sessions"
    make_session_dir(sessions, "0ld0ld01", 8)
    make_session_dir(sessions, "recent00", 6)
    started = run_cli("up", "-f", str(project), "--", "--exec", "true")
    assert started.returncode == 0, started.stderr
    assert "0ld0ld01" not in [p.name for p in sessions.iterdir()]
    assert "recent00" in [p.name for p in sessions.iterdir()]

    make_session_dir(sessions, "0ld0ld02", 30)
    result = run_cli("down", "-f", str(project))
    assert result.returncode == 0, result.stderr
    assert "pruned 1 session(s) that ended more than 7 days ago" in result.stdout
    assert "0ld0ld02" not in [p.name for p in sessions.iterdir()]
    assert "recent00" in [p.name for p in sessions.iterdir()]
