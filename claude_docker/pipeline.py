"""find → load → interpolate → validate each file → merge along `extends` → validate → model.

(The full pipeline is assembled from loader, interpolate, profiles, merge and validate.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from .model import Config


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    merged: dict  # the merged, interpolated document (what `claude-docker config` prints)
    chain: tuple[str, ...]  # profile chain for display: built-in names or file paths, base first


def load_config(
    config_file: str | None = None,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoadedConfig:
    """Find and load the configuration; raises ConfigError listing every problem."""
    raise NotImplementedError
