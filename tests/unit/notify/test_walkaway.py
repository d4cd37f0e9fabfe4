"""Walk away: the task finishes and the message arrives when the `up` that started it is gone,
and a state file a crash cut short does not stop the next unattended `up`.

The real `claude-docker up -- -p` command runs the real Claude Code binary against the scripted
API stand-in; a webhook receiver on loopback records what the host delivers. The host process
is killed (SIGKILL) or hung up on (SIGHUP) in the middle of the task, with and without stdin
forwarded from a pipe whose writer stays open. No further command is run: the `stop` message
must arrive on its own, exactly once, and the container must be cleaned up.
"""

from __future__ import annotations

import threading
import time

from tests.fakes.webhook import WebhookReceiver
from tests.support.notifier import hook_event

# --- the engine going away while a watcher waits ---------------------------------------------------


def test_watcher_asks_a_vanished_engine_again_and_delivers_meanwhile(tmp_path, cd_home, monkeypatch):
    """The engine stops answering (restart, upgrade): events keep being delivered, and once it
    answers again the watcher learns the container's exit code instead of giving up."""
    from claude_docker import engine as engine_module
    from claude_docker.config.model import NotifierConfig, WebhookConfig, to_plain
    from claude_docker.errors import EngineError
    from claude_docker.notify import watch
    from claude_docker.session import Session

    monkeypatch.setattr(watch, "ENGINE_RETRY_SECONDS", 0.2)
    engine_back = threading.Event()

    class FakeEngine:
        def get(self, name):
            return name

        def wait(self, container):
            return 9

    def connect():
        if not engine_back.is_set():
            raise EngineError("cannot reach the Docker engine (test)", "")
        return FakeEngine()

    monkeypatch.setattr(engine_module.Engine, "connect", staticmethod(connect))
    session = Session.new("walkaway-engine")
    with WebhookReceiver() as hook:
        notifier = NotifierConfig(on=("stop", "session_end"), min_interval_seconds=0, webhooks=(WebhookConfig(hook.url),))
        handoff = {
            "notifier": to_plain(notifier), "project": session.project, "session_id": session.session_id,
            "session_dir": str(session.session_dir), "container_name": "gone-for-now", "started_at": time.time(),
        }
        result: list[int] = []
        runner = threading.Thread(target=lambda: result.append(watch.watch(handoff)), daemon=True)
        runner.start()
        hook_event(session, "stop", "written while the engine was away")
        assert hook.wait_for(lambda h: h.events("stop"), 20)  # delivery needs no engine
        hook_event(session, "session_end", "")
        time.sleep(1.5)
        assert runner.is_alive() and hook.events("session_end") == []  # it did not give up
        engine_back.set()
        runner.join(timeout=20)
        assert result == [0]
    assert [p["exit_code"] for p in hook.events("session_end")] == [9]
    assert len(hook.events("stop")) == 1
    log = (session.session_dir / "notify.log").read_text()
    assert "watcher lost the engine" in log and "watcher reached the engine again" in log
