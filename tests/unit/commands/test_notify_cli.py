"""`claude-docker notify test` and `notify flush` against the Twilio stand-in, through the real config pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from claude_docker.cli import main
from claude_docker.config.pipeline import load_config
from claude_docker.notify.events import pending_names, write_event
from claude_docker.session import Session
from tests.fakes.twilio import FakeTwilio


def write_project(tmp_path: Path, twilio: FakeTwilio, extra: str = "") -> Path:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "claude-docker.yaml").write_text(
        "version: 1\n"
        "notifier:\n"
        "  on: [stop, session_end]\n"
        "  twilio:\n"
        "    account_sid: ${TW_SID}\n"
        "    auth_token: ${TW_TOKEN}\n"
        '    from: "+15005550006"\n'
        '    to: ["+15551234567", "+15557654321"]\n'
        f"    api_base: {twilio.api_base}\n"
        f"{extra}"
    )
    approved = CliRunner().invoke(main, ["trust", "--yes", "-f", str(project / "claude-docker.yaml")])
    assert approved.exit_code == 0, approved.output
    return project / "claude-docker.yaml"


@pytest.fixture
def env(twilio, cd_home, monkeypatch):
    monkeypatch.setenv("TW_SID", twilio.account_sid)
    monkeypatch.setenv("TW_TOKEN", twilio.auth_token)
    return cd_home


def test_notify_test_sends_through_every_backend(tmp_path, twilio, env):
    config = write_project(tmp_path, twilio)
    result = CliRunner().invoke(main, ["notify", "test", "-f", str(config), "-m", "ping"])
    assert result.exit_code == 0, result.output
    assert "ok   twilio SMS to +15551234567: accepted (sid SM" in result.output
    assert "ok   twilio SMS to +15557654321: accepted (sid SM" in result.output
    assert sorted(m["To"] for m in twilio.messages) == ["+15551234567", "+15557654321"]
    assert all(m["Body"].endswith(": test notification\nping") for m in twilio.messages)


def test_notify_test_reports_failures_with_exit_1(tmp_path, twilio, env, monkeypatch):
    config = write_project(tmp_path, twilio)
    monkeypatch.setenv("TW_TOKEN", "wrong-token")
    result = CliRunner().invoke(main, ["notify", "test", "-f", str(config)])
    assert result.exit_code == 1
    assert "FAIL twilio SMS to +15551234567: twilio SMS to +15551234567 failed: HTTP 401, Twilio error 20003" in result.output
    assert "error: 2 notification backend(s) failed" in result.output
    assert "wrong-token" not in result.output
    assert "Traceback" not in result.output


def test_notify_without_notifier_is_a_clear_error(tmp_path, cd_home):
    (tmp_path / "claude-docker.yaml").write_text("version: 1\n")
    result = CliRunner().invoke(main, ["notify", "test", "-f", str(tmp_path / "claude-docker.yaml")])
    assert result.exit_code == 1
    assert "error: no notifier is configured" in result.output


def test_notify_flush_delivers_leftovers_once_the_service_is_back(tmp_path, twilio, env):
    config = write_project(tmp_path, twilio)
    cfg = load_config(str(config)).config
    old = Session(cfg.project_name, "0ldse551")
    hook = {"hook_event_name": "Stop", "last_assistant_message": "PR is ready"}
    write_event(old.outbox_dir, "stop", hook)
    twilio.stop()
    result = CliRunner().invoke(main, ["notify", "flush", "-f", str(config)])
    assert result.exit_code == 1
    assert "session 0ldse551: 0 delivered, 1 still waiting" in result.output
    assert len(pending_names(old.outbox_dir)) == 1
    assert "cannot reach Twilio" in (old.session_dir / "notify.log").read_text()
    twilio.start()
    status = CliRunner().invoke(main, ["notify", "status", "-f", str(config)])
    assert "session 0ldse551 (ended): 1 waiting, 0 unusable" in status.output
    assert "ERROR session=0ldse551" in status.output and "cannot reach Twilio" in status.output
    result = CliRunner().invoke(main, ["notify", "flush", "-f", str(config)])
    assert result.exit_code == 0, result.output
    assert "session 0ldse551: 1 delivered" in result.output
    status = CliRunner().invoke(main, ["notify", "status", "-f", str(config)])
    assert "no events waiting" in status.output and "stop → twilio SMS to +15557654321: accepted" in status.output
    assert pending_names(old.outbox_dir) == []
    assert [m["Body"].splitlines()[-1] for m in twilio.messages] == ["PR is ready", "PR is ready"]
    result = CliRunner().invoke(main, ["notify", "flush", "-f", str(config)])
    assert "nothing to deliver" in result.output and len(twilio.messages) == 2
