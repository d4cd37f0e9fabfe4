"""Reading the session outbox: the files the in-container hooks and `notify` command write.

File names are `<epoch-ns>-<kind>-<pid>-<rand>.json` (a Claude Code hook event) or
`...-message-....txt` (text from the `notify` command). Writers create a dot-file and rename
it, so a visible name is always complete. The outbox is writable by the agent, so every file
is treated as hostile input: symlinks and non-regular files are refused (the host may run as
root and must never read a file the agent points it at), and size is capped.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..atomicfile import write_atomic
from ..model import NOTIFIER_EVENTS

MAX_EVENT_BYTES = 1024 * 1024
EVENT_NAME = re.compile(r"^(?P<ns>\d{1,20})-(?P<kind>[a-z_]{1,20})-[0-9A-Za-z_-]{0,40}\.(?P<ext>json|txt)$")

# Claude Code's hook_event_name → notifier event.
HOOK_TO_EVENT = {
    "Stop": "stop",
    "Notification": "notification",
    "StopFailure": "failure",
    "SessionEnd": "session_end",
}
MESSAGE_EVENT = "message"  # text sent with the in-container `notify` command
TEST_EVENT = "test"  # `claude-docker notify test`
ALWAYS_DELIVERED = ("failure", "session_end", TEST_EVENT)  # never held back by min_interval_seconds


@dataclass(frozen=True)
class Event:
    """One outbox entry, parsed. `problem` is set when the file cannot be delivered as is."""

    name: str  # file name inside the outbox (also the event's identity for delivery state)
    path: Path
    kind: str  # stop | notification | failure | session_end | message | test
    created_at: float  # seconds since the epoch, from the file name
    text: str = ""  # the last assistant message, the notification text or the `notify` text
    hook: dict = field(default_factory=dict)  # the raw hook event JSON, when there is one
    problem: str | None = None


def pending_names(outbox: Path) -> list[str]:
    """Complete event files, oldest first (names sort by creation time)."""
    try:
        names = os.listdir(outbox)
    except FileNotFoundError:
        return []
    return sorted((n for n in names if EVENT_NAME.match(n)), key=_sort_key)


def _sort_key(name: str) -> tuple[int, str]:
    return (int(name.split("-", 1)[0]), name)


def read_event(outbox: Path, name: str) -> Event:
    match = EVENT_NAME.match(name)
    if not match:
        raise ValueError(f"not an outbox file name: {name!r}")
    path = outbox / name
    created_at = int(match["ns"]) / 1e9
    kind = match["kind"]
    try:
        raw = _read_regular_file(path)
    except OSError as error:
        return Event(name, path, kind, created_at, problem=f"cannot read it safely: {error.strerror or error}")
    if match["ext"] == "txt":
        return Event(name, path, MESSAGE_EVENT, created_at, text=clean_text(raw.decode("utf-8", "replace")).strip())
    try:
        hook = json.loads(raw)
    except ValueError as error:
        return Event(name, path, kind, created_at, problem=f"not valid JSON ({error})")
    except RecursionError:  # `[[[[…` deeper than the parser's stack: it must not stop delivery
        return Event(name, path, kind, created_at, problem="not valid JSON (nested too deeply)")
    if not isinstance(hook, dict):
        return Event(name, path, kind, created_at, problem="not a JSON object")
    kind = HOOK_TO_EVENT.get(str(hook.get("hook_event_name")), kind)
    if kind not in NOTIFIER_EVENTS and kind not in (MESSAGE_EVENT, TEST_EVENT):
        return Event(name, path, kind, created_at, hook=hook, problem=f"unknown event kind {kind!r}")
    return Event(name, path, kind, created_at, text=_hook_text(hook), hook=hook)


def _hook_text(hook: dict) -> str:
    for key in ("last_assistant_message", "message", "error", "reason"):
        value = hook.get(key)
        if isinstance(value, str) and value.strip():
            return clean_text(value).strip()
    return ""


def clean_text(text: str) -> str:
    """Agent-written text made fit for every backend, so a crafted event cannot stop delivery:
    NUL bytes dropped (no program takes them in an argument or its environment) and lone
    surrogates replaced (JSON allows `\\ud800`; no encoder takes it)."""
    return text.replace("\0", "").encode("utf-8", "replace").decode("utf-8")


def _read_regular_file(path: Path) -> bytes:
    """Open without following symlinks, refuse anything but a regular file, cap the size."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as stream:
            return stream.read(MAX_EVENT_BYTES)
    finally:
        os.close(fd)


def write_event(outbox: Path, kind: str, payload: dict, now_ns: int | None = None) -> Path:
    """Write an event the way the in-container hook does (used by `notify test` and tests)."""
    import secrets
    import time

    outbox.mkdir(parents=True, exist_ok=True)
    name = f"{now_ns if now_ns is not None else time.time_ns()}-{kind}-{os.getpid()}-{secrets.token_hex(3)}.json"
    write_atomic(outbox / name, json.dumps(payload).encode())
    return outbox / name
