"""Notifications with the real engine and image: hooks → outbox → host → Twilio stand-in.

`docker` tests run the image's own `hook-event`/`notify` scripts as the agent; `e2e` tests run
the real Claude Code binary against the scripted Anthropic stand-in and check that exactly one
SMS carries its last message, that a Twilio outage only delays it (`notify flush`), and that
no notifier secret is visible anywhere inside the container.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import replace
from pathlib import Path

import pytest

from claude_docker import notify, runplan
from claude_docker.config.pipeline import load_config
from claude_docker.engine import Engine
from claude_docker.imagebuild import ensure_image
from claude_docker.notify.events import pending_names
from claude_docker.session import Session
from tests.support.notifier import twilio_project
from tests.support.testbed import TEST_LABEL
from tests.support.wait import wait_for


@pytest.fixture
def hook_secret(monkeypatch) -> str:
    value = "WHsecret" + secrets.token_hex(12)
    monkeypatch.setenv("WH_TOKEN", value)
    return value




# --- the image's scripts, as the agent, through the run plan `up` uses ------------------------------


def test_in_container_hooks_reach_the_host_and_no_secret_enters(tmp_path, engine, twilio, hook_secret, cd_home):
    extra = "  webhooks:\n    - url: http://127.0.0.1:9/hook\n      headers: {X-Token: \"${WH_TOKEN}\"}\n"
    config = twilio_project(tmp_path, twilio, on="[stop, session_end]", extra=extra)
    cfg = load_config(str(config)).config
    image = ensure_image(engine, cfg.image).tag
    session = Session.new(cfg.project_name)
    script = (
        "echo '{\"hook_event_name\":\"Stop\",\"last_assistant_message\":\"Refactor done\"}' | hook-event stop; "
        "notify 'halfway there'; "
        "for _ in $(seq 600); do [ -e /workspace/.release ] && exit 7; sleep 0.2; done; exit 1"
    )
    plan = runplan.plan(cfg, session, image, command=["--exec", "bash", "-c", script], environ={})
    plan = replace(plan, name=f"cd-test-{session.container_name}", labels={**plan.labels, TEST_LABEL: "notify"})
    container = engine.create(plan)
    try:
        reports: list[str] = []
        with notify.session_notifier(cfg, session, report=reports.append) as handle:
            engine.start(container)
            # The webhook target is down on purpose: Twilio still gets both texts meanwhile.
            assert wait_for(lambda: len(twilio.messages) == 2, 20, interval=0.2), (twilio.requests, reports)
            secrets_found = secret_exposure(engine, container, [twilio.auth_token, hook_secret])
            control = secret_exposure(engine, container, [session.project, "halfway there"])
            (Path(cfg.workspace.path) / ".release").touch()
            code = engine.wait(container)
            handle.set_exit_code(code)
    finally:
        engine.remove(container)
    assert secrets_found == []
    # The same checks do see values that are there: the project name (env) and the outbox text.
    assert any(c.startswith("docker inspect") for c in control), control
    assert any(c.startswith("process environment") for c in control), control
    assert any(c.startswith("filesystem") for c in control), control
    assert code == 7
    bodies = [m["Body"] for m in twilio.messages]
    assert any(": Claude finished" in b and b.endswith("\nRefactor done") for b in bodies), bodies
    assert any(": message from Claude" in b and b.endswith("\nhalfway there") for b in bodies), bodies
    assert any("webhook http://127.0.0.1:9" in line for line in reports)
    assert len(pending_names(session.outbox_dir)) == 2  # kept: the webhook never accepted them


def secret_exposure(engine: Engine, container, values: list[str]) -> list[str]:
    """Where inside the running container any of `values` can be seen; [] when nowhere."""
    found = []
    container.reload()
    inspect = repr(container.attrs)
    found += [f"docker inspect shows {v[:8]}…" for v in values if v in inspect]
    # `x[y]z` matches "xyz" but not itself, so the check's own command line never counts.
    patterns = " ".join(f"-e '{v[0]}[{v[1]}]{v[2:]}'" for v in values)
    checks = {
        "process environment": f"cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -E {patterns}",
        "process arguments": f"cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' '\\n' | grep -E {patterns}",
        "filesystem": f"grep -rlsE --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev {patterns} /",
    }
    for where, command in checks.items():
        result = container.exec_run(["bash", "-c", command], user="root")
        if result.exit_code == 0:  # grep found something
            found.append(f"{where}: {result.output[:300]!r}")
        elif result.exit_code != 1:
            found.append(f"{where}: the check itself failed ({result.exit_code}: {result.output[:300]!r})")
    return found


# --- up --detach: the watcher outlives the command that started it ---------------------------------------


def test_detached_watcher_delivers_until_the_container_ends(tmp_path, engine, twilio, cd_home):
    config = twilio_project(tmp_path, twilio, on="[stop, session_end]")
    cfg = load_config(str(config)).config
    image = ensure_image(engine, cfg.image).tag
    session = Session.new(cfg.project_name)
    script = (
        "echo '{\"hook_event_name\":\"Stop\",\"last_assistant_message\":\"detached work done\"}' | hook-event stop; "
        "sleep 2; echo '{\"hook_event_name\":\"SessionEnd\",\"reason\":\"exit\"}' | hook-event session_end; exit 5"
    )
    plan = runplan.plan(cfg, session, image, command=["--exec", "bash", "-c", script], environ={})
    plan = replace(plan, name=f"cd-test-{session.container_name}", labels={**plan.labels, TEST_LABEL: "notify"})
    container = engine.create(plan)
    try:
        engine.start(container)
        pid = notify.start_detached_watcher(cfg, session, plan.name)
        assert pid is not None
        # Read it once the exec is done (in between, /proc shows the parent's or nothing).
        assert wait_for(lambda: b"notify.watch" in Path(f"/proc/{pid}/cmdline").read_bytes(), timeout=10, interval=0.2), (
            notify.log_file(session).read_text() if notify.log_file(session).exists() else "no notify.log"
        )
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").strip()
        cmdline = b"python " + cmdline.split(b" ", 1)[1]  # the interpreter's path varies
        assert wait_for(lambda: len(twilio.messages) == 2, timeout=60, interval=0.2), notify.log_file(session).read_text()
        assert wait_for(lambda: not _alive(pid), timeout=20, interval=0.2)  # it exits once the container has ended
    finally:
        engine.remove(container)
    first, last = (m["Body"] for m in twilio.messages)
    assert first.endswith("\ndetached work done")
    assert "session ended (exit 5)" in last
    assert pending_names(session.outbox_dir) == []
    assert cmdline == b"python -m claude_docker.notify.watch" and twilio.auth_token not in cmdline.decode()


def _alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)  # our child: reap it if it is done
        return finished == 0
    except ChildProcessError:
        return False
