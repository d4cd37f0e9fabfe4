"""What a session can leave on the host's disk: the outbox (agent-written), the firewall's DNS
log (written by dnsmasq inside the container), the notifier's own log, and old session dirs.
Each is capped; these tests write more than the caps allow and measure what is kept."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path

from claude_docker import contract, lifecycle
from claude_docker.config.model import CommandNotifierConfig, NotifierConfig
from claude_docker.features.firewall import log as firewall_log
from claude_docker.notify import delivery as delivery_module
from claude_docker.notify import events
from claude_docker.notify.delivery import LOG_FILE, SessionDelivery, holding_live_lock
from claude_docker.notify.events import MAX_BAD_FILES, MAX_EVENT_BYTES, MAX_OUTBOX_BYTES, sweep_outbox, write_event
from claude_docker.session import Session
from tests.fakes.engine import FakeEngine

MiB = 1024 * 1024
KiB = 1024

# The caps on files and lines are lowered in the tests that flood them: the code that enforces a
# cap is the same at 32 files as at 256, and writing tens of thousands of lines is the slow part.


class Recorder:
    key = label = "recorder"

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, text: str, payload: dict) -> str:
        self.sent.append(text)
        return "ok"


def delivery(tmp_path: Path, **notifier) -> SessionDelivery:
    session_dir = tmp_path / "session"
    (session_dir / "outbox").mkdir(parents=True, exist_ok=True)
    values = dict(on=("stop",), min_interval_seconds=0, commands=(CommandNotifierConfig(("true",)),))
    values.update(notifier)
    d = SessionDelivery(NotifierConfig(**values), "proj", "s1", session_dir, report=lambda line: None)
    d.backends = [Recorder()]
    return d


def outbox_bytes(outbox: Path) -> int:
    return sum(p.lstat().st_size for p in outbox.rglob("*"))


# --- the outbox ---------------------------------------------------------------------------------


def test_an_oversized_outbox_file_is_dropped_not_kept(tmp_path):
    d = delivery(tmp_path)
    with open(d.outbox / "1-stop-1-big.json", "wb") as big:
        big.truncate(20 * MiB)
    d.deliver(final=True)
    assert list(d.outbox.iterdir()) == []
    assert "larger than" in (d.session_dir / LOG_FILE).read_text()


def test_entries_that_are_not_events_are_removed(tmp_path):
    d = delivery(tmp_path)
    (d.outbox / "junk.bin").write_bytes(b"x" * (5 * MiB))
    (d.outbox / "nested").mkdir()
    (d.outbox / "nested" / "more.bin").write_bytes(b"x" * MiB)
    (d.outbox / "1-stop-1-dir.json").mkdir()
    (d.outbox / "1-stop-1-dir.json" / "inside").write_bytes(b"x" * MiB)
    stale = d.outbox / ".tmp-1-stop-1-a.json"
    stale.write_text("{")
    os.utime(stale, (time.time() - 600, time.time() - 600))
    fresh = d.outbox / ".tmp-2-stop-1-b.json"  # a hook is writing it right now
    fresh.write_text("{")
    d.deliver()
    assert sorted(p.name for p in d.outbox.iterdir()) == [fresh.name]
    d.deliver(final=True)  # the container is gone: nobody finishes it
    assert list(d.outbox.iterdir()) == []


def test_a_flood_of_event_files_is_cut_to_the_outbox_limits(tmp_path, monkeypatch):
    monkeypatch.setattr(events, "MAX_OUTBOX_FILES", 32)
    d = delivery(tmp_path, min_interval_seconds=60)
    for n in range(32 + 60):
        write_event(d.outbox, "stop", {"hook_event_name": "Stop", "last_assistant_message": "x"}, now_ns=n + 1)
    d.deliver()
    assert len(list(d.outbox.iterdir())) <= 32
    d.deliver(final=True)
    assert list(d.outbox.iterdir()) == []
    summary = d.backends[0].sent[-1]
    assert "notifications dropped" in summary and "not sent: stop" in summary


def test_the_outbox_keeps_a_bounded_number_of_bytes(tmp_path):
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    for n in range(40):
        (outbox / f"{n + 1}-stop-1-a.json").write_bytes(b" " * (MAX_EVENT_BYTES - 10))
    result = sweep_outbox(outbox, time.time())
    assert outbox_bytes(outbox) <= MAX_OUTBOX_BYTES
    assert sum(result.dropped.values()) >= 40 - MAX_OUTBOX_BYTES // MAX_EVENT_BYTES
    assert (outbox / "40-stop-1-a.json").exists()  # the newest stay


def test_unusable_files_kept_aside_are_capped(tmp_path):
    d = delivery(tmp_path)
    for n in range(40):
        (d.outbox / f"{n + 1}-stop-1-a.json").write_text("{not json")
    (d.outbox / "x.bad").mkdir()  # a name only the host should write, made by the agent
    d.deliver(final=True)
    kept = list(d.outbox.iterdir())
    assert 0 < len(kept) <= MAX_BAD_FILES and all(p.name.endswith(".bad") and p.is_file() for p in kept)


# --- the notifier's log -------------------------------------------------------------------------


def test_the_notify_log_is_rotated(tmp_path, monkeypatch):
    monkeypatch.setattr(delivery_module, "MAX_LOG_BYTES", 64 * KiB)
    d = delivery(tmp_path)
    for n in range(2000):  # ~180 KiB: rotated twice
        d.log(f"{n}-stop-1-a.json", "INFO", "skipped: 'stop' is not in notifier.on " + "x" * 40)
    logs = sorted(d.session_dir.glob(LOG_FILE + "*"))
    assert [p.name for p in logs] == [LOG_FILE, LOG_FILE + ".1"]
    assert all(p.stat().st_size <= 64 * KiB + 1000 for p in logs)


# --- the firewall's DNS log ---------------------------------------------------------------------


def test_reading_the_dns_log_reads_its_end_only(tmp_path, monkeypatch):
    monkeypatch.setattr(firewall_log, "MAX_DNS_LOG_READ", 64 * KiB)
    line = "Nov 27 04:24:{:02d} dnsmasq[26]: config {} is NXDOMAIN\n"
    log = tmp_path / contract.DNS_LOG_NAME
    with log.open("w") as handle:
        for n in range(4000):
            handle.write(line.format(n % 60, f"old{n}.example"))
        handle.write(line.format(59, "recent.example"))
    assert log.stat().st_size > 3 * firewall_log.MAX_DNS_LOG_READ
    names = [entry.name for entry in firewall_log.read_blocked(log, datetime(2026, 11, 28))]
    assert names[-1] == "recent.example"
    assert "old0.example" not in names and len(names) < 4000 // 3


def test_the_rotated_dns_log_is_read_too(tmp_path):
    log = tmp_path / contract.DNS_LOG_NAME
    (tmp_path / (contract.DNS_LOG_NAME + ".1")).write_text("Nov 27 04:24:01 dnsmasq[26]: config before.example is NXDOMAIN\n")
    log.write_text("Nov 27 04:24:02 dnsmasq[26]: config after.example is NXDOMAIN\n")
    assert [e.name for e in firewall_log.read_blocked(log, datetime(2026, 11, 28))] == ["before.example", "after.example"]


# --- old session directories --------------------------------------------------------------------


def age(path: Path, days: float) -> None:
    stamp = time.time() - days * 86400
    for item in [*path.rglob("*"), path]:
        os.utime(item, (stamp, stamp), follow_symlinks=False)


def test_session_dirs_of_ended_sessions_are_pruned_after_a_week(cd_home):
    project = "proj-12345678"
    made = {}
    for name in ("old", "recent", "kept", "live"):
        session = Session(project, name)
        (session.outbox_dir).mkdir(parents=True)
        (session.session_dir / LOG_FILE).write_text("x\n")
        made[name] = session.session_dir
    for name in ("old", "kept", "live"):
        age(made[name], 8)
    with holding_live_lock(made["live"]):
        age(made["live"], 8)
        engine = FakeEngine()
        engine.add_container("c-kept", {contract.LABEL_MANAGED: "1", contract.LABEL_PROJECT: project, contract.LABEL_SESSION: "kept"})
        pruned = lifecycle.prune_sessions(engine, project)
    assert pruned == ["old"]
    assert sorted(p.name for p in made["old"].parent.iterdir()) == ["kept", "live", "recent"]


def test_ended_detached_sessions_are_kept_a_week_then_pruned(cd_home):
    from claude_docker.contract import LABEL_DETACHED, LABEL_PROJECT

    project = "proj-12345678"
    long_ago = time.strftime("%Y-%m-%dT%H:%M:%S.123456789Z", time.gmtime(time.time() - 8 * 86400))
    lately = time.strftime("%Y-%m-%dT%H:%M:%S.123456789Z", time.gmtime(time.time() - 6 * 86400))
    engine = FakeEngine()
    for session, finished, detached in (("old", long_ago, True), ("recent", lately, True), ("kept", long_ago, False)):
        # "kept": `up --keep` (or a foreground one): only `down` removes it
        labels = {contract.LABEL_MANAGED: "1", LABEL_PROJECT: project, contract.LABEL_SESSION: session}
        engine.add_container(f"c-{session}", {**labels, **({LABEL_DETACHED: "1"} if detached else {})}, finished=finished)
    Session(project, "old").outbox_dir.mkdir(parents=True)
    assert lifecycle.prune_sessions(engine, project) == ["old"]
    assert engine.called("remove") == ["c-old"]
    assert [method for method, _ in engine.calls if method.startswith("list")] == ["list brief", "list"]  # end times inspected
    assert not Session(project, "old").session_dir.exists()


def test_a_name_ending_in_a_line_break_is_not_an_event(tmp_path):
    """The agent names the outbox files: a name that is an event's plus a final line break is
    not one (it would split the host's notify.log lines where the name is written)."""
    d = delivery(tmp_path)
    (d.outbox / "1-stop-1-a.json\n").write_text(json.dumps({"hook_event_name": "Stop", "last_assistant_message": "x"}))
    d.deliver(final=True)
    assert d.backends[0].sent == [] and list(d.outbox.iterdir()) == []
    log = (d.session_dir / LOG_FILE).read_text() if (d.session_dir / LOG_FILE).exists() else ""
    assert all(line[:4].isdigit() for line in log.splitlines()), log
