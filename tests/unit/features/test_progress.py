"""Progress records: the in-container hook (bash, run here against a plain directory) and the host
side that reads what the agent could have written, never passing a control character on."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from claude_docker.config.model import ImageConfig
from claude_docker.features import progress
from claude_docker.features.image import build_context
from claude_docker.features.progress import ProgressReader, clean, render


@functools.cache
def hook_script() -> str:
    """The helper as the image holds it: rendered from its template with the contract."""
    artifact = build_context(ImageConfig())["bin/hook-progress"]
    path = Path(tempfile.mkdtemp(prefix="claude-docker-bin-")) / "hook-progress"
    path.write_bytes(artifact.content)
    path.chmod(artifact.mode)
    return str(path)


def run_hook(directory, event: bytes) -> subprocess.CompletedProcess:
    return subprocess.run([hook_script()], input=event, env={**os.environ, "CLAUDE_DOCKER_PROGRESS": str(directory)},
                          capture_output=True, check=False)


def pre_tool_use(command: str) -> dict:
    return {"session_id": "s", "hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": command}}


def test_the_hook_appends_one_line_per_event_prints_nothing_and_exits_0(tmp_path):
    event = pre_tool_use("echo 'multi\nline' $(rm -rf /)")
    pretty = json.dumps(event, indent=2).encode()  # line breaks between tokens go, those in strings stay escaped
    for data in (json.dumps(event).encode(), pretty):
        result = run_hook(tmp_path, data)
        assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    lines = (tmp_path / "progress.jsonl").read_bytes().splitlines()
    assert len(lines) == 2
    for line in lines:
        stamp, _, record = line.partition(b" ")
        assert abs(float(stamp) - time.time()) < 60
        assert json.loads(record) == event
        assert render(line) == (pytest.approx(float(stamp)), "Bash: echo 'multi line' $(rm -rf /)")


def test_the_hook_cuts_a_big_event_and_still_drains_it(tmp_path):
    event = {"hook_event_name": "PreToolUse", "tool_name": "Write", "tool_input": {"file_path": "/workspace/big.txt", "content": "x" * 100_000}}
    result = run_hook(tmp_path, json.dumps(event).encode())
    assert result.returncode == 0
    [line] = (tmp_path / "progress.jsonl").read_bytes().splitlines()
    assert len(line) <= progress.MAX_RECORD_BYTES + 32
    assert render(line)[1] == "Write: /workspace/big.txt"  # picked out of a record that is no JSON any more


def test_the_hook_never_fails_claude(tmp_path):
    assert run_hook(tmp_path / "missing", b"{}").returncode == 0
    assert run_hook(tmp_path, b"").returncode == 0
    assert not (tmp_path / "progress.jsonl").exists()  # nothing to record
    (tmp_path / "progress.jsonl").mkdir()  # whatever the agent did to the file
    assert run_hook(tmp_path, json.dumps(pre_tool_use("ls")).encode()).returncode == 0


def test_the_hook_moves_a_full_file_aside(tmp_path):
    (tmp_path / "progress.jsonl").write_bytes(b"x" * (progress.MAX_FILE_BYTES + 1))
    run_hook(tmp_path, json.dumps(pre_tool_use("ls")).encode())
    assert (tmp_path / "progress.jsonl.1").stat().st_size == progress.MAX_FILE_BYTES + 1
    assert render((tmp_path / "progress.jsonl").read_bytes().strip())[1] == "Bash: ls"


@pytest.mark.parametrize("hostile, shown", [
    ("\x1b]0;title\x07plain", "plain"),
    ("\x1b]52;c;cHduZWQ=\x1b\\copied", "copied"),
    ("\x1b[2J\x1b[31mred\x1b[0m", "red"),
    ("\x1bPq#0;2;0;0;0\x1b\\after-dcs", "after-dcs"),
    ("c1\u009b31mcsi", "c131mcsi"),
    ("bidi\u202eevil\u2066", "bidievil"),
    ("bell\x07 back\x08space\x7f", "bell backspace"),
    ("lines\nand\r\ttabs\u2028", "lines and tabs"),
])
def test_clean_removes_everything_a_terminal_would_act_on(hostile, shown):
    assert clean(hostile) == shown


@given(st.text(max_size=400))
def test_clean_never_lets_a_control_character_through(text):
    cleaned = clean(text)
    assert len(cleaned) <= progress.MAX_SHOWN_CHARS
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in "\u202e\u2066\u200f" for c in cleaned)


def test_render_shows_known_events_only():
    stop = json.dumps({"hook_event_name": "Stop", "last_assistant_message": "Done.\n\nDetails follow " + "y" * 500})
    when, what = render(b"1700000000.25 " + stop.encode())
    assert when == 1700000000.25
    assert what.startswith("Claude: Done. Details follow yyy") and what.endswith("...") and len(what) <= progress.MAX_SHOWN_CHARS
    assert render(b"1 " + json.dumps({"hook_event_name": "SessionEnd"}).encode()) is None
    assert render(b"1 " + json.dumps(["not", "an", "object"]).encode()) is None
    assert render(b"nan " + json.dumps(pre_tool_use("ls")).encode()) == (None, "Bash: ls")
    assert render(b"1 " + json.dumps({"hook_event_name": "PreToolUse", "tool_name": "\x1b[0m"}).encode()) is None
    assert render(b"x" * (progress.MAX_RECORD_BYTES + 100)) is None


def write(path, data: bytes) -> None:
    with open(path, "ab") as stream:
        stream.write(data)


def record(command: str) -> bytes:
    return b"1700000000 " + json.dumps(pre_tool_use(command)).encode() + b"\n"


def test_the_reader_follows_appends_partial_lines_and_a_move_aside(tmp_path):
    directory = tmp_path / "progress"
    directory.mkdir()
    path = directory / "progress.jsonl"
    reader = ProgressReader(tmp_path)
    assert reader.backlog() == [] and reader.poll() == []  # no file yet
    write(path, record("one"))
    assert [line.split("] ")[1] for line in reader.poll()] == ["Bash: one"]
    half = record("two")
    write(path, half[:20])
    assert reader.poll() == []  # half a record waits for its end
    write(path, half[20:])
    write(path, b"x" * (progress.MAX_RECORD_BYTES * 3) + b"\n" + record("three"))  # an overlong line is skipped
    assert [line.split("] ")[1] for line in reader.poll()] == ["Bash: two", "Bash: three"]
    write(path, record("four"))
    os.rename(path, directory / "progress.jsonl.1")  # what the hook does past MAX_FILE_BYTES
    write(path, record("five"))
    assert [line.split("] ")[1] for line in reader.poll()] == ["Bash: four", "Bash: five"]
    reader.close()


def test_the_reader_starts_near_the_end_and_refuses_what_is_no_regular_file(tmp_path):
    directory = tmp_path / "progress"
    directory.mkdir()
    path = directory / "progress.jsonl"
    write(path, b"".join(record(f"old-{n}") for n in range(5000)))
    backlog = ProgressReader(tmp_path).backlog()
    assert len(backlog) == progress.BACKLOG_LINES and backlog[-1].endswith("Bash: old-4999")
    path.unlink()
    os.mkfifo(path)  # a reader blocked on a FIFO would hang `logs`
    assert ProgressReader(tmp_path).backlog() == []
    path.unlink()
    secret = tmp_path / "secret"
    secret.write_bytes(record("host-secret"))
    path.symlink_to(secret)  # never followed
    assert ProgressReader(tmp_path).backlog() == []
