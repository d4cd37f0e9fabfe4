"""settings.json (hooks) and mcp.json as Claude Code reads them; the MCP env hand-over; the
first-run state seeded into the persisted config dir."""

from __future__ import annotations

import dataclasses
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
from claude_docker.features import RunContext, claude_settings, notifier, persistence
from claude_docker.features.claude_settings import mcp_environment, runtime_artifacts
from claude_docker.features.image import build_context
from claude_docker.runspec import RunSpec
from claude_docker.session import Session
from tests.support.configs import persisted_config

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


# --- the first-run state seeded into the persisted config dir -------------------------------------


def seeded_run(cfg: Config, session: Session | None = None) -> tuple[RunSpec, Session]:
    """persistence then claude_settings, in the registry's order: the first prepares the config
    dir, the second seeds Claude Code's state in it."""
    session = session or Session.new(cfg.project_name)
    ctx = RunContext.build(cfg, session)
    spec = RunSpec()
    persistence.contribute(ctx, spec)
    claude_settings.contribute(ctx, spec)
    return spec, session


def test_seed_marks_onboarding_done_and_workspace_trusted(cd_home, host_home):
    cfg = persisted_config(host_home / "proj")
    _, session = seeded_run(cfg)
    config_dir = session.state_dir / "claude"
    state = json.loads((config_dir / ".claude.json").read_text())
    assert state["hasCompletedOnboarding"] is True
    assert state["projects"]["/workspace"]["hasTrustDialogAccepted"] is True
    settings = json.loads((config_dir / "settings.json").read_text())
    assert settings == {"skipDangerousModePermissionPrompt": True}
    assert (config_dir / ".claude.json").stat().st_mode & 0o777 == 0o600


def test_a_throwaway_login_is_seeded_too(cd_home, host_home):
    """`auth: none` keeps the config dir in the session's own dir: still seeded, so even a
    throwaway login starts without the wizard."""
    _, session = seeded_run(persisted_config(host_home / "proj", auth="none"))
    assert json.loads((session.session_dir / "claude" / ".claude.json").read_text())["hasCompletedOnboarding"]


def test_seed_merges_into_existing_state_without_losing_keys(tmp_path):
    (tmp_path / ".claude.json").write_text(
        json.dumps({"userID": "abc", "hasCompletedOnboarding": False,
                    "projects": {"/workspace": {"allowedTools": ["Bash"]}, "/other": {"x": 1}}})
    )
    (tmp_path / "settings.json").write_text(json.dumps({"model": "opus"}))
    claude_settings.seed_claude_state(tmp_path, "/workspace", (os.getuid(), os.getgid()))
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
    claude_settings.seed_claude_state(tmp_path, "/workspace", (os.getuid(), os.getgid()), api_key=key + "\n")
    text = (tmp_path / ".claude.json").read_text()
    assert json.loads(text)["customApiKeyResponses"] == {
        "approved": ["old-approved", "ABCDEFGHIJ0123456789"], "rejected": []}
    assert key not in text


def test_contribute_finds_the_api_key_in_the_env_file(cd_home, host_home, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    key = "sk-ant-from-env-file-0123456789abcdefghij"
    (cd_home / ".env").write_text(f"ANTHROPIC_API_KEY={key}\n")
    cfg = dataclasses.replace(persisted_config(host_home / "proj"), env_file=str(cd_home / ".env"))
    _, session = seeded_run(cfg)
    state = json.loads((session.state_dir / "claude" / ".claude.json").read_text())
    assert state["customApiKeyResponses"]["approved"] == [key[-20:]]


def test_state_links_planted_in_the_config_dir_are_never_followed(cd_home, host_home, tmp_path):
    """The agent writes in CLAUDE_CONFIG_DIR: a link there must not make the host read a host
    secret into the container, or write through it."""
    secret = tmp_path / "docker-config.json"
    secret.write_text('{"auths": {"registry": "host-secret"}}')
    victim = tmp_path / "victim"
    cfg = persisted_config(host_home / "proj")
    config_dir = cd_home / "projects" / cfg.project_name / "claude"
    config_dir.mkdir(parents=True)
    (config_dir / ".claude.json").symlink_to(secret)
    (config_dir / "settings.json").symlink_to(victim)
    seeded_run(cfg)
    assert "host-secret" not in (config_dir / ".claude.json").read_text()
    assert secret.read_text() == '{"auths": {"registry": "host-secret"}}'
    assert not victim.exists()
    for name in (".claude.json", "settings.json"):
        assert not (config_dir / name).is_symlink()


def test_seeding_an_unchanged_state_writes_nothing(tmp_path, monkeypatch):
    """Each `up` seeds the same state: after the first, nothing is rewritten (no flush to disk)."""
    ids = (os.getuid(), os.getgid())
    claude_settings.seed_claude_state(tmp_path, "/workspace", ids)
    before = {name: (tmp_path / name).stat().st_ino for name in (".claude.json", "settings.json")}
    writes: list[Path] = []
    monkeypatch.setattr(persistence, "write_atomic", lambda path, *a, **k: writes.append(path))
    claude_settings.seed_claude_state(tmp_path, "/workspace", ids)
    assert writes == []
    assert {name: (tmp_path / name).stat().st_ino for name in before} == before
    claude_settings.seed_claude_state(tmp_path, "/elsewhere", ids)  # a change is written
    assert writes == [tmp_path / ".claude.json"]


def test_an_unchanged_state_is_rewritten_when_it_is_a_link_a_second_name_or_open_to_others(tmp_path):
    ids = (os.getuid(), os.getgid())
    claude_settings.seed_claude_state(tmp_path, "/workspace", ids)
    state, settings = tmp_path / ".claude.json", tmp_path / "settings.json"
    # the same bytes behind a link, under a second name, and readable by others
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_bytes(state.read_bytes())
    os.chmod(elsewhere, 0o600)
    state.unlink()
    state.symlink_to(elsewhere)
    second = tmp_path / "second-name"
    os.link(settings, second)
    claude_settings.seed_claude_state(tmp_path, "/workspace", ids)
    assert not state.is_symlink() and state.stat().st_nlink == 1
    assert settings.stat().st_nlink == 1 and second.exists()
    os.chmod(state, 0o644)
    claude_settings.seed_claude_state(tmp_path, "/workspace", ids)
    assert state.stat().st_mode & 0o777 == 0o600


def test_seed_sets_corrupt_state_aside_and_goes_on(tmp_path):
    (tmp_path / ".claude.json").write_text("{not json")
    warnings: list[str] = []
    claude_settings.seed_claude_state(tmp_path, "/workspace", (os.getuid(), os.getgid()), warnings=warnings)
    assert [p.read_text() for p in tmp_path.glob(".claude.json.corrupt-*")] == ["{not json"]
    assert json.loads((tmp_path / ".claude.json").read_text())["hasCompletedOnboarding"] is True
    assert len(warnings) == 1 and "not valid JSON" in warnings[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands files to another uid")
def test_root_hands_the_seeded_state_to_the_agent_uid(cd_home, host_home):
    cfg = persisted_config(host_home / "proj")
    cfg = dataclasses.replace(cfg, claude=dataclasses.replace(cfg.claude, uid=1234, gid=2345))
    _, session = seeded_run(cfg)
    path = session.state_dir / "claude" / ".claude.json"
    assert (path.stat().st_uid, path.stat().st_gid) == (1234, 2345)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give the workspace to another uid")
def test_root_hands_the_seeded_state_to_the_workspace_owner(cd_home, host_home):
    os.chown(host_home / "proj", 4321, 4321)
    _, session = seeded_run(persisted_config(host_home / "proj"))
    assert (session.state_dir / "claude" / ".claude.json").stat().st_uid == 4321


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
