"""Host-side notifications: hook events from the session outbox → backends.

Inside the container, Claude Code's hooks and the `notify` command only write files into the
session outbox (mounted from the host). Everything that needs a credential happens here, on
the host: the container never sees a notifier secret and its firewall need not allow the
notifier's domains.

Entry points for the engine:
- the outbox mount comes from the notifier feature (features/notifier.py);
- `session_notifier(cfg, session, standby_for=container)`: wrap a foreground session; yields
  a handle whose `set_exit_code(code)` puts the container's exit code into the final messages.
  A watcher process stands by and takes over if this process ends before the session does.
- `start_detached_watcher(cfg, session, container_name)`: for `up --detach`; a small process
  that delivers until the container ends, then flushes and exits.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

from ..config.model import Config, NotifierConfig, to_plain
from ..session import Session
from .delivery import (
    ENDED_BY_DOWN,
    LOG_FILE,
    STATE_FILE,
    Outcome,
    Report,
    SessionDelivery,
    has_pending,
    holding_live_lock,
    is_live,
    stderr_report,
)

POLL_SECONDS = 1.0

__all__ = [
    "session_notifier",
    "start_detached_watcher",
    "flush_project",
    "log_file",
    "ENDED_BY_DOWN",
    "is_live",
    "SessionNotifier",
]


def log_file(session: Session) -> Path:
    """Where delivery outcomes of a session are logged (shown by `claude-docker logs`)."""
    return session.session_dir / LOG_FILE


def notifier_secrets(notifier: NotifierConfig) -> set[str]:
    """Every notifier value that must stay on the host."""
    found: set[str] = set()
    if notifier.twilio:
        found.update(
            v for v in (notifier.twilio.auth_token, notifier.twilio.api_key_secret) if v
        )
    found.update(notifier.apprise)
    for webhook in notifier.webhooks:
        found.add(webhook.url)
        found.update(webhook.headers.values())
        # "Bearer TOKEN": the token alone is the secret too
        found.update(part for value in webhook.headers.values() for part in value.split() if len(part) >= 8)
    return {value for value in found if len(value) >= 4}


# --- delivery around a running session ---------------------------------------------------------


def delivery_for(cfg: Config, session: Session, report: Report = stderr_report) -> SessionDelivery:
    return SessionDelivery(cfg.notifier, session.project, session.session_id, session.session_dir, report=report)


class SessionNotifier:
    """Delivers a session's outbox in a background thread; final flush on `close()`."""

    def __init__(self, cfg: Config, session: Session, report: Report = stderr_report) -> None:
        self.cfg = cfg
        self.session = session
        self.report = report
        self.delivery = delivery_for(cfg, session, report)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handed_over = False

    def set_exit_code(self, exit_code: int | None) -> None:
        self.delivery.set_exit_code(exit_code)

    def start(self) -> None:
        self.delivery.mark_started()
        self._thread = threading.Thread(target=self._run, name="claude-docker-notify", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):  # leftovers must never break the session
            flush_project(self.cfg, self.session.project, exclude=self.session.session_id, report=self.report)
        while not self._stop.is_set():
            try:
                self.delivery.deliver()
            except Exception as error:  # a bug must not kill the loop; the final flush retries
                self.report(f"notify: delivery loop error: {error!r}")
            self._stop.wait(POLL_SECONDS)

    def _stop_loop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def hand_over(self) -> None:
        """The container goes on without us (the user detached): no final flush here; the
        watcher standing by takes over once this process lets go of the session."""
        self._handed_over = True
        self._stop_loop()

    def close(self) -> Outcome:
        if self._handed_over:
            return Outcome()
        self._stop_loop()
        outcome = self.delivery.deliver(final=True)
        self.delivery.mark_closed()
        return outcome


@contextlib.contextmanager
def session_notifier(
    cfg: Config,
    session: Session,
    report: Report = stderr_report,
    *,
    standby_for: str | None = None,
    remove_when_done: bool = False,
) -> Iterator[SessionNotifier | None]:
    """Deliver outbox events while the session runs, and what is left when it ends.

    Yields a handle (or None when no notifier is configured); call `handle.set_exit_code(code)`
    once the container has exited so `session_end`/`failure` messages can carry it.

    `standby_for` names the session's container: a watcher process (the one `up --detach`
    leaves) then stands by, outside this process's terminal, and takes over delivery if this
    process ends before the session does (a closed terminal, a dropped SSH connection,
    SIGKILL). Only one of them owns the outbox at a time: the live lock, which the kernel
    releases however this process ends. `remove_when_done`: the watcher removes the container
    once it has ended, as this process would have. The watcher also takes over when the body
    raises (the engine stopped answering, say): this process cannot tell how the session ends.
    """
    if not cfg.notifier.configured:
        yield None
        return
    notifier = SessionNotifier(cfg, session, report)
    with holding_live_lock(session.session_dir):
        if standby_for is not None:
            start_detached_watcher(cfg, session, standby_for, standby=True, remove_when_done=remove_when_done)
        notifier.start()
        try:
            yield notifier
        except BaseException:
            if standby_for is not None:  # e.g. the engine went away: the container may run on
                notifier.hand_over()
            raise
        finally:
            notifier.close()


# --- leftovers -----------------------------------------------------------------------------------


def project_session_dirs(project_state_dir: Path) -> list[Path]:
    sessions = project_state_dir / "sessions"
    if not sessions.is_dir():
        return []
    return sorted(p for p in sessions.iterdir() if (p / "outbox").is_dir() or (p / STATE_FILE).is_file())


def flush_project(
    cfg: Config,
    project: str,
    exclude: str | None = None,
    report: Report = stderr_report,
) -> dict[str, Outcome]:
    """Send what earlier sessions of the project left behind.

    Sessions whose notifier is still running are reported as busy and left alone.
    """
    from ..paths import project_state_dir

    outcomes: dict[str, Outcome] = {}
    for session_dir in project_session_dirs(project_state_dir(project)):
        session_id = session_dir.name
        if session_id == exclude or not has_pending(session_dir):
            continue
        if is_live(session_dir):  # its own notifier delivers it
            outcomes[session_id] = Outcome(busy=True)
            continue
        delivery = SessionDelivery(cfg.notifier, project, session_id, session_dir, report=report)
        outcomes[session_id] = delivery.deliver(final=True)
    return outcomes


# --- up --detach ---------------------------------------------------------------------------------


def start_detached_watcher(
    cfg: Config, session: Session, container_name: str, *, standby: bool = False, remove_when_done: bool = False
) -> int | None:
    """Leave a small process delivering this session's events until its container ends.

    The notifier config (with its credentials) goes to the child through a pipe, never through
    its argv, environment or a file. Returns the watcher's pid (None: nothing to deliver to).
    Its own problems land in the session's notify.log. `standby`: it waits until the current
    owner of the outbox (a foreground `up`) lets go, and delivers only if that owner did not
    finish the session (see `session_notifier`).
    """
    if not cfg.notifier.configured:
        return None
    session.session_dir.mkdir(parents=True, exist_ok=True)
    handoff = {
        "notifier": to_plain(cfg.notifier),  # read back with model.from_plain
        "project": session.project,
        "session_id": session.session_id,
        "session_dir": str(session.session_dir),
        "container_name": container_name,
        "started_at": time.time(),
        "standby": standby,
        "remove_when_done": remove_when_done,
    }
    with open(session.session_dir / LOG_FILE, "a") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "claude_docker.notify.watch"],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=log,
            start_new_session=True,  # survives the terminal that ran `up --detach`
            close_fds=True,
            cwd="/",
        )
    assert child.stdin is not None
    child.stdin.write(json.dumps(handoff).encode())
    child.stdin.close()
    return child.pid
