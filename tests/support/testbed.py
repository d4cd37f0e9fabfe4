"""What the tests run on: the checkout, the engine under test and its test base image, and the
helpers tests share about them (conftest.py holds the fixtures; this module is what tests import)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
# Built by scripts/test-env.sh with debootstrap + docker import (no registry needed).
TEST_BASE_IMAGE = os.environ.get("CLAUDE_DOCKER_TEST_BASE", "claude-docker-test/debian:bookworm")
# The npm registry is behind a TLS-inspecting proxy here: containers must trust the host bundle.
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
TEST_LABEL = "dev.claude-docker.test"


def engine_required() -> bool:
    return os.environ.get("CLAUDE_DOCKER_REQUIRE_ENGINE") == "1"


def standard_image_config():
    """The product image on the local test base, trusting the host's CA bundle: what `up` builds
    for a project whose config names only these two (see base_image_yaml)."""
    from claude_docker.config.model import ImageConfig

    return ImageConfig(base=TEST_BASE_IMAGE, extra_ca_certificates=(HOST_CA_BUNDLE,))


# The test "internet" (HTTP/TLS servers the tests start) runs Node scripts. The product image has
# no Node by default (Claude Code is a native binary), so the servers get the same config with it.
def server_image_config():
    from claude_docker.config.model import ImageConfig

    return ImageConfig(base=TEST_BASE_IMAGE, extra_ca_certificates=(HOST_CA_BUNDLE,), node=True)


def is_podman(client) -> bool:
    """Whether the engine under test is Podman's Docker-compatible service."""
    components = client.version().get("Components") or []
    return any("podman" in str(component.get("Name", "")).lower() for component in components)


def base_image_yaml(extra: str = "") -> str:
    """The `image:` section every engine test uses: the local Debian base and the host CA bundle."""
    return (
        "image:\n"
        f"  base: {TEST_BASE_IMAGE}\n"
        f"  extra_ca_certificates: [{HOST_CA_BUNDLE}]\n"
        f"{extra}"
    )


def rootful_podman() -> str:
    """The podman binary for tests that drive Podman directly (as root); skip, or fail under CI."""
    import shutil

    binary = shutil.which("podman")
    if binary is None or os.getuid() != 0:
        message = "rootful podman is needed (scripts/test-env.sh installs it)"
        if engine_required():
            pytest.fail(message)
        pytest.skip(message)
    return binary


def copy_into_podman(binary: str, image: str, podman_image: str, env: dict[str, str] | None = None) -> None:
    """`docker save IMAGE | podman load`, unless Podman's store has it already (as PODMAN_IMAGE)."""
    import subprocess

    if subprocess.run([binary, "image", "exists", podman_image], env=env).returncode == 0:
        return
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    subprocess.run([binary, "load"], stdin=save.stdout, env=env, check=True, capture_output=True, timeout=600)
    assert save.wait(timeout=60) == 0
