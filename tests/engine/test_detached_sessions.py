"""Detached sessions on the real engine: `attach` refuses a task without a terminal; a detached
task's output and exit code outlive it (`ps`, `ps --all`, `logs`) until `down`."""

from __future__ import annotations

import subprocess

import pytest

from claude_docker import lifecycle
from claude_docker.config.pipeline import load_config
from claude_docker.engine import Engine
from tests.fakes.projects import make_project, run_cli
from tests.support.wait import wait_for


@pytest.fixture
def project(tmp_path, cd_home):
    config = make_project(tmp_path)
    yield config
    lifecycle.down(Engine.connect(), load_config(str(config)).config.project_name)


def session_info(project_name: str):
    [info] = lifecycle.sessions(Engine.connect(), project_name)
    return info


def started_session_id(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stderr.splitlines() if line.startswith("started session "))
    return line.split()[2]


def test_attach_refuses_a_task_without_a_terminal(project):
    started = run_cli("up", "-f", str(project), "--detach", "--", "--exec", "sleep", "60")
    session_id = started_session_id(started)
    refused = run_cli("attach", "-f", str(project), session_id)
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        f"error: session {session_id} runs a task without a terminal: there is nothing to attach to",
        f"hint: follow its output with `claude-docker logs --follow {session_id}`",
    ]


def test_a_detached_tasks_output_and_exit_code_outlive_it_until_down(project):
    cfg = load_config(str(project)).config
    started = run_cli("up", "-f", str(project), "--detach", "--", "--exec", "bash", "-c", "echo task-output-marker; exit 3")
    session_id = started_session_id(started)
    assert wait_for(lambda: session_info(cfg.project_name).status == "exited", 120, interval=0.5)

    listing = run_cli("ps", "-f", str(project))
    assert listing.stdout.splitlines()[0].split() == ["PROJECT", "SESSION", "STATUS", "AGE", "ENDED", "IMAGE"]
    [row] = [line for line in listing.stdout.splitlines() if session_id in line]
    assert "exited (3)" in row and " ago " in row
    everywhere = run_cli("ps", "--all")
    assert everywhere.returncode == 0, everywhere.stderr
    assert [line for line in everywhere.stdout.splitlines() if session_id in line and "exited (3)" in line]

    shown = run_cli("logs", "-f", str(project), session_id[:4])
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == "task-output-marker\n"
    [summary] = [line for line in shown.stderr.splitlines() if line.startswith(f"session {session_id} ended ")]
    assert "ago, exit code 3; kept until `claude-docker down " in summary and "7 days after its end" in summary

    removed = run_cli("down", "-f", str(project), session_id)
    assert removed.returncode == 0 and "removed " in removed.stdout
    assert lifecycle.sessions(Engine.connect(), cfg.project_name) == []
