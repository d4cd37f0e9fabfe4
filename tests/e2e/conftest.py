"""End-to-end tests: every test here runs the real Claude Code binary in a container (against the
scripted API stand-in), so each is marked `e2e` and checks the engine before it runs."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.e2e)
