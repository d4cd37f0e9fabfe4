"""Persistence and filesystem restrictions on the real engine, with the real image and entrypoint.

Each "session" is a fresh container built from the feature contributions (filesystem +
persistence) exactly as `up` assembles them, running a shell command as the agent via the
entrypoint's `--exec`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tarfile
from pathlib import Path

import pytest

from claude_docker import runplan
from claude_docker.config.pipeline import load_config
from claude_docker.engine import Engine
from claude_docker.imagebuild import ensure_image
from claude_docker.render import render_build_context, render_runtime
from claude_docker.session import Session
from tests.support.testbed import TEST_LABEL, base_image_yaml
from tests.support.wait import wait_for

pytestmark = pytest.mark.docker

AGENT_UID = 1000  # the agent takes the workspace owner's uid when `up` runs as root


@pytest.fixture(scope="module")
def engine(docker_client) -> Engine:
    return Engine.connect()


def make_project(
    tmp_path: Path, name: str, extra_yaml: str = "", persistence_yaml: str = "", image_yaml: str = ""
) -> Path:
    """A project dir with a config on the local test base; `persistence_yaml` / `image_yaml` lines
    go under `persistence:` / `image:` (indented by two), `extra_yaml` holds top-level sections."""
    project = tmp_path / name
    project.mkdir()
    (project / "claude-docker.yaml").write_text(
        base_image_yaml(image_yaml)
        + "network:\n  firewall: false\npersistence:\n  git_config: false\n"
        + persistence_yaml
        + extra_yaml
    )
    hand_to_agent(project)
    return project


def hand_to_agent(path: Path) -> None:
    """The agent runs as the host user; as root in tests, as uid 1000. Give it the files."""
    for item in [path, *path.rglob("*")]:
        os.lchown(item, AGENT_UID, AGENT_UID)


@pytest.fixture(scope="module")
def agent_image(engine, tmp_path_factory) -> str:
    # npm for the cache tests: the default image has no Node (Claude Code is a native binary)
    project = make_project(tmp_path_factory.mktemp("image"), "image-probe", image_yaml="  node: true\n")
    cfg = load_config(str(project / "claude-docker.yaml")).config
    return ensure_image(engine, cfg.image).tag


def start_session(engine: Engine, image: str, project: Path, script: str, session: Session | None = None):
    """Create and start a container for `project`, planned exactly as `up` plans it, running
    `script` as the agent (the entrypoint's `--exec`)."""
    cfg = load_config(str(project / "claude-docker.yaml")).config
    session = session or Session.new(cfg.project_name)
    plan = runplan.plan(cfg, session, image, command=["--exec", "bash", "-c", script], environ={})
    plan = dataclasses.replace(plan, labels={**plan.labels, TEST_LABEL: "persistence"})
    container = engine.create(plan)
    engine.start(container)
    return container, cfg, session


def run_session(engine: Engine, image: str, project: Path, script: str) -> tuple[int, str]:
    container, _, _ = start_session(engine, image, project, script)
    try:
        code = engine.wait(container)
        output = b"".join(engine.logs(container)).decode(errors="replace")
    finally:
        engine.remove(container)
    return code, output


def run_ok(engine: Engine, image: str, project: Path, script: str) -> str:
    code, output = run_session(engine, image, project, script)
    assert code == 0, output
    return output


# --- login ------------------------------------------------------------------------------------


def test_login_survives_a_new_session_and_stays_per_project(engine, agent_image, cd_home, tmp_path):
    first = make_project(tmp_path, "first")
    second = make_project(tmp_path, "second")
    out = run_ok(
        engine, agent_image, first,
        'echo "$CLAUDE_CONFIG_DIR"; echo \'{"claudeAiOauth": "session-one"}\' > "$CLAUDE_CONFIG_DIR/.credentials.json"'
        ' && id -u && stat -c %u "$CLAUDE_CONFIG_DIR/.claude.json"',
    )
    assert out.split() == ["/home/agent/.claude", str(AGENT_UID), str(AGENT_UID)]
    out = run_ok(engine, agent_image, first, 'cat "$CLAUDE_CONFIG_DIR/.credentials.json"')
    assert "session-one" in out
    out = run_ok(engine, agent_image, second, 'ls -A "$CLAUDE_CONFIG_DIR"; test ! -e "$CLAUDE_CONFIG_DIR/.credentials.json"')
    assert ".claude.json" in out and ".credentials.json" not in out


def test_shared_login_is_seen_by_every_project(engine, agent_image, cd_home, tmp_path):
    first = make_project(tmp_path, "first", persistence_yaml="  auth: shared\n")
    second = make_project(tmp_path, "second", persistence_yaml="  auth: shared\n")
    run_ok(engine, agent_image, first, 'echo shared-login > "$CLAUDE_CONFIG_DIR/.credentials.json"')
    assert "shared-login" in run_ok(engine, agent_image, second, 'cat "$CLAUDE_CONFIG_DIR/.credentials.json"')
    assert (cd_home / "shared" / "claude" / ".credentials.json").read_text().strip() == "shared-login"


def test_agent_cannot_reach_other_state(engine, agent_image, cd_home, tmp_path):
    """Only the feature dirs are mounted: no session files, no other project."""
    other = make_project(tmp_path, "other")
    run_ok(engine, agent_image, other, 'echo other-secret > "$CLAUDE_CONFIG_DIR/.credentials.json"')
    project = make_project(tmp_path, "mine")
    out = run_ok(
        engine, agent_image, project,
        "grep -rs other-secret /home /var /opt /run /tmp /workspace; echo ---; cat /proc/self/mountinfo",
    )
    found, mountinfo = out.split("---", 1)
    assert "other-secret" not in found
    state_mounts = [line.split()[3] for line in mountinfo.splitlines() if str(cd_home) in line]
    assert state_mounts, mountinfo
    # each mount is one feature dir of this project, or a dir of this very session
    allowed = re.compile(r".*/projects/mine-[0-9a-f]{8}/(claude|history|cache/(npm|pip|uv)|sessions/(?P<id>[0-9a-f]+)/.+)")
    matches = [allowed.fullmatch(root) for root in state_mounts]
    assert all(matches), state_mounts
    assert len({match.group("id") for match in matches if match.group("id")}) == 1, state_mounts


# --- shell history ----------------------------------------------------------------------------


def test_history_line_survives_docker_kill(engine, agent_image, cd_home, tmp_path):
    project = make_project(tmp_path, "hist")
    # An interactive bash reading commands from a pipe: it prompts (and runs PROMPT_COMMAND)
    # between commands, like a user at a terminal. The kill comes while `sleep` runs.
    container, _, session = start_session(
        engine, agent_image, project, "printf 'echo marker-$((6*7))-history\\nsleep 300\\n' | bash -i"
    )
    history_file = session.state_dir / "history" / "bash_history"
    try:
        wait_for(lambda: history_file.exists() and "marker-" in history_file.read_text(), 60, interval=0.5)
        container.kill()
    finally:
        engine.remove(container)
    out = run_ok(engine, agent_image, project, 'cat "$CLAUDE_DOCKER_HISTORY_DIR/bash_history"')
    assert "echo marker-$((6*7))-history" in out


# --- caches -----------------------------------------------------------------------------------


def test_second_npm_install_hits_the_cache(engine, agent_image, cd_home, tmp_path):
    project = make_project(tmp_path, "npm")
    install = 'd=$(mktemp -d) && cd "$d" && npm install --no-audit --no-fund {offline} is-number@7.0.0 && ls node_modules'
    out = run_ok(engine, agent_image, project, 'echo "$NPM_CONFIG_CACHE"; ' + install.format(offline=""))
    assert "/var/cache/claude-docker/npm" in out and "is-number" in out
    out = run_ok(engine, agent_image, project, install.format(offline="--offline"))
    assert "is-number" in out


def test_without_the_cache_offline_install_fails(engine, agent_image, cd_home, tmp_path):
    """The control for the test above: a fresh project has nothing cached."""
    project = make_project(tmp_path, "nocache", "")
    code, output = run_session(
        engine, agent_image, project,
        'd=$(mktemp -d) && cd "$d" && npm install --offline --no-audit --no-fund is-number@7.0.0',
    )
    assert code != 0, output


# --- blocked paths and git --------------------------------------------------------------------


def test_blocked_paths_inside_the_workspace_are_masked(engine, agent_image, cd_home, tmp_path):
    project = make_project(
        tmp_path, "masked",
        "filesystem:\n  blocked_paths:\n    - {ws}/secrets\n    - {ws}/token.txt\n".replace("{ws}", str(tmp_path / "masked")),
    )
    (project / "secrets").mkdir()
    (project / "secrets" / "key").write_text("TOP-SECRET-KEY")
    (project / "token.txt").write_text("TOP-SECRET-TOKEN")
    (project / "visible.txt").write_text("ok-visible")
    hand_to_agent(project)
    out = run_ok(
        engine, agent_image, project,
        "cat visible.txt; echo; ls -A secrets | wc -l; cat token.txt; cat secrets/* 2>/dev/null; "
        "touch secrets/new 2>/dev/null && echo WROTE-SECRETS; "
        "{ echo x > token.txt; } 2>/dev/null && echo WROTE-TOKEN; echo done",
    )
    assert "ok-visible" in out
    assert "TOP-SECRET" not in out
    assert "WROTE" not in out
    assert out.split()[-1] == "done" and out.split()[1] == "0"
    assert (project / "secrets" / "key").read_text() == "TOP-SECRET-KEY"


def test_git_hooks_and_config_are_read_only_but_git_works(engine, agent_image, cd_home, tmp_path):
    project = make_project(
        tmp_path, "repo", persistence_yaml="  git:\n    name: Test Bot\n    email: bot@example.com\n"
    )
    (project / ".git" / "hooks").mkdir(parents=True)
    (project / ".git" / "config").write_text("[core]\n\trepositoryformatversion = 0\n\tbare = false\n")
    (project / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (project / ".git" / "objects").mkdir()
    (project / ".git" / "refs" / "heads").mkdir(parents=True)
    hand_to_agent(project)
    out = run_ok(
        engine, agent_image, project,
        "printf '#!/bin/sh\\necho pwned\\n' > .git/hooks/pre-commit 2>/dev/null && echo PLANTED-HOOK; "
        "git config core.hooksPath /tmp 2>/dev/null && echo CHANGED-CONFIG; "
        "mv .git .git-away 2>/dev/null && echo MOVED-GIT; "
        "git commit -q --allow-empty -m from-the-agent && git log --format=%an:%s; echo done",
    )
    assert "PLANTED" not in out and "CHANGED" not in out and "MOVED" not in out
    assert "Test Bot:from-the-agent" in out
    assert not (project / ".git" / "hooks" / "pre-commit").exists()
    assert "hooksPath" not in (project / ".git" / "config").read_text()


# --- secrets stay out of the image and the rendered files -------------------------------------


def test_env_file_secret_is_in_no_image_layer_and_no_rendered_file(engine, cd_home, tmp_path):
    secret = "sk-ant-never-in-a-layer-4f1c9e"
    (cd_home / ".env").write_text(f"ANTHROPIC_API_KEY={secret}\n")
    project = make_project(tmp_path, "secret", "")
    cfg = load_config(str(project / "claude-docker.yaml")).config
    session = Session.new(cfg.project_name)
    tag = ensure_image(engine, cfg.image).tag
    plan = runplan.plan(cfg, session, tag, environ={})  # writes the session's runtime files
    # it reaches the container at run time only (with the firewall off, no proxy holds it)
    assert plan.env["ANTHROPIC_API_KEY"] == secret
    rendered = {**render_build_context(cfg), **render_runtime(cfg, session)}
    for name, artifact in rendered.items():
        assert secret.encode() not in artifact.content, name
    written = [path for path in cd_home.rglob("*") if path.is_file() and path.name != ".env"]
    assert any(path.parent == session.runtime_dir for path in written)
    for path in written:
        assert secret.encode() not in path.read_bytes(), path
    # the control proves the scan reads layer contents: that line is in a script baked into the image
    control = b"# claude-docker: persisted shell history"
    assert _image_contains(engine, tag, [secret.encode(), control], tmp_path) == {control}


def _image_contains(engine: Engine, tag: str, needles: list[bytes], scratch: Path) -> set[bytes]:
    """Which of `needles` occur in any file of any layer (or the image config) of `docker save`."""
    saved = scratch / "image.tar"
    with saved.open("wb") as out:
        for chunk in engine.client.images.get(tag).save(named=True):
            out.write(chunk)
    found: set[bytes] = set()
    with tarfile.open(saved) as outer:
        for member in outer.getmembers():
            if not member.isfile():
                continue
            found |= _stream_contains(outer.extractfile(member), needles)
            try:
                with tarfile.open(fileobj=outer.extractfile(member)) as layer:
                    for item in layer.getmembers():
                        if item.isfile():
                            found |= _stream_contains(layer.extractfile(item), needles)
            except tarfile.TarError:
                continue  # a JSON blob (manifest, image config), already scanned as bytes
    saved.unlink()
    return found


def _stream_contains(stream, needles: list[bytes], chunk_size: int = 1 << 20) -> set[bytes]:
    """Search a file object chunk by chunk, overlapping so a match across chunks is found."""
    found: set[bytes] = set()
    overlap = max(len(needle) for needle in needles)
    tail = b""
    while True:
        chunk = stream.read(chunk_size)
        if not chunk:
            return found
        window = tail + chunk
        found.update(needle for needle in needles if needle in window)
        tail = window[-overlap:]


def test_zsh_history_survives_docker_kill(engine, cd_home, tmp_path):
    project = make_project(tmp_path, "zsh-hist", image_yaml="  apt_packages: [zsh]\n")
    cfg = load_config(str(project / "claude-docker.yaml")).config
    image = ensure_image(engine, cfg.image).tag
    container, _, session = start_session(
        engine, image, project, "touch ~/.zshrc; printf 'echo zsh-marker-$((6*7))\\nsleep 300\\n' | zsh -i"
    )
    history_file = session.state_dir / "history" / "zsh_history"
    try:
        wait_for(lambda: history_file.exists() and "zsh-marker" in history_file.read_text(), 60, interval=0.5)
        container.kill()
    finally:
        engine.remove(container)
    out = run_ok(engine, image, project, 'cat "$CLAUDE_DOCKER_HISTORY_DIR/zsh_history"')
    assert "echo zsh-marker-$((6*7))" in out
