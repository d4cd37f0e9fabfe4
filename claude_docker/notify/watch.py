"""The detached watcher `up --detach` leaves behind: deliver until the container ends, flush, exit.

Started by `start_detached_watcher`, which writes one JSON object on our stdin: the notifier
config (credentials included: a pipe is the one channel nobody else can read), the session and
the container name.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from ..model import NotifierConfig, from_plain
from .delivery import SessionDelivery, holding_live_lock

POLL_SECONDS = 1.0


def watch(handoff: dict) -> int:
    from ..engine import Engine

    session_dir = Path(handoff["session_dir"])
    delivery = SessionDelivery(
        from_plain(NotifierConfig, handoff["notifier"]),  # every field, derived from the model
        handoff["project"],
        handoff["session_id"],
        session_dir,
        report=lambda line: None,  # everything is in notify.log already
    )
    finished = threading.Event()
    exit_code: list[int | None] = [None]

    def wait_for_container() -> None:
        try:
            engine = Engine.connect()
            container = engine.get(handoff["container_name"])
            if container is not None:
                exit_code[0] = engine.wait(container)
        except Exception as error:  # the engine went away: flush what we have and stop
            delivery.log("-", "ERROR", f"watcher lost the container: {error}")
        finally:
            finished.set()

    with holding_live_lock(session_dir):
        delivery.mark_started(handoff.get("started_at"))
        threading.Thread(target=wait_for_container, daemon=True).start()
        while not finished.is_set():
            delivery.deliver()
            finished.wait(POLL_SECONDS)
        delivery.set_exit_code(exit_code[0])
        outcome = delivery.deliver(final=True)
    return 1 if outcome.failed else 0


def main() -> int:
    handoff = json.loads(sys.stdin.read())
    sys.stdin.close()
    return watch(handoff)


if __name__ == "__main__":
    sys.exit(main())
