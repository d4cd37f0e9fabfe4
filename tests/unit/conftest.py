"""Unit tests: no engine. Every unit test sees an engine address where nothing answers, and one
that asks for the engine fixture fails, whether an engine runs on this machine or not, so that
`python3 -m pytest tests/unit` means the same everywhere (tests/fakes/engine.py stands in)."""

from __future__ import annotations

import pytest

NO_ENGINE = "unix:///nonexistent/claude-docker-unit-tests.sock"


@pytest.fixture(autouse=True)
def no_engine(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)


@pytest.fixture(scope="session")
def docker_client():
    pytest.fail("a unit test asked for an engine: it belongs in tests/engine/ or tests/e2e/")


@pytest.fixture(scope="session")
def server_image():
    pytest.fail("a unit test asked for an engine: it belongs in tests/engine/ or tests/e2e/")
