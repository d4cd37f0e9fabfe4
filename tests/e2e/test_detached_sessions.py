"""Sessions that run on their own, with the real Claude Code binary against the scripted Messages
API stand-in: `up --detach` without a task is an interactive session one attaches to (through a
pseudo-terminal) and detaches from; a detached task's answer and exit code outlive it; `logs
--follow` shows a headless task's progress while it runs, and nothing the agent wrote into that
progress acts on the terminal."""

from __future__ import annotations

import subprocess
import time

import pytest

from claude_docker import lifecycle
from claude_docker.config.pipeline import load_config
from claude_docker.contract import LABEL_DETACHED
from claude_docker.engine import Engine
from tests.fakes.anthropic import FakeAnthropic, bash, text, tool
from tests.fakes.projects import bridge_gateway, make_project, run_cli
from tests.fakes.webhook import WebhookReceiver
from tests.support.notifier import notifier_yaml, session_logs
from tests.support.terminal import Terminal
from tests.support.wait import wait_for

PROMPT_READY = "bypass permissions on"  # Claude's status line under an empty, ready prompt


@pytest.fixture
def project(tmp_path, cd_home):
    config = make_project(tmp_path)
    yield config
    lifecycle.down(Engine.connect(), load_config(str(config)).config.project_name)


def api_env(api: FakeAnthropic, docker_client) -> dict[str, str]:
    return {"ANTHROPIC_BASE_URL": api.url_for(bridge_gateway(docker_client)), "ANTHROPIC_API_KEY": api.api_key}


def session_info(project_name: str):
    [info] = lifecycle.sessions(Engine.connect(), project_name)
    return info


def started_session_id(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stderr.splitlines() if line.startswith("started session "))
    return line.split()[2]


def test_detach_without_a_task_then_attach_type_a_prompt_see_the_answer_detach_and_end(tmp_path, cd_home, docker_client):
    """With a notifier: the watcher `up --detach` left delivers the turn's `stop` and the
    `session_end` once each, whoever is attached (attaching starts no second notifier)."""
    answer = "scripted-answer-for-the-attached-terminal"
    with WebhookReceiver() as hook, FakeAnthropic([text(answer)]) as api:
        project = make_project(tmp_path, notifier_yaml(hook.url))
        cfg = load_config(str(project)).config
        try:
            attach_and_detach(project, cfg, api, answer, docker_client)
            assert hook.wait_for(lambda h: h.events("session_end"), 60), (hook.payloads, session_logs(cfg.project_name))
            time.sleep(3)  # time enough for a second notifier, had attaching started one, to send again
        finally:
            lifecycle.down(Engine.connect(), cfg.project_name)
    assert [p["last_message"] for p in hook.events("stop")] == [answer], hook.payloads
    assert [p["exit_code"] for p in hook.events("session_end")] == [0], hook.payloads


def attach_and_detach(project, cfg, api: FakeAnthropic, answer: str, docker_client) -> None:
    env = api_env(api, docker_client)
    started = run_cli("up", "-f", str(project), "--detach", env=env, timeout=300)
    session_id = started_session_id(started)
    assert f"claude-docker attach {session_id}" in started.stderr
    info = session_info(cfg.project_name)
    assert info.tty and info.status == "running" and info.labels[LABEL_DETACHED] == "1"
    # Claude Code waits at its prompt in a terminal nobody is attached to; attaching brings
    # another terminal size, and Claude Code draws its screen anew.
    terminal = Terminal(["claude-docker", "attach", "-f", str(project), session_id[:5]], env)
    try:
        assert terminal.read_until(lambda screen: PROMPT_READY in screen, 240), terminal.text[-3000:]
        time.sleep(1)
        terminal.type("say hello")
        time.sleep(0.5)
        terminal.type("\r")
        assert terminal.read_until(lambda screen: answer in screen, 90), terminal.text[-3000:]
        terminal.type("\x10\x11")  # Ctrl-P Ctrl-Q
        assert terminal.wait(60) == 0, terminal.text[-3000:]
        assert f"detached; session {session_id} keeps running" in terminal.text
    finally:
        terminal.close()
    assert session_info(cfg.project_name).status == "running"  # detaching ended nothing

    again = Terminal(["claude-docker", "attach", "-f", str(project)], env)  # the only running session
    try:
        time.sleep(3)
        again.type("/exit")
        time.sleep(0.5)
        again.type("\r")
        code = again.wait(90)
    finally:
        again.close()
    assert code == 0, again.text[-3000:]
    assert "resume this conversation with: claude-docker up -- --resume " in again.text
    assert f"session {session_id} ended" in again.text and "exit code 0" in again.text
    assert [r for r in api.agent_requests if "say hello" in str(r["messages"])]
    ended = session_info(cfg.project_name)  # kept after its end, for `ps` and `logs`
    assert (ended.status, ended.exit_code) == ("exited", 0)


def test_a_detached_claude_tasks_answer_and_exit_code_after_it_ended(project, docker_client):
    answer = "The detached task is finished."
    cfg = load_config(str(project)).config
    with FakeAnthropic([bash("echo from-the-tool"), text(answer)]) as api:
        started = run_cli("up", "-f", str(project), "--detach", "--", "-p", "do it", env=api_env(api, docker_client), timeout=300)
        session_id = started_session_id(started)
        assert f"claude-docker logs --follow {session_id}" in started.stderr
        assert wait_for(lambda: session_info(cfg.project_name).status == "exited", 240, interval=0.5), run_cli("logs", "-f", str(project)).stdout
    info = session_info(cfg.project_name)
    assert info.exit_code == 0 and info.finished
    shown = run_cli("logs", "-f", str(project), session_id)
    assert shown.stdout.strip() == answer  # plain text, as `claude -p` prints it: no progress records in it
    assert f"session {session_id} ended " in shown.stderr and "exit code 0" in shown.stderr
    everywhere = run_cli("ps", "--all")
    assert everywhere.returncode == 0, everywhere.stderr
    [row] = [line for line in everywhere.stdout.splitlines() if session_id in line]
    assert "exited (0)" in row


def follow(project, session_id: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["claude-docker", "logs", "-f", str(project), "--follow", session_id],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def test_logs_follow_shows_the_tool_the_task_runs_before_the_task_ends(project, docker_client):
    cfg = load_config(str(project)).config
    command = "echo step-one-marker; sleep 12"
    with FakeAnthropic([bash(command), text("all steps done")]) as api:
        started = run_cli("up", "-f", str(project), "--detach", "--", "-p", "run the steps", env=api_env(api, docker_client), timeout=300)
        session_id = started_session_id(started)
        following = follow(project, session_id)
        try:
            progress_line = following.stderr.readline().decode()
            still_running = session_info(cfg.project_name).status == "running"
            output_so_far = api.tool_results()  # the tool has not returned yet: sleep 12
            stdout, stderr = following.communicate(timeout=240)
        finally:
            if following.poll() is None:
                following.kill()
                following.wait()
    assert progress_line.rstrip("\n").endswith(f"] Bash: {command}"), progress_line
    assert still_running and output_so_far == []
    assert stdout.decode().strip() == "all steps done"  # stdout is the output alone
    rest = stderr.decode().splitlines()
    assert [line for line in rest if line.endswith("] Claude: all steps done")], rest
    assert rest[-1].startswith(f"session {session_id} ended ") and "exit code 0" in rest[-1]


def test_escape_sequences_the_agent_writes_into_progress_never_reach_the_terminal(project, docker_client):
    """From the agent's side: a tool call whose input carries escape sequences (they reach the
    hook's record JSON-escaped; Claude Code refuses them in a Bash command, not in a file
    name), and raw bytes written straight into the progress file it can write: a title
    change (OSC), a clipboard write, a screen clear, a colour, a bell, C1 and bidi controls."""
    escapes = "\x1b]0;pwned-title\x07\x1b[2J\x1b[31m"
    planted = (
        "printf '1 {\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"\\033[31mPlanted\\033]0;t\\007\\302\\233\",\"tool_input\":{}}\\n"
        "\\033]52;c;cHduZWQ=\\007\\033[2J raw line\\n' >> /run/claude-docker/progress/progress.jsonl; sleep 4"
    )
    with FakeAnthropic([tool("Read", file_path=f"/workspace/{escapes}visible-part\u202e.txt"), bash(planted), text("done")]) as api:
        started = run_cli("up", "-f", str(project), "--detach", "--", "-p", "go", env=api_env(api, docker_client), timeout=300)
        session_id = started_session_id(started)
        following = follow(project, session_id)
        try:
            _, stderr = following.communicate(timeout=240)
        finally:
            if following.poll() is None:
                following.kill()
                following.wait()
    shown = stderr.decode()
    assert "] Read: /workspace/visible-part.txt" in shown, shown  # the record is shown, cleaned
    assert "] Planted" in shown, shown
    for control in (b"\x1b", b"\x07", b"\xc2\x9b", "\u202e".encode()):
        assert control not in stderr, (control, shown)
    assert not [line for line in shown.splitlines() if "raw line" in line and "printf" not in line]  # no record: not shown
