"""`up` (headless, detached), `ps`, `logs`, `shell`, `down` on the real engine."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from claude_docker import contract, lifecycle, paths
from claude_docker.config.pipeline import load_config
from claude_docker.contract import LABEL_MANAGED, LABEL_PROJECT
from claude_docker.engine import Engine
from claude_docker.runplan import ENTRYPOINT_CAPS
from tests.fakes.projects import AGENT_UID, make_project, run_cli
from tests.support.testbed import is_podman
from tests.support.wait import wait_for

pytestmark = pytest.mark.docker


@pytest.fixture
def project(tmp_path, cd_home):
    """A project on the test base image; every session container of it is removed afterwards."""
    config = make_project(tmp_path)
    yield config
    cfg = load_config(str(config)).config
    lifecycle.down(Engine.connect(), cfg.project_name)


def up(config: Path, *args: str, env: dict[str, str] | None = None):
    return run_cli("up", "-f", str(config), *args, env=env)


def test_headless_exit_code_is_the_containers(project):
    result = up(project, "--", "--exec", "bash", "-c", "echo to-stdout; echo to-stderr >&2; exit 7")
    assert result.returncode == 7, result.stderr
    assert "to-stdout" in result.stdout
    assert "to-stderr" in result.stderr and "to-stderr" not in result.stdout
    ok = up(project, "--", "--exec", "true")
    assert ok.returncode == 0, ok.stderr


def test_claude_version_runs_headless(project):
    result = up(project, "--", "--version")
    assert result.returncode == 0, result.stderr
    assert "Claude Code" in result.stdout
    assert "firewall" in result.stderr  # the firewall-off warning is printed before start


def test_workspace_file_belongs_to_the_agent_uid(project):
    result = up(project, "--", "--exec", "bash", "-c", "pwd; id -u; echo hi > made-by-agent.txt")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert lines[0] == "/workspace"
    expected_uid = os.getuid() or AGENT_UID
    assert lines[1] == str(expected_uid)
    made = project.parent / "made-by-agent.txt"
    assert made.read_text() == "hi\n"
    assert made.stat().st_uid == expected_uid


def test_agent_has_no_capabilities_and_no_sudo(project):
    script = "grep -E '^Cap(Eff|Bnd|Prm|Amb):' /proc/self/status; grep NoNewPrivs /proc/self/status; command -v sudo || echo no-sudo; id -u"
    result = up(project, "--", "--exec", "bash", "-c", script)
    assert result.returncode == 0, result.stderr
    fields = dict(line.split(":\t") for line in result.stdout.splitlines() if ":\t" in line)
    assert fields["CapEff"] == fields["CapBnd"] == fields["CapPrm"] == fields["CapAmb"] == "0000000000000000"
    assert fields["NoNewPrivs"] == "1"
    assert "no-sudo" in result.stdout
    assert result.stdout.split()[-1] != "0"


def test_container_is_locked_down_and_removed_after_exit(project):
    engine = Engine.connect()
    project.write_text(project.read_text() + "resources:\n  memory: 1g\n  cpus: 1.5\n  shm_size: 128m\n")
    cfg = load_config(str(project)).config
    result = up(project, "--keep", "--", "--exec", "true")
    assert result.returncode == 0, result.stderr
    [info] = lifecycle.sessions(engine, cfg.project_name)
    attrs = engine.get(info.name).attrs
    host = attrs["HostConfig"]
    if is_podman(engine.client):  # Podman lists the capabilities it dropped one by one
        dropped = {c.removeprefix("CAP_") for c in host["CapDrop"]}
        assert {"KILL", "FSETID", "NET_BIND_SERVICE", "SETFCAP", "SYS_CHROOT"} <= dropped
        assert not dropped & ENTRYPOINT_CAPS
    else:
        assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["Privileged"] is False
    assert host["NetworkMode"] != "host"
    assert (host["Memory"], host["NanoCpus"], host["ShmSize"]) == (1024**3, 1_500_000_000, 128 * 1024**2)
    assert host["Init"] is True
    assert not any("docker.sock" in (m.get("Source") or "") for m in attrs["Mounts"])
    runtime = [m for m in attrs["Mounts"] if m["Destination"] == contract.CONTAINER_RUNTIME]
    assert runtime and runtime[0]["RW"] is False
    assert info.labels[LABEL_PROJECT] == cfg.project_name
    lifecycle.down(engine, cfg.project_name)
    assert lifecycle.sessions(engine, cfg.project_name) == []
    # without --keep nothing is left behind
    assert up(project, "--", "--exec", "true").returncode == 0
    assert lifecycle.sessions(engine, cfg.project_name) == []


def test_credentials_reach_the_container_only_at_run_time(project, cd_home):
    secret = "sk-ant-test-" + os.urandom(6).hex()
    (cd_home / ".env").write_text(f"CLAUDE_CODE_OAUTH_TOKEN={secret}-from-file\n")
    result = up(project, "--", "--exec", "bash", "-c", "echo key=$ANTHROPIC_API_KEY; echo token=$CLAUDE_CODE_OAUTH_TOKEN",
                env={"ANTHROPIC_API_KEY": secret})
    assert result.returncode == 0, result.stderr
    assert f"key={secret}" in result.stdout
    assert f"token={secret}-from-file" in result.stdout
    for path in cd_home.rglob("*"):
        if path.is_file() and path.name != ".env":
            assert secret not in path.read_text(errors="replace"), path


def test_two_parallel_sessions_ps_logs_down(project):
    engine = Engine.connect()
    cfg = load_config(str(project)).config
    for marker in ("first-marker", "second-marker"):
        started = up(project, "--detach", "--", "--exec", "bash", "-c", f"echo {marker}; sleep 120")
        assert started.returncode == 0, started.stderr
    running = lifecycle.sessions(engine, cfg.project_name)
    assert len(running) == 2 and len({i.name for i in running}) == 2

    listing = run_cli("ps", "-f", str(project))
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.splitlines()[0].split() == ["PROJECT", "SESSION", "STATUS", "AGE", "ENDED", "IMAGE"]
    assert sum(cfg.project_name in line for line in listing.stdout.splitlines()) == 2

    ambiguous = run_cli("logs", "-f", str(project))
    assert ambiguous.returncode == 1 and "several sessions" in ambiguous.stderr

    session_id = running[0].labels["dev.claude-docker.session"]
    results = []

    def logs_show_the_marker() -> bool:
        results.append(run_cli("logs", "-f", str(project), session_id[:6]))  # a prefix is enough
        return "marker" in results[-1].stdout

    wait_for(logs_show_the_marker, 20, interval=0.5)
    shown = results[-1]
    assert shown.returncode == 0, shown.stderr
    assert "first-marker" in shown.stdout

    shell = run_cli("shell", "-f", str(project), "-s", session_id[:6], "--", "grep", "-E", "^Cap(Eff|Bnd)", "/proc/self/status")
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.count("0000000000000000") == 2

    unknown = run_cli("down", "-f", str(project), "zz")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.splitlines()[0] == f"error: no session zz in project {cfg.project_name}"
    assert session_id in unknown.stderr.splitlines()[1] and "(running)" in unknown.stderr

    removed = run_cli("down", "-f", str(project))
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.count("removed ") == 2
    assert engine.list({LABEL_MANAGED: "1", LABEL_PROJECT: cfg.project_name}) == []
    sessions_dir = paths.project_state_dir(cfg.project_name) / "sessions"
    assert not list(sessions_dir.glob("*/runtime")), "down leaves no runtime files of removed sessions"


def test_ps_shows_the_exit_code_of_an_ended_session(project):
    cfg = load_config(str(project)).config
    ended = up(project, "--keep", "--", "--exec", "bash", "-c", "exit 3")
    assert ended.returncode == 3, ended.stderr
    [info] = lifecycle.sessions(Engine.connect(), cfg.project_name)
    listing = run_cli("ps", "-f", str(project))
    [row] = [line for line in listing.stdout.splitlines() if info.labels["dev.claude-docker.session"] in line]
    assert "exited (3)" in row


def test_build_command_reports_current_image(project):
    first = run_cli("build", "-f", str(project))
    assert first.returncode == 0, first.stderr
    again = run_cli("build", "-f", str(project))
    assert "current, nothing to build" in again.stdout
    assert again.stdout.split(":")[0:2] == first.stdout.split(":")[0:2]


def test_allowlist_change_does_not_rebuild(project):
    first = run_cli("build", "-f", str(project))
    assert first.returncode == 0, first.stderr
    project.write_text(project.read_text() + "  allowed_domains: [example.org]\n")
    again = run_cli("build", "-f", str(project))
    assert again.returncode == 0, again.stderr
    assert "current, nothing to build" in again.stdout
    assert again.stdout.split()[0] == first.stdout.split()[0]


def test_interactive_session_gets_the_terminal(project):
    """With a TTY on stdin, `up` hands the terminal to `docker start --attach --interactive`."""
    import pty
    import select
    import subprocess

    main_fd, child_fd = pty.openpty()
    process = subprocess.Popen(
        ["claude-docker", "up", "--trust", "-f", str(project), "--", "--exec", "bash", "-c", "echo ready-for-input; read line; echo got-$line; test -t 0 && echo has-tty; exit 5"],
        stdin=child_fd, stdout=child_fd, stderr=child_fd, close_fds=True,
    )
    os.close(child_fd)
    output = b""
    sent = False
    deadline = time.time() + 120
    while time.time() < deadline:
        ready, _, _ = select.select([main_fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(main_fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        if not sent and b"ready-for-input" in output:
            os.write(main_fd, b"hello\r")
            sent = True
        if process.poll() is not None and not ready:
            break
    process.wait(timeout=30)
    os.close(main_fd)
    text = output.decode(errors="replace")
    assert process.returncode == 5, text
    assert "got-hello" in text and "has-tty" in text


def test_terminated_up_stops_and_removes_its_container(project):
    import signal
    import subprocess

    cfg = load_config(str(project)).config
    process = subprocess.Popen(
        ["claude-docker", "up", "--trust", "-f", str(project), "--", "--exec", "bash", "-c", "echo started; sleep 300"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert process.stdout.readline().strip() == b"started"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 130
    assert lifecycle.sessions(Engine.connect(), cfg.project_name) == []


def test_hostile_arguments_reach_the_agent_verbatim(project):
    tricky = ["$(id)", "a'b", 'c"d', "e;f", "line1\nline2", "`uname`"]
    result = up(project, "--", "--exec", "printf", "[%s]\\n", *tricky)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "".join(f"[{value}]\n" for value in tricky)


def test_setup_failure_stops_before_the_agent_runs(project, docker_client):
    from claude_docker.features.image import build_context, image_tag

    cfg = load_config(str(project)).config
    tag = image_tag(build_context(cfg.image))
    assert run_cli("build", "-f", str(project)).returncode == 0
    reserved = docker_client.containers.run(tag, entrypoint=["id", "-u", "dnsmasq"], remove=True).decode().strip()
    project.write_text(project.read_text() + f"claude:\n  uid: {reserved}\n  gid: {reserved}\n")
    result = up(project, "--", "--exec", "echo", "must-not-run")
    assert result.returncode == contract.EXIT_SETUP_FAILED, result.stderr
    assert "must-not-run" not in result.stdout
    assert "reserved for the firewall" in result.stderr


def test_doctor_reports_each_check(project):
    result = run_cli("doctor", "-f", str(project))
    lines = result.stdout.splitlines()
    names = [line.split(":")[0].split(None, 1)[1] for line in lines]
    assert names == ["config", "engine", "docker CLI", "base image", "container start", "CA file", "env file", "credential", "notifier", "free disk"]
    assert lines[1].startswith("ok") and "API" in lines[1]
    assert lines[3].startswith("ok") and "present" in lines[3]
    assert lines[4].startswith("ok") and "starts" in lines[4]
    assert lines[8].startswith("warn")  # no notifier is a warning, not a failure
    assert result.returncode == (0 if all(not line.startswith("FAIL") for line in lines) else 1)


def test_doctor_fails_on_missing_base_image(tmp_path, cd_home):
    config = tmp_path / "claude-docker.yaml"
    config.write_text("image:\n  base: claude-docker-test/no-such-image:1\nnetwork:\n  firewall: false\n")
    result = run_cli("doctor", "-f", str(config), timeout=120)
    assert result.returncode == 1
    assert any(line.startswith("FAIL base image") for line in result.stdout.splitlines()), result.stdout
    assert "check(s) failed" in result.stderr


def test_entrypoint_takes_over_a_uid_held_by_another_user(project, docker_client):
    """node:* images ship a `node` user with uid 1000: the agent gets the uid, node makes way."""
    from claude_docker.features.image import build_context, image_tag

    assert run_cli("build", "-f", str(project)).returncode == 0
    tag = image_tag(build_context(load_config(str(project)).config.image))
    script = "useradd -u 1000 -m -s /bin/bash node && exec /opt/claude-docker/entrypoint.sh --exec bash -c 'id -un; id -u; echo $HOME'"
    output = docker_client.containers.run(
        tag, entrypoint=["bash", "-c", script], environment={"AGENT_UID": "1000", "AGENT_GID": "1000"},
        cap_drop=["ALL"], cap_add=sorted(ENTRYPOINT_CAPS), security_opt=["no-new-privileges"],
        remove=True, network_disabled=True,
    )
    assert output.decode().split() == ["agent", "1000", "/home/agent"]


def test_piped_stdin_reaches_a_headless_session(project):
    import subprocess

    result = subprocess.run(
        ["claude-docker", "up", "--trust", "-f", str(project), "--", "--exec", "bash", "-c", "tr a-z A-Z; echo end"],
        input="piped task\n", capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "PIPED TASK\nend\n"


def test_gpu_request_without_gpu_support_is_a_clear_error(project, docker_client):
    if "nvidia" in (docker_client.info().get("Runtimes") or {}):
        pytest.skip("this engine can hand out GPUs")
    cfg = load_config(str(project)).config
    project.write_text(project.read_text() + "resources:\n  gpus: all\n")
    result = up(project, "--", "--exec", "true")
    assert result.returncode == 1
    if is_podman(docker_client):  # it would ignore the request: refused before anything starts
        assert "error: resources.gpus cannot be requested through Podman" in result.stderr
        assert lifecycle.sessions(Engine.connect(), cfg.project_name) == []
        return
    assert "error: the engine cannot give the container a GPU" in result.stderr
    assert "NVIDIA Container Toolkit" in result.stderr and "Traceback" not in result.stderr
    assert lifecycle.sessions(Engine.connect(), cfg.project_name) == []


def test_a_finished_session_leaves_no_runtime_files_behind(project):
    project.write_text(project.read_text() + "persistence:\n  auth: false\n")  # a throwaway login too
    result = up(project, "--", "--exec", "true")
    assert result.returncode == 0, result.stderr
    sessions = paths.project_state_dir(load_config(str(project)).config.project_name) / "sessions"
    leftovers = sorted(str(p.relative_to(sessions)) for p in sessions.rglob("*")) if sessions.exists() else []
    assert not [p for p in leftovers if "runtime" in p or p.endswith(("empty", "claude"))], leftovers

    kept = up(project, "--keep", "--", "--exec", "true")
    assert kept.returncode == 0, kept.stderr
    assert list(sessions.glob("*/runtime/*")), "a kept container still needs its runtime files"


def test_a_container_has_pids_memory_and_log_limits_by_default(project, docker_client):
    """Without a `resources` section a fork bomb or a memory bomb must not take the host down,
    and the container's own log must not fill the disk."""
    engine = Engine.connect()
    cfg = load_config(str(project)).config
    result = up(project, "--keep", "--", "--exec", "true")
    assert result.returncode == 0, result.stderr
    [info] = lifecycle.sessions(engine, cfg.project_name)
    host = engine.get(info.name).attrs["HostConfig"]
    assert host["PidsLimit"] == 4096
    assert host["Memory"] == docker_client.info()["MemTotal"] // 2
    if is_podman(docker_client):  # its compatible API hides the options; its own inspect shows the cap
        native = subprocess.run(
            ["podman", "inspect", "--format", "{{.HostConfig.LogConfig.Size}}", info.name],
            capture_output=True, text=True, check=True,
        )
        assert native.stdout.strip() == "10MB"
    else:
        assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}


def test_a_fork_bomb_and_a_memory_bomb_hit_the_limits(project):
    """The agent's fork bomb stops at resources.pids_limit; its memory bomb is killed at the limit."""
    project.write_text(project.read_text() + "resources:\n  pids_limit: 64\n  memory: 96m\n")
    script = (
        "sh -c 'while :; do sleep 300 & done' 2>/tmp/bomb.err; "
        # no fork is possible now: read the counters with builtins, then end the bomb with one
        "p=/sys/fs/cgroup; [ -e $p/pids.max ] || p=$p/pids; "  # cgroup v2, else v1
        "read max < $p/pids.max; read current < $p/pids.current; "
        "kill -9 -1; sleep 1; echo pids-max=$max pids-current=$current; "
        "grep -c -i -E 'cannot fork|resource temporarily unavailable' /tmp/bomb.err; "
        "head -c 400m /dev/zero | tail > /dev/null; echo memory-bomb-exit=$?"
    )
    result = up(project, "--", "--exec", "bash", "-c", script)
    assert result.returncode == 0, result.stdout + result.stderr
    fields = dict(item.split("=") for item in result.stdout.split() if "=" in item)
    assert fields["pids-max"] == "64"
    assert 50 <= int(fields["pids-current"]) <= 64
    assert fields["memory-bomb-exit"] == "137"  # tail was killed by the memory limit, the session goes on
