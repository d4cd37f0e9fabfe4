"""Which config files the user has approved, per project, by content hash.

The agent can write anywhere in its workspace. A config file there (the project file, a profile
it extends, an env file) that the host acted on without asking would let the agent switch off
the firewall, mount more of the host, copy host files into the image or add a notifier command
that runs on the host. So every file the config pipeline read that lies in the workspace (or in
the project file's directory) must match the hash recorded when the user last approved it:
`claude-docker trust` shows what changed and records it, `up --trust` records and goes on.

The record lives in the project's state dir under `$CLAUDE_DOCKER_HOME`, which never enters the
container. Files elsewhere (the per-user config and what it extends, profiles outside the
project) are the user's own and need no approval.

A fresh clone with a committed claude-docker.yaml needs one `trust` too: a file someone else
committed is as able to run commands on this host as one the agent wrote.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from .. import paths
from ..config.blocked_paths import is_within, real
from ..config.model import Config
from ..errors import ClaudeDockerError

RECORD_NAME = "trusted.json"
TRUSTED, NEW, CHANGED = "trusted", "new", "changed"
_STATE_TEXT = {NEW: "is not trusted yet", CHANGED: "changed since last trusted"}
_MAX_RECORDED_TEXT = 256 * 1024  # larger files are recorded by hash only (no diff later)


@dataclass(frozen=True)
class FileTrust:
    path: str  # the file's real path
    state: str  # TRUSTED, NEW or CHANGED
    digest: str
    text: str | None  # what the pipeline read; None for a file that holds secrets
    previous_text: str | None  # what was approved last (when recorded)

    @property
    def display(self) -> str:
        return display_path(self.path)


def display_path(path: str) -> str:
    """Relative to the current directory when inside it (as the user typed it), else absolute."""
    cwd = os.getcwd()
    return os.path.relpath(path, cwd) if is_within(path, cwd) and path != cwd else path


def record_path(cfg: Config) -> Path:
    return paths.project_state_dir(cfg.project_name) / RECORD_NAME


def files_to_trust(cfg: Config) -> list[tuple[str, bool]]:
    """(real path, holds secrets) of every existing file the pipeline read from a directory the
    agent may write: the workspace, and the project file's directory (a planted file could
    point `workspace.path` elsewhere and so lie outside its own workspace)."""
    roots = {real(cfg.workspace.path), real(cfg.project_dir)}
    state_home = real(str(paths.claude_docker_home()))  # never mounted: the user's own
    found: dict[str, bool] = {}
    candidates = [(path, False) for path in cfg.source_files]
    if cfg.env_file:
        candidates.append((cfg.env_file, True))
    for path, secret in candidates:
        resolved = real(path)
        if not os.path.isfile(resolved) or is_within(resolved, state_home):
            continue
        if any(is_within(resolved, root) for root in roots):
            found[resolved] = found.get(resolved, False) or secret
    return list(found.items())


def _read_record(cfg: Config) -> dict[str, dict]:
    try:
        data = json.loads(record_path(cfg).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return files if isinstance(files, dict) else {}


def check(cfg: Config, digests: Mapping[str, str] | None = None) -> list[FileTrust]:
    """The approval state of each file that needs one. `digests` (LoadedConfig.digests) are the
    hashes of what the pipeline parsed: a file swapped after it was read is judged by what was
    read, not by what is there now."""
    recorded = _read_record(cfg)
    result = []
    for path, secret in files_to_trust(cfg):
        try:
            content = Path(path).read_bytes()
        except OSError as error:
            raise ClaudeDockerError(f"cannot read {path}: {error.strerror}") from None
        digest = (digests or {}).get(path) or hashlib.sha256(content).hexdigest()
        entry = recorded.get(path)
        if not isinstance(entry, dict):
            state, previous = NEW, None
        else:
            state = TRUSTED if entry.get("sha256") == digest else CHANGED
            previous = entry.get("text") if isinstance(entry.get("text"), str) else None
        text = None if secret else content.decode("utf-8", errors="replace")
        result.append(FileTrust(path, state, digest, text, previous))
    return result


def untrusted(cfg: Config, digests: Mapping[str, str] | None = None) -> list[FileTrust]:
    return [entry for entry in check(cfg, digests) if entry.state != TRUSTED]


def status_lines(cfg: Config) -> list[str]:
    """One line per file that needs approval, for `validate`."""
    return [
        f"trust: {entry.display} {_STATE_TEXT[entry.state]} — run `claude-docker trust`" for entry in untrusted(cfg)
    ]


def require(cfg: Config, digests: Mapping[str, str] | None = None) -> None:
    """Refuse to act on config files in the workspace the user has not approved as they are."""
    pending = untrusted(cfg, digests)
    if not pending:
        return
    names = ", ".join(
        f"{entry.display} ({'new' if entry.state == NEW else 'changed since last trusted'})" for entry in pending
    )
    raise ClaudeDockerError(
        f"not trusted: {names}; config files in the workspace, where the agent can write, "
        "need your approval before the host acts on them",
        "review them, then run `claude-docker trust` (or `claude-docker up --trust`)",
    )


def describe(entry: FileTrust) -> str:
    """What approving `entry` means: the whole file when new, a diff when changed."""
    if entry.text is None:
        return f"{entry.display}: {'new' if entry.state == NEW else 'changed'} (it holds secrets; not shown)\n"
    if entry.state == CHANGED and entry.previous_text is not None:
        diff = difflib.unified_diff(
            entry.previous_text.splitlines(keepends=True),
            entry.text.splitlines(keepends=True),
            f"{entry.display} (last trusted)",
            entry.display,
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in diff)
    header = f"--- {entry.display} ({'new' if entry.state == NEW else 'changed'})\n"
    body = entry.text if entry.text.endswith("\n") or not entry.text else entry.text + "\n"
    return header + body


def record(cfg: Config, entries: list[FileTrust]) -> None:
    """Record `entries` as approved, as they were read (the hash of what was shown)."""
    recorded = _read_record(cfg)
    for entry in entries:
        text = entry.text if entry.text is not None and len(entry.text) <= _MAX_RECORDED_TEXT else None
        recorded[entry.path] = {"sha256": entry.digest, **({"text": text} if text is not None else {})}
    target = record_path(cfg)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = target.with_name(f".{RECORD_NAME}.{os.getpid()}")
    temporary.write_text(json.dumps({"files": recorded}, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(temporary, target)
