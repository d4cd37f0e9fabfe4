"""The real Claude Code binary in the container, driven by the scripted Messages API stand-in."""

from __future__ import annotations

import os
import time

import pytest

from claude_docker import lifecycle
from claude_docker.engine import Engine
from claude_docker.pipeline import load_config
from tests.fakes.anthropic import FakeAnthropic, bash, text
from tests.fakes.projects import AGENT_UID, bridge_gateway, make_project, run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture
def project(tmp_path, cd_home):
    config = make_project(tmp_path)
    yield config
    lifecycle.down(Engine.connect(), load_config(str(config)).config.project_name)


def test_headless_task_runs_a_bash_tool_call_without_prompts(project, docker_client):
    script = [bash("echo written-by-claude > /workspace/result.txt"), text("The file is written.")]
    with FakeAnthropic(script) as api:
        env = {"ANTHROPIC_BASE_URL": api.url_for(bridge_gateway(docker_client)), "ANTHROPIC_API_KEY": api.api_key}
        started = time.monotonic()
        result = run_cli("up", "-f", str(project), "--", "-p", "write result.txt", env=env, timeout=240)
        elapsed = time.monotonic() - started

    assert result.returncode == 0, result.stdout + result.stderr
    assert "The file is written." in result.stdout
    written = project.parent / "result.txt"
    assert written.read_text() == "written-by-claude\n"
    assert written.stat().st_uid == (os.getuid() or AGENT_UID)

    # The second agent request carries the tool result: the command ran, nobody was asked.
    assert len(api.agent_requests) >= 2
    [result_block] = api.tool_results()
    assert result_block.get("is_error") is not True
    assert "permission" not in str(result_block.get("content")).lower()
    assert all(r.headers.get("x-api-key") == api.api_key for r in api.requests if r.method == "POST")
    assert elapsed < 200


def test_claude_sees_settings_and_workspace(project, docker_client):
    """The agent runs in the workspace as a non-root user with an empty bounding set."""
    script = [bash("id -u > who.txt; pwd >> who.txt; grep CapBnd /proc/self/status >> who.txt"), text("ok")]
    with FakeAnthropic(script) as api:
        env = {"ANTHROPIC_BASE_URL": api.url_for(bridge_gateway(docker_client)), "ANTHROPIC_API_KEY": api.api_key}
        result = run_cli("up", "-f", str(project), "--", "-p", "who am i", env=env, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    uid, cwd, capbnd = (project.parent / "who.txt").read_text().splitlines()
    assert uid == str(os.getuid() or AGENT_UID) and uid != "0"
    assert cwd == "/workspace"
    assert capbnd.split()[-1] == "0000000000000000"


def test_headless_task_behind_the_firewall(tmp_path, cd_home, docker_client):
    """Same round trip with the egress firewall on; the API stand-in is on the host's bridge address."""
    config = make_project(tmp_path, "network:\n  firewall: true\n  allow_host_network: true\n", firewall=True)
    script = [bash("echo behind-firewall > /workspace/fw.txt"), text("done")]
    try:
        with FakeAnthropic(script) as api:
            env = {"ANTHROPIC_BASE_URL": api.url_for(bridge_gateway(docker_client)), "ANTHROPIC_API_KEY": api.api_key}
            result = run_cli("up", "-f", str(config), "--", "-p", "write fw.txt", env=env, timeout=240)
    finally:
        lifecycle.down(Engine.connect(), load_config(str(config)).config.project_name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "firewall is false" not in result.stderr
    assert (config.parent / "fw.txt").read_text() == "behind-firewall\n"
    assert len(api.tool_results()) == 1
