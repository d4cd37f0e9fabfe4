"""Progress of a running session, for `claude-docker logs --follow`.

`claude -p` prints nothing until the task is done. So that a detached task shows what it is
doing, Claude Code's hooks (claude_settings.progress_hooks, container/bin/hook-progress.j2) append
one short record per event to a per-session file: a tool about to run (PreToolUse) and a
finished turn (Stop, with the last assistant text). The host
reads that file beside the container's output; the output itself stays exactly what Claude
printed.

The file is written by the agent (the hooks run as the agent, and the agent can write the file
itself), so every byte of it is treated as hostile: the host opens it without following
symlinks and only when it is a regular file, reads a bounded amount from its end, skips lines
longer than a record can be, shows only fields it picked out itself, cuts each shown line
short and removes every control character (terminal escape sequences included) before
anything reaches the user's terminal. Nothing in it is ever run or obeyed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import time
import unicodedata
from pathlib import Path
from typing import Mapping, Sequence

from ..artifacts import Artifact
from ..config.blocked_paths import Locator
from ..config.model import Config
from ..contract import CONTAINER_PROGRESS, PROGRESS_FILE, PROGRESS_MAX_BYTES, PROGRESS_RECORD_BYTES
from ..errors import ConfigProblem
from ..runspec import RunSpec
from ..session import Session
from .base import EndedSession, RunContext, agent_writable_dir

MAX_RECORD_BYTES = PROGRESS_RECORD_BYTES  # the hook cuts a record here (plus its time stamp); longer lines are skipped
MAX_FILE_BYTES = PROGRESS_MAX_BYTES  # past this the hook moves the file to progress.jsonl.1
BACKLOG_BYTES = 64 * 1024  # what `logs --follow` reads from the end of the file when it starts
BACKLOG_LINES = 20  # ... and the most records it shows of that
MAX_READ_BYTES = 256 * 1024  # per poll: a file the agent grows fast cannot make the host read without end
MAX_SHOWN_CHARS = 160  # one shown line, after the time

# The field of a tool's input that says best what the call does.
_TOOL_SUBJECT = (
    "command", "file_path", "notebook_path", "path", "pattern", "url", "query", "description", "prompt", "skill",
)
_CSI_OR_OSC = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[PX^_][^\x1b]*(?:\x1b\\)?|.)", re.S)


# --- the container side ------------------------------------------------------------------------


def check(config: Config, environ: Mapping[str, str], locate: Locator | None = None) -> list[ConfigProblem]:
    return []


def runtime_artifacts(config: Config, session: Session) -> dict[str, Artifact]:
    return {}  # the hooks are in settings.json (claude_settings), the helper in the image


def contribute(ctx: RunContext, spec: RunSpec) -> None:
    """The session's progress dir, writable by the agent uid, at CONTAINER_PROGRESS."""
    agent_writable_dir(ctx.session.progress_dir, ctx)
    spec.bind(str(ctx.session.progress_dir), CONTAINER_PROGRESS, read_only=False)
    spec.env["CLAUDE_DOCKER_PROGRESS"] = CONTAINER_PROGRESS


def cleanup(ended: Sequence[EndedSession]) -> list[str]:
    """With the container gone nothing shows the records any more (a kept container's stay, for
    `logs` of the ended session)."""
    for entry in ended:
        if entry.session is not None and entry.container_gone:
            shutil.rmtree(entry.session.progress_dir, ignore_errors=True)
    return []


# --- the host side: attacker-written text to something safe to show ----------------------------


def clean(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """One line of plain text: escape sequences and every other control or format character
    (bidi overrides included) removed, whitespace runs folded, at most `limit` characters."""
    text = _CSI_OR_OSC.sub("", text)
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if char in "\t\n\r\v\f" or category in ("Zl", "Zp"):
            kept.append(" ")
        elif category[0] != "C":  # Cc control, Cf format, Cs surrogate, Co private use, Cn unassigned
            kept.append(char)
    folded = " ".join("".join(kept).split())
    return folded if len(folded) <= limit else folded[: limit - 3] + "..."


def _string_field(raw: str, key: str) -> str | None:
    """A string field found in a record the hook cut short (no longer valid JSON)."""
    match = re.search('"' + re.escape(key) + r'"\s*:\s*"((?:[^"\\]|\\.){0,2000})', raw)
    if match is None:
        return None
    try:
        return json.loads('"' + match.group(1) + '"')
    except ValueError:
        return match.group(1)


def _subject(tool_input: object) -> str:
    if not isinstance(tool_input, dict):
        return ""
    for key in _TOOL_SUBJECT:
        value = tool_input.get(key)
        if isinstance(value, str) and value.strip():
            return value
    for value in tool_input.values():
        if isinstance(value, str) and value.strip():
            return value
    return ""


def render(line: bytes) -> tuple[float | None, str] | None:
    """(when, what) for one record, or None when it says nothing this module knows how to show."""
    if len(line) > MAX_RECORD_BYTES + 32:
        return None
    text = line.decode("utf-8", errors="replace").strip()
    stamp_text, _, raw = text.partition(" ")
    stamp: float | None
    try:
        number = float(stamp_text)
        stamp = number if 0 < number < 1e11 else None  # nan, inf and nonsense included
    except ValueError:
        stamp, raw = None, text
    try:
        event = json.loads(raw)
    except ValueError:
        event = None
    if isinstance(event, dict):
        name = event.get("hook_event_name")
        tool, tool_input, message = event.get("tool_name"), event.get("tool_input"), event.get("last_assistant_message")
        subject = _subject(tool_input)
    else:  # cut at MAX_RECORD_BYTES: pick out what is there
        name, tool, message = _string_field(raw, "hook_event_name"), _string_field(raw, "tool_name"), _string_field(raw, "last_assistant_message")
        subject = next((found for key in _TOOL_SUBJECT if (found := _string_field(raw, key))), "")
    if name == "PreToolUse" and isinstance(tool, str) and clean(tool, 60):
        shown = clean(tool, 60)
        subject = clean(subject if isinstance(subject, str) else "", MAX_SHOWN_CHARS - len(shown) - 2)
        return stamp, f"{shown}: {subject}" if subject else shown
    if name == "Stop" and isinstance(message, str) and clean(message):
        return stamp, "Claude: " + clean(message, MAX_SHOWN_CHARS - 8)
    return None


def format_line(stamp: float | None, what: str) -> str:
    when = time.strftime("%H:%M:%S", time.localtime(stamp)) if stamp is not None else "--:--:--"
    return f"[{when}] {what}"


class ProgressReader:
    """Reads new records of one session's progress file, poll after poll.

    Keeps the file open, so a record written just before the hook moved the file aside
    (progress.jsonl → progress.jsonl.1) is still read; then goes on with the new file.
    """

    def __init__(self, session_dir: Path) -> None:
        self.path = session_dir / "progress" / PROGRESS_FILE
        self._fd: int | None = None
        self._inode: tuple[int, int] | None = None
        self._partial = b""
        self._skipping = False  # inside a line longer than a record can be

    def backlog(self) -> list[str]:
        """The newest records already written, as lines to show (at most BACKLOG_LINES)."""
        if not self._open(from_end=True):
            return []
        return self._read()[-BACKLOG_LINES:]

    def poll(self) -> list[str]:
        """Records written since the last call, as lines to show."""
        lines: list[str] = []
        if self._fd is None and not self._open(from_end=False):
            return lines
        lines += self._read()
        if self._replaced():
            lines += self._read()  # the rest of the old file, then the new one from its start
            self.close()
            if self._open(from_end=False):
                lines += self._read()
        return lines

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._inode, self._partial, self._skipping = None, None, b"", False

    def _open(self, from_end: bool) -> bool:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return False
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # a FIFO or device planted there: never read
            os.close(fd)
            return False
        self._fd, self._inode = fd, (info.st_dev, info.st_ino)
        if from_end and info.st_size > BACKLOG_BYTES:
            os.lseek(fd, info.st_size - BACKLOG_BYTES, os.SEEK_SET)
            self._skipping = True  # the first line read is a piece of one
        return True

    def _replaced(self) -> bool:
        try:
            info = os.lstat(self.path)
        except OSError:
            return False
        return (info.st_dev, info.st_ino) != self._inode

    def _read(self) -> list[str]:
        assert self._fd is not None
        try:
            data = os.read(self._fd, MAX_READ_BYTES)
        except OSError:
            return []
        shown: list[str] = []
        pieces = (self._partial + data).split(b"\n")
        self._partial = pieces.pop()
        for piece in pieces:
            if self._skipping:
                self._skipping = False
                continue
            rendered = render(piece)
            if rendered is not None:
                shown.append(format_line(*rendered))
        if len(self._partial) > MAX_RECORD_BYTES + 32:  # no record is this long: skip to its end
            self._partial, self._skipping = b"", True
        return shown
