"""`up` against the fake engine: an image built when missing and kept when present, the
container created, attached, started, waited for and removed, its exit code returned and
explained, and what the engine refuses shown to the user in words.

tests/engine/test_lifecycle.py holds the same command to a real engine.
"""

from __future__ import annotations

import io
import os
import shutil

import docker.errors
import pytest
import requests
from click.testing import CliRunner

from claude_docker import contract, lifecycle, notify, paths
from claude_docker.cli import main
from claude_docker.config.pipeline import load_config
from claude_docker.contract import LABEL_CLAUDE_CODE_VERSION
from claude_docker.engine import Engine
from claude_docker.errors import EngineError
from claude_docker.lifecycle import UpOptions
from tests.fakes.engine import FakeEngine, FakeImage, Run
from tests.fakes.webhook import WebhookReceiver

BASE = "registry.example/debian:bookworm"
HEADLESS = UpOptions(extra_args=("-p", "the task"))


@pytest.fixture
def project(tmp_path, cd_home):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "claude-docker.yaml").write_text(f"image:\n  base: {BASE}\nnetwork:\n  firewall: false\n")
    return workspace


def config(project, extra: str = ""):
    if extra:
        path = project / "claude-docker.yaml"
        path.write_text(path.read_text() + extra)
    return load_config(str(project / "claude-docker.yaml")).config


def run_up(cfg, engine: FakeEngine, options: UpOptions = HEADLESS):
    said: list[str] = []
    out, err = io.BytesIO(), io.BytesIO()
    code = lifecycle.up(cfg, options, echo=said.append, stdout=out, stderr=err, engine=engine, environ={})
    return code, said, out.getvalue(), err.getvalue()


def test_a_missing_image_is_built_then_the_session_runs_streams_and_is_removed(project):
    engine = FakeEngine(pullable=(BASE,), behaviour=lambda plan: Run(0, b"the answer\n", b"a warning\n"))
    cfg = config(project)
    code, said, out, err = run_up(cfg, engine)
    assert code == 0
    [build] = engine.builds
    tag = build["tag"]
    assert said[0] == f"image {tag} (built, Claude Code 2.1.32)"
    assert engine.images[tag].labels[LABEL_CLAUDE_CODE_VERSION] == "2.1.32"
    assert (out, err) == (b"the answer\n", b"a warning\n")
    [name] = engine.called("create")
    order = [method for method, argument in engine.calls if argument == name]
    assert order[:4] == ["create", "attach", "start", "wait"]  # attached before start: no output lost
    assert order[-1] == "remove" and engine.containers == {}
    sessions = paths.claude_docker_home() / "projects" / cfg.project_name / "sessions"
    assert sessions.is_dir() and not list(sessions.glob("*/runtime"))  # tidied once the container is gone


def test_a_present_image_is_used_as_it_is(project):
    engine = FakeEngine(pullable=(BASE,))
    cfg = config(project)
    run_up(cfg, engine)
    code, said, _, _ = run_up(cfg, engine)
    assert code == 0 and len(engine.builds) == 1
    assert said[0].endswith("(current, Claude Code 2.1.32)")


@pytest.mark.parametrize("exit_code", [1, 3, 137])
def test_ups_exit_code_is_the_containers(project, exit_code):
    engine = FakeEngine(pullable=(BASE,), behaviour=lambda plan: Run(exit_code))
    code, said, _, _ = run_up(config(project), engine)
    assert code == exit_code
    assert not [line for line in said if "did not start" in line or "setup failed" in line]


@pytest.mark.parametrize(
    ("exit_code", "explanation"),
    [
        (contract.EXIT_FIREWALL_FAILED, "the firewall could not be set up; the session did not start"),
        (contract.EXIT_SETUP_FAILED, "the container setup failed before Claude Code started"),
        (contract.EXIT_ENDPOINT_UNREACHABLE, "the model endpoint did not accept a connection; Claude Code did not start"),
    ],
)
def test_the_entrypoints_own_exit_codes_are_explained(project, exit_code, explanation):
    engine = FakeEngine(pullable=(BASE,), behaviour=lambda plan: Run(exit_code))
    code, said, _, _ = run_up(config(project), engine)
    assert code == exit_code
    assert any(line.startswith(explanation) for line in said), said


def test_keep_leaves_the_ended_container_and_says_how_to_remove_it(project):
    engine = FakeEngine(pullable=(BASE,), behaviour=lambda plan: Run(4))
    code, said, _, _ = run_up(config(project), engine, UpOptions(extra_args=("-p", "x"), keep=True))
    [container] = engine.containers.values()
    assert code == 4 and container.status == "exited" and not engine.called("remove")
    assert f"kept container {container.name}; remove it with `claude-docker down`" in said


def test_piped_stdin_reaches_the_container_and_ends_with_eof(project):
    engine = FakeEngine(pullable=(BASE,))
    options = UpOptions(extra_args=("-p", "summarise"), stdin=io.BytesIO(b"context from a pipe"))
    assert run_up(config(project), engine, options)[0] == 0
    [name] = engine.called("create")
    assert engine.called("feed_stdin") == [name]
    [fed] = engine.created
    assert fed.stdin == b"context from a pipe" and fed.plan.stdin_open and fed.plan.stdin_once


def test_a_base_image_neither_present_nor_pullable_is_named_and_nothing_is_created(project):
    engine = FakeEngine()
    with pytest.raises(EngineError) as raised:
        run_up(config(project), engine)
    assert raised.value.message.startswith(f"image.base {BASE} is not present locally and could not be pulled: pull access denied")
    assert "docker pull" in raised.value.hint
    assert not engine.called("create")


def test_an_interactive_session_without_the_docker_cli_fails_before_anything_is_built(project, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    engine = FakeEngine(pullable=(BASE,))
    with pytest.raises(EngineError) as raised:
        run_up(config(project), engine, UpOptions(headless=False))
    assert "need the `docker` command line tool" in raised.value.message
    assert engine.calls == []


def test_detach_starts_the_session_and_leaves_it_to_the_watcher(project, monkeypatch):
    watchers: list[str] = []
    monkeypatch.setattr(notify, "start_detached_watcher", lambda cfg, session, name, **_: watchers.append(name))
    engine = FakeEngine(pullable=(BASE,), behaviour=lambda plan: Run(keeps_running=True))
    code, said, _, _ = run_up(config(project), engine, UpOptions(extra_args=("-p", "x"), detach=True))
    [container] = engine.containers.values()
    assert code == 0 and container.status == "running" and watchers == [container.name]
    [started] = [line for line in said if line.startswith("started session ")]
    assert started.endswith(f"({container.name}) in the background")
    assert not engine.called("wait") and not engine.called("remove")


def test_a_detached_session_the_engine_will_not_start_is_removed(project, monkeypatch):
    monkeypatch.setattr(notify, "start_detached_watcher", lambda *args, **kwargs: pytest.fail("no watcher for a session that never started"))
    engine = FakeEngine(pullable=(BASE,))
    engine.fail("start", _api_error(500, "OCI runtime create failed: unable to start container process: exec: no such file or directory"))
    with pytest.raises(EngineError) as raised:
        run_up(config(project), engine, UpOptions(extra_args=("-p", "x"), detach=True))
    assert "refused (HTTP 500)" in raised.value.message and "cannot reach" not in raised.value.message
    assert engine.containers == {}


def test_the_host_notifier_reports_a_failed_container_with_its_exit_code(project):
    engine = FakeEngine(pullable=(BASE,), behaviour=lambda plan: Run(3))
    with WebhookReceiver() as hook:
        notifier = f"notifier:\n  on: [failure, session_end]\n  min_interval_seconds: 0\n  webhooks:\n    - url: {hook.url}\n"
        cfg = config(project, notifier)
        assert run_up(cfg, engine)[0] == 3
        assert hook.wait_for(lambda h: h.events("failure"), 10), hook.payloads
    [failure] = hook.events("failure")
    assert failure["exit_code"] == 3 and failure["project"] == cfg.project_name


# --- what the user sees when the engine refuses --------------------------------------------------


def _api_error(status: int, explanation: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError(f"{status} Server Error", response, explanation)


def _connection_refused() -> docker.errors.DockerException:
    """What docker-py raises when the engine's socket stops answering."""
    try:
        try:
            raise requests.exceptions.ConnectionError(ConnectionRefusedError(111, "Connection refused"))
        except requests.exceptions.ConnectionError as error:
            raise docker.errors.DockerException(f"Error while fetching server API version: {error}") from error
    except docker.errors.DockerException as error:
        return error


@pytest.mark.parametrize(
    ("method", "error", "message", "hint"),
    [
        ("create", _api_error(409, 'Conflict. The container name "/x" is already in use'), "error: the engine refused: Conflict.", "claude-docker down"),
        ("start", _api_error(500, 'OCI runtime create failed: exec: "/x": no such file or directory'), "error: the Docker engine refused (HTTP 500)", "claude-docker doctor"),
        ("start", _api_error(500, "crun: error setting rlimit type 7: Operation not permitted: OCI permission denied"), "could not apply the engine's default ulimits", "default_ulimits"),
        ("create", _api_error(500, "container-init binary not found on the host"), "the engine has no init binary", "catatonit"),
        ("build", _connection_refused(), "error: cannot reach the Docker engine", "start Docker"),
        ("image_labels", PermissionError(13, "Permission denied"), "error: permission denied talking to the Docker engine", "`docker` group"),
    ],
    ids=["name-conflict", "oci-no-such-file", "rlimit", "no-init", "engine-gone", "socket-permission"],
)
def test_engine_refusals_reach_the_user_in_words_without_a_traceback(project, monkeypatch, method, error, message, hint):
    engine = FakeEngine({BASE: FakeImage()})
    engine.fail(method, error)
    monkeypatch.setattr(Engine, "connect", staticmethod(lambda: engine))
    monkeypatch.chdir(project)
    result = CliRunner().invoke(main, ["up", "--trust", "--", "-p", "the task"])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith(("error:", "hint:"))]
    assert len(lines) == 2 and message in lines[0] and hint in lines[1], result.output
    assert "Traceback" not in result.output
    assert engine.containers == {}  # nothing left behind


def test_up_prunes_nothing_of_a_running_session(project, monkeypatch):
    """`up` prunes ended sessions' dirs, never one whose container the engine still lists."""
    monkeypatch.setattr(notify, "start_detached_watcher", lambda *args, **kwargs: None)
    engine = FakeEngine(pullable=(BASE,), behaviour=lambda plan: Run(keeps_running=True))
    cfg = config(project)
    run_up(cfg, engine, UpOptions(extra_args=("-p", "x"), detach=True))
    [session_dir] = (paths.claude_docker_home() / "projects" / cfg.project_name / "sessions").iterdir()
    a_month_ago = session_dir.stat().st_mtime - 30 * 86400
    os.utime(session_dir, (a_month_ago, a_month_ago))
    engine.calls.clear()
    assert lifecycle.prune_sessions(engine, cfg.project_name) == []
    assert session_dir.exists()
    # one list of the project's containers, none inspected: a running session's end is not needed
    assert [method for method, _ in engine.calls] == ["list brief"]
    engine.remove(engine.get(engine.created[0].name))
    assert lifecycle.prune_sessions(engine, cfg.project_name) == [session_dir.name]  # the control: once it is gone
