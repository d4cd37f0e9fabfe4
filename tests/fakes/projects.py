"""Throw-away projects for engine tests: a workspace, a claude-docker.yaml on the test base image."""

from __future__ import annotations

import ipaddress
import os
import subprocess
from pathlib import Path

from tests.support.testbed import base_image_yaml

AGENT_UID = 1000  # the uid the agent gets when tests run as root and the workspace is theirs


def make_project(root: Path, extra_yaml: str = "", *, firewall: bool = False, owner: int | None = AGENT_UID) -> Path:
    """A workspace dir holding claude-docker.yaml; returns the config file path.

    Owned by `owner` when running as root, so the agent (which takes the workspace owner's
    uid when `up` runs as root) can write there like it would in a user's checkout.
    """
    workspace = root / "ws"
    workspace.mkdir(parents=True)
    config = workspace / "claude-docker.yaml"
    network = "" if firewall else "network:\n  firewall: false\n"
    config.write_text(base_image_yaml() + network + extra_yaml)
    if os.getuid() == 0 and owner is not None:
        os.chown(workspace, owner, owner)
    return config


def bridge_gateway(docker_client) -> str:
    """The host's address on Docker's default bridge, as containers see it."""
    network = docker_client.api.inspect_network("bridge")
    for entry in (network.get("IPAM") or {}).get("Config") or []:
        if entry.get("Gateway"):
            return entry["Gateway"]
        if entry.get("Subnet"):
            return str(next(ipaddress.ip_network(entry["Subnet"]).hosts()))
    return "172.17.0.1"


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: int = 300, cwd: str | None = None, trust: bool = True
) -> subprocess.CompletedProcess:
    """Run the real `claude-docker` command (a subprocess, like a user would), stdin not a TTY.

    `up` and `build` get `--trust` (the test wrote the project's config, so it approves it) unless
    `trust=False`: that is how a test sees what a user who approved nothing would see.
    """
    if trust and args and args[0] in ("up", "build"):
        args = (args[0], "--trust", *args[1:])
    return subprocess.run(
        ["claude-docker", *args],
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
