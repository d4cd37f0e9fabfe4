"""Choosing a session by an id prefix, exit codes in `ps`, the host command that resumes a
conversation; one meaning for -f. Engine-free: the engine's answers are plain ContainerInfo."""

from __future__ import annotations

import os
import time

import pytest
from click.testing import CliRunner

from claude_docker import lifecycle
from claude_docker.cli import main
from claude_docker.config.pipeline import load_config
from claude_docker.contract import LABEL_SESSION
from claude_docker.engine import ContainerInfo
from claude_docker.errors import ClaudeDockerError
from claude_docker.features import persistence
from claude_docker.session import Session


def info(session_id: str, status: str = "running", exit_code: int | None = 0) -> ContainerInfo:
    return ContainerInfo(
        name=f"claude-docker-p-{session_id}", short_id=session_id[:4], status=status, created="",
        image="img", labels={LABEL_SESSION: session_id}, env={}, exit_code=exit_code,
    )


SESSIONS = [info("3f9a1c2e"), info("3f0b77aa", "exited", 1), info("c0ffee00")]


def test_a_unique_prefix_selects_the_session():
    assert lifecycle.match_session(SESSIONS, "c0f", "p").name == "claude-docker-p-c0ffee00"
    assert lifecycle.match_session(SESSIONS, "3f9a1c2e", "p").name == "claude-docker-p-3f9a1c2e"


def test_an_ambiguous_prefix_lists_the_candidates():
    with pytest.raises(ClaudeDockerError) as caught:
        lifecycle.match_session(SESSIONS, "3f", "p")
    assert caught.value.message == "3f matches several sessions in project p: 3f9a1c2e (running), 3f0b77aa (exited (1))"
    assert caught.value.hint == "give more of the id (`claude-docker ps` lists them)"


def test_an_unknown_id_lists_every_session():
    with pytest.raises(ClaudeDockerError) as caught:
        lifecycle.match_session(SESSIONS, "dead", None)
    assert caught.value.message == "no session dead in this engine"
    assert caught.value.hint == "sessions: 3f9a1c2e (running), 3f0b77aa (exited (1)), c0ffee00 (running)"
    with pytest.raises(ClaudeDockerError) as empty:
        lifecycle.match_session([], "dead", "p")
    assert empty.value.hint == "sessions: none"


def test_status_shows_the_exit_code_of_ended_sessions():
    assert [lifecycle.status_text(i) for i in SESSIONS] == ["running", "exited (1)", "running"]
    assert lifecycle.status_text(info("x", "created", 0)) == "created"


def test_minus_f_names_the_config_file_everywhere():
    """Every command with -f means the config file by it; following logs is --follow."""
    from claude_docker.commands import COMMAND_MODULES, load_command

    for name in COMMAND_MODULES:
        command = load_command(name)
        commands = list(command.commands.values()) if hasattr(command, "commands") else [command]
        for each in commands:
            for param in each.params:
                if "-f" in getattr(param, "opts", []):
                    assert param.name in ("config_file", "target"), (name, each.name, param.name)
    result = CliRunner().invoke(main, ["logs", "--help"])
    assert "--follow" in result.output


def test_the_newest_conversation_is_the_one_to_resume(tmp_path, monkeypatch, cd_home):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "claude-docker.yaml").write_text("version: 1\n")
    cfg = load_config().config
    session = Session(cfg.project_name, "s1")
    started = time.time()
    assert persistence.latest_conversation(cfg, session, started) is None
    transcripts = persistence.auth_dir(cfg, session) / "projects" / "-workspace"
    transcripts.mkdir(parents=True)
    old = transcripts / "0d1e2f3a-0000-4000-8000-000000000001.jsonl"
    old.write_text("{}\n")
    os.utime(old, (started - 60, started - 60))
    assert persistence.latest_conversation(cfg, session, started) is None  # from an earlier session
    new = transcripts / "9a8b7c6d-0000-4000-8000-000000000002.jsonl"
    new.write_text("{}\n")
    assert persistence.latest_conversation(cfg, session, started) == "9a8b7c6d-0000-4000-8000-000000000002"
