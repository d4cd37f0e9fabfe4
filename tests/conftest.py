"""Shared fixtures. Tests live in three directories, each with its own conftest:
tests/unit/ (no engine), tests/engine/ (marked `docker`: a real engine) and tests/e2e/ (marked
`e2e`: the real Claude Code binary in a container).

With CLAUDE_DOCKER_REQUIRE_ENGINE=1 (set by the README's test command under CI), a missing
engine fails those tests instead of skipping them.
"""

from __future__ import annotations

import os

import pytest

from tests.support.testbed import (
    REPO_ROOT,
    TEST_BASE_IMAGE,
    engine_required,
    server_image_config,
    standard_image_config,
)

# Fixtures shared by the engine and end-to-end tests, kept in modules of their own.
pytest_plugins = ["tests.support.sandbox", "tests.support.keys"]

# Subprocesses (the `claude-docker` command, the detached notifier watcher) run this checkout's
# code, whichever checkout the console script was last installed from.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))


@pytest.fixture(scope="session")
def docker_client():
    """A pinged Docker SDK client, or skip (fail under CLAUDE_DOCKER_REQUIRE_ENGINE=1)."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as error:  # any reason the engine does not answer
        message = f"no Docker engine answers: {error}"
        if engine_required():
            pytest.fail(message)
        pytest.skip(message)
    if not client.images.list(name=TEST_BASE_IMAGE):
        message = f"test base image {TEST_BASE_IMAGE} is missing: run scripts/test-env.sh"
        if engine_required():
            pytest.fail(message)
        pytest.skip(message)
    _build_standard_image(client)
    return client


def _build_standard_image(client) -> None:
    """Build the image most engine tests share, once, before the first of them runs.

    On a fresh machine this is the slow part (apt, npm, Claude Code); doing it here keeps it out
    of the time limits of the individual tests' `claude-docker up` subprocesses.
    """
    import sys

    from claude_docker.engine import Engine
    from claude_docker.imagebuild import ensure_image

    result = ensure_image(Engine(client), standard_image_config(), on_output=lambda line: print(line, file=sys.stderr))
    if result.built:
        print(f"built the standard test image {result.tag}", file=sys.stderr)


@pytest.fixture(scope="session")
def server_image(docker_client) -> str:
    """The image the tests' own servers run in: the product image with Node."""
    from claude_docker.engine import Engine
    from claude_docker.imagebuild import ensure_image

    return ensure_image(Engine(docker_client), server_image_config()).tag


@pytest.hookimpl(trylast=True)  # after the directory conftests have marked their tests
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every `docker`/`e2e` test checks the engine first, even if it never names the fixture."""
    for item in items:
        if item.get_closest_marker("docker") or item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.usefixtures("docker_client"))


@pytest.fixture(scope="module")
def engine(docker_client):
    """The product's Engine on the engine under test."""
    from claude_docker.engine import Engine

    return Engine(docker_client)


@pytest.fixture
def twilio(monkeypatch):
    """A running Twilio stand-in with a fresh token, its credentials in ${TW_SID} and ${TW_TOKEN},
    and the sender's retry backoff shortened to keep tests quick."""
    import secrets

    from tests.fakes.twilio import FakeTwilio

    monkeypatch.setattr("claude_docker.notify.twilio.FIRST_BACKOFF_SECONDS", 0.002)
    fake = FakeTwilio(auth_token="TWsecret" + secrets.token_hex(12)).start()
    monkeypatch.setenv("TW_SID", fake.account_sid)
    monkeypatch.setenv("TW_TOKEN", fake.auth_token)
    yield fake
    fake.stop()


@pytest.fixture
def cd_home(tmp_path, monkeypatch):
    """An isolated CLAUDE_DOCKER_HOME so tests never touch the user's state."""
    home = tmp_path / "cd-home"
    home.mkdir()
    monkeypatch.setenv("CLAUDE_DOCKER_HOME", str(home))
    return home


