"""`doctor` against the fake engine: one line per check, the engine's refusals in words, and
the trial container removed whatever happened to it."""

from __future__ import annotations

import docker.errors
import pytest
import requests

from claude_docker import doctor
from claude_docker.engine import Engine, _translate
from tests.fakes.engine import FakeEngine, FakeImage, Run

BASE = "registry.example/debian:bookworm"


@pytest.fixture
def config_file(tmp_path, cd_home):
    path = tmp_path / "claude-docker.yaml"
    path.write_text(f"image:\n  base: {BASE}\n")
    return str(path)


def checks(config_file: str, engine: FakeEngine | None, monkeypatch) -> dict[str, doctor.Check]:
    if engine is None:
        def unreachable() -> Engine:
            raise _translate(requests.exceptions.ConnectionError(ConnectionRefusedError(111, "Connection refused")))

        monkeypatch.setattr(Engine, "connect", staticmethod(unreachable))
    else:
        monkeypatch.setattr(Engine, "connect", staticmethod(lambda: engine))
    return {check.name: check for check in doctor.run_checks(config_file)}


def test_a_working_engine_with_the_base_image_passes_and_the_trial_container_is_removed(config_file, monkeypatch):
    engine = FakeEngine({BASE: FakeImage()}, root_dir="/")
    found = checks(config_file, engine, monkeypatch)
    assert found["engine"].ok and "Docker 27.0.0-fake, API 1.47" in found["engine"].detail
    assert found["base image"].ok and found["base image"].detail == f"{BASE} is present"
    assert found["container start"].ok
    [trial] = engine.created
    assert trial.plan.command == ["true"] and trial.plan.cap_add == [] and engine.containers == {}
    assert found["free disk"].detail.endswith("GB free at /")


def test_podman_is_named(config_file, monkeypatch):
    found = checks(config_file, FakeEngine({BASE: FakeImage()}, product="Podman"), monkeypatch)
    assert "Podman 27.0.0-fake" in found["engine"].detail


def test_a_pullable_base_image_passes_without_a_trial_run(config_file, monkeypatch):
    engine = FakeEngine(pullable=(BASE,))
    found = checks(config_file, engine, monkeypatch)
    assert found["base image"].ok and found["base image"].detail == f"{BASE} is not present but can be pulled"
    assert "container start" not in found and not engine.created


def test_a_base_image_neither_present_nor_pullable_fails_with_the_reason(config_file, monkeypatch):
    found = checks(config_file, FakeEngine(), monkeypatch)
    assert not found["base image"].ok
    assert found["base image"].detail == f"{BASE} is neither present nor pullable (pull access denied for {BASE})"


def test_a_runtime_without_an_init_binary_fails_the_trial_with_what_to_install(config_file, monkeypatch):
    engine = FakeEngine({BASE: FakeImage()})
    response = requests.Response()
    response.status_code = 500
    engine.fail("start", docker.errors.APIError("500 Server Error", response, "container-init binary not found on the host"))
    found = checks(config_file, engine, monkeypatch)
    check = found["container start"]
    assert not check.ok and check.detail.startswith("the engine has no init binary for the container")
    assert "catatonit" in check.detail  # the hint comes along
    assert engine.containers == {}  # removed although it never started


def test_a_trial_container_that_exits_non_zero_fails(config_file, monkeypatch):
    engine = FakeEngine({BASE: FakeImage()}, behaviour=lambda plan: Run(127))
    check = checks(config_file, engine, monkeypatch)["container start"]
    assert not check.ok and check.detail == f"`true` in {BASE} exited with 127"


def test_an_unreachable_engine_fails_its_line_and_the_rest_still_runs(config_file, monkeypatch):
    found = checks(config_file, None, monkeypatch)
    assert not found["engine"].ok and found["engine"].detail.startswith("cannot reach the Docker engine")
    assert "start Docker" in found["engine"].detail
    assert "base image" not in found and "container start" not in found
    assert found["config"].ok and "free disk" in found and "credential" in found
