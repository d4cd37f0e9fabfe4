"""Crash-consistent files: every file claude-docker writes goes through `write_atomic`.

A crash, a power cut or a killed process must never leave half a file behind: the next `up`
would read it and stop. So a file is written under a fresh name in the same directory
(created exclusively: never through a link someone planted), flushed to disk, and renamed
over the old one; then the directory entry is flushed too. Readers see the old file or the
new one, never a mix.

`set_aside` is the other half: a file found damaged is renamed, never deleted, so whatever
it still holds can be looked at later.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path


def write_atomic(
    path: Path, content: bytes, *, mode: int = 0o600, owner: tuple[int, int] | None = None, sync_parent: bool = True
) -> None:
    """Replace `path` with `content` (write, fsync, rename, fsync the directory). A caller that
    writes several files into one directory may pass `sync_parent=False` and flush the directory
    itself once, after the last rename (`sync_directory`)."""
    # `.tmp-` like the hooks' half-written outbox files, which the outbox sweep leaves alone while fresh
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if owner is not None:
            os.chown(tmp, *owner)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_parent:
        sync_directory(path.parent)


def sync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (best effort: some filesystems refuse)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def set_aside(path: Path, now: float | None = None) -> Path:
    """Rename a damaged file to `<name>.corrupt-<UTC time>` beside it (kept, never deleted)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    suffix = 1
    while target.exists() or target.is_symlink():
        suffix += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{suffix}")
    os.replace(path, target)
    sync_directory(path.parent)
    return target
