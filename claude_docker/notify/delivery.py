"""Durable delivery of one session's outbox: at least once, never silently dropped.

An event file leaves the outbox only after every target accepted it. Which targets already
accepted which event is kept in `notify-state.json` next to (not inside) the outbox, so the
agent cannot tamper with it and a retry never repeats a delivery that worked. Every outcome
goes to `notify.log` in the session directory (what `claude-docker logs` shows) and failures
also go to the `report` callback (stderr in the CLI).

Debounce (`notifier.min_interval_seconds`, per session): `stop` and `notification` events are
held while the last message of their lane is younger than the interval; when several are held,
only the newest is sent (the older ones are logged as superseded). `failure` events are
debounced the same way in a lane of their own. `message` (the in-container `notify "text"`, an
explicit request), `test` and `session_end` are never held back by the interval. A failure goes
to `report` once per event and error; retries only add to the log. `session_end` is sent by the final flush at
the end of the session (it comes last anyway, and then the container's exit code is known),
which also sends the newest held event without waiting.

Caps: whatever the agent writes, a session sends at most `notifier.max_per_kind` messages of one
kind (one `session_end`) and `notifier.max_per_session` in all, to each target. What goes past
a cap is dropped, logged and counted; the final flush sends one summary of the drops. The host
adds one message of its own when the container failed (its exit code, which the agent cannot
forge), so a session costs at most `max_per_session + 2` messages per target.
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
from typing import TYPE_CHECKING, Callable, Iterator

from ..atomicfile import set_aside, write_atomic
from ..config.model import NotifierConfig
from ..errors import ClaudeDockerError, NotifyError
from .events import (
    DEBOUNCE_LANES,
    MAX_EVENT_BYTES,
    MESSAGE_EVENT,
    TEST_EVENT,
    Event,
    pending_names,
    read_event,
    sweep_outbox,
)

if TYPE_CHECKING:  # the backends (urllib, http) and the message templates load when a message is sent
    from .backends import Backend
    from .message import MessageContext

STATE_FILE = "notify-state.json"
LOG_FILE = "notify.log"
LOCK_FILE = "notify.lock"  # held while one process delivers
LIVE_FILE = "notify.live"  # held for the whole life of a session's notifier
MAX_LOG_BYTES = 1024 * 1024  # notify.log is rotated to notify.log.1 past this
# The agent can fill the outbox, and each file (up to 1 MiB) may parse to ~25 MB of objects: a
# pass reads the oldest few only; the final flush repeats passes while they make progress.
MAX_EVENTS_PER_PASS = 16
RETRY_FIRST_SECONDS = 5.0
RETRY_MAX_SECONDS = 300.0
# Messages the host makes itself, once per session; their names never match an outbox file.
HOST_FAILURE = "host-failure"  # the container exited with an error code
DROP_SUMMARY = "drop-summary"  # what the caps held back
DROPPED_EVENT = "dropped"  # the event kind (and template `event`) of the summary
# Exit codes that are no failure: a clean end, and `up` interrupted (Ctrl-C, SIGTERM).
NOT_A_FAILURE = (0, 130, 143)
ENDED_BY_DOWN = "ended-by-down"  # in the session dir: `claude-docker down` removed the container

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
    dropped: list[str] = field(default_factory=list)  # past notifier.max_per_kind / max_per_session
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
        if backends is None:
            from .backends import backends_for

            backends = backends_for(notifier)
        self.backends = backends
        self.report = report
        self.clock = clock
        self._thread_lock = threading.Lock()
        self._retry_at: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._reported: set[tuple[str, str]] = set()  # (event, error) already on stderr

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
        """Record how the container ended; an error code queues the host's own failure message."""
        with self._locked(wait=True):
            state = self._load_state()
            state["exit_code"] = exit_code
            if self._is_failure(exit_code) and "failure" in self.notifier.on and "host_failure" not in state:
                state["host_failure"] = {"exit_code": exit_code, "created_at": self.clock(), "sent": False}
            self._save_state(state)

    def _is_failure(self, exit_code: int | None) -> bool:
        return (
            exit_code is not None
            and exit_code not in NOT_A_FAILURE
            and not (self.session_dir / ENDED_BY_DOWN).exists()
        )

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
        path = self.session_dir / LOG_FILE
        with open(path, "a", encoding="utf-8") as log:
            log.write(line.replace("\n", " ") + "\n")
            rotate = log.tell() > MAX_LOG_BYTES
        if rotate:  # one older generation is kept
            with contextlib.suppress(OSError):
                os.replace(path, path.with_name(LOG_FILE + ".1"))
        if level == "ERROR" and (event, text) not in self._reported:
            self._reported.add((event, text))
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
            for name in ("delivered", "failed", "held", "skipped", "unreadable", "dropped"):
                seen = getattr(outcome, name)
                seen.extend(event for event in getattr(more, name) if event not in seen)
            if not (more.delivered or more.skipped or more.unreadable or more.dropped):
                break  # nothing left, or only what keeps failing
        if final and not outcome.busy:
            self._deliver_host_messages(outcome)
        return outcome

    def _deliver_host_messages(self, outcome: Outcome) -> None:
        """The failure the host observed, then the summary of what the caps dropped: each once."""
        with self._locked(wait=True):
            state = self._load_state()
            failure = state.get("host_failure")
            if failure and not failure.get("sent"):
                text = f"the container exited with code {failure['exit_code']}"
                event = Event(HOST_FAILURE, self.session_dir / HOST_FAILURE, "failure", failure["created_at"], text=text)
                failure["sent"] = self._send(event, state, outcome)
            dropped: dict[str, int] = state.get("dropped") or {}
            if dropped and not state.get("summary_sent"):
                event = Event(DROP_SUMMARY, self.session_dir / DROP_SUMMARY, DROPPED_EVENT, self.clock(), text=self._summary(dropped))
                state["summary_sent"] = self._send(event, state, outcome)
            self._save_state(state)

    def _summary(self, dropped: dict[str, int]) -> str:
        counts = ", ".join(f"{kind} {count}" for kind, count in sorted(dropped.items(), key=lambda item: (-item[1], item[0])))
        return (
            f"{sum(dropped.values())} not sent: {counts} (limits: notifier.max_per_kind {self.notifier.max_per_kind}, "
            f"notifier.max_per_session {self.notifier.max_per_session})"
        )

    def _deliver_pass(self, final: bool) -> Outcome:
        outcome = Outcome()
        with self._locked(wait=final) as locked:
            if not locked:
                outcome.busy = True
                return outcome
            state = self._load_state()
            self._sweep(state, final, outcome)
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
            lanes: dict[str, list[Event]] = {}
            due: list[Event] = []
            for event in wanted:
                lane = DEBOUNCE_LANES.get(event.kind)
                if lane is None:
                    due.append(event)
                else:
                    lanes.setdefault(lane, []).append(event)
            if not final:  # session_end waits for the final flush, which knows the exit code
                outcome.held.extend(e.name for e in due if e.kind == "session_end")
                due = [e for e in due if e.kind != "session_end"]
            interval = self.notifier.min_interval_seconds
            sent_at: dict[str, float] = state.get("lane_sent_at") or {}
            for lane, held in lanes.items():
                if interval <= 0:
                    due.extend(held)
                    continue
                for older in held[:-1]:
                    self._discard(older, state, "superseded by a later event (notifier.min_interval_seconds)")
                    outcome.skipped.append(older.name)
                newest, last = held[-1], sent_at.get(lane)
                if final or last is None or self.clock() - last >= interval:
                    due.append(newest)
                else:
                    outcome.held.append(newest.name)
            for event in sorted(due, key=lambda e: (e.created_at, e.name)):
                if not final and self._retry_at.get(event.name, 0) > self.clock():
                    outcome.failed.append(event.name)
                    continue
                cap = self._cap_reached(event, state)
                if cap:
                    self._drop(event, state, cap, outcome)
                    continue
                self._send(event, state, outcome)
            self._save_state(state)
        return outcome

    def _sweep(self, state: dict, final: bool, outcome: Outcome) -> None:
        """Keep the outbox within its limits; what is dropped counts towards the summary."""
        swept = sweep_outbox(self.outbox, self.clock(), final)
        for name in swept.oversized:
            self.log(name, "ERROR", f"outbox file {name} is larger than {MAX_EVENT_BYTES} bytes; removed")
        excess = sum(swept.dropped.values()) - len(swept.oversized)
        if excess:
            self.log("-", "INFO", f"dropped {excess} outbox files over the outbox limits (oldest first)")
        if swept.removed:
            self.log("-", "INFO", f"removed {len(swept.removed)} outbox entries that are not events, e.g. {swept.removed[0]!r}")
        dropped = state.setdefault("dropped", {})
        for kind, count in swept.dropped.items():
            if kind in self.notifier.on or kind == MESSAGE_EVENT:  # others would not be sent anyway
                dropped[kind] = dropped.get(kind, 0) + count
        if not dropped:
            state.pop("dropped")
        outcome.dropped.extend(swept.oversized)

    def _cap_reached(self, event: Event, state: dict) -> str | None:
        """The cap this event would go past, if any (counted per session, across processes)."""
        if event.kind == TEST_EVENT or state["delivered"].get(event.name):
            return None  # a test is asked for by the user; a half-delivered event is finished
        sent: dict[str, int] = state.get("sent") or {}
        if event.kind == "session_end" and sent.get("session_end", 0) >= 1:
            return "one session_end per session"
        if sent.get(event.kind, 0) >= self.notifier.max_per_kind:
            return f"notifier.max_per_kind ({self.notifier.max_per_kind})"
        if sum(sent.values()) >= self.notifier.max_per_session:
            return f"notifier.max_per_session ({self.notifier.max_per_session})"
        return None

    def _drop(self, event: Event, state: dict, cap: str, outcome: Outcome) -> None:
        dropped = state.setdefault("dropped", {})
        dropped[event.kind] = dropped.get(event.kind, 0) + 1
        self._discard(event, state, f"dropped: {cap} reached")
        outcome.dropped.append(event.name)

    def _send(self, event: Event, state: dict, outcome: Outcome) -> bool:
        """Deliver to every target that has not accepted it yet; True when all have."""
        if not self.backends:
            outcome.failed.append(event.name)
            return False
        from .message import MessageContext, render_message

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
            return False
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
            lane = DEBOUNCE_LANES.get(event.kind)
            if lane:
                state.setdefault("lane_sent_at", {})[lane] = self.clock()
            if event.kind != TEST_EVENT and event.name not in (HOST_FAILURE, DROP_SUMMARY):
                sent = state.setdefault("sent", {})
                sent[event.kind] = sent.get(event.kind, 0) + 1
            if event.path.parent == self.outbox:
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
        return all_ok

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


def has_pending(session_dir: Path) -> bool:
    """Anything a flush would still send: outbox events, the host's failure message, a summary."""
    if pending_names(session_dir / "outbox"):
        return True
    try:
        state = json.loads((session_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(state, dict):
        return False
    failure = state.get("host_failure") or {}
    return bool(failure and not failure.get("sent")) or bool(state.get("dropped") and not state.get("summary_sent"))


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
