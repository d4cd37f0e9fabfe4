"""Engine errors become one-line messages with a hint; the build context tar is reproducible."""

from __future__ import annotations

import os
import tarfile

import pytest
from click.testing import CliRunner

from claude_docker import lifecycle, runplan
from claude_docker.artifacts import Artifact
from claude_docker.cli import main
from claude_docker.config.model import ClaudeConfig, Config, ResourcesConfig, WorkspaceConfig
from claude_docker.engine import Engine, context_tar
from claude_docker.errors import EngineError
from claude_docker.runspec import ContainerPlan
from claude_docker.session import Session


def test_unreachable_engine_is_an_engine_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    with pytest.raises(EngineError) as failure:
        Engine.connect()
    assert "cannot reach the Docker engine" in failure.value.message
    assert "DOCKER_HOST" in failure.value.hint


def test_cli_reports_engine_down_without_traceback(tmp_path, monkeypatch, cd_home):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    (tmp_path / "claude-docker.yaml").write_text("network:\n  firewall: false\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["ps"])
    assert result.exit_code == 1
    assert "error: cannot reach the Docker engine" in result.output
    assert "hint:" in result.output
    assert "Traceback" not in result.output


def test_permission_denied_socket(tmp_path):
    """A socket the user may not open gives the permission hint, not a traceback.

    Root opens any socket, so as root the check runs without the capabilities that bypass
    file permissions (dropped from the bounding set with setpriv).
    """
    import socket
    import subprocess
    import sys

    path = tmp_path / "docker.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    os.chmod(path, 0)
    probe = (
        "from claude_docker.engine import Engine\n"
        "from claude_docker.errors import EngineError\n"
        "try:\n    Engine.connect()\nexcept EngineError as e:\n    print('MESSAGE', e.message)\n    print('HINT', e.hint)\n"
    )
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"] if os.getuid() == 0 else []
    result = subprocess.run(
        prefix + [sys.executable, "-c", probe],
        env={**os.environ, "DOCKER_HOST": f"unix://{path}"},
        capture_output=True, text=True, timeout=60,
    )
    server.close()
    assert "Traceback" not in result.stderr, result.stderr
    assert "MESSAGE" in result.stdout and "permission denied" in result.stdout, result.stdout
    assert "HINT" in result.stdout


def test_context_tar_is_reproducible_and_keeps_modes():
    artifacts = {
        "Dockerfile": Artifact(b"FROM scratch\n"),
        "bin/setup.d/10-x.sh": Artifact(b"#!/bin/sh\n", 0o755),
    }
    first, second = context_tar(artifacts).getvalue(), context_tar(artifacts).getvalue()
    assert first == second
    with tarfile.open(fileobj=context_tar(artifacts)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["bin"].isdir() and members["bin/setup.d"].isdir()
    assert members["bin/setup.d/10-x.sh"].mode == 0o755
    assert members["Dockerfile"].mode == 0o644


def test_headless_detection():
    assert lifecycle.is_headless(["-p", "task"], stdin_is_tty=True)
    assert lifecycle.is_headless(["--print", "task"], stdin_is_tty=True)
    assert lifecycle.is_headless([], stdin_is_tty=False)
    assert not lifecycle.is_headless(["--model", "opus"], stdin_is_tty=True)


def test_missing_docker_cli_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EngineError) as failure:
        lifecycle.docker_cli()
    assert "docker` command line tool" in failure.value.message
    assert "headless" in failure.value.hint


def _config(tmp_path, **claude) -> Config:
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    return Config(
        source_files=(str(workspace / "claude-docker.yaml"),),
        project_dir=str(workspace),
        workspace=WorkspaceConfig(path=str(workspace)),
        claude=ClaudeConfig(**claude),
        resources=ResourcesConfig(memory="2g", cpus=1.5, shm_size="256m"),
        env_file=str(tmp_path / "absent.env"),
    )


def test_plan_posture_env_and_resources(tmp_path, cd_home):
    cfg = _config(tmp_path, args=("--model", "opus"), env={"FOO": "bar", "AGENT_UID": "0"}, uid=4321, gid=4322)
    session = Session.new(cfg.project_name)
    plan = runplan.plan(cfg, session, "claude-docker:x", ["-p", "hi"], environ={"ANTHROPIC_API_KEY": "k", "UNRELATED": "no"})
    assert isinstance(plan, ContainerPlan)
    assert plan.command == ["--model", "opus", "-p", "hi"]
    assert {"SETUID", "SETGID", "SETPCAP"} <= set(plan.cap_add)
    assert "SYS_ADMIN" not in plan.cap_add
    assert plan.env["AGENT_UID"] == "4321" and plan.env["AGENT_GID"] == "4322"  # claude.env cannot override
    assert plan.env["FOO"] == "bar"
    # The sandbox proxy holds the key; Claude gets a placeholder (features/credentials.py).
    assert plan.env["CLAUDE_DOCKER_SECRET_API_KEY"] == "k" and "UNRELATED" not in plan.env
    assert plan.env["ANTHROPIC_API_KEY"] == "sk-ant-claude-docker-placeholder-held-by-the-sandbox-proxy"
    assert plan.env["DISABLE_AUTOUPDATER"] == "1"
    assert plan.env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert plan.env["CLAUDE_CONFIG_DIR"] == "/home/agent/.claude"
    assert plan.working_dir == "/workspace"
    assert (plan.memory, plan.cpus, plan.shm_size) == ("2g", 1.5, "256m")
    assert plan.sysctls == {  # the firewall's: no ping sockets, no port 53 for the agent
        "net.ipv4.ping_group_range": "1 0", "net.ipv4.ip_unprivileged_port_start": "54"}
    assert (plan.pids_limit, plan.log_max_size, plan.log_max_files) == (4096, "10m", 3)  # the defaults
    assert plan.labels["dev.claude-docker.session"] == session.session_id
    assert plan.name == session.container_name
    assert session.runtime_dir.is_dir()
    for path in session.runtime_dir.rglob("*"):
        if path.is_file():
            assert b"ANTHROPIC_API_KEY=k" not in path.read_bytes()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown the workspace")
def test_root_runs_the_agent_as_the_workspace_owner_or_1000(tmp_path, cd_home):
    cfg = _config(tmp_path)
    os.chown(cfg.workspace.path, 0, 0)
    os.chmod(cfg.workspace.path, 0o755)
    assert runplan.agent_ids(cfg) == (1000, 1000)
    assert "cannot write there" in (runplan.workspace_warning(cfg, 1000, 1000) or "")
    os.chown(cfg.workspace.path, 2345, 2346)
    assert runplan.agent_ids(cfg) == (2345, 2346)
    assert runplan.workspace_warning(cfg, 2345, 2346) is None


def test_build_progress_shows_steps_on_a_terminal(capsys):
    from claude_docker.commands.lifecycle_cmds import BuildProgress

    progress = BuildProgress(verbose=False, tty=True)
    for line in ("Step 1/3 : FROM debian", " ---> abc", "Step 2/3 : RUN \x1b[91mapt-get install\x1b[0m", "noise"):
        progress(line)
    progress.finish()
    err = capsys.readouterr().err
    assert "step 1/3: FROM debian" in err and "step 2/3: RUN apt-get install" in err
    assert "noise" not in err and "--->" not in err

    verbose = BuildProgress(verbose=True, tty=False)
    verbose("Step 1/3 : FROM debian")
    verbose(" ---> abc")
    err = capsys.readouterr().err
    assert "Step 1/3 : FROM debian" in err and " ---> abc" in err

    quiet = BuildProgress(verbose=False, tty=False)
    quiet("Step 1/3 : FROM debian")
    quiet(" ---> abc")
    quiet.finish()
    err = capsys.readouterr().err
    assert "Step" not in err and "--->" not in err and "step 1/3: FROM debian (" in err


def test_age_is_short_and_readable():
    from datetime import datetime, timezone

    now = datetime(2026, 1, 2, 12, 0, 0, tzinfo=timezone.utc)
    assert lifecycle.age("2026-01-02T11:59:30.123456789Z", now) == "30s"
    assert lifecycle.age("2026-01-02T11:55:00.5Z", now) == "5m"
    assert lifecycle.age("2026-01-02T09:00:00Z", now) == "3h"
    assert lifecycle.age("2025-12-30T12:00:00.000000001Z", now) == "3d"
    assert lifecycle.age("garbage", now) == "?"


def test_engine_refusals_are_translated():
    import docker.errors
    import requests

    from claude_docker.engine import _translate

    response = requests.Response()
    response.status_code = 409
    conflict = _translate(docker.errors.APIError("Conflict. The container name is already in use", response, "Conflict"))
    assert "refused" in conflict.message and "claude-docker down" in conflict.hint
    denied = _translate(_raised_from(PermissionError(13, "Permission denied")))
    assert "permission denied" in denied.message and "docker` group" in denied.hint
    down = _translate(_raised_from(FileNotFoundError(2, "No such file or directory")))
    assert "cannot reach the Docker engine" in down.message
    pull = _translate(docker.errors.ImageNotFound("pull access denied for nope, repository does not exist"))
    assert "could not be found or pulled" in pull.message and "image.base" in pull.hint
    response.status_code = 404
    manifest = _translate(docker.errors.NotFound("404", response, "manifest for node:99 not found: manifest unknown"))
    assert "could not be found or pulled" in manifest.message
    gone = _translate(docker.errors.NotFound("404", response, "No such container: abc"))
    assert "no such object" in gone.message and "cannot reach" not in gone.message
    response.status_code = 500
    oci = _translate(docker.errors.APIError("500 Server Error", response, 'OCI runtime create failed: exec: "x": no such file or directory'))
    assert "cannot reach" not in oci.message and "refused (HTTP 500)" in oci.message and "no such file" in oci.message


def _raised_from(cause: OSError):
    """What docker-py raises when the socket fails: DockerException from requests' ConnectionError."""
    import docker.errors
    import requests
    import urllib3

    try:
        try:
            raise requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.", cause))
        except requests.exceptions.ConnectionError as error:
            raise docker.errors.DockerException(f"Error while fetching server API version: {error}") from error
    except docker.errors.DockerException as error:
        return error


def _api_error(status: int, explanation: str):
    """The error docker-py raises for an engine's HTTP answer (its own type, a real response)."""
    import docker
    import requests

    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError(explanation, response=response, explanation=explanation)


class _Container:
    """A container handle whose removal the engine answers with `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def remove(self, force: bool) -> None:
        raise self.error


def test_a_removal_already_under_way_is_not_an_error_but_others_are():
    import docker

    engine = Engine(docker.DockerClient(base_url="unix:///nonexistent/claude-docker.sock", version="1.41"))  # never dialled
    engine.remove(_Container(_api_error(409, "removal of container abc is already in progress")))
    with pytest.raises(EngineError) as failure:
        engine.remove(_Container(_api_error(500, "driver failed removing the root filesystem")))
    assert "driver failed" in failure.value.message
