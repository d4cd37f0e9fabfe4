"""session_notifier around a session: background delivery, exit code, leftovers of earlier sessions."""

from __future__ import annotations

import time

import pytest

from claude_docker import notify
from claude_docker.config.model import Config, NotifierConfig, TwilioConfig, WorkspaceConfig
from claude_docker.notify.delivery import is_live
from claude_docker.notify.events import pending_names, write_event
from claude_docker.session import Session
from tests.fakes.twilio import FakeTwilio
from tests.support.wait import wait_for

TO = "+15551234567"
POLL = 0.01  # the delivery loop's interval here (1 s in the product)


@pytest.fixture(autouse=True)
def fast_delivery_loop(monkeypatch):
    monkeypatch.setattr(notify, "POLL_SECONDS", POLL)


def make_config(tmp_path, twilio: FakeTwilio, **notifier) -> Config:
    tw = TwilioConfig(
        to=(TO,), from_number="+15005550006", account_sid=twilio.account_sid, auth_token=twilio.auth_token, api_base=twilio.api_base
    )
    values = dict(on=("stop", "session_end"), min_interval_seconds=0, twilio=tw)
    values.update(notifier)
    return Config(source_files=(), project_dir=str(tmp_path), workspace=WorkspaceConfig(path=str(tmp_path)), notifier=NotifierConfig(**values))


def test_delivers_while_running_and_session_end_carries_exit_code(tmp_path, twilio, cd_home):
    cfg = make_config(tmp_path, twilio)
    session = Session.new(cfg.project_name)
    reports: list[str] = []
    with notify.session_notifier(cfg, session, report=reports.append) as handle:
        assert is_live(session.session_dir)
        write_event(session.outbox_dir, "stop", {"hook_event_name": "Stop", "last_assistant_message": "turn done"})
        assert wait_for(lambda: len(twilio.messages) == 1, 10)  # sent during the session
        write_event(session.outbox_dir, "session_end", {"hook_event_name": "SessionEnd", "reason": "other"})
        time.sleep(10 * POLL)  # ten rounds of the delivery loop
        assert len(twilio.messages) == 1  # session_end waits for the exit code
        handle.set_exit_code(4)
    assert not is_live(session.session_dir)
    bodies = [m["Body"] for m in twilio.messages]
    assert ": Claude finished" in bodies[0] and bodies[0].endswith("\nturn done")
    assert "session ended (exit 4)" in bodies[1]
    assert pending_names(session.outbox_dir) == [] and reports == []
    log = notify.log_file(session).read_text()
    assert "stop → twilio SMS to +15551234567: accepted" in log


def test_next_session_sends_what_an_earlier_one_left(tmp_path, twilio, cd_home):
    cfg = make_config(tmp_path, twilio)
    first = Session.new(cfg.project_name)
    twilio.stop()
    reports: list[str] = []
    with notify.session_notifier(cfg, first, report=reports.append):
        write_event(first.outbox_dir, "stop", {"hook_event_name": "Stop", "last_assistant_message": "left behind"})
    assert len(pending_names(first.outbox_dir)) == 1  # kept, not dropped
    assert any("cannot reach Twilio" in line for line in reports)
    twilio.start()
    second = Session.new(cfg.project_name)
    with notify.session_notifier(cfg, second, report=reports.append):
        assert wait_for(lambda: len(twilio.messages) == 1, 10)
    assert twilio.messages[0]["Body"].endswith("left behind")
    assert pending_names(first.outbox_dir) == []


def test_running_sessions_are_not_flushed_by_others(tmp_path, twilio, cd_home):
    cfg = make_config(tmp_path, twilio, min_interval_seconds=3600)
    running = Session.new(cfg.project_name)
    with notify.session_notifier(cfg, running):
        write_event(running.outbox_dir, "stop", {"hook_event_name": "Stop", "last_assistant_message": "a"})
        assert wait_for(lambda: len(twilio.messages) == 1, 10)
        write_event(running.outbox_dir, "stop", {"hook_event_name": "Stop", "last_assistant_message": "b"})
        time.sleep(10 * POLL)
        [(session_id, outcome)] = notify.flush_project(cfg, cfg.project_name).items()
        assert (session_id, outcome.busy, outcome.delivered) == (running.session_id, True, [])  # "b" stays held
        assert len(twilio.messages) == 1
    assert [m["Body"][-1] for m in twilio.messages] == ["a", "b"]


def test_no_notifier_yields_none(tmp_path, cd_home):
    cfg = Config(source_files=(), project_dir=str(tmp_path), workspace=WorkspaceConfig(path=str(tmp_path)))
    with notify.session_notifier(cfg, Session.new(cfg.project_name)) as handle:
        assert handle is None
