"""Walk away, with a real engine: one owner of a session's outbox at a time (the foreground
notifier, then its standby watcher), Ctrl-C and detaching, and a state file a crash cut short
that does not stop the next unattended `up`. tests/e2e/test_walkaway.py walks away from the real
Claude Code binary; tests/unit/notify/test_watch.py holds the watcher to the fake engine.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time

from claude_docker import lifecycle
from claude_docker.config.pipeline import load_config
from claude_docker.engine import Engine
from claude_docker.notify.events import pending_names
from claude_docker.paths import project_state_dir
from tests.fakes.projects import make_project, run_cli
from tests.fakes.webhook import WebhookReceiver
from tests.support.notifier import hook_event, notifier_yaml, project_containers, session_logs
from tests.support.testbed import TEST_BASE_IMAGE, TEST_LABEL
from tests.support.wait import wait_for


def test_truncated_claude_state_before_up_the_session_runs_and_the_damaged_copy_is_kept(tmp_path, cd_home):
    config = make_project(tmp_path)
    project = load_config(str(config)).config.project_name
    config_dir = project_state_dir(project) / "claude"
    config_dir.mkdir(parents=True)
    cut = b'{\n  "userID": "u-1",\n  "hasCompletedOnb'  # what a crash mid-write leaves
    (config_dir / ".claude.json").write_bytes(cut)
    result = run_cli("up", "-f", str(config), "--", "--exec", "bash", "-c", 'cat "$CLAUDE_CONFIG_DIR/.claude.json"')
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout)  # the session saw a whole, seeded state file
    assert state["hasCompletedOnboarding"] is True and state["projects"]["/workspace"]["hasTrustDialogAccepted"] is True
    [kept] = list(config_dir.glob(".claude.json.corrupt-*"))
    assert kept.read_bytes() == cut
    warnings = [line for line in result.stderr.splitlines() if ".claude.json" in line]
    assert len(warnings) == 1 and str(kept) in warnings[0] and warnings[0].startswith("warning: "), result.stderr


# --- one owner of the outbox at a time: the foreground notifier, then its standby watcher ----------

FOREGROUND = """
import sys, time
from claude_docker import notify
from claude_docker.config.model import Config, NotifierConfig, WebhookConfig, WorkspaceConfig
from claude_docker.session import Session

workspace, url, session_id, container, finish = sys.argv[1:6]
notifier = NotifierConfig(on=("stop", "session_end"), min_interval_seconds=0, webhooks=(WebhookConfig(url),))
cfg = Config(source_files=(), project_dir=workspace, workspace=WorkspaceConfig(path=workspace), notifier=notifier)
session = Session(cfg.project_name, session_id)
with notify.session_notifier(cfg, session, standby_for=container, remove_when_done=True) as handle:
    print("ready", flush=True)
    if finish == "finish":
        sys.stdin.readline()
        handle.set_exit_code(3)
    else:
        time.sleep(600)
print("closed", flush=True)
"""


def start_foreground(tmp_path, hook: WebhookReceiver, container: str, finish: bool):
    from claude_docker.config.model import Config, WorkspaceConfig
    from claude_docker.session import Session

    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    project = Config(source_files=(), project_dir=str(workspace), workspace=WorkspaceConfig(path=str(workspace))).project_name
    session = Session.new(project)
    process = subprocess.Popen(
        [sys.executable, "-c", FOREGROUND, str(workspace), hook.url, session.session_id, container, "finish" if finish else "die"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    assert process.stdout.readline() == b"ready\n"
    return process, session


def test_killed_foreground_notifier_hands_the_outbox_to_its_watcher_nothing_twice(tmp_path, docker_client, cd_home):
    container = docker_client.containers.run(
        TEST_BASE_IMAGE, ["sleep", "300"], detach=True, labels={TEST_LABEL: "walkaway"}, name=f"cd-test-walkaway-{secrets.token_hex(4)}"
    )
    try:
        with WebhookReceiver() as hook:
            foreground, session = start_foreground(tmp_path, hook, container.name, finish=False)
            try:
                hook_event(session, "stop", "first turn")
                assert hook.wait_for(lambda h: h.events("stop"), 30), session_logs(session.project)
                # ... and recorded as sent: killed between sending and recording, the foreground
                # leaves the event for the watcher to send again (at least once, by design)
                assert wait_for(lambda: pending_names(session.outbox_dir) == [], 30), session_logs(session.project)
                foreground.send_signal(signal.SIGKILL)
                foreground.wait()
                hook_event(session, "stop", "second turn")  # the foreground is gone: the watcher sends it
                assert hook.wait_for(lambda h: len(h.events("stop")) == 2, 30), session_logs(session.project)
                hook_event(session, "session_end", "")
                time.sleep(2)
                assert hook.events("session_end") == []  # held for the final flush, as always
                container.kill()  # the session ends: final flush, then the container is removed
                assert hook.wait_for(lambda h: h.events("session_end"), 30), session_logs(session.project)
                assert wait_for(lambda: not docker_client.containers.list(all=True, filters={"name": container.name}), 30, interval=0.2)
            finally:
                if foreground.poll() is None:
                    foreground.kill()
        assert [p["last_message"] for p in hook.events("stop")] == ["first turn", "second turn"]
        assert [p["exit_code"] for p in hook.events("session_end")] == [137]
        assert "its watcher delivers from here on" in session_logs(session.project)
    finally:
        with contextlib.suppress(Exception):
            container.remove(force=True)


def test_watcher_stands_down_when_the_foreground_finishes_the_session(tmp_path, docker_client, cd_home):
    container = docker_client.containers.run(
        TEST_BASE_IMAGE, ["sleep", "300"], detach=True, labels={TEST_LABEL: "walkaway"}, name=f"cd-test-walkaway-{secrets.token_hex(4)}"
    )
    try:
        with WebhookReceiver() as hook:
            foreground, session = start_foreground(tmp_path, hook, container.name, finish=True)
            hook_event(session, "stop", "only turn")
            hook_event(session, "session_end", "")
            foreground.stdin.write(b"\n")
            foreground.stdin.flush()
            assert foreground.stdout.readline() == b"closed\n"
            assert foreground.wait(timeout=30) == 0
            time.sleep(3)  # time enough for a watcher that wrongly took over to send again
            container.reload()
            assert container.status == "running"  # it did not wait for the container: it stood down
        assert [p["last_message"] for p in hook.events("stop")] == ["only turn"]
        assert [p["exit_code"] for p in hook.events("session_end")] == [3]
        assert "delivers from here on" not in session_logs(session.project)
    finally:
        container.remove(force=True)


def test_ctrl_c_still_stops_the_session_and_the_watcher_stands_down(tmp_path, docker_client, cd_home):
    with WebhookReceiver() as hook:
        config = make_project(tmp_path, notifier_yaml(hook.url))
        project = load_config(str(config)).config.project_name
        stop = "echo '{\"hook_event_name\":\"Stop\",\"last_assistant_message\":\"first turn\"}' | hook-event stop"
        up = subprocess.Popen(
            ["claude-docker", "up", "--trust", "-f", str(config), "--", "--exec", "bash", "-c", f"{stop}; echo started; sleep 300"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        try:
            assert up.stdout.readline().strip() == b"started"
            assert hook.wait_for(lambda h: h.events("stop"), 30), session_logs(project)
            up.send_signal(signal.SIGINT)
            assert up.wait(timeout=60) == 130
        finally:
            if up.poll() is None:
                up.kill()
                up.wait()
            lifecycle.down(Engine.connect(), project)
        assert not project_containers(docker_client, project)  # stopped and removed by `up` itself
        time.sleep(3)  # time enough for a watcher that wrongly took over to send again
    assert [p["last_message"] for p in hook.events("stop")] == ["first turn"]
    assert "delivers from here on" not in session_logs(project)


def test_detaching_from_an_interactive_session_hands_delivery_to_the_watcher(tmp_path, docker_client, cd_home):
    import pty
    import select

    with WebhookReceiver() as hook:
        config = make_project(tmp_path, notifier_yaml(hook.url))
        project = load_config(str(config)).config.project_name
        events = (
            "echo '{\"hook_event_name\":\"Stop\",\"last_assistant_message\":\"after the detach\"}' | hook-event stop; "
            "echo '{\"hook_event_name\":\"SessionEnd\",\"reason\":\"other\"}' | hook-event session_end"
        )
        script = f"echo ready-to-detach; while [ ! -e /workspace/.go ]; do sleep 0.2; done; {events}; exit 4"
        main_fd, child_fd = pty.openpty()
        up = subprocess.Popen(
            ["claude-docker", "up", "--trust", "-f", str(config), "--", "--exec", "bash", "-c", script],
            stdin=child_fd, stdout=child_fd, stderr=child_fd, close_fds=True,
        )
        os.close(child_fd)
        output, detached = b"", False
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and up.poll() is None:
                ready, _, _ = select.select([main_fd], [], [], 0.5)
                if ready:
                    try:
                        output += os.read(main_fd, 4096)
                    except OSError:
                        break
                if not detached and b"ready-to-detach" in output:
                    os.write(main_fd, b"\x10\x11")  # Ctrl-P Ctrl-Q
                    detached = True
            assert up.wait(timeout=60) == 0, output
            assert any(c.status == "running" for c in project_containers(docker_client, project)), output
            (config.parent / ".go").touch()
            assert hook.wait_for(lambda h: h.events("session_end"), 60), (hook.payloads, session_logs(project))
            assert wait_for(lambda: not project_containers(docker_client, project), 60, interval=0.2), "the container was left behind"
        finally:
            os.close(main_fd)
            if up.poll() is None:
                up.kill()
                up.wait()
            lifecycle.down(Engine.connect(), project)
    assert [p["last_message"] for p in hook.events("stop")] == ["after the detach"]
    assert [p["exit_code"] for p in hook.events("session_end")] == [4]
