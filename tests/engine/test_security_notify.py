"""A hostile agent against the host-side notifier: the outbox is agent-written, and whatever it
holds must neither crash the host's `claude-docker` process nor keep other events from being
delivered. Real engine and image, the real `up`, a command backend running on the host.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.projects import run_cli
from tests.support.testbed import base_image_yaml
from tests.support.wait import wait_for

pytestmark = pytest.mark.docker

AGENT_UID = 1000

RECORDER = "import json, sys; open(sys.argv[1], 'a').write(json.dumps(json.load(sys.stdin)) + '\\n')"


def make_project(tmp_path: Path, received: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "claude-docker.yaml").write_text(
        base_image_yaml()
        + "network:\n  firewall: false\npersistence:\n  git_config: false\n"
        + "notifier:\n  on: [stop, failure]\n  min_interval_seconds: 0\n  commands:\n"
        + f"    - {json.dumps([sys.executable, '-c', RECORDER, str(received)])}\n"
    )
    if os.getuid() == 0:
        for item in [project, *project.rglob("*")]:
            os.lchown(item, AGENT_UID, AGENT_UID)
    return project / "claude-docker.yaml"


def deliveries(received: Path) -> list[dict]:
    if not received.exists():
        return []
    return [json.loads(line) for line in received.read_text().splitlines() if line.strip()]


# Writes one event file the way hook-event does (dot-name, then rename): `put NAME` < content.
PUT = 'put() { cat > "$CLAUDE_DOCKER_OUTBOX/.tmp-$1" && mv "$CLAUDE_DOCKER_OUTBOX/.tmp-$1" "$CLAUDE_DOCKER_OUTBOX/$1"; }; '
OUTBOX = "CLAUDE_DOCKER_OUTBOX=/run/claude-docker/outbox; "


def test_hostile_outbox_files_neither_crash_the_host_nor_block_other_events(tmp_path, cd_home):
    received = tmp_path / "received.jsonl"
    config = make_project(tmp_path, received)
    script = (
        OUTBOX + PUT
        # JSON nested deeper than Python's recursion limit
        + "printf '%*s' 200000 '' | tr ' ' '[' | put 1000000000000000001-stop-1-deep.json; "
        # a NUL byte (no program takes it in an argument or the environment) and a lone surrogate
        + "printf 'before\\0after' | put 1000000000000000002-message-1-nul.txt; "
        + "printf '%s' '{\"hook_event_name\": \"Stop\", \"last_assistant_message\": \"half\\ud800pair\\u0000x\"}' "
        + "| put 1000000000000000003-stop-1-surrogate.json; "
        + "notify 'the real message'; echo AGENT-DONE"
    )
    result = run_cli("up", "-f", str(config), "--", "--exec", "bash", "-c", script)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    assert "AGENT-DONE" in result.stdout
    texts = [item["last_message"] for item in deliveries(received)]
    assert "the real message" in texts, texts
    assert any(text.startswith("before") and "after" in text and "\0" not in text for text in texts), texts
    assert any(text.startswith("half") and "pair" in text for text in texts), texts
    [outbox] = cd_home.glob("projects/*/sessions/*/outbox")
    assert [p.name for p in outbox.iterdir()] == ["1000000000000000001-stop-1-deep.json.bad"]


def test_a_notifier_credential_never_enters_the_container_through_claude_env(tmp_path, cd_home, monkeypatch):
    """MCP variables holding a notifier credential are refused; so is the same value in claude.env."""
    secret = "WHsecret-" + os.urandom(8).hex()
    monkeypatch.setenv("HOOK_TOKEN", secret)
    project = tmp_path / "project"
    project.mkdir()
    (project / "claude-docker.yaml").write_text(
        base_image_yaml()
        + "network:\n  firewall: false\npersistence:\n  git_config: false\n"
        + "claude:\n  env:\n    SOME_TOKEN: ${HOOK_TOKEN}\n"
        + "notifier:\n  webhooks:\n    - url: http://127.0.0.1:9/hook\n      headers: {Authorization: \"Bearer ${HOOK_TOKEN}\"}\n"
    )
    if os.getuid() == 0:
        os.chown(project, AGENT_UID, AGENT_UID)
    result = run_cli("up", "-f", str(project / "claude-docker.yaml"), "--", "--exec", "env")
    assert secret not in result.stdout + result.stderr
    assert result.returncode == 1, result.stdout + result.stderr
    assert "claude-docker.yaml:10: claude.env.SOME_TOKEN: holds a notifier credential" in result.stderr
    assert "Traceback" not in result.stderr


def test_outbox_links_fifos_and_directories_are_never_read_or_sent(tmp_path, cd_home):
    """The host may run as root: an outbox entry pointing at a host file must not be read, a FIFO
    must not block the host, and `up` ends as soon as the container does."""
    received = tmp_path / "received.jsonl"
    config = make_project(tmp_path, received)
    secret = tmp_path / "host-secret"
    secret.write_text('{"hook_event_name": "Stop", "last_assistant_message": "HOST-SECRET"}')
    script = (
        OUTBOX
        + f"ln -s {secret} $CLAUDE_DOCKER_OUTBOX/1000000000000000001-stop-1-link.json; "
        + "mkfifo $CLAUDE_DOCKER_OUTBOX/1000000000000000002-stop-1-fifo.json; "
        + "mkdir $CLAUDE_DOCKER_OUTBOX/1000000000000000003-stop-1-dir.json; "
        + f"ln -s {secret} $CLAUDE_DOCKER_OUTBOX/1000000000000000003-stop-1-dir.json/link; "
        + "notify 'the real message'; echo AGENT-DONE"
    )
    result = run_cli("up", "-f", str(config), "--", "--exec", "bash", "-c", script, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    texts = [item["last_message"] for item in deliveries(received)]
    assert texts == ["the real message"], texts
    assert "HOST-SECRET" not in received.read_text() + result.stderr
    [outbox] = cd_home.glob("projects/*/sessions/*/outbox")
    assert sorted(p.name for p in outbox.iterdir()) == [  # the directory (and all in it) is removed
        "1000000000000000001-stop-1-link.json.bad",
        "1000000000000000002-stop-1-fifo.json.bad",
    ]
    assert secret.exists()


def test_a_flooded_outbox_is_read_a_few_events_at_a_time(tmp_path, cd_home):
    """Each outbox file may hold 1 MiB, which parses to ~25 MB of objects: a pass that read the
    whole outbox at once would hold all of them. The agent writes 120 such files; `up` runs
    under a 1.5 GB address-space limit and must still end normally and deliver the real message."""
    received = tmp_path / "received.jsonl"
    config = make_project(tmp_path, received)
    text = config.read_text().replace("on: [stop, failure]", "on: [failure]")  # the flood is read, then skipped
    config.write_text(text)
    script = (
        OUTBOX + PUT
        + "{ printf '{\"hook_event_name\": \"Stop\", \"x\": [{}'; for i in $(seq 349000); do printf ',{}'; done; printf ']}'; } > /tmp/big.json; "
        + "for i in $(seq 120); do put \"$(date +%s%N)-stop-$i-flood.json\" < /tmp/big.json; done; "
        + "notify 'the real message'; echo AGENT-DONE"
    )
    result = subprocess.run(
        ["prlimit", "--as=1500000000", "claude-docker", "up", "--trust", "-f", str(config), "--", "--exec", "bash", "-c", script],
        env={**os.environ, "MALLOC_ARENA_MAX": "2"}, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600,
    )
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "AGENT-DONE" in result.stdout
    assert [item["last_message"] for item in deliveries(received)] == ["the real message"]
    assert list(cd_home.glob("projects/*/sessions/*/outbox/*")) == []  # every event was handled


def test_forged_failures_are_capped_and_the_exit_code_decides_what_failed(tmp_path, cd_home):
    """The agent writes 100 StopFailure events and exits 3: the host sends at most
    notifier.max_per_kind of them, one failure of its own from the exit code, and one summary."""
    received = tmp_path / "received.jsonl"
    config = make_project(tmp_path, received)
    script = (
        OUTBOX + PUT
        + "for i in $(seq 100); do printf '{\"hook_event_name\": \"StopFailure\", \"error\": \"forged %s\"}' $i "
        + "| put \"$(date +%s%N)-failure-$i-x.json\"; done; echo AGENT-DONE; exit 3"
    )
    result = run_cli("up", "-f", str(config), "--", "--exec", "bash", "-c", script, timeout=180)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "AGENT-DONE" in result.stdout
    got = deliveries(received)
    forged = [item for item in got if item["last_message"].startswith("forged")]
    host = [item for item in got if item["last_message"] == "the container exited with code 3"]
    summary = [item for item in got if item["event"] == "dropped"]
    assert len(forged) <= 10, len(forged)
    assert len(host) == 1 and host[0]["event"] == "failure" and host[0]["exit_code"] == 3
    assert len(summary) == 1 and f"{100 - len(forged)} not sent: failure {100 - len(forged)}" in summary[0]["last_message"]
    assert len(got) == len(forged) + 2


def test_a_detached_session_ended_by_down_is_no_failure(tmp_path, cd_home):
    """`down` kills the container (exit 137): the detached watcher must not text a failure."""

    from claude_docker.notify.delivery import is_live

    received = tmp_path / "received.jsonl"
    config = make_project(tmp_path, received)
    started = run_cli("up", "-f", str(config), "--detach", "--", "--exec", "sleep", "300")
    assert started.returncode == 0, started.stderr
    [session_dir] = cd_home.glob("projects/*/sessions/*")
    assert wait_for(lambda: is_live(session_dir), 30, interval=0.2), "the watcher did not start"
    removed = run_cli("down", "-f", str(config))
    assert removed.returncode == 0, removed.stderr
    assert wait_for(lambda: not is_live(session_dir), 60, interval=0.2), "the watcher did not end with its container"
    assert deliveries(received) == []
    assert '"exit_code": 137' in (session_dir / "notify-state.json").read_text()
