"""The features registry: one protocol, one run context per run, one clean-up path."""

from __future__ import annotations

import inspect
import os
import subprocess

import pytest

from claude_docker import lifecycle, runplan
from claude_docker.config.model import ClaudeConfig, Config, McpServer, NotifierConfig, TwilioConfig, WorkspaceConfig
from claude_docker.errors import ClaudeDockerError
from claude_docker.features import FEATURES, EndedSession, RunContext
from claude_docker.features.base import Feature, agent_ids
from claude_docker.render import render_runtime
from claude_docker.session import Session

TWILIO = TwilioConfig(to=("+15551234567",), from_number="+15005550006", account_sid="AC1", auth_token="tw-secret")


def make_config(tmp_path, **overrides) -> Config:
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    fields = dict(source_files=(), project_dir=str(workspace), workspace=WorkspaceConfig(path=str(workspace)))
    fields.update(overrides)
    return Config(**fields)


@pytest.mark.parametrize("feature", FEATURES, ids=lambda feature: feature.__name__.rsplit(".", 1)[-1])
def test_every_feature_speaks_the_protocol(feature):
    for name in ("check", "runtime_artifacts", "contribute", "cleanup"):
        function = getattr(feature, name, None)
        assert callable(function), f"{feature.__name__} has no {name}"
        wanted = len(inspect.signature(getattr(Feature, name)).parameters) - 1  # without self
        required = [p for p in inspect.signature(function).parameters.values() if p.default is inspect.Parameter.empty]
        assert len(required) <= wanted <= len(inspect.signature(function).parameters), f"{feature.__name__}.{name}"


def test_render_runtime_is_every_features_artifacts(tmp_path, cd_home):
    cfg = make_config(tmp_path, notifier=NotifierConfig(twilio=TWILIO))
    session = Session("proj", "s1")
    rendered = render_runtime(cfg, session)
    assert {"settings.json", "mcp.json", "init-firewall.sh", "dnsmasq.conf"} <= set(rendered)
    assert set(rendered) == {name for feature in FEATURES for name in feature.runtime_artifacts(cfg, session)}


def test_the_run_context_reads_the_env_file_once_and_puts_the_environment_over_it(tmp_path, cd_home):
    env_file = tmp_path / "env"
    env_file.write_text("A=from-file\nB=from-file\n")
    cfg = make_config(tmp_path, env_file=str(env_file))
    ctx = RunContext.build(cfg, Session("proj", "s1"), {"B": "from-environ"})
    env_file.unlink()  # read once: the context no longer needs it
    assert (ctx.environ["A"], ctx.environ["B"]) == ("from-file", "from-environ")
    assert ctx.ids == agent_ids(cfg)


def test_the_plan_takes_mcp_values_from_the_environment_it_is_given(tmp_path, cd_home, monkeypatch):
    """`up` hands its environment to every feature: MCP variables come from it, not from
    whatever this process happens to hold."""
    monkeypatch.delenv("DOCS_TOKEN", raising=False)
    server = McpServer("docs", command="x", env={"T": "${DOCS_TOKEN}"})
    cfg = make_config(tmp_path, claude=ClaudeConfig(mcp_servers=(server,)))
    plan = runplan.plan(cfg, Session(cfg.project_name, "s1"), "img:1", environ={"DOCS_TOKEN": "given"})
    assert plan.env["DOCS_TOKEN"] == "given"
    with pytest.raises(ClaudeDockerError, match="DOCS_TOKEN is not set"):
        runplan.plan(cfg, Session(cfg.project_name, "s2"), "img:1", environ={})


def test_clean_up_clears_each_features_leftovers_and_keeps_pending_events(tmp_path, cd_home):
    cfg = make_config(tmp_path, notifier=NotifierConfig(twilio=TWILIO))
    done, pending = Session(cfg.project_name, "done"), Session(cfg.project_name, "pending")
    for session in (done, pending):
        runplan.plan(cfg, session, "img:1", environ={})
        (session.session_dir / "claude").mkdir()  # the throwaway login of `auth: none`
        (session.session_dir / "empty").touch()  # the mask over blocked files
        (session.session_dir / "empty-dir").mkdir(mode=0o555)  # the mask over blocked directories
    (pending.outbox_dir / "1-stop-1-a.json").write_text("{}")
    assert lifecycle.clean_up([EndedSession(done), EndedSession(pending)]) == []
    assert os.listdir(done.session_dir) == ["log"]  # the firewall's log of refused names stays
    assert sorted(os.listdir(pending.session_dir)) == ["log", "outbox"]
    assert os.listdir(pending.outbox_dir) == ["1-stop-1-a.json"]


def test_clean_up_leaves_a_kept_container_s_files_but_disarms_its_workspace(tmp_path, cd_home):
    cfg = make_config(tmp_path)
    workspace = cfg.workspace.path
    session = Session(cfg.project_name, "kept")
    runplan.plan(cfg, session, "img:1", environ={})
    nested = os.path.join(workspace, "sub")  # what the agent plants during the session
    subprocess.run(["git", "init", "-q", nested], check=True)
    subprocess.run(["git", "-C", nested, "config", "core.fsmonitor", "touch /tmp/owned"], check=True)
    kept = EndedSession(session, workspace, protect_git=True, container_gone=False)
    [warning] = lifecycle.clean_up([kept, kept])  # one workspace, disarmed once
    assert "core.fsmonitor" in warning
    assert session.runtime_dir.is_dir()
    assert lifecycle.clean_up([EndedSession(session, workspace, protect_git=False)]) == []
    assert not session.session_dir.exists() or "runtime" not in os.listdir(session.session_dir)
