"""Notifier: Twilio wire format, retries, durable outbox, debounce, template, webhook and command."""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_docker.config.model import (
    CommandNotifierConfig,
    NotifierConfig,
    TwilioConfig,
    WebhookConfig,
    from_plain,
    frozen_map,
    to_plain,
)
from claude_docker.errors import NotifyError
from claude_docker.notify.apprise_backend import AppriseUrl
from claude_docker.notify.delivery import LOG_FILE
from claude_docker.notify.events import read_event, write_event
from claude_docker.notify.message import SMS_LIMIT, MessageContext, render_message
from claude_docker.notify.twilio import TwilioSms
from tests.fakes.twilio import FakeTwilio
from tests.support.examples import examples
from tests.support.notifier import Clock, FlakyBackend, delivery, stop_event
from tests.support.serve import serve_in_background

TO = "+15551234567"
FROM = "+15005550006"


@pytest.fixture
def twilio():
    fake = FakeTwilio().start()
    yield fake
    fake.stop()


def twilio_config(fake: FakeTwilio, **overrides) -> TwilioConfig:
    values = dict(
        to=(TO,), from_number=FROM, account_sid=fake.account_sid, auth_token=fake.auth_token, api_base=fake.api_base
    )
    values.update(overrides)
    return TwilioConfig(**values)


def sms(fake: FakeTwilio, sleeps: list | None = None, **overrides) -> TwilioSms:
    recorder = sleeps if sleeps is not None else []
    return TwilioSms(twilio_config(fake, **overrides), overrides.get("to", (TO,))[0], sleep=recorder.append)


# --- Twilio ---------------------------------------------------------------------------------------


def test_twilio_sends_form_post_with_basic_auth(twilio):
    receipt = sms(twilio).send("all done", {})
    assert receipt.startswith("accepted (sid SM")
    [request] = twilio.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    assert request.auth == (twilio.account_sid, twilio.auth_token)
    assert request.content_type == "application/x-www-form-urlencoded"
    assert request.form == {"To": TO, "From": FROM, "Body": "all done"}


def test_twilio_api_key_and_messaging_service(twilio):
    twilio.api_keys["SK" + "1" * 32] = "key-secret"
    backend = sms(
        twilio, api_key_sid="SK" + "1" * 32, api_key_secret="key-secret", from_number=None, messaging_service_sid="MG" + "2" * 32
    )
    backend.send("hi", {})
    [request] = twilio.requests
    assert request.auth == ("SK" + "1" * 32, "key-secret")
    assert request.form == {"To": TO, "MessagingServiceSid": "MG" + "2" * 32, "Body": "hi"}


def test_twilio_retries_429_and_5xx_with_backoff(twilio):
    twilio.queued_errors = [429, 503]
    sleeps: list[float] = []
    assert sms(twilio, sleeps).send("x", {}).startswith("accepted")
    assert len(twilio.requests) == 3
    assert sleeps == [1.0, 2.0]  # exponential


def test_twilio_gives_up_after_max_attempts_on_429(twilio):
    twilio.queued_errors = [429] * 10
    sleeps: list[float] = []
    with pytest.raises(NotifyError) as raised:
        sms(twilio, sleeps).send("x", {})
    assert len(twilio.requests) == 4
    assert sleeps == [1.0, 2.0, 4.0]
    assert "Twilio error 20429: Too Many Requests" in raised.value.message


def test_twilio_does_not_retry_400_and_shows_twilio_code(twilio):
    sleeps: list[float] = []
    with pytest.raises(NotifyError) as raised:
        sms(twilio, sleeps, to=("12345",)).send("x", {})
    assert len(twilio.requests) == 1
    assert sleeps == []
    assert raised.value.message == (
        "twilio SMS to 12345 failed: HTTP 400, Twilio error 21211: The 'To' number 12345 is not a valid "
        "phone number. (https://www.twilio.com/docs/errors/21211)"
    )


def test_twilio_wrong_token_is_401_without_retry(twilio):
    with pytest.raises(NotifyError) as raised:
        sms(twilio, auth_token="wrong").send("x", {})
    assert len(twilio.requests) == 1
    assert "Twilio error 20003: Authenticate" in raised.value.message
    assert "auth_token" in raised.value.hint


def test_twilio_unreachable_is_retried_then_reported(twilio):
    twilio.stop()
    sleeps: list[float] = []
    with pytest.raises(NotifyError) as raised:
        sms(twilio, sleeps).send("x", {})
    assert "cannot reach Twilio" in raised.value.message
    assert len(sleeps) == 3


# --- template -------------------------------------------------------------------------------------


def test_builtin_template_and_truncation_to_sms_limit(tmp_path):
    path = stop_event(tmp_path, "x" * 5000, at_ns=1_800_000_125 * 10**9)
    event = read_event(tmp_path, path.name)
    context = MessageContext("proj-1234", "s1", event, started_at=1_800_000_000.0)
    text = render_message(None, context)
    assert len(text) == SMS_LIMIT
    assert text.startswith("claude-docker proj-1234: Claude finished after 2m05s\nxxx")
    assert text.endswith("x…")


def test_user_template_sees_every_variable(tmp_path):
    path = write_event(tmp_path, "stop", {"hook_event_name": "Stop", "last_assistant_message": "done"}, now_ns=10**18)
    event = read_event(tmp_path, path.name)
    template = "{{ project }}|{{ session }}|{{ event }}|{{ last_message }}|{{ duration_seconds }}|{{ exit_code }}"
    text = render_message(template, MessageContext("p", "s", event, started_at=10**9 - 61, exit_code=3))
    assert text == "p|s|stop|done|61|3"


def test_bad_template_is_a_clear_error(tmp_path):
    event = read_event(tmp_path, stop_event(tmp_path, "x").name)
    with pytest.raises(Exception) as raised:
        render_message("{{ nope }", MessageContext("p", "s", event))
    assert raised.value.message.startswith("notifier.template: line 1:")


# --- outbox safety ----------------------------------------------------------------------------------


def test_symlink_in_outbox_is_never_followed(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text('{"hook_event_name": "Stop", "last_assistant_message": "TOP SECRET"}')
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    (outbox / "1-stop-1-a.json").symlink_to(secret)
    event = read_event(outbox, "1-stop-1-a.json")
    assert event.problem is not None and event.text == ""


def test_notify_command_text_file_is_a_message_event(tmp_path):
    (tmp_path / "5-message-1-a.txt").write_text("half way there\n")
    event = read_event(tmp_path, "5-message-1-a.txt")
    assert (event.kind, event.text, event.created_at) == ("message", "half way there", 5e-9)


# --- durable delivery ---------------------------------------------------------------------------------


def test_backend_down_keeps_event_then_flush_delivers(tmp_path, twilio):
    notifier = NotifierConfig(on=("stop",), twilio=twilio_config(twilio))
    reports: list[str] = []
    d = delivery(tmp_path, notifier, reports=reports)
    for backend in d.backends:
        backend.sleep = lambda s: None
    path = stop_event(d.outbox, "finished the refactor")
    twilio.stop()
    outcome = d.deliver()
    assert outcome.failed == [path.name] and path.exists()
    assert any("not delivered" in line for line in reports)
    assert "ERROR" in (d.session_dir / LOG_FILE).read_text()
    twilio.start()  # same port
    outcome = d.deliver(final=True)
    assert outcome.delivered == [path.name]
    assert not path.exists()
    assert [m["Body"] for m in twilio.messages] == ["claude-docker proj: Claude finished\nfinished the refactor"]


def test_event_leaves_outbox_only_when_every_backend_accepted_and_never_resends(tmp_path):
    good, bad = FlakyBackend("good"), FlakyBackend("bad", fail=True)
    d = delivery(tmp_path, NotifierConfig(on=("stop",), commands=(CommandNotifierConfig(("true",)),)))
    d.backends = [good, bad]
    path = stop_event(d.outbox, "done")
    d.deliver(final=True)
    assert path.exists() and len(good.sent) == 1
    bad.fail = False
    outcome = d.deliver(final=True)
    assert outcome.delivered == [path.name] and not path.exists()
    assert len(good.sent) == 1 and len(bad.sent) == 1  # the good one was not repeated


def test_failed_event_waits_for_backoff_between_passes(tmp_path):
    clock = Clock()
    bad = FlakyBackend("bad", fail=True)
    d = delivery(tmp_path, NotifierConfig(on=("stop",), commands=(CommandNotifierConfig(("true",)),)), clock)
    d.backends = [bad]
    path = stop_event(d.outbox, "done")
    d.deliver()
    bad.fail = False
    d.deliver()
    assert path.exists() and bad.sent == []  # within the retry delay
    clock.now += 6
    d.deliver()
    assert not path.exists() and len(bad.sent) == 1


def test_debounce_holds_then_sends_only_newest(tmp_path):
    clock = Clock()
    backend = FlakyBackend("b")
    d = delivery(tmp_path, NotifierConfig(on=("stop", "failure"), min_interval_seconds=60, commands=(CommandNotifierConfig(("true",)),)), clock)
    d.backends = [backend]
    stop_event(d.outbox, "turn 1", at_ns=int(clock.now * 1e9))
    d.deliver()
    assert len(backend.sent) == 1
    clock.now += 10
    stop_event(d.outbox, "turn 2", at_ns=int(clock.now * 1e9))
    clock.now += 10
    newest = stop_event(d.outbox, "turn 3", at_ns=int(clock.now * 1e9))
    outcome = d.deliver()
    assert outcome.held == [newest.name] and len(outcome.skipped) == 1
    assert len(backend.sent) == 1
    # failure is debounced in a lane of its own: the first one goes through inside the interval
    write_event(d.outbox, "failure", {"hook_event_name": "StopFailure", "error": "rate limited"}, now_ns=int(clock.now * 1e9) + 1)
    d.deliver()
    assert "rate limited" in backend.sent[-1] and len(backend.sent) == 2
    clock.now += 61
    d.deliver()
    assert backend.sent[-1].endswith("turn 3") and len(backend.sent) == 3
    assert "superseded" in (d.session_dir / LOG_FILE).read_text()


def test_final_flush_sends_held_event_at_once(tmp_path):
    clock = Clock()
    backend = FlakyBackend("b")
    d = delivery(tmp_path, NotifierConfig(on=("stop",), min_interval_seconds=600, commands=(CommandNotifierConfig(("true",)),)), clock)
    d.backends = [backend]
    stop_event(d.outbox, "one")
    d.deliver()
    stop_event(d.outbox, "two")
    assert d.deliver().held
    assert d.deliver(final=True).delivered
    assert backend.sent[-1].endswith("two")


def test_events_not_in_on_are_skipped_and_logged(tmp_path):
    backend = FlakyBackend("b")
    d = delivery(tmp_path, NotifierConfig(on=("failure",), commands=(CommandNotifierConfig(("true",)),)))
    d.backends = [backend]
    path = stop_event(d.outbox, "x")
    outcome = d.deliver(final=True)
    assert outcome.skipped == [path.name] and backend.sent == [] and not path.exists()
    assert "'stop' is not in notifier.on" in (d.session_dir / LOG_FILE).read_text()


def test_unreadable_event_is_kept_aside_and_reported(tmp_path):
    reports: list[str] = []
    d = delivery(tmp_path, NotifierConfig(on=("stop",), commands=(CommandNotifierConfig(("true",)),)), reports=reports)
    (d.outbox / "7-stop-1-a.json").write_text("{not json")
    outcome = d.deliver(final=True)
    assert outcome.unreadable == ["7-stop-1-a.json"]
    assert (d.outbox / "7-stop-1-a.json.bad").exists()
    assert reports and "unusable" in reports[0]


# --- real webhook, real command, apprise missing ---------------------------------------------------------


@pytest.fixture
def webhook_server():
    received: list[tuple[dict, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), json.loads(body)))
            self.send_response(204 if self.path == "/ok" else 500)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serve_in_background(server)
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_webhook_posts_event_json_with_headers(tmp_path, webhook_server):
    base, received = webhook_server
    hook = WebhookConfig(url=f"{base}/ok", headers={"Authorization": "Bearer tok-123"})
    d = delivery(tmp_path, NotifierConfig(on=("stop",), webhooks=(hook,)))
    stop_event(d.outbox, "shipped it")
    assert d.deliver(final=True).delivered
    [(headers, body)] = received
    assert headers["Authorization"] == "Bearer tok-123"
    assert headers["Content-Type"] == "application/json"
    assert body["event"] == "stop" and body["last_message"] == "shipped it" and body["project"] == "proj"
    assert body["text"].endswith("shipped it") and body["hook"]["hook_event_name"] == "Stop"


def test_webhook_error_status_keeps_event(tmp_path, webhook_server):
    base, _ = webhook_server
    d = delivery(tmp_path, NotifierConfig(on=("stop",), webhooks=(WebhookConfig(url=f"{base}/broken"),)))
    path = stop_event(d.outbox, "x")
    assert d.deliver(final=True).failed == [path.name] and path.exists()
    assert "answered HTTP 500" in (d.session_dir / LOG_FILE).read_text()


def test_command_backend_gets_event_json_on_stdin_without_shell(tmp_path):
    out = tmp_path / "got.json"
    script = f"import sys,pathlib; pathlib.Path({str(out)!r}).write_text(sys.stdin.read() + '|' + sys.argv[1])"
    argv = (sys.executable, "-c", script, "$(touch pwned); `x`")
    d = delivery(tmp_path, NotifierConfig(on=("stop",), commands=(CommandNotifierConfig(argv),)))
    os.chdir(tmp_path)
    stop_event(d.outbox, "done and dusted")
    assert d.deliver(final=True).delivered
    payload, _, arg = out.read_text().rpartition("|")
    assert json.loads(payload)["last_message"] == "done and dusted"
    assert arg == "$(touch pwned); `x`" and not (tmp_path / "pwned").exists()


def test_command_backend_nonzero_exit_is_a_failure(tmp_path):
    argv = (sys.executable, "-c", "import sys; sys.stderr.write('no display'); sys.exit(3)")
    d = delivery(tmp_path, NotifierConfig(on=("stop",), commands=(CommandNotifierConfig(argv),)))
    path = stop_event(d.outbox, "x")
    assert d.deliver(final=True).failed == [path.name]
    assert "exited with 3: no display" in (d.session_dir / LOG_FILE).read_text()


def test_apprise_missing_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "apprise", None)  # import fails as if not installed
    with pytest.raises(NotifyError) as raised:
        AppriseUrl("ntfy://secret-topic").send("x", {})
    assert raised.value.hint == "install the optional extra: pip install 'claude-docker[apprise]'"
    assert "secret-topic" not in raised.value.message


def test_zero_interval_sends_every_event(tmp_path):
    backend = FlakyBackend("b")
    d = delivery(tmp_path, NotifierConfig(on=("stop",), min_interval_seconds=0, commands=(CommandNotifierConfig(("true",)),)))
    d.backends = [backend]
    for n in range(3):
        stop_event(d.outbox, f"turn {n}", at_ns=n + 1)
    assert len(d.deliver().delivered) == 3
    assert [t[-6:] for t in backend.sent] == ["turn 0", "turn 1", "turn 2"]


def test_apprise_delivers_through_a_real_apprise_url(tmp_path, webhook_server):
    pytest.importorskip("apprise", reason="the optional apprise extra is not installed")
    base, received = webhook_server
    url = base.replace("http://", "json://") + "/ok"
    d = delivery(tmp_path, NotifierConfig(on=("stop",), apprise=(url,)))
    stop_event(d.outbox, "via apprise")
    assert d.deliver(final=True).delivered
    [(_, body)] = received
    assert body["message"].endswith("\nvia apprise")
    assert body["title"] == "claude-docker proj: stop"


def test_apprise_refusal_keeps_the_event(tmp_path, webhook_server):
    pytest.importorskip("apprise", reason="the optional apprise extra is not installed")
    base, _ = webhook_server
    d = delivery(tmp_path, NotifierConfig(on=("stop",), apprise=(base.replace("http://", "json://") + "/broken",)))
    path = stop_event(d.outbox, "x")
    assert d.deliver(final=True).failed == [path.name] and path.exists()
    assert "apprise json://…: the service did not accept the message" in (d.session_dir / LOG_FILE).read_text()


@settings(max_examples=examples(60), deadline=None)
@given(
    last=st.text(max_size=4000),
    template=st.sampled_from([None, "{{ last_message }}", "x" * 1700 + "{{ last_message }}", "{{ last_message }}|{{ last_message }}"]),
)
def test_message_never_exceeds_the_sms_limit(tmp_path_factory, last, template):
    outbox = tmp_path_factory.mktemp("o")
    event = read_event(outbox, write_event(outbox, "stop", {"hook_event_name": "Stop", "last_assistant_message": last}).name)
    text = render_message(template, MessageContext("p", "s", event))
    assert 0 < len(text) <= SMS_LIMIT


def test_the_detached_watcher_gets_every_notifier_field():
    notifier = NotifierConfig(
        on=("stop",),
        min_interval_seconds=5,
        template="{{ event.kind }}",
        twilio=TwilioConfig(to=("+15550001",), from_number="+15550002", messaging_service_sid="MG1", account_sid="AC1",
                            auth_token="tok", api_key_sid="SK1", api_key_secret="sec", api_base="http://127.0.0.1:1"),
        apprise=("json://127.0.0.1:1/",),
        webhooks=(WebhookConfig(url="http://127.0.0.1:1/ok", headers=frozen_map({"Authorization": "Bearer x"})),),
        commands=(CommandNotifierConfig(argv=("echo", "hi")),),
    )
    assert from_plain(NotifierConfig, json.loads(json.dumps(to_plain(notifier)))) == notifier
    assert from_plain(NotifierConfig, json.loads(json.dumps(to_plain(NotifierConfig())))) == NotifierConfig()
