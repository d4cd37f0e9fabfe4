"""Podman as an engine: what `doctor` and `up` say when Podman cannot start a container.

Each test starts its own `podman system service` on a private socket with the containers.conf
under test, so the refusals are Podman's own, not simulated.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import docker
import pytest

from claude_docker.engine import _hard_limits, _translate
from tests.fakes.projects import make_project, run_cli
from tests.support.testbed import TEST_BASE_IMAGE, copy_into_podman, rootful_podman
from tests.support.wait import wait_for

pytestmark = pytest.mark.docker

# What nothing can set: a nofile limit above the kernel's nr_open ceiling.
OVER_THE_CEILING = int(Path("/proc/sys/fs/nr_open").read_text()) + 1


def _fits_this_host() -> str:
    """The limits doctor's hint proposes for this host."""
    nofile, nproc = _hard_limits()
    return f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'


@pytest.fixture(scope="module")
def podman() -> str:
    binary = rootful_podman()
    copy_into_podman(binary, TEST_BASE_IMAGE, _podman_name(TEST_BASE_IMAGE))
    return binary


def _podman_name(image: str) -> str:
    return image if image.startswith("localhost/") else f"localhost/{image}"


@pytest.fixture
def podman_service(podman, tmp_path):
    """Start a Podman service with the given containers.conf body; yields its DOCKER_HOST."""
    started: list[subprocess.Popen] = []

    def start(conf_body: str) -> str:
        conf = tmp_path / f"containers-{len(started)}.conf"
        conf.write_text("[containers]\n" + conf_body)
        socket = tmp_path / f"podman-{len(started)}.sock"
        process = subprocess.Popen(
            [podman, "system", "service", "--time=0", f"unix://{socket}"],
            env={**os.environ, "CONTAINERS_CONF": str(conf)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        host = f"unix://{socket}"

        def answers() -> bool:
            try:
                return bool(docker.DockerClient(base_url=host).ping())
            except Exception:
                assert process.poll() is None, f"podman system service ended without answering on {host}"
                return False

        assert wait_for(answers, 30, interval=0.2), f"podman system service did not answer on {host}"
        return host

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=30)


def _project(tmp_path: Path) -> Path:
    config = make_project(tmp_path)
    config.write_text(config.read_text().replace(f"base: {TEST_BASE_IMAGE}", f"base: {_podman_name(TEST_BASE_IMAGE)}"))
    return config


def test_doctor_names_podman_and_proves_a_container_starts(podman_service, tmp_path, cd_home):
    host = podman_service(_fits_this_host())
    result = run_cli("doctor", "-f", str(_project(tmp_path)), env={"DOCKER_HOST": host}, timeout=120)
    lines = {line.split(":")[0].split(None, 1)[1]: line for line in result.stdout.splitlines()}
    assert lines["engine"].startswith("ok") and "Podman 4." in lines["engine"], result.stdout
    assert lines["container start"].startswith("ok"), result.stdout + result.stderr


def test_ulimits_over_the_hosts_limits_are_named_with_the_fix(podman_service, tmp_path, cd_home):
    """Podman's defaults can exceed the host's hard limits; the engine then says "permission denied"."""
    config = _project(tmp_path)
    # The image comes from a service that can build it (both share Podman's store).
    build = run_cli("build", "-f", str(config), env={"DOCKER_HOST": podman_service(_fits_this_host())}, timeout=900)
    assert build.returncode == 0, build.stdout + build.stderr
    host = podman_service(f'default_ulimits = ["nofile={OVER_THE_CEILING}:{OVER_THE_CEILING}"]\n')

    doctor = run_cli("doctor", "-f", str(config), env={"DOCKER_HOST": host}, timeout=120)
    [line] = [line for line in doctor.stdout.splitlines() if line.startswith("FAIL container start")]
    assert "default ulimits" in line and "default_ulimits = [" in line and "containers.conf" in line
    assert doctor.returncode == 1

    started = time.monotonic()
    up = run_cli("up", "-f", str(config), "--", "--version", env={"DOCKER_HOST": host}, timeout=600)
    assert up.returncode == 1, up.stdout + up.stderr
    assert "error: the container runtime could not apply the engine's default ulimits" in up.stderr
    assert "default_ulimits" in up.stderr
    assert "docker` group" not in up.stderr and "cannot reach" not in up.stderr and "Traceback" not in up.stderr
    assert time.monotonic() - started < 590


def test_a_missing_init_binary_names_catatonit():
    """The words Podman 4.3 answers container create with when catatonit is not installed."""
    error = docker.errors.APIError(
        "500 Server Error: Internal Server Error",
        explanation='container create: container-init binary not found on the host: stat /usr/libexec/podman/catatonit: no such file or directory',
    )
    translated = _translate(error)
    assert translated.message.startswith("the engine has no init binary for the container")
    assert "catatonit" in (translated.hint or "") and "cannot reach" not in translated.message
