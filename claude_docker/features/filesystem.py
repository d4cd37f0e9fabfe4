"""The workspace and the user's mounts: what a session sees of the host's files.

Which host paths may be mounted at all is decided while the config is judged
(config/blocked_paths.py); here a workspace that contains a blocked path gets an empty
read-only mask over it (an empty directory or an empty file, bound over it), the config files
in the workspace stay read-only, and `filesystem.mounts` are added. Git protection has its own
feature (git.py).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Mapping, Sequence

from ..artifacts import Artifact
from ..config.blocked_paths import Locator, blocked_set, home_exempt, is_within, real
from ..config.model import Config
from ..errors import ConfigProblem
from ..runspec import RunSpec
from ..session import Session
from .base import EndedSession, RunContext

EMPTY_FILE = "empty"  # in the session dir: the mask over blocked files
EMPTY_DIR = "empty-dir"  # in the session dir: the mask over blocked directories


def check(config: Config, environ: Mapping[str, str], locate: Locator | None = None) -> list[ConfigProblem]:
    """The blocked-path rules are judged with the config (config/blocked_paths.py)."""
    return []


def runtime_artifacts(config: Config, session: Session) -> dict[str, Artifact]:
    return {}


def cleanup(ended: Sequence[EndedSession]) -> list[str]:
    for entry in ended:
        if entry.session is not None and entry.container_gone:
            (entry.session.session_dir / EMPTY_FILE).unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # kept if anything was put in it
                (entry.session.session_dir / EMPTY_DIR).rmdir()
    return []


def workspace_masks(cfg: Config, home: str | None = None) -> list[tuple[str, bool]]:
    """Container paths to hide inside the workspace: (path, is_directory) for each existing
    blocked path the workspace contains."""
    home = real(home or str(Path.home()))
    workspace = real(cfg.workspace.path)
    masks: dict[str, bool] = {}
    for blocked in blocked_set(cfg):
        if real(blocked) != blocked:
            continue  # masked by its resolved form; a mount target through a link would escape
        if blocked == workspace or not is_within(blocked, workspace) or home_exempt(workspace, blocked, home):
            continue
        if not os.path.lexists(blocked):
            continue  # nothing to hide; a mount point would create it on the host
        relative = os.path.relpath(blocked, workspace)
        target = os.path.join(cfg.workspace.mount_path, relative)
        masks[target] = os.path.isdir(blocked)
    return sorted(masks.items())


def contribute(ctx: RunContext, spec: RunSpec) -> None:
    """Add the workspace mount, masks over blocked paths inside it, the config files read-only,
    and `filesystem.mounts`."""
    cfg, session = ctx.config, ctx.session
    workspace = real(cfg.workspace.path)
    mount_path = cfg.workspace.mount_path
    spec.bind(workspace, mount_path, read_only=False)
    masks = workspace_masks(cfg, ctx.home)
    for target, is_dir in masks:
        # Moved aside with its parent, a blocked path would be out of the blocked list's reach
        # (and unmasked) at the next start: its parents are mount points, which cannot move.
        pin_directories(os.path.join(workspace, os.path.relpath(target, mount_path)), workspace, mount_path, spec)
        spec.bind(str(empty_dir(session) if is_dir else empty_file(session)), target, read_only=True)
    _protect_config(cfg, workspace, mount_path, spec, [target for target, is_dir in masks if is_dir])
    for mount in cfg.filesystem.mounts:
        spec.bind(real(mount.source), mount.target, read_only=mount.read_only)


def _protect_config(cfg: Config, workspace: str, mount_path: str, spec: RunSpec, masked: list[str]) -> None:
    """Keep the config files (the project file, profiles it extends) read-only when they lie in
    the workspace, as claude-docker.yaml does by default: an agent that could edit them could turn
    off the firewall, mount more of the host or add a notifier command that runs on the host.
    Bound over themselves, they can be neither edited nor renamed away and replaced. (Files that
    appear during a session are caught by trust.py; an env file in the workspace is refused.)"""
    taken = {mount.target for mount in spec.mounts}
    for host in dict.fromkeys((*cfg.source_files, cfg.env_file or "")):
        resolved = real(host) if host else ""
        if not os.path.isfile(resolved) or resolved == workspace or not is_within(resolved, workspace):
            continue
        target = os.path.join(mount_path, os.path.relpath(resolved, workspace))
        if target in taken or any(is_within(target, mask) for mask in masked):
            continue  # already read-only, or hidden inside a blocked path's mask
        taken.add(target)
        pin_directories(resolved, workspace, mount_path, spec)
        spec.bind(resolved, target, read_only=True)


def empty_file(session: Session) -> Path:
    """An empty read-only file to mount over blocked files. Not /dev/null: writes to a device
    succeed even on a read-only mount, and the agent should see the mask refuse them."""
    path = session.session_dir / EMPTY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o444)
    return path


def empty_dir(session: Session) -> Path:
    """An empty read-only directory to mount over blocked directories. Not a tmpfs: Podman fills a
    tmpfs mount with a copy of what lies under its mount point (its `tmpcopyup` default), so a
    tmpfs mask there would hold the very files it hides."""
    path = session.session_dir / EMPTY_DIR
    if not path.is_dir():
        path.mkdir(mode=0o555, parents=True)
    return path


def pin_directories(resolved: str, workspace: str, mount_path: str, spec: RunSpec) -> None:
    """Bind each directory between the workspace and `resolved` over itself, read-write. A mount
    point cannot be renamed; without this the agent could move the directory of a read-only file
    aside and rebuild it with a file of its own, which is what the host would then read."""
    taken = {mount.target for mount in spec.mounts}
    parts = os.path.relpath(os.path.dirname(resolved), workspace).split(os.sep)
    for depth in range(1, len(parts) + 1):
        if parts[:depth] == ["."]:
            break
        target = os.path.join(mount_path, *parts[:depth])
        if target not in taken:
            taken.add(target)
            spec.bind(os.path.join(workspace, *parts[:depth]), target, read_only=False)
