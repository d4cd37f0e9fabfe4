"""Rendered output against committed golden files, and what may change the image.

Regenerate after an intended template change with:
    CLAUDE_DOCKER_UPDATE_GOLDEN=1 python3 -m pytest tests/unit/config/test_config_golden.py
and review the diff like code.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from claude_docker.artifacts import context_hash
from claude_docker.config.pipeline import load_config
from claude_docker.render import render_build_context, render_runtime
from claude_docker.session import Session
from tests.support.configs import CASES

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE = os.environ.get("CLAUDE_DOCKER_UPDATE_GOLDEN") == "1"

def render_case(tmp_path: Path, text: str | None) -> dict[str, bytes]:
    project = tmp_path / "proj"
    project.mkdir()
    if text is not None:
        (project / "claude-docker.yaml").write_text(textwrap.dedent(text))
    cfg = load_config(cwd=project, environ={}).config
    artifacts = {**render_build_context(cfg), **render_runtime(cfg, Session(cfg.project_name, "render"))}
    # Host-specific strings become placeholders so the files compare on any machine.
    replacements = [(str(tmp_path), "<tmp>"), (cfg.project_name, "<project>")]
    rendered = {}
    for name, artifact in sorted(artifacts.items()):
        if name.startswith("bin/"):
            continue  # the helpers do not depend on the config (test_image checks them as rendered)
        content = artifact.content
        for old, new in replacements:
            content = content.replace(old.encode(), new.encode())
        rendered[name] = content
    return rendered


@pytest.fixture
def isolated(tmp_path, monkeypatch, cd_home):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLAUDE_DOCKER_HOME", str(tmp_path / "home" / ".claude-docker"))
    return tmp_path


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_output_matches_golden(isolated, case):
    rendered = render_case(isolated, CASES[case])
    directory = GOLDEN_DIR / case
    if UPDATE:
        if directory.exists():
            for old in directory.rglob("*"):
                if old.is_file():
                    old.unlink()
        for name, content in rendered.items():
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            (directory / name).write_bytes(content)
    expected = {
        path.relative_to(directory).as_posix(): path.read_bytes() for path in directory.rglob("*") if path.is_file()
    }
    assert sorted(rendered) == sorted(expected), "rendered file set changed; see the module docstring"
    for name, content in rendered.items():
        assert content.decode() == expected[name].decode(), f"{case}/{name} differs from its golden file"


def test_rendering_is_deterministic(isolated):
    runs = []
    for name in ("a", "b"):
        (isolated / name).mkdir()
        runs.append(render_case(isolated / name, CASES["example"]))
    assert runs[0] == runs[1] and runs[0]


def _build_hash(tmp_path: Path, text: str) -> str:
    tmp_path.mkdir()
    (tmp_path / "claude-docker.yaml").write_text(textwrap.dedent(text))
    return context_hash(render_build_context(load_config(cwd=tmp_path, environ={}).config))


def test_only_image_settings_change_the_dockerfile(isolated):
    base = _build_hash(isolated / "base", "image: {apt_packages: [jq]}\n")
    unrelated = _build_hash(
        isolated / "unrelated",
        """\
        image: {apt_packages: [jq]}
        network: {allowed_domains: [pypi.org], allowed_cidrs: ["10.0.0.0/8"]}
        notifier: {on: [stop], commands: [[echo, done]]}
        persistence: {auth: shared, shell_history: false}
        claude: {args: [--verbose], env: {A: b}}
        resources: {memory: 2g}
        """,
    )
    changed = _build_hash(isolated / "changed", "image: {apt_packages: [jq, ripgrep]}\n")
    assert base == unrelated
    assert base != changed
