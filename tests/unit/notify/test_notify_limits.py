"""A flood of forged events against the notifier's caps, with the Twilio stand-in counting SMS.

The outbox is written by the agent: it can claim any event kind (a StopFailure hook event is a
JSON file like any other). What reaches a phone must stay bounded by `notifier.max_per_kind`
and `notifier.max_per_session`, plus one failure the host itself observed (the container's exit
code) and one summary of what was dropped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from claude_docker.config.model import NotifierConfig, TwilioConfig
from claude_docker.notify.delivery import LOG_FILE, SessionDelivery
from claude_docker.notify.events import pending_names, write_event
from tests.fakes.twilio import FakeTwilio

TO = "+15551234567"


@pytest.fixture
def twilio():
    fake = FakeTwilio().start()
    yield fake
    fake.stop()


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def delivery(tmp_path: Path, fake: FakeTwilio, clock: Clock | None = None, **notifier) -> SessionDelivery:
    twilio = TwilioConfig(
        to=(TO,), from_number="+15005550006", account_sid=fake.account_sid, auth_token=fake.auth_token, api_base=fake.api_base
    )
    session_dir = tmp_path / "session"
    (session_dir / "outbox").mkdir(parents=True, exist_ok=True)
    return SessionDelivery(
        NotifierConfig(twilio=twilio, **notifier), "proj", "s1", session_dir, report=lambda line: None, clock=clock or Clock()
    )


def forge(outbox: Path, hook: str, kind: str, count: int, start_ns: int = 1_800_000_000 * 10**9) -> None:
    for n in range(count):
        write_event(outbox, kind, {"hook_event_name": hook, "error": f"forged {n}"}, now_ns=start_ns + n)


def bodies(fake: FakeTwilio) -> list[str]:
    return [message["Body"] for message in fake.messages]


def test_a_hundred_forged_failures_cost_at_most_the_cap_plus_one_summary(tmp_path, twilio):
    d = delivery(tmp_path, twilio, on=("stop", "failure"), min_interval_seconds=0)
    forge(d.outbox, "StopFailure", "failure", 100)
    for _ in range(3):
        d.deliver()
    d.deliver(final=True)
    sent = bodies(twilio)
    assert len(sent) == 10 + 1, sent  # notifier.max_per_kind (default 10) + the summary
    assert sent[-1].startswith("claude-docker proj: notifications dropped")
    assert "90 not sent: failure 90" in sent[-1]
    assert pending_names(d.outbox) == []
    d.deliver(final=True)  # a later flush does not repeat the summary
    assert len(twilio.messages) == 11


def test_the_session_cap_bounds_every_kind_together(tmp_path, twilio):
    d = delivery(tmp_path, twilio, on=("stop", "notification", "failure"), min_interval_seconds=0, max_per_session=5)
    forge(d.outbox, "Stop", "stop", 4, start_ns=1)
    forge(d.outbox, "Notification", "notification", 4, start_ns=100)
    forge(d.outbox, "StopFailure", "failure", 4, start_ns=200)
    (d.outbox / f"{300}-message-1-a.txt").write_text("notify text\n")
    d.deliver(final=True)
    sent = bodies(twilio)
    assert len(sent) == 5 + 1, sent
    assert "8 not sent" in sent[-1] and "notifier.max_per_session 5" in sent[-1]


def test_failures_are_debounced_like_every_other_kind(tmp_path, twilio):
    clock = Clock()
    d = delivery(tmp_path, twilio, clock, on=("stop", "failure"), min_interval_seconds=60)
    forge(d.outbox, "StopFailure", "failure", 5, start_ns=int(clock.now * 1e9))
    d.deliver()
    assert len(twilio.messages) == 1  # the newest of the first burst, at once
    clock.now += 10
    forge(d.outbox, "StopFailure", "failure", 5, start_ns=int(clock.now * 1e9))
    d.deliver()
    assert len(twilio.messages) == 1  # within the interval: held
    clock.now += 60
    d.deliver()
    assert len(twilio.messages) == 2
    assert "superseded" in (d.session_dir / LOG_FILE).read_text()


def test_only_one_session_end_is_sent(tmp_path, twilio):
    d = delivery(tmp_path, twilio, on=("session_end",), min_interval_seconds=0)
    for n in range(30):
        write_event(d.outbox, "session_end", {"hook_event_name": "SessionEnd", "reason": f"r{n}"}, now_ns=n + 1)
    d.set_exit_code(0)
    d.deliver(final=True)
    sent = bodies(twilio)
    assert len(sent) == 1 + 1, sent  # one session_end + the summary of the others
    assert "session ended (exit 0)" in sent[0]


def test_the_host_reports_a_failed_container_even_when_the_agent_said_nothing(tmp_path, twilio):
    d = delivery(tmp_path, twilio, on=("stop", "failure"))
    d.set_exit_code(3)
    d.deliver(final=True)
    d.deliver(final=True)
    assert bodies(twilio) == ["claude-docker proj: Claude stopped with an error (exit 3)\nthe container exited with code 3"]


@pytest.mark.parametrize("code", [0, 130])
def test_a_clean_or_interrupted_exit_is_no_failure(tmp_path, twilio, code):
    d = delivery(tmp_path, twilio, on=("stop", "failure"))
    d.set_exit_code(code)
    d.deliver(final=True)
    assert twilio.requests == []


def test_a_host_failure_is_not_sent_unless_failure_is_in_on(tmp_path, twilio):
    d = delivery(tmp_path, twilio, on=("stop",))
    d.set_exit_code(3)
    d.deliver(final=True)
    assert twilio.requests == []


def test_a_host_failure_that_could_not_be_sent_is_sent_by_a_later_flush(tmp_path, twilio):
    d = delivery(tmp_path, twilio, on=("failure",))
    for backend in d.backends:
        backend.sleep = lambda seconds: None
    twilio.queued_errors = [503] * 4
    d.set_exit_code(2)
    assert d.deliver(final=True).failed == ["host-failure"]
    assert twilio.messages == []
    later = delivery(tmp_path, twilio, on=("failure",))
    assert later.deliver(final=True).delivered == ["host-failure"]
    assert len(twilio.messages) == 1


def test_the_detached_watcher_gets_the_caps_too(twilio):
    """`up --detach` hands the notifier config to its watcher through a pipe: the caps go along."""
    from claude_docker.config.model import from_plain, to_plain

    notifier = NotifierConfig(max_per_session=3, max_per_kind=2, twilio=TwilioConfig(to=(TO,), account_sid=twilio.account_sid))
    handed_over = to_plain(notifier)
    assert isinstance(handed_over, dict) and handed_over["max_per_session"] == 3
    assert from_plain(NotifierConfig, handed_over) == notifier
