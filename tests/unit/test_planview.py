"""`up --dry-run`: the plan of the next container, with environment names but never values."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from claude_docker import planview
from claude_docker.cli import main
from claude_docker.config.pipeline import load_config
from claude_docker.contract import LABEL_CLAUDE_CODE_VERSION
from claude_docker.features.image import build_context, image_tag
from tests.fakes.engine import FakeEngine, FakeImage


@pytest.fixture
def project(tmp_path, monkeypatch, cd_home):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    directory = tmp_path / "proj"
    directory.mkdir()
    (tmp_path / "data").mkdir()
    (directory / "claude-docker.yaml").write_text(
        "version: 1\n"
        "claude:\n  env: {MY_SETTING: value-never-shown}\n"
        "resources: {memory: 2g, cpus: 1.5}\n"
        f"filesystem:\n  mounts: [{{source: {tmp_path / 'data'}, target: /data, read_only: true}}]\n"
        "persistence: {git_config: false}\n"
    )
    monkeypatch.chdir(directory)
    return directory


def test_the_plan_names_what_the_container_gets(project, cd_home):
    cfg = load_config().config
    view = planview.preview(cfg, ("-p", "task"), interactive=False, environ={"ANTHROPIC_API_KEY": "sk-ant-secret"},
                            engine=FakeEngine())
    lines = planview.describe(view)
    text = "\n".join(lines)
    assert lines[0] == f"image: {view.image_tag} (to be built)"
    assert lines[1] == "command: claude -p task"
    assert "  NET_ADMIN, NET_RAW: the firewall (iptables, ipset)" in lines
    assert f"  rw  {project} -> /workspace" in lines
    assert f"  ro  {project.parent / 'data'} -> /data" in lines
    assert "ANTHROPIC_API_KEY" in text and "MY_SETTING" in text
    assert "sk-ant-secret" not in text and "value-never-shown" not in text
    assert "resources: memory 2g, cpus 1.5, gpus none, shm_size engine default (64m)" in lines
    assert not (cd_home / "projects" / cfg.project_name / "sessions" / "dry-run").exists()


def test_a_present_image_is_named_with_its_claude_code_version(project):
    cfg = load_config().config
    tag = image_tag(build_context(cfg.image))
    view = planview.preview(cfg, engine=FakeEngine({tag: FakeImage(labels={LABEL_CLAUDE_CODE_VERSION: "2.1.3"})}))
    assert view.image_state == "present (Claude Code 2.1.3)"


def test_up_dry_run_starts_nothing(project, monkeypatch):
    monkeypatch.setattr(planview, "_image_state", lambda tag, engine: "to be built")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    result = CliRunner().invoke(main, ["up", "--trust", "--dry-run", "--", "-p", "task"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "environment (names only):" in result.output and "sk-ant-secret" not in result.output
    assert "capabilities (the entrypoint's; Claude Code runs with none):" in result.output
