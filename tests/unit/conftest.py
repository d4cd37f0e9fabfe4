"""Unit tests: no engine. A unit test that asks for one fails here, whether an engine runs or not,
so `python3 -m pytest tests/unit` means the same on every machine."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def docker_client():
    pytest.fail("a unit test asked for an engine: it belongs in tests/engine/ or tests/e2e/")


@pytest.fixture(scope="session")
def server_image():
    pytest.fail("a unit test asked for an engine: it belongs in tests/engine/ or tests/e2e/")
