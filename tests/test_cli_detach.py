"""Sessions that run on their own: `up --detach` without a task is an interactive session one
attaches to later; a detached task's output and exit code outlive it; `logs --follow` shows a
headless task's progress while it runs, with nothing the agent wrote acting on the terminal.

The real `claude-docker` command, the real engine and the real Claude Code binary against the
scripted Messages API stand-in; `attach` is driven through a pseudo-terminal.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time

import pytest

from claude_docker import lifecycle
from claude_docker.config.pipeline import load_config
from claude_docker.engine import Engine
from claude_docker.session import LABEL_DETACHED, LABEL_SESSION
from tests.fakes.anthropic import FakeAnthropic, bash, text, tool
from tests.fakes.projects import bridge_gateway, make_project, run_cli

PROMPT_READY = "bypass permissions on"  # Claude's status line under an empty, ready prompt


@pytest.fixture
def project(tmp_path, cd_home):
    config = make_project(tmp_path)
    yield config
    lifecycle.down(Engine.connect(), load_config(str(config)).config.project_name)


def wait_for(predicate, timeout: float, step: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(step)
    return None


def api_env(api: FakeAnthropic, docker_client) -> dict[str, str]:
    return {"ANTHROPIC_BASE_URL": api.url_for(bridge_gateway(docker_client)), "ANTHROPIC_API_KEY": api.api_key}


def session_info(project_name: str):
    [info] = lifecycle.sessions(Engine.connect(), project_name)
    return info


def started_session_id(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stderr.splitlines() if line.startswith("started session "))
    return line.split()[2]


class Terminal:
    """A command on a pseudo-terminal of 45 x 160, with everything it printed kept."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the pty is its controlling terminal
            os.execvpe(argv[0], argv, {**os.environ, **env, "TERM": "xterm-256color"})
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 45, 160, 0, 0))
        self.output = b""
        self.code: int | None = None

    def read_until(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.text):
                return True
            ready, _, _ = select.select([self.fd], [], [], 0.3)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # the child ended and the pty closed
                    chunk = b""
                if not chunk:
                    return predicate(self.text)
                self.output += chunk
        return predicate(self.text)

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    def type(self, keys: str) -> None:
        for char in keys:  # one key at a time, as a person types
            os.write(self.fd, char.encode())
            time.sleep(0.03)

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read_until(lambda _: False, 0.3)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
                return self.code
        raise AssertionError(f"still running after {timeout}s:\n{self.text[-3000:]}")

    def close(self) -> None:
        if self.code is None:
            try:
                os.kill(self.pid, 9)
                os.waitpid(self.pid, 0)
            except OSError:
                pass
        os.close(self.fd)


@pytest.mark.e2e
def test_detach_without_a_task_then_attach_type_a_prompt_see_the_answer_detach_and_end(project, docker_client):
    answer = "scripted-answer-for-the-attached-terminal"
    cfg = load_config(str(project)).config
    with FakeAnthropic([text(answer)]) as api:
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


@pytest.mark.docker
def test_attach_refuses_a_task_without_a_terminal(project):
    started = run_cli("up", "-f", str(project), "--detach", "--", "--exec", "sleep", "60")
    session_id = started_session_id(started)
    refused = run_cli("attach", "-f", str(project), session_id)
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        f"error: session {session_id} runs a task without a terminal: there is nothing to attach to",
        f"hint: follow its output with `claude-docker logs --follow {session_id}`",
    ]


@pytest.mark.docker
def test_a_detached_tasks_output_and_exit_code_outlive_it_until_down(project):
    cfg = load_config(str(project)).config
    started = run_cli("up", "-f", str(project), "--detach", "--", "--exec", "bash", "-c", "echo task-output-marker; exit 3")
    session_id = started_session_id(started)
    assert wait_for(lambda: session_info(cfg.project_name).status == "exited", 120)

    listing = run_cli("ps", "-f", str(project))
    assert listing.stdout.splitlines()[0].split() == ["PROJECT", "SESSION", "STATUS", "AGE", "ENDED", "IMAGE"]
    [row] = [line for line in listing.stdout.splitlines() if session_id in line]
    assert "exited (3)" in row and " ago " in row
    everywhere = run_cli("ps", "--all")
    assert [line for line in everywhere.stdout.splitlines() if session_id in line and "exited (3)" in line]

    shown = run_cli("logs", "-f", str(project), session_id[:4])
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == "task-output-marker\n"
    [summary] = [line for line in shown.stderr.splitlines() if line.startswith(f"session {session_id} ended ")]
    assert "ago, exit code 3; kept until `claude-docker down " in summary and "7 days after its end" in summary

    removed = run_cli("down", "-f", str(project), session_id)
    assert removed.returncode == 0 and "removed " in removed.stdout
    assert lifecycle.sessions(Engine.connect(), cfg.project_name) == []


@pytest.mark.e2e
def test_a_detached_claude_tasks_answer_and_exit_code_after_it_ended(project, docker_client):
    answer = "The detached task is finished."
    cfg = load_config(str(project)).config
    with FakeAnthropic([bash("echo from-the-tool"), text(answer)]) as api:
        started = run_cli("up", "-f", str(project), "--detach", "--", "-p", "do it", env=api_env(api, docker_client), timeout=300)
        session_id = started_session_id(started)
        assert f"claude-docker logs --follow {session_id}" in started.stderr
        assert wait_for(lambda: session_info(cfg.project_name).status == "exited", 240), run_cli("logs", "-f", str(project)).stdout
    info = session_info(cfg.project_name)
    assert info.exit_code == 0 and info.finished
    shown = run_cli("logs", "-f", str(project), session_id)
    assert shown.stdout.strip() == answer  # plain text, as `claude -p` prints it: no progress records in it
    assert f"session {session_id} ended " in shown.stderr and "exit code 0" in shown.stderr
    [row] = [line for line in run_cli("ps", "--all").stdout.splitlines() if session_id in line]
    assert "exited (0)" in row


def follow(project, session_id: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["claude-docker", "logs", "-f", str(project), "--follow", session_id],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


@pytest.mark.e2e
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


@pytest.mark.e2e
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


def test_the_detached_label_marks_only_detached_sessions_without_keep(tmp_path, cd_home):
    from claude_docker import runplan

    config = make_project(tmp_path, owner=None)
    cfg = load_config(str(config)).config
    from claude_docker.session import Session

    labels = {
        (detach, keep): runplan.plan(cfg, Session.new(cfg.project_name), "img:tag", detach=detach, keep=keep).labels
        for detach in (False, True) for keep in (False, True)
    }
    assert [key for key, found in labels.items() if found.get(LABEL_DETACHED) == "1"] == [(True, False)]
    assert all(found[LABEL_SESSION] for found in labels.values())
    assert not runplan.plan(cfg, Session.new(cfg.project_name), "img:tag", detach=True).auto_remove
