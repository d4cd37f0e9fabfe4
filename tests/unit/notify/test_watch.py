"""The detached watcher (claude_docker/notify/watch.py) against the fake engine: it stands by
while the foreground `up` owns the outbox, takes over when that process dies, stands down when it
finished the session, and outlasts an engine that stops answering.

The foreground is a real process holding the outbox's live lock (the kernel frees it however the
process ends); the watcher runs in this process, so that the fake engine is the one it asks.
tests/engine/test_walkaway.py holds the same hand-over to a real engine and a real `up`.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest

from claude_docker.config.model import NotifierConfig, WebhookConfig, to_plain
from claude_docker.engine import Engine
from claude_docker.errors import EngineError
from claude_docker.notify import watch
from claude_docker.notify.events import pending_names
from claude_docker.runspec import ContainerPlan
from claude_docker.session import Session
from tests.fakes.engine import FakeEngine, FakeImage, Run
from tests.fakes.webhook import WebhookReceiver
from tests.support.notifier import hook_event
from tests.support.wait import wait_for

IMAGE = "claude-docker:fake"

# A foreground `up`'s notifier, without its container: it owns the outbox until it ends.
FOREGROUND = """
import json, sys
from claude_docker import notify
from claude_docker.config.model import Config, NotifierConfig, WorkspaceConfig, from_plain
from claude_docker.session import Session

notify.POLL_SECONDS = 0.02  # as the watcher's, below
workspace, notifier, project, session_id, finish = sys.argv[1:6]
cfg = Config(source_files=(), project_dir=workspace, workspace=WorkspaceConfig(path=workspace),
             notifier=from_plain(NotifierConfig, json.loads(notifier)))
with notify.session_notifier(cfg, Session(project, session_id)) as handle:
    print("ready", flush=True)
    sys.stdin.readline()  # finish: the session ended here; die: killed while waiting
    handle.set_exit_code(3)
"""


@pytest.fixture
def fast_watcher(monkeypatch):
    monkeypatch.setattr(watch, "POLL_SECONDS", 0.02)
    monkeypatch.setattr(watch, "ENGINE_RETRY_SECONDS", 0.02)


@pytest.fixture
def hook():
    with WebhookReceiver() as receiver:
        yield receiver


def notifier_for(hook: WebhookReceiver) -> NotifierConfig:
    return NotifierConfig(on=("stop", "session_end"), min_interval_seconds=0, webhooks=(WebhookConfig(hook.url),))


def running_container(engine: FakeEngine, name: str) -> None:
    plan = ContainerPlan(name=name, image=IMAGE, command=[], env={}, labels={}, mounts=[], cap_add=[], working_dir="/")
    engine.start(engine.create(plan))


def handoff(session: Session, hook: WebhookReceiver, container: str, **extra: object) -> dict:
    return {
        "notifier": to_plain(notifier_for(hook)), "project": session.project, "session_id": session.session_id,
        "session_dir": str(session.session_dir), "container_name": container, "started_at": time.time(), **extra,
    }


def start_foreground(tmp_path, session: Session, hook: WebhookReceiver) -> subprocess.Popen:
    import json

    process = subprocess.Popen(
        [sys.executable, "-c", FOREGROUND, str(tmp_path), json.dumps(to_plain(notifier_for(hook))), session.project, session.session_id, "x"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stdout.readline() == b"ready\n"
    return process


def start_watcher(ticket: dict) -> tuple[threading.Thread, list[int]]:
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(watch.watch(ticket)), daemon=True)
    runner.start()
    return runner, result


def test_the_watcher_takes_over_when_the_foreground_dies_and_sends_nothing_twice(tmp_path, cd_home, monkeypatch, fast_watcher, hook):
    engine = FakeEngine({IMAGE: FakeImage()}, behaviour=lambda plan: Run(keeps_running=True))
    monkeypatch.setattr(Engine, "connect", staticmethod(lambda: engine))
    running_container(engine, "the-session")
    session = Session.new("walkaway")
    foreground = start_foreground(tmp_path, session, hook)
    try:
        runner, result = start_watcher(handoff(session, hook, "the-session", standby=True, remove_when_done=True))
        hook_event(session, "stop", "first turn")
        assert hook.wait_for(lambda h: h.events("stop"), 10)  # sent by the foreground ...
        assert wait_for(lambda: pending_names(session.outbox_dir) == [], 10)  # ... and recorded as sent
        assert not engine.called("get")  # the watcher only stands by
        foreground.send_signal(signal.SIGKILL)
        foreground.wait()
        hook_event(session, "stop", "second turn")  # the foreground is gone: the watcher sends it
        assert hook.wait_for(lambda h: len(h.events("stop")) == 2, 10), hook.payloads
        hook_event(session, "session_end", "")
        assert not hook.wait_for(lambda h: h.events("session_end"), 0.15)  # held for the final flush
        engine.finish("the-session", 5)
        runner.join(timeout=10)
    finally:
        foreground.kill()
    assert result == [0]
    assert [p["last_message"] for p in hook.events("stop")] == ["first turn", "second turn"]
    assert [p["exit_code"] for p in hook.events("session_end")] == [5]
    assert engine.called("remove") == ["the-session"] and engine.containers == {}  # as the foreground would have


def test_the_watcher_stands_down_when_the_foreground_finishes_the_session(tmp_path, cd_home, monkeypatch, fast_watcher, hook):
    engine = FakeEngine({IMAGE: FakeImage()}, behaviour=lambda plan: Run(keeps_running=True))
    monkeypatch.setattr(Engine, "connect", staticmethod(lambda: engine))
    running_container(engine, "the-session")
    session = Session.new("walkaway")
    foreground = start_foreground(tmp_path, session, hook)
    runner, result = start_watcher(handoff(session, hook, "the-session", standby=True, remove_when_done=True))
    hook_event(session, "session_end", "")
    foreground.communicate(b"finish\n", timeout=20)
    runner.join(timeout=10)
    assert result == [0] and foreground.returncode == 0
    assert [p["exit_code"] for p in hook.events("session_end")] == [3]  # once, from the foreground
    assert not engine.called("get") and not engine.called("remove")  # the watcher did nothing


def test_the_watcher_asks_a_vanished_engine_again_and_delivers_meanwhile(cd_home, monkeypatch, fast_watcher, hook):
    """The engine stops answering (restart, upgrade): events keep being delivered, and once it
    answers again the watcher learns the container's exit code instead of giving up."""
    engine = FakeEngine({IMAGE: FakeImage()}, behaviour=lambda plan: Run(9))
    running_container(engine, "gone-for-now")
    engine_back = threading.Event()
    asked: list[float] = []

    def connect() -> Engine:
        asked.append(time.monotonic())
        if not engine_back.is_set():
            raise EngineError("cannot reach the Docker engine (test)", "")
        return engine

    monkeypatch.setattr(Engine, "connect", staticmethod(connect))
    session = Session.new("walkaway-engine")
    runner, result = start_watcher(handoff(session, hook, "gone-for-now"))
    hook_event(session, "stop", "written while the engine was away")
    assert hook.wait_for(lambda h: h.events("stop"), 10)  # delivery needs no engine
    hook_event(session, "session_end", "")
    assert wait_for(lambda: len(asked) >= 5, 5)  # asked again and again ...
    assert runner.is_alive() and hook.events("session_end") == []  # ... without giving up
    engine_back.set()
    runner.join(timeout=10)
    assert result == [0]
    assert [p["exit_code"] for p in hook.events("session_end")] == [9]
    assert len(hook.events("stop")) == 1
    log = (session.session_dir / "notify.log").read_text()
    assert "watcher lost the engine" in log and "watcher reached the engine again" in log
