"""Durable delivery of one session's outbox: at least once, never silently dropped.

An event file leaves the outbox only after every target accepted it. Which targets already
accepted which event is kept in `notify-state.json` next to (not inside) the outbox, so the
agent cannot tamper with it and a retry never repeats a delivery that worked. Every outcome
goes to `notify.log` in the session directory (what `claude-docker logs` shows) and failures
also go to the `report` callback (stderr in the CLI).

Debounce (`notifier.min_interval_seconds`, per session): `stop`, `notification` and `message`
events are held while the last message is younger than the interval; when several are held,
only the newest is sent (the older ones are logged as superseded). `failure`, `session_end`
and `test` are never held back by the interval. `session_end` is sent by the final flush at
the end of the session (it comes last anyway, and then the container's exit code is known),
which also sends the newest held event without waiting.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from ..atomicfile import set_aside, write_atomic
from ..errors import ClaudeDockerError, NotifyError
from ..model import NotifierConfig
from .backends import Backend, backends_for
from .events import ALWAYS_DELIVERED, MESSAGE_EVENT, TEST_EVENT, Event, pending_names, read_event
from .message import MessageContext, render_message

STATE_FILE = "notify-state.json"
LOG_FILE = "notify.log"
LOCK_FILE = "notify.lock"  # held while one process delivers
LIVE_FILE = "notify.live"  # held for the whole life of a session's notifier
# The agent can fill the outbox, and each file (up to 1 MiB) may parse to ~25 MB of objects: a
# pass reads the oldest few only; the final flush repeats passes while they make progress.
MAX_EVENTS_PER_PASS = 16
RETRY_FIRST_SECONDS = 5.0
RETRY_MAX_SECONDS = 300.0

Report = Callable[[str], None]


def stderr_report(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class Outcome:
    """What one pass did, for `notify flush` and tests."""

    delivered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # event names kept for a later attempt
    held: list[str] = field(default_factory=list)  # waiting for min_interval_seconds
    skipped: list[str] = field(default_factory=list)  # not in notifier.on, or superseded
    unreadable: list[str] = field(default_factory=list)  # kept as <name>.bad
    busy: bool = False  # another process was delivering this outbox


class SessionDelivery:
    """Delivers one session's outbox. Safe to call from a thread and from several processes."""

    def __init__(
        self,
        notifier: NotifierConfig,
        project: str,
        session_id: str,
        session_dir: Path,
        backends: list[Backend] | None = None,
        report: Report = stderr_report,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.notifier = notifier
        self.project = project
        self.session_id = session_id
        self.session_dir = session_dir
        self.outbox = session_dir / "outbox"
        self.backends = backends if backends is not None else backends_for(notifier)
        self.report = report
        self.clock = clock
        self._thread_lock = threading.Lock()
        self._retry_at: dict[str, float] = {}
        self._failures: dict[str, int] = {}

    # --- state -----------------------------------------------------------------------------

    def _load_state(self) -> dict:
        path = self.session_dir / STATE_FILE
        problem = None
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            state = {}
        except ValueError as error:  # cut short (a crash before writes were atomic) or edited by hand
            problem, state = str(error), {}
        if not isinstance(state, dict):
            problem, state = "not a JSON object", {}
        if problem is not None:
            kept = set_aside(path)
            self.log("-", "ERROR", f"{path} is damaged ({problem}); kept it as {kept} and started afresh")
        state.setdefault("delivered", {})
        return state

    def _save_state(self, state: dict) -> None:
        write_atomic(self.session_dir / STATE_FILE, json.dumps(state, sort_keys=True).encode())

    def mark_started(self, started_at: float | None = None) -> None:
        with self._locked(wait=True):
            state = self._load_state()
            if "started_at" not in state:
                state["started_at"] = started_at if started_at is not None else self.clock()
                self._save_state(state)

    def set_exit_code(self, exit_code: int | None) -> None:
        with self._locked(wait=True):
            state = self._load_state()
            state["exit_code"] = exit_code
            self._save_state(state)

    def mark_closed(self) -> None:
        """The session's final flush is done: a watcher standing by has nothing to take over."""
        with self._locked(wait=True):
            state = self._load_state()
            state["closed"] = True
            self._save_state(state)

    @property
    def closed(self) -> bool:
        with self._locked(wait=True):
            return bool(self._load_state().get("closed"))

    @property
    def exit_code_known(self) -> bool:
        with self._locked(wait=True):
            return self._load_state().get("exit_code") is not None

    def log(self, event: str, level: str, text: str) -> None:
        stamp = datetime.fromtimestamp(self.clock(), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        line = f"{stamp} {level} session={self.session_id} event={event} {text}"
        with open(self.session_dir / LOG_FILE, "a", encoding="utf-8") as log:
            log.write(line.replace("\n", " ") + "\n")
        if level == "ERROR":
            self.report(f"notify: {text}")

    @contextlib.contextmanager
    def _locked(self, wait: bool = False) -> Iterator[bool]:
        """Process-wide and cross-process exclusion; yields False when another process holds it."""
        self.session_dir.mkdir(parents=True, exist_ok=True)
        with self._thread_lock, open(self.session_dir / LOCK_FILE, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # --- delivery --------------------------------------------------------------------------

    def deliver(self, final: bool = False) -> Outcome:
        """One pass over the outbox. `final`: the session is over, send held events now (in as
        many passes as it takes)."""
        outcome = self._deliver_pass(final)
        while final and not outcome.busy:
            more = self._deliver_pass(final)
            for name in ("delivered", "failed", "held", "skipped", "unreadable"):
                seen = getattr(outcome, name)
                seen.extend(event for event in getattr(more, name) if event not in seen)
            if not (more.delivered or more.skipped or more.unreadable):
                break  # nothing left, or only what keeps failing
        return outcome

    def _deliver_pass(self, final: bool) -> Outcome:
        outcome = Outcome()
        with self._locked(wait=final) as locked:
            if not locked:
                outcome.busy = True
                return outcome
            state = self._load_state()
            events = [read_event(self.outbox, name) for name in pending_names(self.outbox)[:MAX_EVENTS_PER_PASS]]
            wanted: list[Event] = []
            for event in events:
                if event.problem:
                    self._quarantine(event, outcome)
                elif event.kind in self.notifier.on or event.kind in (MESSAGE_EVENT, TEST_EVENT):
                    wanted.append(event)
                else:
                    self._discard(event, state, f"skipped: '{event.kind}' is not in notifier.on")
                    outcome.skipped.append(event.name)
            held = [e for e in wanted if e.kind not in ALWAYS_DELIVERED]
            debounce = self.notifier.min_interval_seconds > 0
            for older in held[:-1] if debounce else ():
                self._discard(older, state, "superseded by a later event (notifier.min_interval_seconds)")
                outcome.skipped.append(older.name)
            due = [e for e in wanted if e.kind in ALWAYS_DELIVERED]
            if not final:  # session_end waits for the final flush, which knows the exit code
                outcome.held.extend(e.name for e in due if e.kind == "session_end")
                due = [e for e in due if e.kind != "session_end"]
            if held and not debounce:
                due.extend(held)
            elif held:
                newest = held[-1]
                last = state.get("last_sent_at")
                if final or last is None or self.clock() - last >= self.notifier.min_interval_seconds:
                    due.append(newest)
                else:
                    outcome.held.append(newest.name)
            for event in sorted(due, key=lambda e: (e.created_at, e.name)):
                if not final and self._retry_at.get(event.name, 0) > self.clock():
                    outcome.failed.append(event.name)
                    continue
                self._send(event, state, outcome)
            self._save_state(state)
        return outcome

    def _send(self, event: Event, state: dict, outcome: Outcome) -> None:
        if not self.backends:
            outcome.failed.append(event.name)
            return
        context = MessageContext(
            project=self.project,
            session=self.session_id,
            event=event,
            started_at=state.get("started_at"),
            exit_code=state.get("exit_code") if event.kind in ("session_end", "failure", TEST_EVENT) else None,
        )
        try:
            text = render_message(self.notifier.template, context)
        except ClaudeDockerError as error:
            self.log(event.name, "ERROR", f"{error.message} ({error.hint})")
            outcome.failed.append(event.name)
            return
        payload = message_payload(context, text)
        done: list[str] = state["delivered"].setdefault(event.name, [])
        all_ok = True
        for backend in self.backends:
            if backend.key in done:
                continue
            try:
                receipt = backend.send(text, payload)
            except NotifyError as error:
                all_ok = False
                hint = f" — {error.hint}" if error.hint else ""
                self.log(event.name, "ERROR", f"{event.kind} not delivered: {error.message}{hint}")
                continue
            done.append(backend.key)
            self._save_state(state)
            self.log(event.name, "INFO", f"{event.kind} → {backend.label}: {receipt}")
        if all_ok:
            state["delivered"].pop(event.name, None)
            state["last_sent_at"] = self.clock()
            event.path.unlink(missing_ok=True)
            self._retry_at.pop(event.name, None)
            self._failures.pop(event.name, None)
            outcome.delivered.append(event.name)
        else:
            failures = self._failures.get(event.name, 0) + 1
            self._failures[event.name] = failures
            self._retry_at[event.name] = self.clock() + min(
                RETRY_FIRST_SECONDS * 2 ** (failures - 1), RETRY_MAX_SECONDS
            )
            outcome.failed.append(event.name)

    def _discard(self, event: Event, state: dict, why: str) -> None:
        self.log(event.name, "INFO", why)
        state["delivered"].pop(event.name, None)
        event.path.unlink(missing_ok=True)

    def _quarantine(self, event: Event, outcome: Outcome) -> None:
        """Keep an undeliverable file (renamed out of the queue) and say so loudly."""
        target = event.path.with_name(event.name + ".bad")
        with contextlib.suppress(OSError):
            os.replace(event.path, target)
        self.log(event.name, "ERROR", f"outbox file {event.name} is unusable: {event.problem}; kept as {target}")
        outcome.unreadable.append(event.name)


def message_payload(context: MessageContext, text: str) -> dict:
    """What webhooks and commands receive: the rendered text plus the structured event."""
    variables = context.variables(context.event.text)
    return {
        "text": text,
        "project": context.project,
        "session": context.session,
        "event": context.event.kind,
        "created_at": datetime.fromtimestamp(context.event.created_at, timezone.utc).isoformat(),
        "last_message": context.event.text,
        "duration_seconds": variables["duration_seconds"],
        "exit_code": context.exit_code,
        "hook": context.event.hook,
    }


@contextlib.contextmanager
def holding_live_lock(session_dir: Path, wait: bool = False) -> Iterator[None]:
    """Marks a session whose notifier is running, so other processes leave its outbox alone.

    One owner at a time: `wait=True` blocks until the current owner is gone (it let go, or its
    process ended in any way: the kernel releases the lock even after SIGKILL)."""
    session_dir.mkdir(parents=True, exist_ok=True)
    with open(session_dir / LIVE_FILE, "a") as live:
        fcntl.flock(live, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        try:
            yield
        finally:
            fcntl.flock(live, fcntl.LOCK_UN)


def is_live(session_dir: Path) -> bool:
    path = session_dir / LIVE_FILE
    if not path.exists():
        return False
    with open(path, "a") as live:
        try:
            fcntl.flock(live, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(live, fcntl.LOCK_UN)
        return False
