"""The notifier container of a Kubernetes Pod: the host's delivery, run beside the agent.

On Docker the `claude-docker` process on the host delivers the outbox; a Pod has no such host.
This module is the notifier container's command (`python3 -m claude_docker.notify.pod`). It runs
as a uid of its own, with the notifier section (credentials included) in one environment
variable from a Secret the agent container never references; the firewall container lets only
this uid out, and only to the notifier's endpoints. It delivers the outbox volume the agent's
hooks write with the same `SessionDelivery` as the host (at least once, debounce, caps; its state
on a volume the agent does not mount), and on SIGTERM, which Kubernetes sends to a native sidecar
once the agent container has exited, it sends what is left, the session_end message included,
and exits.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Mapping

from ..config.model import NotifierConfig, from_plain
from .delivery import SessionDelivery

ENV_CONFIG = "CLAUDE_DOCKER_NOTIFIER"
ENV_STATE = "CLAUDE_DOCKER_NOTIFIER_STATE"
DEFAULT_STATE_DIR = "/run/claude-docker/notifier"  # the outbox volume is mounted at ./outbox
POLL_SECONDS = 1.0


def say(line: str) -> None:
    print(f"claude-docker notifier: {line}", file=sys.stderr, flush=True)


def load_config(environ: Mapping[str, str]) -> NotifierConfig | None:
    raw = environ.get(ENV_CONFIG, "")
    if not raw:
        say(f"{ENV_CONFIG} is empty: the notifier Secret holds no notifier.json")
        return None
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return from_plain(NotifierConfig, data)
    except (ValueError, TypeError, KeyError) as error:
        say(f"{ENV_CONFIG} is not the notifier section as `claude-docker kube --notifier-config` prints it ({error})")
        return None


def run(stop: threading.Event, environ: Mapping[str, str]) -> int:
    """Deliver until `stop` is set, then the final flush. 0 when nothing is left undelivered."""
    notifier = load_config(environ)
    if notifier is None:
        return 1
    state_dir = Path(environ.get(ENV_STATE) or DEFAULT_STATE_DIR)
    delivery = SessionDelivery(
        notifier,
        environ.get("CLAUDE_DOCKER_PROJECT", "kubernetes"),
        environ.get("CLAUDE_DOCKER_SESSION") or environ.get("HOSTNAME", "pod"),
        state_dir,
        report=say,  # failures; every outcome is in notify.log in the state dir too
    )
    delivery.mark_started()
    say(f"delivering {delivery.outbox}")
    while not stop.is_set():
        try:
            outcome = delivery.deliver()
            for name in outcome.delivered:
                say(f"delivered {name}")
        except Exception as error:  # a bug must not end delivery; the final flush retries
            say(f"delivery loop error: {error!r}")
        stop.wait(POLL_SECONDS)
    outcome = delivery.deliver(final=True)
    delivery.mark_closed()
    for name in outcome.delivered:
        say(f"delivered {name}")
    say(f"final delivery done: {len(outcome.delivered)} sent, {len(outcome.failed)} left undelivered")
    return 1 if outcome.failed else 0


def main() -> int:
    stop = threading.Event()

    def on_signal(number: int, frame: FrameType | None) -> None:
        stop.set()  # the agent has exited: flush, then exit

    signal.signal(signal.SIGTERM, on_signal)  # handled even as PID 1
    signal.signal(signal.SIGINT, on_signal)
    return run(stop, os.environ)


if __name__ == "__main__":
    sys.exit(main())
