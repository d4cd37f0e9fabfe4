"""Notifications with the real engine and image: hooks → outbox → host → Twilio stand-in.

`docker` tests run the image's own `hook-event`/`notify` scripts as the agent; `e2e` tests run
the real Claude Code binary against the scripted Anthropic stand-in and check that exactly one
SMS carries its last message, that a Twilio outage only delays it (`notify flush`), and that
no notifier secret is visible anywhere inside the container.
"""

from __future__ import annotations

import io
import os
import secrets
import time
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from claude_docker import lifecycle, notify, runplan
from claude_docker.cli import main
from claude_docker.config.pipeline import load_config
from claude_docker.engine import Engine
from claude_docker.imagebuild import ensure_image
from claude_docker.notify.events import pending_names
from claude_docker.session import Session
from tests.conftest import TEST_LABEL, base_image_yaml
from tests.fakes.anthropic import FakeAnthropic, bash, text
from tests.fakes.projects import bridge_gateway
from tests.fakes.twilio import FakeTwilio

AGENT_UID = 1000  # the agent's uid when the tests (as root) start it


@pytest.fixture(scope="module")
def engine(docker_client) -> Engine:
    return Engine.connect()


@pytest.fixture
def twilio(monkeypatch):
    fake = FakeTwilio(auth_token="TWsecret" + secrets.token_hex(12)).start()
    monkeypatch.setenv("TW_SID", fake.account_sid)
    monkeypatch.setenv("TW_TOKEN", fake.auth_token)
    yield fake
    fake.stop()


@pytest.fixture
def hook_secret(monkeypatch) -> str:
    value = "WHsecret" + secrets.token_hex(12)
    monkeypatch.setenv("WH_TOKEN", value)
    return value


def make_project(
    tmp_path: Path, twilio: FakeTwilio, on: str = "[stop]", extra: str = "", network: str = "network:\n  firewall: false\n"
) -> Path:
    project = tmp_path / "notify-project"
    project.mkdir()
    (project / "claude-docker.yaml").write_text(
        base_image_yaml()
        + network
        + "persistence:\n  git_config: false\n"
        + "notifier:\n"
        + f"  on: {on}\n"
        + "  min_interval_seconds: 0\n"
        + "  twilio:\n"
        + "    account_sid: ${TW_SID}\n"
        + "    auth_token: ${TW_TOKEN}\n"
        + '    from: "+15005550006"\n'
        + '    to: ["+15551234567"]\n'
        + f"    api_base: {twilio.api_base}\n"
        + extra
    )
    for item in [project, *project.rglob("*")]:
        os.lchown(item, AGENT_UID, AGENT_UID)
    return project / "claude-docker.yaml"


def wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


# --- the image's scripts, as the agent, through the run plan `up` uses ------------------------------


@pytest.mark.docker
def test_in_container_hooks_reach_the_host_and_no_secret_enters(tmp_path, engine, twilio, hook_secret, cd_home):
    extra = "  webhooks:\n    - url: http://127.0.0.1:9/hook\n      headers: {X-Token: \"${WH_TOKEN}\"}\n"
    config = make_project(tmp_path, twilio, on="[stop, session_end]", extra=extra)
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
            assert wait_for(lambda: len(twilio.messages) == 2), (twilio.requests, reports)
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


# --- the real Claude Code binary ------------------------------------------------------------------------


def run_claude(engine: Engine, cfg, api: FakeAnthropic, prompt: str) -> tuple[int, str]:
    out, err = io.BytesIO(), io.BytesIO()
    # `up` hands this environment to every feature: it is what the session's variables come from.
    environ = {**os.environ, "ANTHROPIC_BASE_URL": api.url_for(bridge_gateway(engine.client)), "ANTHROPIC_API_KEY": api.api_key}
    code = lifecycle.up(
        cfg,
        lifecycle.UpOptions(extra_args=("-p", prompt), headless=True),
        echo=lambda line: None,
        stdout=out,
        stderr=err,
        engine=engine,
        environ=environ,
    )
    return code, (out.getvalue() + err.getvalue()).decode(errors="replace")


@pytest.mark.e2e
def test_claude_finishes_and_exactly_one_sms_carries_its_last_message(tmp_path, engine, twilio, cd_home):
    cfg = load_config(str(make_project(tmp_path, twilio))).config
    last = "All done: wrote out.txt (" + secrets.token_hex(4) + ")"
    with FakeAnthropic([bash("echo hi > out.txt"), text(last)]) as api:
        code, output = run_claude(engine, cfg, api, "write hi into out.txt")
    assert code == 0, output
    assert (Path(cfg.workspace.path) / "out.txt").read_text() == "hi\n"
    assert len(twilio.requests) == 1, twilio.requests
    [message] = twilio.messages
    assert message["To"] == "+15551234567" and message["From"] == "+15005550006"
    assert message["Body"].startswith(f"claude-docker {cfg.project_name}: Claude finished")
    assert message["Body"].endswith("\n" + last)


@pytest.mark.e2e
def test_twilio_down_during_session_then_notify_flush_delivers(tmp_path, engine, twilio, cd_home):
    config = make_project(tmp_path, twilio)
    cfg = load_config(str(config)).config
    twilio.stop()
    last = "Finished while Twilio was away " + secrets.token_hex(4)
    with FakeAnthropic([text(last)]) as api:
        code, output = run_claude(engine, cfg, api, "say something")
    assert code == 0, output
    assert twilio.messages == []
    sessions = cfg_sessions(cfg)
    assert [len(pending_names(s / "outbox")) for s in sessions] == [1]  # kept, not dropped
    assert "cannot reach Twilio" in (sessions[0] / "notify.log").read_text()
    twilio.start()
    assert CliRunner().invoke(main, ["trust", "--yes", "-f", str(config)]).exit_code == 0  # the test wrote it
    result = CliRunner().invoke(main, ["notify", "flush", "-f", str(config)])
    assert result.exit_code == 0, result.output
    [message] = twilio.messages
    assert message["Body"].endswith("\n" + last)
    assert pending_names(sessions[0] / "outbox") == []


def cfg_sessions(cfg) -> list[Path]:
    from claude_docker.paths import project_state_dir

    return sorted(p for p in (project_state_dir(cfg.project_name) / "sessions").iterdir() if p.is_dir())



@pytest.mark.e2e
def test_claude_sends_progress_with_notify_behind_the_firewall(tmp_path, engine, twilio, cd_home):
    """The firewall allows only the API (on the host's bridge address): no notifier domain, yet
    the `notify` command Claude runs and the final Stop hook both reach the phone."""
    network = "network:\n  firewall: true\n  allow_host_network: true\n"
    cfg = load_config(str(make_project(tmp_path, twilio, network=network))).config
    script = [bash("notify 'halfway: tests pass'"), text("Migration finished.")]
    with FakeAnthropic(script) as api:
        code, output = run_claude(engine, cfg, api, "migrate and keep me posted")
    assert code == 0, output
    [result] = api.tool_results()
    assert "notify: queued" in str(result.get("content"))
    bodies = [m["Body"] for m in twilio.messages]
    assert len(bodies) == 2, bodies
    assert bodies[0].endswith("\nhalfway: tests pass") and ": message from Claude" in bodies[0]
    assert bodies[1].endswith("\nMigration finished.") and ": Claude finished" in bodies[1]


# --- up --detach: the watcher outlives the command that started it ---------------------------------------


@pytest.mark.docker
def test_detached_watcher_delivers_until_the_container_ends(tmp_path, engine, twilio, cd_home):
    config = make_project(tmp_path, twilio, on="[stop, session_end]")
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
        assert wait_for(lambda: b"notify.watch" in Path(f"/proc/{pid}/cmdline").read_bytes(), timeout=10), (
            notify.log_file(session).read_text() if notify.log_file(session).exists() else "no notify.log"
        )
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").strip()
        cmdline = b"python " + cmdline.split(b" ", 1)[1]  # the interpreter's path varies
        assert wait_for(lambda: len(twilio.messages) == 2, timeout=60), notify.log_file(session).read_text()
        assert wait_for(lambda: not _alive(pid), timeout=20)  # it exits once the container has ended
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


@pytest.mark.e2e
def test_mcp_server_gets_its_variable_at_run_time_but_the_file_keeps_the_reference(tmp_path, engine, twilio, cd_home, monkeypatch):
    token = "mcp-token-" + secrets.token_hex(6)
    monkeypatch.setenv("DOCS_TOKEN", token)
    extra = (
        "claude:\n"
        "  mcp_servers:\n"
        "    probe:\n"
        "      command: bash\n"
        "      args: [\"-c\", \"cp /opt/claude-docker/runtime/mcp.json /workspace/mcp-seen.json;"
        " printf '%s' \\\"$$TOKEN\\\" > /workspace/mcp-env.txt\"]\n"
        "      env: {TOKEN: \"${DOCS_TOKEN}\"}\n"
    )
    cfg = load_config(str(make_project(tmp_path, twilio, extra=extra))).config
    with FakeAnthropic([text("checked")]) as api:
        code, output = run_claude(engine, cfg, api, "hello")
    assert code == 0, output
    assert (Path(cfg.workspace.path) / "mcp-env.txt").read_text() == token  # expanded by Claude Code
    rendered = (Path(cfg.workspace.path) / "mcp-seen.json").read_text()  # the file as the container saw it
    assert '"TOKEN": "${DOCS_TOKEN}"' in rendered and token not in rendered
