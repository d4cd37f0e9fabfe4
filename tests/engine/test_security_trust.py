"""A hostile agent against the config the next `up` reads: files the agent writes in the
workspace (a claude-docker.yaml where there was none, a profile, an env file) must never be acted
on by the host without the user's approval, and a secret file in the workspace is refused before
the agent can read it. Real engine and image, the real `claude-docker up`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fakes.projects import run_cli
from tests.support.testbed import base_image_yaml

pytestmark = pytest.mark.docker

AGENT_UID = 1000
SETTINGS = "network:\n  firewall: false\npersistence:\n  git_config: false\n"


def hand_to_agent(path: Path) -> None:
    if os.getuid() != 0:
        return
    for item in [path, *path.rglob("*")]:
        os.lchown(item, AGENT_UID, AGENT_UID)


def test_a_config_file_the_agent_creates_is_not_run_by_the_next_up(cd_home, tmp_path):
    """The session starts from the per-user config alone (no claude-docker.yaml in the
    workspace); the agent writes one with a notifier command. A plain `up` in that directory
    must not run it on the host."""
    (cd_home / "config.yaml").write_text(base_image_yaml() + SETTINGS)
    project = tmp_path / "project"
    project.mkdir()
    hand_to_agent(project)
    marker = tmp_path / "host-command-ran"
    planted = (
        f"printf 'notifier:\\n  min_interval_seconds: 0\\n  commands: [[touch, {marker}]]\\n' > claude-docker.yaml "
        "&& echo PLANTED"
    )
    first = run_cli("up", "--", "--exec", "bash", "-c", planted, cwd=str(project), trust=False)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "PLANTED" in first.stdout
    second = run_cli("up", "--", "--exec", "notify", "hello", cwd=str(project), trust=False)
    assert not marker.exists(), "the host ran a notifier command the agent planted"
    assert second.returncode == 1, second.stdout + second.stderr
    assert "Traceback" not in second.stderr
    assert second.stderr.splitlines() == [
        "error: not trusted: claude-docker.yaml (new); config files in the workspace, where the agent can write, "
        "need your approval before the host acts on them",
        "hint: review them, then run `claude-docker trust` (or `claude-docker up --trust`)",
    ]
    # `validate` only reads: it says so without refusing
    validated = run_cli("validate", cwd=str(project))
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "trust: claude-docker.yaml is not trusted yet — run `claude-docker trust`" in validated.stdout


def test_an_env_file_in_the_workspace_is_refused_before_the_agent_can_read_it(cd_home, tmp_path):
    """The env file holds notifier credentials and API keys; in the workspace the agent reads it."""
    secret = "WHsecret-" + os.urandom(8).hex()
    project = tmp_path / "project"
    project.mkdir()
    (project / "claude-docker.yaml").write_text(base_image_yaml() + SETTINGS + "env_file: .env\n")
    (project / ".env").write_text(f"HOOK_TOKEN={secret}\n")
    hand_to_agent(project)
    result = run_cli("up", "-f", str(project / "claude-docker.yaml"), "--", "--exec", "cat", "/workspace/.env")
    assert secret not in result.stdout + result.stderr, "the agent read the env file"
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert (
        f"{project}/claude-docker.yaml:8: env_file: {project}/.env lies inside the workspace {project}, "
        "where the agent can read it; move it outside the workspace, e.g. to ~/.claude-docker/.env"
    ) in result.stderr
