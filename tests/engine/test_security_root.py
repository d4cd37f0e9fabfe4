"""A hostile agent against the root phase of the next start: the entrypoint runs as root (with
NET_ADMIN, before the firewall exists) on every `up`, and `claude-docker shell` starts as root
until its privilege drop. Nothing the agent wrote may run there. Real engine and image, the
real `up`; the agent's commands run through the entrypoint's `--exec`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fakes.projects import run_cli
from tests.support.testbed import base_image_yaml

pytestmark = pytest.mark.docker

AGENT_UID = 1000

# A program that reports, in the workspace, whenever root runs it; else it behaves like `id`.
SPY = (
    '#!/bin/sh\n[ "$(/usr/bin/id -u)" = 0 ] && touch /workspace/ROOT-RAN-{name}\n'
    'PATH=/usr/sbin:/usr/bin:/sbin:/bin exec {name} "$@"\n'
)


def make_project(tmp_path: Path, env_yaml: str) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "claude-docker.yaml").write_text(
        base_image_yaml() + "network:\n  firewall: false\npersistence:\n  git_config: false\n" + "claude:\n  env:\n" + env_yaml
    )
    if os.getuid() == 0:
        for item in [project, *project.rglob("*")]:
            os.lchown(item, AGENT_UID, AGENT_UID)
    return project


def up_exec(project: Path, script: str) -> str:
    result = run_cli("up", "-f", str(project / "claude-docker.yaml"), "--", "--exec", "bash", "-c", script)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


PLANT = "mkdir -p /workspace/bin && " + " && ".join(
    f"printf '%s' '{SPY.format(name=name)}' > /workspace/bin/{name} && chmod +x /workspace/bin/{name}"
    for name in ("id", "getent", "useradd", "mkdir", "chown", "setpriv", "env")
) + " && printf '[ \"$(/usr/bin/id -u)\" = 0 ] && touch /workspace/ROOT-RAN-BASH_ENV\\n' > /workspace/.bash_env && echo PLANTED"


def test_a_configured_path_or_bash_env_never_runs_agent_files_as_root(tmp_path, cd_home):
    """claude.env PATH with a workspace dir first (a venv, node_modules/.bin) is an ordinary
    config; the root phase must still only run the image's own programs."""
    project = make_project(
        tmp_path,
        '    PATH: "/workspace/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"\n'
        "    BASH_ENV: /workspace/.bash_env\n",
    )
    assert "PLANTED" in up_exec(project, PLANT)
    output = up_exec(project, 'echo "PATH=$PATH"; echo "BASH_ENV=$BASH_ENV"; echo AGENT-DONE')
    assert "AGENT-DONE" in output
    ran = sorted(p.name for p in project.glob("ROOT-RAN-*"))
    assert ran == [], f"root ran files the agent wrote: {ran}"
    # the agent itself still gets what the config asked for
    assert "PATH=/workspace/bin:/usr/local/sbin" in output
    assert "BASH_ENV=/workspace/.bash_env" in output


# What the agent may write: scratch space, its home, the workspace and the persisted dirs. None
# of it is run or read by root (the entrypoint's programs, setup.d, the firewall's files, /etc).
AGENT_WRITABLE = ("/tmp", "/var/tmp", "/var/lock", "/run/lock", "/dev/shm", "/home/agent", "/workspace",
                  "/var/cache/claude-docker", "/var/lib/claude-docker/history", "/run/claude-docker/outbox",
                  "/run/claude-docker/progress")  # progress records: the host reads them as hostile text


def test_nothing_the_root_phase_uses_is_writable_by_the_agent(tmp_path, cd_home):
    project = make_project(tmp_path, "    SOME_SETTING: x\n")
    output = up_exec(
        project,
        "find / -xdev \\( -path /proc -o -path /sys -o -path /workspace \\) -prune -o -writable -print 2>/dev/null; "
        "for d in /opt/claude-docker /opt/claude-docker/runtime /etc /usr/local/bin /run/claude-docker-firewall; do "
        "  [ -w \"$d\" ] && echo \"$d\"; done; echo FIND-DONE",
    )
    assert "FIND-DONE" in output
    found = [line for line in output.splitlines() if line.startswith("/")]
    assert "/tmp" in found  # the probe sees what it should
    strays = [path for path in found if not any(path == ok or path.startswith(ok + "/") for ok in AGENT_WRITABLE)]
    assert strays == [], f"writable by the agent: {strays}"


def test_shell_into_a_session_never_runs_agent_files_as_root(tmp_path, cd_home):
    """`claude-docker shell` starts as root (docker exec) until its own privilege drop; with a
    configured PATH that starts in the workspace it must still run the image's setpriv, and the
    agent's shell gets the configured PATH."""
    project = make_project(tmp_path, '    PATH: "/workspace/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"\n')
    assert "PLANTED" in up_exec(project, PLANT)
    for marker in project.glob("ROOT-RAN-*"):
        marker.unlink()  # only what the shell does counts here
    config = str(project / "claude-docker.yaml")
    started = run_cli("up", "-f", config, "--detach", "--", "--exec", "sleep", "120")
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        result = run_cli("shell", "-f", config, "--", "sh", "-c", 'echo "PATH=$PATH"; id -u')
        assert result.returncode == 0, result.stdout + result.stderr
        assert "PATH=/workspace/bin:/usr/local/sbin" in result.stdout
        assert result.stdout.split()[-1] == str(AGENT_UID)
    finally:
        run_cli("down", "-f", config, "--all")
    ran = sorted(p.name for p in project.glob("ROOT-RAN-*"))
    assert ran == [], f"root ran files the agent wrote: {ran}"
