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
from pathlib import Path

from click.testing import CliRunner

from claude_docker import lifecycle
from claude_docker.cli import main
from claude_docker.config.pipeline import load_config
from claude_docker.engine import Engine
from claude_docker.notify.events import pending_names
from tests.fakes.anthropic import FakeAnthropic, bash, text
from tests.fakes.projects import bridge_gateway
from tests.support.notifier import twilio_project

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


def test_claude_finishes_and_exactly_one_sms_carries_its_last_message(tmp_path, engine, twilio, cd_home):
    cfg = load_config(str(twilio_project(tmp_path, twilio))).config
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


def test_twilio_down_during_session_then_notify_flush_delivers(tmp_path, engine, twilio, cd_home):
    config = twilio_project(tmp_path, twilio)
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



def test_claude_sends_progress_with_notify_behind_the_firewall(tmp_path, engine, twilio, cd_home):
    """The firewall allows only the API (on the host's bridge address): no notifier domain, yet
    the `notify` command Claude runs and the final Stop hook both reach the phone."""
    network = "network:\n  firewall: true\n  allow_host_network: true\n"
    cfg = load_config(str(twilio_project(tmp_path, twilio, network=network))).config
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
    cfg = load_config(str(twilio_project(tmp_path, twilio, extra=extra))).config
    with FakeAnthropic([text("checked")]) as api:
        code, output = run_claude(engine, cfg, api, "hello")
    assert code == 0, output
    assert (Path(cfg.workspace.path) / "mcp-env.txt").read_text() == token  # expanded by Claude Code
    rendered = (Path(cfg.workspace.path) / "mcp-seen.json").read_text()  # the file as the container saw it
    assert '"TOKEN": "${DOCS_TOKEN}"' in rendered and token not in rendered
