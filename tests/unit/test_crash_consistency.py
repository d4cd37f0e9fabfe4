"""Crash-consistent state: every file claude-docker writes is written, flushed, then renamed into
place, and a damaged state file is set aside (kept) and recovered instead of stopping `up`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from claude_docker import atomicfile
from claude_docker.artifacts import Artifact, write_artifacts
from claude_docker.config.model import NotifierConfig, WebhookConfig
from claude_docker.features import claude_settings, persistence
from claude_docker.notify.delivery import STATE_FILE, SessionDelivery
from claude_docker.notify.events import write_event

IDS = (os.getuid(), os.getgid())


# --- write, fsync, rename --------------------------------------------------------------------


@pytest.fixture
def disk_log(monkeypatch) -> list[tuple[str, str]]:
    """Records ("fsync", path) and ("rename", src → dst) in the order they happen."""
    log: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        log.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst, **kwargs):
        log.append(("rename", f"{src} -> {dst}"))
        return real_replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return log


def assert_flushed_before_renamed(log: list[tuple[str, str]], target: Path) -> None:
    renames = [entry for kind, entry in log if kind == "rename" and entry.endswith(f" -> {target}")]
    assert renames, f"{target} was not renamed into place: {log}"
    source = renames[-1].split(" -> ")[0]
    position = log.index(("rename", renames[-1]))
    assert ("fsync", source) in log[:position], f"{source} was renamed before it was flushed: {log}"
    assert ("fsync", str(target.parent)) in log[position:], f"the rename in {target.parent} was not flushed: {log}"


def test_seeded_claude_state_and_settings_are_flushed_then_renamed(tmp_path, disk_log):
    claude_settings.seed_claude_state(tmp_path, "/workspace", IDS)
    assert_flushed_before_renamed(disk_log, tmp_path / ".claude.json")
    assert_flushed_before_renamed(disk_log, tmp_path / "settings.json")


def test_imported_login_is_flushed_then_renamed(tmp_path, disk_log):
    (tmp_path / "home" / ".claude").mkdir(parents=True)
    (tmp_path / "home" / ".claude" / ".credentials.json").write_text('{"token": "t"}')
    (tmp_path / "cfg").mkdir()
    assert persistence.import_host_login(tmp_path / "cfg", IDS, host_home=tmp_path / "home")
    assert_flushed_before_renamed(disk_log, tmp_path / "cfg" / ".credentials.json")


def test_delivery_state_is_flushed_then_renamed(tmp_path, disk_log):
    notifier = NotifierConfig(webhooks=(WebhookConfig("http://127.0.0.1:9/hook"),))
    SessionDelivery(notifier, "p", "s", tmp_path).mark_started()
    assert_flushed_before_renamed(disk_log, tmp_path / STATE_FILE)


def test_events_and_runtime_files_are_flushed_then_renamed(tmp_path, disk_log):
    event = write_event(tmp_path / "outbox", "test", {"text": "hi"})
    assert_flushed_before_renamed(disk_log, event)
    [script] = write_artifacts({"init.sh": Artifact(b"#!/bin/sh\n", 0o755)}, tmp_path / "runtime")
    assert_flushed_before_renamed(disk_log, script)
    assert script.stat().st_mode & 0o777 == 0o755


def test_a_writer_killed_mid_write_leaves_the_old_or_the_new_file_never_half(tmp_path):
    """SIGKILL a process that keeps rewriting a large state file: what is left always parses."""
    target = tmp_path / ".claude.json"
    target.write_text(json.dumps({"generation": -1}))
    writer = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        from claude_docker.atomicfile import write_atomic
        padding = "x" * 4_000_000
        generation = 0
        while True:
            write_atomic(Path({str(target)!r}), json.dumps({{"generation": generation, "padding": padding}}).encode())
            generation += 1
            if generation == 2:
                print("writing", flush=True)
        """
    )
    for delay in (0.01, 0.04, 0.12):
        process = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE)
        assert process.stdout.readline() == b"writing\n"
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        state = json.loads(target.read_text())  # never cut short
        assert state["generation"] >= 1
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != ".claude.json"]
    assert all(name.startswith(".tmp-.claude.json.") and name.endswith(".tmp") for name in leftovers), leftovers  # only temp files


# --- a damaged state file ------------------------------------------------------------------------


def truncated_state(config_dir: Path) -> bytes:
    full = json.dumps({"userID": "u-123", "hasCompletedOnboarding": True, "projects": {"/workspace": {"x": 1}}}, indent=2)
    cut = full[: len(full) // 2].encode()
    (config_dir / ".claude.json").write_bytes(cut)
    return cut


def test_truncated_state_is_kept_and_recovered_from_the_newest_valid_backup(tmp_path):
    cut = truncated_state(tmp_path)
    backups = tmp_path / "backups"
    backups.mkdir()
    (backups / ".claude.json.backup.1000").write_text(json.dumps({"userID": "oldest"}))
    (backups / ".claude.json.backup.2000").write_text(json.dumps({"userID": "newest-valid", "numStartups": 7}))
    (backups / ".claude.json.backup.3000").write_text('{"userID": "also cut sh')  # newer, but damaged
    warnings: list[str] = []
    claude_settings.seed_claude_state(tmp_path, "/workspace", IDS, warnings=warnings)
    [kept] = list(tmp_path.glob(".claude.json.corrupt-*"))
    assert kept.read_bytes() == cut  # the damaged copy is kept as it was
    state = json.loads((tmp_path / ".claude.json").read_text())
    assert (state["userID"], state["numStartups"]) == ("newest-valid", 7)
    assert state["projects"]["/workspace"]["hasTrustDialogAccepted"] is True  # and seeded again
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert str(tmp_path / ".claude.json") in warnings[0] and str(kept) in warnings[0]
    assert str(backups / ".claude.json.backup.2000") in warnings[0]
    assert (backups / ".claude.json.backup.3000").exists()  # backups are Claude Code's: left alone


def test_truncated_state_without_a_backup_is_kept_and_seeded_afresh(tmp_path):
    cut = truncated_state(tmp_path)
    (tmp_path / "settings.json").write_text("[1, 2")
    warnings: list[str] = []
    claude_settings.seed_claude_state(tmp_path, "/workspace", IDS, warnings=warnings)
    assert [p.read_bytes() for p in tmp_path.glob(".claude.json.corrupt-*")] == [cut]
    assert [p.read_text() for p in tmp_path.glob("settings.json.corrupt-*")] == ["[1, 2"]
    assert json.loads((tmp_path / ".claude.json").read_text())["hasCompletedOnboarding"] is True
    assert json.loads((tmp_path / "settings.json").read_text()) == {"skipDangerousModePermissionPrompt": True}
    assert len(warnings) == 2 and all("started it afresh" in w for w in warnings)


def test_a_linked_backup_is_never_read(tmp_path):
    truncated_state(tmp_path)
    secret = tmp_path.parent / f"{tmp_path.name}-secret.json"
    secret.write_text(json.dumps({"auths": "host-secret"}))
    (tmp_path / "backups").mkdir()
    (tmp_path / "backups" / ".claude.json.backup.9999").symlink_to(secret)
    claude_settings.seed_claude_state(tmp_path, "/workspace", IDS, warnings=[])
    assert "host-secret" not in (tmp_path / ".claude.json").read_text()


def test_damaged_delivery_state_is_kept_and_logged(tmp_path):
    notifier = NotifierConfig(webhooks=(WebhookConfig("http://127.0.0.1:9/hook"),))
    (tmp_path / STATE_FILE).write_text('{"delivered": {"x": ["we')
    reports: list[str] = []
    SessionDelivery(notifier, "p", "s", tmp_path, report=reports.append).mark_started()
    [kept] = list(tmp_path.glob(f"{STATE_FILE}.corrupt-*"))
    assert kept.read_text() == '{"delivered": {"x": ["we'
    assert "started_at" in json.loads((tmp_path / STATE_FILE).read_text())
    assert len(reports) == 1 and str(kept) in reports[0]


def test_set_aside_never_overwrites_an_earlier_copy(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "a.json"
    first.write_text("one")
    kept_one = atomicfile.set_aside(first, now=0)
    second.write_text("two")
    kept_two = atomicfile.set_aside(second, now=0)
    assert kept_one != kept_two and (kept_one.read_text(), kept_two.read_text()) == ("one", "two")
