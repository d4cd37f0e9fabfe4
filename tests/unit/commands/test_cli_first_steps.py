"""A newcomer's first minutes: init prepares $CLAUDE_DOCKER_HOME and the editor's schema, the
missing credential is named before the first prompt, --help reads in the order of use."""

from __future__ import annotations

import json
import stat

import click
import pytest
from click.testing import CliRunner

from claude_docker.cli import main
from claude_docker.config.pipeline import load_config
from claude_docker.features import claude_settings, persistence
from claude_docker.features.base import merged_environment
from claude_docker.resources import schema_path


@pytest.fixture
def project(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CLAUDE_DOCKER_HOME", str(home / ".claude-docker"))
    for name in ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    directory = tmp_path / "proj"
    directory.mkdir()
    monkeypatch.chdir(directory)
    return directory


def run(*args: str, **kwargs):
    return CliRunner().invoke(main, list(args), catch_exceptions=False, **kwargs)


def test_init_creates_a_private_home_so_the_quick_start_env_line_works(project, tmp_path):
    home = tmp_path / "home" / ".claude-docker"
    result = run("init")
    assert result.exit_code == 0
    assert result.output.splitlines()[0] == (
        f"created {home} (only you can read it): the env file and what sessions keep live there"
    )
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    with (home / ".env").open("a") as env_file:  # the README's `echo ... >> ~/.claude-docker/.env`
        env_file.write("ANTHROPIC_API_KEY=sk-ant-test\n")
    (project / "claude-docker.yaml").unlink()
    second = run("init")
    assert "created" not in second.output  # an existing home is left as it is


def test_init_writes_the_schema_its_modeline_names(project):
    result = run("init")
    assert "wrote claude-docker.schema.json (the JSON Schema editors use)" in result.output.splitlines()
    first_line = (project / "claude-docker.yaml").read_text().splitlines()[0]
    assert first_line == "# yaml-language-server: $schema=./claude-docker.schema.json"
    written = json.loads((project / "claude-docker.schema.json").read_text())
    assert written == json.loads(schema_path().read_text())
    (project / "claude-docker.yaml").unlink()
    assert "schema" not in run("init").output  # already current: not rewritten


def test_missing_credential_names_both_fixes(project, tmp_path):
    (project / "claude-docker.yaml").write_text("version: 1\n")
    cfg = load_config().config
    env_file = tmp_path / "home" / ".claude-docker" / ".env"
    assert claude_settings.missing_credential(cfg, {}) == (
        "no Claude Code credential: neither ANTHROPIC_API_KEY nor CLAUDE_CODE_OAUTH_TOKEN is set in the "
        f"environment or in {env_file}, and no login is kept. Either put ANTHROPIC_API_KEY=... (or "
        f"CLAUDE_CODE_OAUTH_TOKEN=... from `claude setup-token`) in {env_file}, or type /login in the "
        "session once (the login is kept for the next session)"
    )
    assert claude_settings.missing_credential(cfg, {"CLAUDE_CODE_OAUTH_TOKEN": "t"}) is None
    env_file.parent.mkdir(parents=True)
    env_file.write_text("ANTHROPIC_API_KEY=sk-ant-test\n")
    assert claude_settings.missing_credential(cfg, merged_environment(cfg, {})) is None  # the env file counts
    env_file.unlink()
    kept = persistence.auth_dir(cfg, persistence.Session(cfg.project_name, "x")) / ".credentials.json"
    kept.parent.mkdir(parents=True)
    kept.write_text("{}")
    assert claude_settings.missing_credential(cfg, {}) is None


def test_help_lists_commands_in_the_order_of_use():
    output = run("--help").output
    listed = [line.split()[0] for line in output.split("Commands:", 1)[1].splitlines() if line.strip()]
    assert listed[:9] == ["init", "validate", "trust", "up", "ps", "logs", "attach", "shell", "down"]
    assert sorted(listed) == sorted(main.list_commands(click.Context(main)))


def test_completion_reads_the_login_shell(monkeypatch):
    monkeypatch.setenv("SHELL", "/usr/bin/zsh")
    assert "compdef" in run("completion").output
    monkeypatch.setenv("SHELL", "/bin/tcsh")
    result = CliRunner().invoke(main, ["completion"])
    assert result.exit_code == 1
    assert result.output == "error: cannot tell the shell: $SHELL is /bin/tcsh\nhint: name it: claude-docker completion bash|zsh|fish\n"


def test_config_shows_defaults_and_the_real_home(project, tmp_path, monkeypatch):
    import yaml

    elsewhere = tmp_path / "state"
    monkeypatch.setenv("CLAUDE_DOCKER_HOME", str(elsewhere))
    (project / "claude-docker.yaml").write_text("version: 1\npersistence:\n  auth: false\n")
    document = yaml.safe_load(run("config").output)
    assert document["image"]["claude_code_version"] == "latest"
    assert document["notifier"]["min_interval_seconds"] == 60
    assert document["persistence"]["auth"] is False and document["persistence"]["shell_history"] is True
    assert document["resources"] == {
        "memory": "auto", "cpus": None, "gpus": None, "shm_size": None,
        "pids_limit": 4096, "log_max_size": "10m", "log_max_files": 3,
    }
    assert str(elsewhere) in document["filesystem"]["blocked_paths"]
    assert "/var/run/docker.sock" in document["filesystem"]["blocked_paths"]
    assert document["env_file"] == f"{elsewhere}/.env"
