"""settings.json (hooks) and mcp.json as Claude Code reads them; the MCP env hand-over."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from claude_docker.config.model import (
    ClaudeConfig,
    Config,
    ImageConfig,
    McpServer,
    NotifierConfig,
    TwilioConfig,
    WebhookConfig,
    WorkspaceConfig,
)
from claude_docker.contract import CONTAINER_OUTBOX, EVENT_KINDS, HOOK_EVENTS, HOOK_HELPER
from claude_docker.errors import ClaudeDockerError
from claude_docker.features import RunContext, notifier
from claude_docker.features.claude_settings import mcp_environment, runtime_artifacts
from claude_docker.features.image import build_context
from claude_docker.runspec import RunSpec
from claude_docker.session import Session

TWILIO = TwilioConfig(to=("+15551234567",), from_number="+15005550006", account_sid="AC1", auth_token="tw-secret-token")


def make_config(tmp_path: Path, notifier: NotifierConfig | None = None, servers=(), env_file: str | None = None) -> Config:
    return Config(
        source_files=(),
        project_dir=str(tmp_path),
        workspace=WorkspaceConfig(path=str(tmp_path)),
        notifier=notifier or NotifierConfig(),
        claude=ClaudeConfig(mcp_servers=tuple(servers)),
        env_file=env_file,
    )


def documents(cfg: Config) -> tuple[dict, dict]:
    artifacts = runtime_artifacts(cfg, Session("p", "s"))
    return json.loads(artifacts["settings.json"].content), json.loads(artifacts["mcp.json"].content)


PROGRESS_HOOK = {"type": "command", "command": "/opt/claude-docker/bin/hook-progress", "timeout": 5}


def test_hooks_for_the_configured_events_only(tmp_path):
    cfg = make_config(tmp_path, NotifierConfig(on=("stop", "session_end"), twilio=TWILIO))
    settings, _ = documents(cfg)
    assert settings == {
        "skipDangerousModePermissionPrompt": True,
        "hooks": {
            "PreToolUse": [{"matcher": "*", "hooks": [PROGRESS_HOOK]}],
            "Stop": [
                {"hooks": [{"type": "command", "command": "/opt/claude-docker/bin/hook-event stop", "timeout": 10}]},
                {"hooks": [PROGRESS_HOOK]},
            ],
            "SessionEnd": [
                {"hooks": [{"type": "command", "command": "/opt/claude-docker/bin/hook-event session_end", "timeout": 10}]}
            ],
        },
    }


def test_every_event_maps_to_its_hook(tmp_path):
    cfg = make_config(tmp_path, NotifierConfig(on=("stop", "notification", "failure", "session_end"), twilio=TWILIO))
    settings, _ = documents(cfg)
    assert sorted(settings["hooks"]) == ["Notification", "PreToolUse", "SessionEnd", "Stop", "StopFailure"]
    assert settings["hooks"]["StopFailure"][0]["hooks"][0]["command"].endswith("hook-event failure")


def test_no_notifier_only_the_progress_hooks(tmp_path):
    settings, mcp = documents(make_config(tmp_path))
    assert settings == {
        "skipDangerousModePermissionPrompt": True,
        "hooks": {"PreToolUse": [{"matcher": "*", "hooks": [PROGRESS_HOOK]}], "Stop": [{"hooks": [PROGRESS_HOOK]}]},
    }
    assert mcp == {"mcpServers": {}}


def test_no_secret_in_any_runtime_file(tmp_path):
    hook = WebhookConfig(url="https://hooks.example.com/T0KEN-in-url", headers={"X-Token": "hdr-secret"})
    cfg = make_config(tmp_path, NotifierConfig(twilio=TWILIO, webhooks=(hook,), apprise=("ntfy://apprise-secret",)))
    blob = b"".join(a.content for a in runtime_artifacts(cfg, Session("p", "s")).values())
    for secret in (b"tw-secret-token", b"T0KEN-in-url", b"hdr-secret", b"apprise-secret", b"AC1"):
        assert secret not in blob


def test_mcp_servers_keep_var_references_literally(tmp_path):
    servers = [
        McpServer("docs", command="npx", args=("-y", "some-mcp-server"), env={"TOKEN": "${DOCS_TOKEN}"}),
        McpServer("search", type="http", url="https://mcp.example.com/mcp", headers={"Authorization": "Bearer ${SEARCH_KEY}"}),
        McpServer("plain", command="/usr/bin/tool"),
    ]
    _, mcp = documents(make_config(tmp_path, servers=servers))
    assert mcp == {
        "mcpServers": {
            "docs": {"command": "npx", "args": ["-y", "some-mcp-server"], "env": {"TOKEN": "${DOCS_TOKEN}"}},
            "search": {
                "type": "http",
                "url": "https://mcp.example.com/mcp",
                "headers": {"Authorization": "Bearer ${SEARCH_KEY}"},
            },
            "plain": {"command": "/usr/bin/tool", "args": []},
        }
    }


def test_output_is_deterministic(tmp_path):
    servers = [McpServer(name, command="x", env={"B": "1", "A": "2"}) for name in ("zeta", "alpha")]
    cfg = make_config(tmp_path, NotifierConfig(on=("stop", "failure"), twilio=TWILIO), servers)
    first = runtime_artifacts(cfg, Session("p", "s"))
    second = runtime_artifacts(cfg, Session("p", "other"))
    assert {k: v.content for k, v in first.items()} == {k: v.content for k, v in second.items()}
    assert first["mcp.json"].content.endswith(b"\n")


# --- contribute: outbox mount and MCP env ------------------------------------------------------


def test_contribute_mounts_outbox_rw_and_passes_mcp_values(tmp_path, cd_home, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("SEARCH_KEY=from-env-file\n")
    monkeypatch.setenv("DOCS_TOKEN", "from-environ")
    servers = [
        McpServer("docs", command="npx", env={"TOKEN": "${DOCS_TOKEN}", "OPT": "${UNSET_OPT:-fallback}"}),
        McpServer("search", type="http", url="https://x.example.com", headers={"Authorization": "Bearer ${SEARCH_KEY}"}),
    ]
    cfg = make_config(tmp_path, NotifierConfig(twilio=TWILIO), servers, env_file=str(env_file))
    session = Session("proj", "s1")
    spec = RunSpec()
    contribute_run(cfg, session, spec)
    [mount] = spec.mounts
    assert (mount.source, mount.target, mount.read_only) == (str(session.outbox_dir), CONTAINER_OUTBOX, False)
    assert session.outbox_dir.is_dir()
    assert spec.env == {"DOCS_TOKEN": "from-environ", "SEARCH_KEY": "from-env-file"}
    assert "tw-secret-token" not in json.dumps(spec.env)


def test_no_notifier_no_outbox(tmp_path, cd_home):
    session = Session("proj", "s1")
    spec = RunSpec()
    contribute_run(make_config(tmp_path), session, spec)
    assert spec.mounts == [] and spec.env == {} and not session.outbox_dir.exists()


def test_unset_mcp_variable_is_a_clear_error(tmp_path, cd_home, monkeypatch):
    monkeypatch.delenv("NOPE_TOKEN", raising=False)
    cfg = make_config(tmp_path, servers=[McpServer("docs", command="x", env={"T": "${NOPE_TOKEN}"})])
    with pytest.raises(ClaudeDockerError) as raised:
        contribute_run(cfg, Session("proj", "s1"), RunSpec())
    assert raised.value.message == "claude.mcp_servers.docs: variable NOPE_TOKEN is not set"


def test_mcp_server_cannot_pull_a_notifier_secret_into_the_container(tmp_path, cd_home, monkeypatch):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "tw-secret-token")
    cfg = make_config(
        tmp_path, NotifierConfig(twilio=TWILIO), [McpServer("twilio", command="x", env={"T": "${TWILIO_AUTH_TOKEN}"})]
    )
    spec = RunSpec()
    with pytest.raises(ClaudeDockerError) as raised:
        contribute_run(cfg, Session("proj", "s1"), spec)
    assert "notifier credential" in raised.value.message
    assert "tw-secret-token" not in json.dumps(spec.env)


def contribute_run(cfg: Config, session: Session, spec: RunSpec) -> None:
    """What the notifier and Claude Code's MCP configuration add to a run: the outbox and the
    values of the MCP servers' `${VAR}` references."""
    ctx = RunContext.build(cfg, session)
    notifier.contribute(ctx, spec)
    spec.env.update(mcp_environment(cfg, ctx.environ))


# --- the in-container scripts (bash, run here against a plain directory) ---------------------------


@functools.cache
def rendered_helpers() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="claude-docker-bin-"))
    for name, artifact in build_context(ImageConfig()).items():
        if name.startswith("bin/") and "/" not in name[4:]:
            (directory / name[4:]).write_bytes(artifact.content)
            (directory / name[4:]).chmod(artifact.mode)
    return directory


def run_script(name: str, outbox: Path, args=(), stdin: bytes = b"") -> subprocess.CompletedProcess:
    """Run the helper as the image holds it: rendered from its template with the contract."""
    script = rendered_helpers() / name
    env = dict(os.environ, CLAUDE_DOCKER_OUTBOX=str(outbox))
    return subprocess.run([str(script), *args], input=stdin, env=env, capture_output=True, check=False)


@pytest.mark.parametrize("hook, kind", sorted(HOOK_EVENTS.items()))
def test_hook_event_writes_every_kind_the_host_reads(tmp_path, hook, kind):
    """The settings' hook commands, the helper and the outbox reader agree on every event kind."""
    from claude_docker.notify.events import pending_names, read_event

    outbox = tmp_path / "outbox"
    outbox.mkdir()
    cfg = make_config(tmp_path, NotifierConfig(twilio=TWILIO, on=EVENT_KINDS))
    settings = json.loads(runtime_artifacts(cfg, Session("p", "s"))["settings.json"].content)
    [command] = [entry["command"] for group in settings["hooks"][hook] for entry in group["hooks"]
                 if entry["command"].startswith(HOOK_HELPER + " ")]  # beside it on Stop: the progress hook
    helper, argument = command.split()
    assert helper == HOOK_HELPER
    result = run_script("hook-event", outbox, [argument], json.dumps({"hook_event_name": hook}).encode())
    assert result.returncode == 0, result.stderr
    [name] = pending_names(outbox)
    assert f"-{kind}-" in name and read_event(outbox, name).kind == kind


def test_hook_event_copies_stdin_atomically(tmp_path):
    from claude_docker.notify.events import pending_names, read_event

    event = {"hook_event_name": "Stop", "last_assistant_message": "it's \"done\" $(rm -rf /)\nline 2"}
    result = run_script("hook-event", tmp_path, ["stop"], json.dumps(event).encode())
    assert result.returncode == 0 and result.stdout == b""
    [name] = pending_names(tmp_path)
    parsed = read_event(tmp_path, name)
    assert (parsed.kind, parsed.text) == ("stop", event["last_assistant_message"])
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]


def test_hook_event_never_fails_claude(tmp_path):
    result = run_script("hook-event", tmp_path / "missing", ["stop"], b"{}")
    assert result.returncode == 0
    result = run_script("hook-event", tmp_path, ["../../evil"], b"{}")
    assert result.returncode == 0
    assert all("evil" not in n and "/" not in n for n in os.listdir(tmp_path))


def test_notify_command_queues_text(tmp_path):
    from claude_docker.notify.events import pending_names, read_event

    assert run_script("notify", tmp_path, ["tests are green; $(id)"]).returncode == 0
    [name] = pending_names(tmp_path)
    assert read_event(tmp_path, name).text == "tests are green; $(id)"
    assert run_script("notify", tmp_path, []).returncode == 2
    assert run_script("notify", tmp_path / "missing", ["x"]).returncode == 1


# --- validation of claude.mcp_servers (through the real config pipeline) ------------------------------

MCP_INVALID = [
    (
        '    web: {type: http, command: npx, url: "https://x.example.com"}',
        'claude.mcp_servers.web.command: "command" is not a valid key for an http or sse MCP server: expected type, url or headers',
    ),
    ("    s: {args: [a]}", "claude.mcp_servers.s: missing required key 'command'"),
    (
        '    s: {command: "npx; rm -rf /"}',
        "claude.mcp_servers.s.command: \"npx; rm -rf /\" is not a valid program: expected a program name or path: "
        "letters, digits and . _ - / @ + = (no spaces, quotes, $ or leading '-')",
    ),
    (
        '    s: {command: npx, env: {TOKEN: "a\\nb"}}',
        'claude.mcp_servers.s.env.TOKEN: "a\\nb" is not a valid environment value: expected one line, no control characters',
    ),
    ("    web: {type: http}", "claude.mcp_servers.web: missing required key 'url'"),
]


@pytest.mark.parametrize("entry, message", MCP_INVALID)
def test_bad_mcp_entries_are_rejected_with_location(tmp_path, cd_home, entry, message):
    from claude_docker.config.pipeline import load_config
    from claude_docker.errors import ConfigError

    config = tmp_path / "claude-docker.yaml"
    config.write_text(f"version: 1\nclaude:\n  mcp_servers:\n{entry}\n")
    with pytest.raises(ConfigError) as raised:
        load_config(str(config))
    assert raised.value.message == f"{config}:4: {message}"
