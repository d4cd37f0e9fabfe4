"""Locate the data that ships with the package (schema, profiles, container templates).

In a wheel they live under ``claude_docker/_data/``; in a checkout they are top-level
directories next to the package. One helper hides the difference.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def data_dir(name: str) -> Path:
    """Return the directory ``name`` (``schema``, ``profiles`` or ``container``)."""
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"claude-docker data directory {name!r} is missing from the installation")


def schema_path() -> Path:
    return data_dir("schema") / "claude-docker.schema.json"


def profiles_dir() -> Path:
    return data_dir("profiles")


def container_dir() -> Path:
    return data_dir("container")
