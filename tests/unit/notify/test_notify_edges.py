"""Notification rough edges: `notify "text"` is never debounced, a failure is reported once,
session_end carries no reason code, and `notify status` finds the log of a clean session."""

from __future__ import annotations

from click.testing import CliRunner

from claude_docker.cli import main
from claude_docker.config.model import CommandNotifierConfig, NotifierConfig
from claude_docker.config.pipeline import load_config
from claude_docker.notify.delivery import LOG_FILE
from claude_docker.notify.events import read_event, write_event
from claude_docker.notify.message import MessageContext, render_message
from claude_docker.session import Session
from tests.support.notifier import Clock, FlakyBackend, delivery, stop_event


def message_event(outbox, text: str, at_ns: int):
    path = outbox / f"{at_ns}-message-1-ab.txt"
    path.write_text(text)
    return path


def test_notify_text_from_inside_is_sent_inside_the_interval(tmp_path):
    clock = Clock()
    backend = FlakyBackend("b")
    d = delivery(tmp_path, NotifierConfig(on=("stop",), min_interval_seconds=600, commands=(CommandNotifierConfig(("true",)),)), clock)
    d.backends = [backend]
    stop_event(d.outbox, "turn 1", at_ns=int(clock.now * 1e9))
    d.deliver()
    clock.now += 5
    message_event(d.outbox, "tests pass, starting the migration", int(clock.now * 1e9))
    clock.now += 1
    message_event(d.outbox, "migration done", int(clock.now * 1e9))
    outcome = d.deliver()
    assert len(outcome.delivered) == 2 and not outcome.held and not outcome.skipped
    assert [text.splitlines()[-1] for text in backend.sent[1:]] == ["tests pass, starting the migration", "migration done"]


def test_a_failed_delivery_is_reported_once(tmp_path):
    clock = Clock()
    reports: list[str] = []
    backend = FlakyBackend("b", fail=True)
    d = delivery(tmp_path, NotifierConfig(on=("stop",), commands=(CommandNotifierConfig(("true",)),)), clock, reports)
    d.backends = [backend]
    stop_event(d.outbox, "done")
    for _ in range(4):
        d.deliver()
        clock.now += 400  # past every retry delay
    assert reports == ["notify: stop not delivered: b is down"]
    assert (d.session_dir / LOG_FILE).read_text().count("not delivered") == 4  # the log keeps every attempt


def test_session_end_message_has_no_reason_code(tmp_path):
    path = write_event(tmp_path, "session_end", {"hook_event_name": "SessionEnd", "reason": "other"}, now_ns=10**18)
    text = render_message(None, MessageContext("proj", "s1", read_event(tmp_path, path.name), exit_code=0))
    assert text == "claude-docker proj: session ended (exit 0)"


def test_notify_status_shows_the_log_of_a_session_that_delivered_everything(tmp_path, cd_home, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "claude-docker.yaml").write_text("version: 1\nnotifier:\n  commands: [[\"true\"]]\n")
    cfg = load_config().config
    clean = Session(cfg.project_name, "c1ea4000")
    clean.session_dir.mkdir(parents=True)  # its outbox is gone: everything was delivered
    (clean.session_dir / LOG_FILE).write_text("2026-01-01T00:00:00Z INFO session=c1ea4000 event=x stop → command true: exit 0\n")
    result = CliRunner().invoke(main, ["notify", "status"], catch_exceptions=False)
    assert result.output.splitlines() == [
        "no events waiting",
        f"--- {clean.session_dir / LOG_FILE}",
        "2026-01-01T00:00:00Z INFO session=c1ea4000 event=x stop → command true: exit 0",
    ]
