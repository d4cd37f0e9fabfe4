"""Persisted state: host dirs, seeding of Claude's first-run state, mounts and env (no engine)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from claude_docker import contract
from claude_docker.config.model import Config, GitIdentity, PersistenceConfig, WorkspaceConfig
from claude_docker.features import RunContext, persistence
from claude_docker.runspec import BindMount, RunSpec
from claude_docker.session import Session


@pytest.fixture
def host_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    (home / "proj").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    return home


def make_config(workspace: Path, **persist) -> Config:
    persist.setdefault("git_config", False)
    return Config(
        source_files=(str(workspace / "claude-docker.yaml"),),
        project_dir=str(workspace),
        workspace=WorkspaceConfig(path=str(workspace)),
        persistence=PersistenceConfig(**persist),
    )


def run(cfg: Config, session: Session | None = None) -> tuple[RunSpec, Session]:
    session = session or Session.new(cfg.project_name)
    spec = RunSpec()
    persistence.contribute(RunContext.build(cfg, session), spec)
    return spec, session


def test_project_scope_layout_mounts_and_env(cd_home, host_home):
    cfg = make_config(host_home / "proj")
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
    cfg = make_config(host_home / "proj", shell_history=False, npm_cache=False, pip_cache=False)
    spec, _ = run(cfg)
    assert [m.target for m in spec.mounts] == [contract.CLAUDE_CONFIG_DIR]
    assert set(spec.env) == {"CLAUDE_CONFIG_DIR"}


def test_shared_and_none_auth_scopes(cd_home, host_home):
    shared, _ = run(make_config(host_home / "proj", auth="shared"))
    assert shared.mounts[0].source == str(cd_home / "shared" / "claude")
    cfg = make_config(host_home / "proj", auth="none")
    none, session = run(cfg)
    assert none.mounts[0].source == str(session.session_dir / "claude")
    # still seeded, so even a throwaway login starts without the wizard
    assert json.loads((session.session_dir / "claude" / ".claude.json").read_text())["hasCompletedOnboarding"]


def test_seed_marks_onboarding_done_and_workspace_trusted(cd_home, host_home):
    cfg = make_config(host_home / "proj")
    _, session = run(cfg)
    config_dir = session.state_dir / "claude"
    state = json.loads((config_dir / ".claude.json").read_text())
    assert state["hasCompletedOnboarding"] is True
    assert state["projects"]["/workspace"]["hasTrustDialogAccepted"] is True
    settings = json.loads((config_dir / "settings.json").read_text())
    assert settings == {"skipDangerousModePermissionPrompt": True}
    assert (config_dir / ".claude.json").stat().st_mode & 0o777 == 0o600


def test_seed_merges_into_existing_state_without_losing_keys(tmp_path):
    (tmp_path / ".claude.json").write_text(
        json.dumps({"userID": "abc", "hasCompletedOnboarding": False,
                    "projects": {"/workspace": {"allowedTools": ["Bash"]}, "/other": {"x": 1}}})
    )
    (tmp_path / "settings.json").write_text(json.dumps({"model": "opus"}))
    persistence.seed_claude_state(tmp_path, "/workspace", (os.getuid(), os.getgid()))
    state = json.loads((tmp_path / ".claude.json").read_text())
    assert state["userID"] == "abc"
    assert state["hasCompletedOnboarding"] is True
    assert state["projects"]["/other"] == {"x": 1}
    assert state["projects"]["/workspace"]["allowedTools"] == ["Bash"]
    assert state["projects"]["/workspace"]["hasTrustDialogAccepted"] is True
    assert json.loads((tmp_path / "settings.json").read_text()) == {
        "model": "opus", "skipDangerousModePermissionPrompt": True}
    assert sorted(path.name for path in tmp_path.iterdir()) == [".claude.json", "settings.json"]


def test_seed_pre_approves_the_api_key_by_its_last_20_characters(tmp_path):
    key = "sk-ant-api03-" + "x" * 20 + "ABCDEFGHIJ0123456789"
    (tmp_path / ".claude.json").write_text(json.dumps(
        {"customApiKeyResponses": {"approved": ["old-approved"], "rejected": ["ABCDEFGHIJ0123456789"]}}))
    persistence.seed_claude_state(tmp_path, "/workspace", (os.getuid(), os.getgid()), api_key=key + "\n")
    text = (tmp_path / ".claude.json").read_text()
    assert json.loads(text)["customApiKeyResponses"] == {
        "approved": ["old-approved", "ABCDEFGHIJ0123456789"], "rejected": []}
    assert key not in text


def test_contribute_finds_the_api_key_in_the_env_file(cd_home, host_home, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    key = "sk-ant-from-env-file-0123456789abcdefghij"
    (cd_home / ".env").write_text(f"ANTHROPIC_API_KEY={key}\n")
    cfg = dataclasses.replace(make_config(host_home / "proj"), env_file=str(cd_home / ".env"))
    _, session = run(cfg)
    state = json.loads((session.state_dir / "claude" / ".claude.json").read_text())
    assert state["customApiKeyResponses"]["approved"] == [key[-20:]]


def test_links_planted_in_the_config_dir_are_never_followed(cd_home, host_home, tmp_path):
    """The agent writes in CLAUDE_CONFIG_DIR: a link there must not make the host read a host
    secret into the container, or write through it."""
    secret = tmp_path / "docker-config.json"
    secret.write_text('{"auths": {"registry": "host-secret"}}')
    victim = tmp_path / "victim"
    (host_home / ".claude").mkdir()
    (host_home / ".claude" / ".credentials.json").write_text('{"token": "host"}')
    cfg = make_config(host_home / "proj", import_host_login=True)
    config_dir = cd_home / "projects" / cfg.project_name / "claude"
    config_dir.mkdir(parents=True)
    (config_dir / ".claude.json").symlink_to(secret)
    (config_dir / "settings.json").symlink_to(victim)
    (config_dir / ".credentials.json").symlink_to(tmp_path / "dangling")
    run(cfg)
    assert "host-secret" not in (config_dir / ".claude.json").read_text()
    assert secret.read_text() == '{"auths": {"registry": "host-secret"}}'
    assert not victim.exists() and not (tmp_path / "dangling").exists()
    for name in (".claude.json", "settings.json", ".credentials.json"):
        assert not (config_dir / name).is_symlink()
    assert (config_dir / ".credentials.json").read_text() == '{"token": "host"}'


def test_seeding_an_unchanged_state_writes_nothing(tmp_path, monkeypatch):
    """Each `up` seeds the same state: after the first, nothing is rewritten (no flush to disk)."""
    ids = (os.getuid(), os.getgid())
    persistence.seed_claude_state(tmp_path, "/workspace", ids)
    before = {name: (tmp_path / name).stat().st_ino for name in (".claude.json", "settings.json")}
    writes: list[Path] = []
    monkeypatch.setattr(persistence, "write_atomic", lambda path, *a, **k: writes.append(path))
    persistence.seed_claude_state(tmp_path, "/workspace", ids)
    assert writes == []
    assert {name: (tmp_path / name).stat().st_ino for name in before} == before
    persistence.seed_claude_state(tmp_path, "/elsewhere", ids)  # a change is written
    assert writes == [tmp_path / ".claude.json"]


def test_an_unchanged_state_is_rewritten_when_it_is_a_link_a_second_name_or_open_to_others(tmp_path):
    ids = (os.getuid(), os.getgid())
    persistence.seed_claude_state(tmp_path, "/workspace", ids)
    state, settings = tmp_path / ".claude.json", tmp_path / "settings.json"
    # the same bytes behind a link, under a second name, and readable by others
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_bytes(state.read_bytes())
    os.chmod(elsewhere, 0o600)
    state.unlink()
    state.symlink_to(elsewhere)
    second = tmp_path / "second-name"
    os.link(settings, second)
    persistence.seed_claude_state(tmp_path, "/workspace", ids)
    assert not state.is_symlink() and state.stat().st_nlink == 1
    assert settings.stat().st_nlink == 1 and second.exists()
    os.chmod(state, 0o644)
    persistence.seed_claude_state(tmp_path, "/workspace", ids)
    assert state.stat().st_mode & 0o777 == 0o600


def test_seed_sets_corrupt_state_aside_and_goes_on(tmp_path):
    (tmp_path / ".claude.json").write_text("{not json")
    warnings: list[str] = []
    persistence.seed_claude_state(tmp_path, "/workspace", (os.getuid(), os.getgid()), warnings=warnings)
    assert [p.read_text() for p in tmp_path.glob(".claude.json.corrupt-*")] == ["{not json"]
    assert json.loads((tmp_path / ".claude.json").read_text())["hasCompletedOnboarding"] is True
    assert len(warnings) == 1 and "not valid JSON" in warnings[0]


def test_import_host_login_once_with_warning(cd_home, host_home):
    (host_home / ".claude").mkdir()
    (host_home / ".claude" / ".credentials.json").write_text('{"token": "host"}')
    cfg = make_config(host_home / "proj", import_host_login=True)
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


def test_no_import_without_the_option(cd_home, host_home):
    (host_home / ".claude").mkdir()
    (host_home / ".claude" / ".credentials.json").write_text("{}")
    _, session = run(make_config(host_home / "proj"))
    assert not (session.state_dir / "claude" / ".credentials.json").exists()


def test_gitconfig_identity_and_dotfiles(cd_home, host_home, tmp_path):
    (host_home / ".gitconfig").write_text("[user]\n\tname = Host\n")
    (host_home / ".config" / "x").mkdir(parents=True)
    (host_home / ".config" / "x" / "rc").write_text("")
    elsewhere = tmp_path / "aliases.sh"
    elsewhere.write_text("alias ll='ls -l'\n")
    cfg = make_config(
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
    cfg = make_config(host_home / "proj", git_config=True, dotfiles=(str(host_home / ".gitconfig"),) * 2)
    spec, _ = run(cfg)
    assert [m.target for m in spec.mounts].count("/home/agent/.gitconfig") == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands dirs to another uid")
def test_root_hands_state_to_the_agent_uid(cd_home, host_home):
    cfg = make_config(host_home / "proj")
    session = Session.new(cfg.project_name)
    cfg = dataclasses.replace(cfg, claude=dataclasses.replace(cfg.claude, uid=1234, gid=2345))
    persistence.contribute(RunContext.build(cfg, session), RunSpec())
    for path in (session.state_dir / "claude", session.state_dir / "claude" / ".claude.json",
                 session.state_dir / "history", session.state_dir / "cache" / "npm"):
        assert (path.stat().st_uid, path.stat().st_gid) == (1234, 2345), path


def test_agent_ids_follow_the_run_plan(host_home, tmp_path):
    cfg = make_config(host_home / "proj")
    assert persistence.agent_ids(dataclasses.replace(cfg, claude=dataclasses.replace(cfg.claude, uid=77, gid=88))) == (77, 88)
    expected = (1000, 1000) if os.getuid() == 0 else (os.getuid(), os.getgid())
    assert persistence.agent_ids(cfg) == expected


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give the workspace to another uid")
def test_root_hands_state_to_the_workspace_owner(cd_home, host_home):
    os.chown(host_home / "proj", 4321, 4321)
    cfg = make_config(host_home / "proj")
    _, session = run(cfg)
    config_dir = session.state_dir / "claude"
    assert (config_dir.stat().st_uid, (config_dir / ".claude.json").stat().st_uid) == (4321, 4321)


def test_reset_targets(cd_home, host_home):
    cfg = make_config(host_home / "proj")
    state = cd_home / "projects" / cfg.project_name
    assert persistence.reset_targets(cfg, True, True, True) == [state / "claude", state / "history", state / "cache"]
    shared = make_config(host_home / "proj", auth="shared")
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
