"""Persisted state: host dirs, mounts and env, the imported host login (no engine). What Claude
Code's first-run state in the config dir holds is test_claude_settings.py's."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from claude_docker import contract
from claude_docker.config.model import Config, GitIdentity
from claude_docker.features import RunContext, persistence
from claude_docker.runspec import BindMount, RunSpec
from claude_docker.session import Session
from tests.support.configs import persisted_config


def run(cfg: Config, session: Session | None = None) -> tuple[RunSpec, Session]:
    session = session or Session.new(cfg.project_name)
    spec = RunSpec()
    persistence.contribute(RunContext.build(cfg, session), spec)
    return spec, session


def test_project_scope_layout_mounts_and_env(cd_home, host_home):
    cfg = persisted_config(host_home / "proj")
    spec, session = run(cfg)
    state = cd_home / "projects" / cfg.project_name
    assert spec.env["CLAUDE_CONFIG_DIR"] == contract.CLAUDE_CONFIG_DIR
    assert spec.env["NPM_CONFIG_CACHE"] == "/var/cache/claude-docker/npm"
    assert spec.env["PIP_CACHE_DIR"] == "/var/cache/claude-docker/pip"
    assert spec.env["UV_CACHE_DIR"] == "/var/cache/claude-docker/uv"
    assert spec.env["CLAUDE_DOCKER_HISTORY_DIR"] == "/var/lib/claude-docker/history"
    assert spec.mounts == [
        BindMount(str(state / "claude"), contract.CLAUDE_CONFIG_DIR, read_only=False),
        BindMount(str(state / "history"), "/var/lib/claude-docker/history", read_only=False),
        BindMount(str(state / "cache" / "npm"), "/var/cache/claude-docker/npm", read_only=False),
        BindMount(str(state / "cache" / "pip"), "/var/cache/claude-docker/pip", read_only=False),
        BindMount(str(state / "cache" / "uv"), "/var/cache/claude-docker/uv", read_only=False),
    ]
    # only the feature dirs are mounted, never the project dir holding every session's files
    assert all(m.source != str(state) for m in spec.mounts)
    assert (state / "claude").stat().st_mode & 0o777 == 0o700


def test_toggles_turn_features_off(cd_home, host_home):
    cfg = persisted_config(host_home / "proj", shell_history=False, npm_cache=False, pip_cache=False)
    spec, _ = run(cfg)
    assert [m.target for m in spec.mounts] == [contract.CLAUDE_CONFIG_DIR]
    assert set(spec.env) == {"CLAUDE_CONFIG_DIR"}


def test_shared_and_none_auth_scopes(cd_home, host_home):
    shared, _ = run(persisted_config(host_home / "proj", auth="shared"))
    assert shared.mounts[0].source == str(cd_home / "shared" / "claude")
    cfg = persisted_config(host_home / "proj", auth="none")
    none, session = run(cfg)
    assert none.mounts[0].source == str(session.session_dir / "claude")


def test_import_host_login_once_with_warning(cd_home, host_home):
    (host_home / ".claude").mkdir()
    (host_home / ".claude" / ".credentials.json").write_text('{"token": "host"}')
    cfg = persisted_config(host_home / "proj", import_host_login=True)
    spec, session = run(cfg)
    target = session.state_dir / "claude" / ".credentials.json"
    assert target.read_text() == '{"token": "host"}'
    assert target.stat().st_mode & 0o777 == 0o600
    assert spec.warnings == [persistence.IMPORT_LOGIN_WARNING]
    # a login done inside the container later is never overwritten by the host's
    target.write_text('{"token": "container"}')
    spec, _ = run(cfg)
    assert target.read_text() == '{"token": "container"}'
    assert spec.warnings == []


def test_a_login_link_planted_in_the_config_dir_is_never_followed(cd_home, host_home, tmp_path):
    """The agent writes in CLAUDE_CONFIG_DIR: a link there must not make the host write through
    it when it imports the host login."""
    (host_home / ".claude").mkdir()
    (host_home / ".claude" / ".credentials.json").write_text('{"token": "host"}')
    cfg = persisted_config(host_home / "proj", import_host_login=True)
    config_dir = cd_home / "projects" / cfg.project_name / "claude"
    config_dir.mkdir(parents=True)
    (config_dir / ".credentials.json").symlink_to(tmp_path / "dangling")
    run(cfg)
    assert not (tmp_path / "dangling").exists()
    assert not (config_dir / ".credentials.json").is_symlink()
    assert (config_dir / ".credentials.json").read_text() == '{"token": "host"}'


def test_no_import_without_the_option(cd_home, host_home):
    (host_home / ".claude").mkdir()
    (host_home / ".claude" / ".credentials.json").write_text("{}")
    _, session = run(persisted_config(host_home / "proj"))
    assert not (session.state_dir / "claude" / ".credentials.json").exists()


def test_gitconfig_identity_and_dotfiles(cd_home, host_home, tmp_path):
    (host_home / ".gitconfig").write_text("[user]\n\tname = Host\n")
    (host_home / ".config" / "x").mkdir(parents=True)
    (host_home / ".config" / "x" / "rc").write_text("")
    elsewhere = tmp_path / "aliases.sh"
    elsewhere.write_text("alias ll='ls -l'\n")
    cfg = persisted_config(
        host_home / "proj", git_config=True, shell_history=False, npm_cache=False, pip_cache=False,
        git_identity=GitIdentity(name="Bot", email="bot@example.com"),
        dotfiles=(str(host_home / ".config" / "x" / "rc"), str(elsewhere)),
    )
    spec, _ = run(cfg)
    assert spec.mounts[1:] == [
        BindMount(str(host_home / ".gitconfig"), "/home/agent/.gitconfig", read_only=True),
        BindMount(str(host_home / ".config" / "x" / "rc"), "/home/agent/.config/x/rc", read_only=True),
        BindMount(str(elsewhere), "/home/agent/aliases.sh", read_only=True),
    ]
    assert spec.env["GIT_AUTHOR_NAME"] == spec.env["GIT_COMMITTER_NAME"] == "Bot"
    assert spec.env["GIT_AUTHOR_EMAIL"] == spec.env["GIT_COMMITTER_EMAIL"] == "bot@example.com"


def test_a_dotfile_already_mounted_is_mounted_once(cd_home, host_home):
    (host_home / ".gitconfig").write_text("[user]\n")
    cfg = persisted_config(host_home / "proj", git_config=True, dotfiles=(str(host_home / ".gitconfig"),) * 2)
    spec, _ = run(cfg)
    assert [m.target for m in spec.mounts].count("/home/agent/.gitconfig") == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands dirs to another uid")
def test_root_hands_state_to_the_agent_uid(cd_home, host_home):
    cfg = persisted_config(host_home / "proj")
    session = Session.new(cfg.project_name)
    cfg = dataclasses.replace(cfg, claude=dataclasses.replace(cfg.claude, uid=1234, gid=2345))
    persistence.contribute(RunContext.build(cfg, session), RunSpec())
    for path in (session.state_dir / "claude", session.state_dir / "history", session.state_dir / "cache" / "npm"):
        assert (path.stat().st_uid, path.stat().st_gid) == (1234, 2345), path


def test_agent_ids_follow_the_run_plan(host_home, tmp_path):
    cfg = persisted_config(host_home / "proj")
    assert persistence.agent_ids(dataclasses.replace(cfg, claude=dataclasses.replace(cfg.claude, uid=77, gid=88))) == (77, 88)
    expected = (1000, 1000) if os.getuid() == 0 else (os.getuid(), os.getgid())
    assert persistence.agent_ids(cfg) == expected


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give the workspace to another uid")
def test_root_hands_state_to_the_workspace_owner(cd_home, host_home):
    os.chown(host_home / "proj", 4321, 4321)
    cfg = persisted_config(host_home / "proj")
    _, session = run(cfg)
    config_dir = session.state_dir / "claude"
    assert config_dir.stat().st_uid == 4321


def test_reset_targets(cd_home, host_home):
    cfg = persisted_config(host_home / "proj")
    state = cd_home / "projects" / cfg.project_name
    assert persistence.reset_targets(cfg, True, True, True) == [state / "claude", state / "history", state / "cache"]
    shared = persisted_config(host_home / "proj", auth="shared")
    assert persistence.reset_targets(shared, True, False, False) == [cd_home / "shared" / "claude"]


# --- claude-docker reset ----------------------------------------------------------------------


def _project_with_state(tmp_path: Path, cd_home: Path) -> tuple[Path, Path]:
    from claude_docker.config.model import project_name_for

    project = tmp_path / "proj-reset"
    project.mkdir()
    (project / "claude-docker.yaml").write_text("persistence:\n  auth: project\n")
    state = cd_home / "projects" / project_name_for(str(project))
    for sub in ("claude", "history", "cache/npm"):
        (state / sub).mkdir(parents=True)
        (state / sub / "f").write_text("x")
    return project, state


def test_reset_removes_only_what_is_asked(cd_home, tmp_path):
    from click.testing import CliRunner

    from claude_docker.cli import main

    project, state = _project_with_state(tmp_path, cd_home)
    result = CliRunner().invoke(main, ["reset", "--history", "--yes", "-f", str(project / "claude-docker.yaml")])
    assert result.exit_code == 0, result.output
    assert str(state / "history") in result.output
    assert not (state / "history").exists()
    assert (state / "claude" / "f").exists() and (state / "cache" / "npm" / "f").exists()


def test_reset_asks_first_and_does_nothing_on_no(cd_home, tmp_path):
    from click.testing import CliRunner

    from claude_docker.cli import main

    project, state = _project_with_state(tmp_path, cd_home)
    config = str(project / "claude-docker.yaml")
    result = CliRunner().invoke(main, ["reset", "-f", config], input="n\n")
    assert result.exit_code == 1
    assert "continue?" in result.output
    assert (state / "claude").exists() and (state / "history").exists() and (state / "cache").exists()
    result = CliRunner().invoke(main, ["reset", "-f", config], input="y\n")
    assert result.exit_code == 0, result.output
    assert not any((state / name).exists() for name in ("claude", "history", "cache"))
    result = CliRunner().invoke(main, ["reset", "-f", config, "--yes"])
    assert result.exit_code == 0 and "nothing to reset" in result.output
