"""The detached watcher `up --detach` leaves behind: deliver until the container ends, flush, exit.

Started by `start_detached_watcher`, which writes one JSON object on our stdin: the notifier
config (credentials included: a pipe is the one channel nobody else can read), the session and
the container name.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from ..config.model import NotifierConfig, from_plain
from .delivery import SessionDelivery, holding_live_lock

POLL_SECONDS = 1.0
ENGINE_RETRY_SECONDS = 2.0
ENGINE_GONE_SECONDS = 3600  # then the session is taken as over: flush and exit


def watch(handoff: dict) -> int:
    """Deliver until the container ends, then flush. In standby (beside a foreground `up`),
    first wait for the outbox's live lock: it comes free when that `up` finished the session
    (then there is nothing to do) or when its process ended early, however it ended (then
    this process takes over: delivery, the final flush, and removing the container)."""
    from ..engine import Engine

    session_dir = Path(handoff["session_dir"])
    delivery = SessionDelivery(
        from_plain(NotifierConfig, handoff["notifier"]),  # every field, derived from the model
        handoff["project"],
        handoff["session_id"],
        session_dir,
        report=lambda line: None,  # everything is in notify.log already
    )
    standby = bool(handoff.get("standby"))
    finished = threading.Event()
    exit_code: list[int | None] = [None]

    def wait_for_container() -> None:
        """Until the container has ended. An engine that goes away (restarted, upgraded) is
        asked again until it answers; delivery goes on meanwhile, it needs no engine."""
        lost_at: float | None = None
        try:
            while True:
                try:
                    engine = Engine.connect()
                    container = engine.get(handoff["container_name"])
                    if lost_at is not None:
                        delivery.log("-", "INFO", "watcher reached the engine again")
                        lost_at = None
                    if container is not None:
                        exit_code[0] = engine.wait(container)
                    return
                except Exception as error:
                    now = time.monotonic()
                    if lost_at is None:
                        lost_at = now
                        delivery.log("-", "ERROR", f"watcher lost the engine ({error}); asking again every {ENGINE_RETRY_SECONDS:g} s")
                    elif now - lost_at > ENGINE_GONE_SECONDS:
                        delivery.log("-", "ERROR", f"the engine did not answer for {ENGINE_GONE_SECONDS // 60} min: final delivery now")
                        return
                    time.sleep(ENGINE_RETRY_SECONDS)
        finally:
            finished.set()

    with holding_live_lock(session_dir, wait=standby):
        if standby:
            if delivery.closed:  # the foreground `up` saw the session to its end
                return 0
            delivery.log("-", "INFO", "the `up` that ran this session is gone; its watcher delivers from here on")
        delivery.mark_started(handoff.get("started_at"))
        threading.Thread(target=wait_for_container, daemon=True).start()
        while not finished.is_set():
            try:
                delivery.deliver()
            except Exception as error:  # a bug must not end delivery; the final flush retries
                delivery.log("-", "ERROR", f"watcher delivery loop error: {error!r}")
            finished.wait(POLL_SECONDS)
        if exit_code[0] is not None or not delivery.exit_code_known:
            delivery.set_exit_code(exit_code[0])
        outcome = delivery.deliver(final=True)
        delivery.mark_closed()
        if handoff.get("remove_when_done"):
            _remove_session(handoff, delivery)
    return 1 if outcome.failed else 0


def _remove_session(handoff: dict, delivery: SessionDelivery) -> None:
    """What the foreground `up` does after its container ended, done in its place."""
    from ..engine import Engine
    from ..errors import EngineError
    from ..lifecycle import tidy_session
    from ..session import Session

    try:
        engine = Engine.connect()
        container = engine.get(handoff["container_name"])
        if container is not None:
            engine.remove(container)
    except EngineError as error:
        delivery.log("-", "ERROR", f"watcher could not remove {handoff['container_name']}: {error}")
        return
    session = Session(handoff["project"], handoff["session_id"])
    if session.session_dir == Path(handoff["session_dir"]):
        tidy_session(session)


def main() -> int:
    handoff = json.loads(sys.stdin.read())
    sys.stdin.close()
    return watch(handoff)


if __name__ == "__main__":
    sys.exit(main())
