"""The real Claude Code binary in the container, driven by the scripted Messages API stand-in."""

from __future__ import annotations

import os
import time

import pytest

from claude_docker import lifecycle
from claude_docker.config.pipeline import load_config
from claude_docker.engine import Engine
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


# --- the model endpoint, exactly and only; a blocked one fails in seconds -------------------------


class _HostListener:
    """A TCP listener on the Docker host that counts who connected (a service the agent must not reach)."""

    def __init__(self, host: str) -> None:
        import socket
        import threading

        self.connections = 0
        self._socket = socket.create_server((host, 0))
        self.port = self._socket.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._socket.close()


def _unused_port(host: str) -> int:
    """A port nothing listens on: bound without listening, then released."""
    import socket

    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _tool_output(api: FakeAnthropic) -> str:
    [block] = api.tool_results()
    content = block.get("content")
    if isinstance(content, str):
        return content
    return "\n".join(part.get("text", "") for part in content or [] if isinstance(part, dict))


def test_an_endpoint_on_a_host_port_works_with_the_strict_firewall(tmp_path, cd_home, docker_client):
    """ANTHROPIC_BASE_URL on the Docker host opens that address and port, not the host's other ports."""
    gateway = bridge_gateway(docker_client)
    config = make_project(tmp_path, firewall=True)  # the default network section: no allow_host_network
    other = _HostListener(gateway)
    probe = f"(exec 3<>/dev/tcp/{gateway}/{other.port}) 2>/dev/null && echo OTHER-OPEN || echo other-closed"
    try:
        with FakeAnthropic([bash(probe), text("probed")]) as api:
            env = {"ANTHROPIC_BASE_URL": api.url_for(gateway), "ANTHROPIC_API_KEY": api.api_key}
            started = time.monotonic()
            result = run_cli("up", "-f", str(config), "--", "-p", "probe the host", env=env, timeout=240)
            elapsed = time.monotonic() - started
    finally:
        other.close()
        lifecycle.down(Engine.connect(), load_config(str(config)).config.project_name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "probed" in result.stdout
    assert "other-closed" in _tool_output(api)
    assert other.connections == 0
    assert elapsed < 200


def test_a_blocked_endpoint_stops_the_session_within_seconds(tmp_path, cd_home, docker_client):
    """Nothing listens at the endpoint: `up` says so and which endpoint, not after Claude's retries."""
    gateway = bridge_gateway(docker_client)
    config = make_project(tmp_path, firewall=True)
    port = _unused_port(gateway)  # a port on the host where nothing listens
    env = {"ANTHROPIC_BASE_URL": f"http://{gateway}:{port}", "ANTHROPIC_API_KEY": "sk-test"}
    started = time.monotonic()
    try:
        result = run_cli("up", "-f", str(config), "--", "-p", "hello", env=env, timeout=240)
    finally:
        lifecycle.down(Engine.connect(), load_config(str(config)).config.project_name)
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 72, output
    assert f"cannot reach the model endpoint {gateway}:{port}" in output
    assert "ANTHROPIC_BASE_URL in the environment" in output
    assert "did not answer" in output and "listening on port" in output
    assert elapsed < 90, elapsed  # the image is built already; Claude's own retries take minutes


def test_provider_variables_reach_the_agent_and_not_the_image(tmp_path, cd_home, docker_client):
    """Model and provider variables are run-time environment: Claude uses them, the image holds none."""
    config = make_project(tmp_path)
    provider = {
        "ANTHROPIC_MODEL": "claude-e2e-model-7f3a",
        "ANTHROPIC_CUSTOM_HEADERS": "X-Gateway-Test: gw-7f3a",
        "AWS_REGION": "eu-e2e-7f3a",
        "ANTHROPIC_VERTEX_PROJECT_ID": "vertex-e2e-7f3a",
    }
    script = [bash("env | /usr/bin/grep -a 7f3a | sort"), text("listed")]
    try:
        with FakeAnthropic(script) as api:
            env = {"ANTHROPIC_BASE_URL": api.url_for(bridge_gateway(docker_client)), "ANTHROPIC_API_KEY": api.api_key, **provider}
            result = run_cli("up", "-f", str(config), "--", "-p", "list", env=env, timeout=240)
    finally:
        lifecycle.down(Engine.connect(), load_config(str(config)).config.project_name)
    assert result.returncode == 0, result.stdout + result.stderr
    listed = _tool_output(api)
    for name, value in provider.items():
        assert f"{name}={value}" in listed, listed
    assert api.message_requests and all(body.get("model") == "claude-e2e-model-7f3a" for body in api.agent_requests)
    posts = [r for r in api.requests if r.method == "POST" and r.path.startswith("/v1/messages")]
    assert posts and all(r.headers.get("X-Gateway-Test") == "gw-7f3a" for r in posts)

    image = docker_client.images.get(lifecycle_image_tag(config))
    baked = str(image.attrs.get("Config", {}).get("Env")) + str(image.history())
    assert "7f3a" not in baked


def lifecycle_image_tag(config) -> str:
    from claude_docker.features.image import image_tag
    from claude_docker.render import render_build_context

    return image_tag(render_build_context(load_config(str(config)).config))
