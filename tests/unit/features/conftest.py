"""Fixtures of the feature tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def host_home(tmp_path, monkeypatch) -> Path:
    """A home of the test's own (with a project directory in it) as $HOME."""
    home = tmp_path / "home"
    (home / "proj").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    return home
