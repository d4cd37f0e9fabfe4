"""Walk away: the task finishes and the message arrives when the `up` that started it is gone,
and a state file a crash cut short does not stop the next unattended `up`.

The real `claude-docker up -- -p` command runs the real Claude Code binary against the scripted
API stand-in; a webhook receiver on loopback records what the host delivers. The host process
is killed (SIGKILL) or hung up on (SIGHUP) in the middle of the task, with and without stdin
forwarded from a pipe whose writer stays open. No further command is run: the `stop` message
must arrive on its own, exactly once, and the container must be cleaned up.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest

from claude_docker import lifecycle
from claude_docker.config.pipeline import load_config
from claude_docker.engine import Engine
from claude_docker.notify.events import pending_names
from claude_docker.paths import project_state_dir
from tests.fakes.anthropic import FakeAnthropic, bash, text
from tests.fakes.projects import bridge_gateway, make_project
from tests.fakes.webhook import WebhookReceiver
from tests.support.notifier import notifier_yaml, project_containers, session_logs
from tests.support.wait import wait_for


@pytest.mark.parametrize("piped", [False, True], ids=["no-stdin", "piped-stdin"])
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGHUP], ids=["SIGKILL", "SIGHUP"])
def test_host_process_gone_mid_task_the_stop_message_still_arrives_once(tmp_path, docker_client, cd_home, signum, piped):
    last = "Walked-away task done " + secrets.token_hex(4)
    piped_text = "context from a pipe " + secrets.token_hex(4)
    with WebhookReceiver() as hook, FakeAnthropic([bash("sleep 6; echo slept > /workspace/slept.txt"), text(last)]) as api:
        config = make_project(tmp_path, notifier_yaml(hook.url))
        project = load_config(str(config)).config.project_name
        env = {
            **os.environ,
            "ANTHROPIC_BASE_URL": api.url_for(bridge_gateway(docker_client)),
            "ANTHROPIC_API_KEY": api.api_key,
        }
        up = subprocess.Popen(
            ["claude-docker", "up", "--trust", "-f", str(config), "--", "-p", "do the long task"],
            stdin=subprocess.PIPE if piped else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        try:
            if piped:
                # The writer stays open: Claude reads stdin until EOF, which only the end of
                # the forwarding host process can bring now.
                up.stdin.write(piped_text.encode() + b"\n")
                up.stdin.flush()
                assert wait_for(lambda: any(c.status == "running" for c in project_containers(docker_client, project)), 180, interval=0.2), up.stderr
                time.sleep(5)  # Claude is up and reading its stdin
            else:
                assert wait_for(lambda: len(api.agent_requests) >= 1, 180, interval=0.2), "the task never started"
            up.send_signal(signum)
            up.wait(timeout=30)
            up_stderr = up.stderr.read().decode(errors="replace")

            def explain() -> str:
                states = [(c.attrs.get("Names"), c.status) for c in project_containers(docker_client, project)]
                return f"received {hook.payloads}\nup stderr: {up_stderr}\ncontainers: {states}\n{session_logs(project)}"

            # No further command: the message arrives on its own (loose bounds: a loaded machine).
            assert hook.wait_for(lambda h: h.events("session_end"), timeout=300), explain()
            assert wait_for(lambda: not project_containers(docker_client, project), 120, interval=0.2), "the container was left behind: " + explain()
        finally:
            if up.stdin:
                up.stdin.close()
            if up.poll() is None:
                up.kill()
                up.wait()
            lifecycle.down(Engine.connect(), project)
        stops = hook.events("stop")
        assert [p["last_message"] for p in stops] == [last], hook.payloads
        [end] = hook.events("session_end")
        assert end["exit_code"] == 0, end
    workspace = Path(config).parent
    assert (workspace / "slept.txt").read_text() == "slept\n"  # the task ran to its end
    if piped:
        first_prompt = str(api.agent_requests[0]["messages"])
        assert piped_text in first_prompt  # what came through the pipe reached Claude
    sessions = project_state_dir(project) / "sessions"
    assert all(pending_names(p / "outbox") == [] for p in sessions.iterdir()), session_logs(project)
