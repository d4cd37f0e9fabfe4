"""Reading the session outbox: the files the in-container hooks and `notify` command write.

File names are `<epoch-ns>-<kind>-<pid>-<rand>.json` (a Claude Code hook event) or
`...-message-....txt` (text from the `notify` command). Writers create a dot-file and rename
it, so a visible name is always complete. The outbox is writable by the agent, so every file
is treated as hostile input: symlinks and non-regular files are refused (the host may run as
root and must never read a file the agent points it at), and size is capped.

The outbox is a host directory, so what it keeps is capped too (`sweep_outbox`): files larger
than an event can be, directories and names that are no event are removed, and the events
themselves are cut to MAX_OUTBOX_FILES / MAX_OUTBOX_BYTES, the oldest dropped first.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..atomicfile import write_atomic
from ..contract import EVENT_KINDS, HOOK_EVENTS

MAX_EVENT_BYTES = 1024 * 1024  # what the in-container hook writes at most
MAX_OUTBOX_FILES = 256  # pending events kept; more than a session's caps can ever send
MAX_OUTBOX_BYTES = 16 * 1024 * 1024
MAX_BAD_FILES = 16  # unusable files kept aside as <name>.bad (each at most MAX_EVENT_BYTES)
STALE_TMP_SECONDS = 60  # a `.tmp-` file a writer has not renamed by then is abandoned
BAD_SUFFIX = ".bad"
EVENT_NAME = re.compile(r"^(?P<ns>\d{1,20})-(?P<kind>[a-z_]{1,20})-[0-9A-Za-z_-]{0,40}\.(?P<ext>json|txt)\Z")

MESSAGE_EVENT = "message"  # text sent with the in-container `notify` command
TEST_EVENT = "test"  # `claude-docker notify test`
# Debounce lanes (notifier.min_interval_seconds): within a lane a newer event supersedes an older
# one. A failure is not superseded by a later `stop`, but failures are debounced all the same:
# the agent can write any number of them. session_end, test and `notify "text"` (an explicit
# request, not a chatty hook) are in no lane: only the caps hold them back (see delivery).
DEBOUNCE_LANES = {"stop": "turn", "notification": "turn", "failure": "failure"}


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
    kind = HOOK_EVENTS.get(str(hook.get("hook_event_name")), kind)
    if kind not in EVENT_KINDS and kind not in (MESSAGE_EVENT, TEST_EVENT):
        return Event(name, path, kind, created_at, hook=hook, problem=f"unknown event kind {kind!r}")
    return Event(name, path, kind, created_at, text=_hook_text(hook), hook=hook)


def _hook_text(hook: dict) -> str:
    # SessionEnd's `reason` (clear, logout, prompt_input_exit, other) is a code, not a message.
    keys: tuple[str, ...] = ("last_assistant_message", "message", "error")
    if hook.get("hook_event_name") != "SessionEnd":
        keys += ("reason",)
    for key in keys:
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


@dataclass
class Sweep:
    """What `sweep_outbox` removed: entries that are no event, and events over the limits."""

    removed: list[str] = field(default_factory=list)  # names (not events, or unusable beyond the cap)
    dropped: dict[str, int] = field(default_factory=dict)  # event kind -> files dropped
    oversized: list[str] = field(default_factory=list)  # event names larger than MAX_EVENT_BYTES


def sweep_outbox(outbox: Path, now: float, final: bool = False) -> Sweep:
    """Cap what the outbox keeps on the host's disk. `final`: no writer is left (the container
    is gone), so half-written `.tmp-` files go too.

    Nothing here is read or followed: entries are judged by lstat and removed by name.
    """
    result = Sweep()
    try:
        entries = list(os.scandir(outbox))
    except FileNotFoundError:
        return result
    events: list[tuple[tuple[int, str], str, int]] = []  # (sort key, name, size)
    bad: list[tuple[float, str, int]] = []
    for entry in entries:
        name = entry.name
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        is_dir = stat.S_ISDIR(info.st_mode)
        match = EVENT_NAME.match(name)
        if match and not is_dir:
            if stat.S_ISREG(info.st_mode) and info.st_size > MAX_EVENT_BYTES:
                _remove(outbox / name, is_dir)
                result.oversized.append(name)
                _count(result.dropped, match["kind"])
            else:
                events.append((_sort_key(name), name, info.st_size))
        elif name.endswith(BAD_SUFFIX) and not is_dir and info.st_size <= MAX_EVENT_BYTES:
            bad.append((info.st_mtime, name, info.st_size))
        elif name.startswith(".tmp-") and not is_dir and info.st_size <= MAX_EVENT_BYTES and not final \
                and abs(now - info.st_mtime) < STALE_TMP_SECONDS:
            continue  # a hook is writing it right now
        else:
            _remove(outbox / name, is_dir)
            result.removed.append(name)
    events.sort()
    total = sum(size for _, _, size in events)
    excess = max(0, len(events) - MAX_OUTBOX_FILES)
    for index, (_, name, size) in enumerate(events):
        if index >= excess and total <= MAX_OUTBOX_BYTES:
            break
        _remove(outbox / name, False)
        total -= size
        match = EVENT_NAME.match(name)
        _count(result.dropped, match["kind"] if match else "?")
    for _, name, _ in sorted(bad, reverse=True)[MAX_BAD_FILES:]:
        _remove(outbox / name, False)
        result.removed.append(name)
    return result


def _count(counts: dict[str, int], kind: str) -> None:
    counts[kind] = counts.get(kind, 0) + 1


def _remove(path: Path, is_dir: bool) -> None:
    """Remove one entry without following links (rmtree refuses to descend through one)."""
    try:
        if is_dir:
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass
    except OSError:
        try:
            path.unlink()  # a directory swapped for a link meanwhile
        except OSError:
            pass


def write_event(outbox: Path, kind: str, payload: dict, now_ns: int | None = None) -> Path:
    """Write an event the way the in-container hook does (used by `notify test` and tests)."""
    import secrets
    import time

    outbox.mkdir(parents=True, exist_ok=True)
    name = f"{now_ns if now_ns is not None else time.time_ns()}-{kind}-{os.getpid()}-{secrets.token_hex(3)}.json"
    write_atomic(outbox / name, json.dumps(payload).encode())
    return outbox / name
