"""Approval of the config files in the workspace: which files need it, what `trust` shows and
records, and who refuses without it. Through click's runner; the refusals happen before any
engine is needed."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from claude_docker.cli import main
from claude_docker.config.pipeline import load_config
from claude_docker.features import trust


@pytest.fixture
def project(tmp_path, monkeypatch, cd_home):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    directory = tmp_path / "proj"
    directory.mkdir()
    monkeypatch.chdir(directory)
    return directory


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input)


REFUSAL_HINT = "hint: review them, then run `claude-docker trust` (or `claude-docker up --trust`)"


def test_a_committed_config_in_a_fresh_clone_is_refused_until_trusted(project):
    (project / "claude-docker.yaml").write_text("network:\n  firewall: false\n")
    for command in (["up"], ["build"]):
        result = run(*command)
        assert result.exit_code == 1, result.output
        assert result.output.splitlines() == [
            "error: not trusted: claude-docker.yaml (new); config files in the workspace, where the agent can write, "
            "need your approval before the host acts on them",
            REFUSAL_HINT,
        ]
    shown = run("trust", input="n\n")
    assert shown.exit_code == 1  # declined: nothing recorded
    assert "--- claude-docker.yaml (new)\nnetwork:\n  firewall: false\ntrust this file? [y/N]" in shown.output
    assert "trust: claude-docker.yaml is not trusted yet" in run("validate").output
    approved = run("trust", input="y\n")
    assert approved.exit_code == 0, approved.output
    assert approved.output.endswith("trusted claude-docker.yaml\n")
    assert "trust:" not in run("validate").output
    assert run("trust").output == "every config file in the workspace is trusted as it is\n"


def test_a_changed_file_is_shown_as_a_diff_and_refused_until_trusted_again(project):
    config = project / "claude-docker.yaml"
    config.write_text("network:\n  firewall: true\n")
    assert run("trust", "--yes").exit_code == 0
    config.write_text("network:\n  firewall: false\n")
    assert "trust: claude-docker.yaml changed since last trusted — run `claude-docker trust`" in run("validate").output
    refused = run("up")
    assert refused.exit_code == 1
    assert "error: not trusted: claude-docker.yaml (changed since last trusted);" in refused.output
    shown = run("trust", "--yes")
    assert "--- claude-docker.yaml (last trusted)\n+++ claude-docker.yaml\n" in shown.output
    assert "-  firewall: true\n+  firewall: false\n" in shown.output
    assert trust.untrusted(load_config().config) == []


def test_a_new_profile_next_to_the_config_needs_trust_too(project):
    (project / "claude-docker.yaml").write_text("extends: [./team.yaml]\n")
    (project / "team.yaml").write_text("network:\n  allowed_domains: [example.com]\n")
    assert [(entry.display, entry.state) for entry in trust.check(load_config().config)] == [
        ("team.yaml", "new"), ("claude-docker.yaml", "new"),
    ]


def test_files_outside_the_workspace_are_the_users_own(project, cd_home, tmp_path):
    """The per-user config and a profile the user keeps elsewhere need no approval."""
    (tmp_path / "mine.yaml").write_text("network:\n  allowed_domains: [example.com]\n")
    (cd_home / "config.yaml").write_text(f"extends: [{tmp_path / 'mine.yaml'}]\n")
    assert trust.check(load_config().config) == []
    assert not [line for line in run("validate").output.splitlines() if line.startswith("trust:")]


def test_a_planted_file_pointing_its_workspace_elsewhere_still_needs_trust(project, tmp_path):
    """Outside its own workspace, the file still lies where the agent wrote it."""
    (tmp_path / "elsewhere").mkdir()
    (project / "claude-docker.yaml").write_text(f"workspace:\n  path: {tmp_path / 'elsewhere'}\n")
    assert [entry.state for entry in trust.check(load_config().config)] == ["new"]


def test_notify_commands_that_act_refuse_an_untrusted_config(project):
    (project / "claude-docker.yaml").write_text("notifier:\n  commands: [[touch, /tmp/never]]\n")
    for command in (["notify", "test"], ["notify", "flush"]):
        result = run(*command)
        assert result.exit_code == 1
        assert "error: not trusted: claude-docker.yaml (new)" in result.output
    assert run("notify", "status").exit_code == 0  # it only reads


def test_init_approves_the_file_it_writes(project):
    assert run("init").exit_code == 0
    assert trust.untrusted(load_config().config) == []


def test_the_record_lives_in_the_project_state_dir(project, cd_home):
    (project / "claude-docker.yaml").write_text("version: 1\n")
    assert run("trust", "--yes").exit_code == 0
    cfg = load_config().config
    [record] = cd_home.glob("projects/*/trusted.json")
    assert record == trust.record_path(cfg)
    files = json.loads(record.read_text())["files"]
    assert list(files) == [str(project / "claude-docker.yaml")]


def test_approval_judges_what_was_read_not_what_is_there_later(project):
    """A file swapped back to its approved content after `up` read it is still refused."""
    config = project / "claude-docker.yaml"
    config.write_text("network:\n  firewall: true\n")
    assert run("trust", "--yes").exit_code == 0
    config.write_text("network:\n  firewall: false\n")
    loaded = load_config()
    config.write_text("network:\n  firewall: true\n")
    assert trust.untrusted(loaded.config) == []  # a re-read would be fooled
    with pytest.raises(trust.ClaudeDockerError, match="claude-docker.yaml \\(changed since last trusted\\)"):
        trust.require(loaded.config, loaded.digests)
