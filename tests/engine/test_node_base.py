"""A base image that already has Node and a `node` user at uid 1000, like node:22-bookworm-slim.

No registry is reachable here, so the base is made locally from the Debian test base the way the
official Node images are laid out: Node and npm installed, user `node` holding uid/gid 1000 — the
uid the agent takes when `up` runs as root.
"""

from __future__ import annotations

import io
import os

import pytest

from claude_docker import lifecycle
from claude_docker.config.pipeline import load_config
from claude_docker.engine import Engine
from tests.fakes.projects import AGENT_UID, run_cli
from tests.support.testbed import HOST_CA_BUNDLE, TEST_BASE_IMAGE

pytestmark = pytest.mark.docker

NODE_BASE_IMAGE = "claude-docker-test/node-base:bookworm"
NODE_BASE_DOCKERFILE = f"""FROM {TEST_BASE_IMAGE}
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null \\
 && rm -rf /var/lib/apt/lists/* \\
 && groupadd -g 1000 node && useradd -u 1000 -g 1000 -m -s /bin/bash node
"""


@pytest.fixture(scope="module")
def node_base(docker_client) -> str:
    """Built once and kept, like the Debian test base."""
    if not docker_client.images.list(name=NODE_BASE_IMAGE):
        docker_client.images.build(fileobj=io.BytesIO(NODE_BASE_DOCKERFILE.encode()), tag=NODE_BASE_IMAGE, rm=True)
    return NODE_BASE_IMAGE


@pytest.fixture
def node_project(tmp_path, cd_home, node_base):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    config = workspace / "claude-docker.yaml"
    config.write_text(
        "image:\n"
        f"  base: {node_base}\n"
        f"  extra_ca_certificates: [{HOST_CA_BUNDLE}]\n"
        "network:\n  firewall: false\n"
    )
    if os.getuid() == 0:
        os.chown(workspace, AGENT_UID, AGENT_UID)
    yield config
    lifecycle.down(Engine.connect(), load_config(str(config)).config.project_name)


def test_node_base_keeps_its_node_and_runs_claude(node_project):
    built = run_cli("build", "-f", str(node_project), timeout=1200)
    assert built.returncode == 0, built.stderr
    result = run_cli("up", "-f", str(node_project), "--", "--version", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Claude Code" in result.stdout


def test_agent_takes_the_uid_the_node_user_held(node_project):
    script = "id -un; id -u; getent passwd node || echo no-node-user; echo hi > by-agent.txt"
    result = run_cli("up", "-f", str(node_project), "--", "--exec", "bash", "-c", script, timeout=1200)
    assert result.returncode == 0, result.stderr
    name, uid, node_user = result.stdout.split("\n")[:3]
    expected_uid = os.getuid() or AGENT_UID
    assert (name, uid) == ("agent", str(expected_uid))
    if expected_uid == 1000:
        assert node_user == "no-node-user"  # the base's user made way for the agent
    made = node_project.parent / "by-agent.txt"
    assert made.stat().st_uid == expected_uid
