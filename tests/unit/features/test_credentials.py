"""What the sandbox proxy holds for the agent, as planned on the host (no engine needed), and
where a credential may come from."""

from __future__ import annotations

import base64
import json

import pytest

from claude_docker import lifecycle, runplan
from claude_docker.config.model import Config, GitCredential, ModelEndpoint, NetworkConfig, PersistenceConfig, WorkspaceConfig
from claude_docker.config.pipeline import load_config
from claude_docker.engine import ContainerInfo
from claude_docker.errors import ClaudeDockerError, ConfigError
from claude_docker.features import credentials
from claude_docker.session import Session

KEY = "sk-ant-api03-" + "k" * 40
TOKEN = "sk-ant-oat01-" + "t" * 40


def config(tmp_path, **network) -> Config:
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    return Config(
        source_files=(),
        project_dir=str(workspace),
        workspace=WorkspaceConfig(path=str(workspace)),
        network=NetworkConfig(**network),
        persistence=PersistenceConfig(auth="project", shell_history=False, npm_cache=False, pip_cache=False, git_config=False),
    )


def plan(cfg: Config, environ: dict[str, str]):
    return runplan.plan(cfg, Session.new(cfg.project_name), "img", environ=environ)


def test_an_api_key_becomes_a_placeholder_and_a_local_endpoint(tmp_path, cd_home):
    cfg = config(tmp_path)
    planned = plan(cfg, {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": "https://gw.example.com/anthropic/"})
    assert planned.env["ANTHROPIC_API_KEY"] == credentials.PLACEHOLDER
    assert planned.env["ANTHROPIC_BASE_URL"] == f"http://127.0.0.1:{credentials.MODEL_LISTEN_PORT}/anthropic"
    assert planned.env[credentials.SECRET_API_KEY] == KEY
    assert [name for name, value in planned.env.items() if KEY in value] == [credentials.SECRET_API_KEY]
    assert not any("API key" in warning for warning in planned.warnings)


def test_the_credentials_are_planned_once_per_run(tmp_path, cd_home, monkeypatch):
    """runplan.context works them out once; the credentials feature reads them from the run context."""
    calls: list[tuple] = []
    real_plan = credentials.plan
    monkeypatch.setattr(credentials, "plan", lambda *args, **kwargs: calls.append(args) or real_plan(*args, **kwargs))
    cfg = config(tmp_path)
    ctx = runplan.context(cfg, Session.new(cfg.project_name), {"ANTHROPIC_API_KEY": KEY})
    assert ctx.credentials is not None and ctx.credentials.headers == ctx.config.network.injected_headers == ("x-api-key",)
    calls.clear()
    planned = plan(cfg, {"ANTHROPIC_API_KEY": KEY})
    assert len(calls) == 1
    assert planned.env["ANTHROPIC_API_KEY"] == credentials.PLACEHOLDER and planned.env[credentials.SECRET_API_KEY] == KEY


def test_no_runtime_file_holds_the_credential(tmp_path, cd_home):
    """Runtime artifacts are mounted where the agent can read them: the key is in none of them,
    nor in the persisted Claude state (whose API key approval is the placeholder's)."""
    cfg = config(tmp_path)
    session = Session.new(cfg.project_name)
    runplan.plan(cfg, session, "img", environ={"ANTHROPIC_API_KEY": KEY, "CLAUDE_CODE_OAUTH_TOKEN": TOKEN})
    files = [path for path in cd_home.rglob("*") if path.is_file()]
    haproxy = (session.runtime_dir / "haproxy.cfg").read_text()
    assert "${CLAUDE_DOCKER_SECRET_API_KEY-unset}" in haproxy and "frontend model" in haproxy
    assert "${CLAUDE_DOCKER_SECRET_AUTHORIZATION-unset}" in haproxy
    assert len(files) > 3
    for path in files:
        data = path.read_bytes()
        assert KEY.encode() not in data and KEY[-20:].encode() not in data, path
        assert TOKEN.encode() not in data, path
    [state] = [path for path in files if path.name == ".claude.json"]
    assert json.loads(state.read_text())["customApiKeyResponses"]["approved"] == [credentials.PLACEHOLDER[-20:]]


def test_an_oauth_token_is_sent_as_bearer(tmp_path, cd_home):
    planned = plan(config(tmp_path), {"CLAUDE_CODE_OAUTH_TOKEN": TOKEN})
    assert planned.env["CLAUDE_CODE_OAUTH_TOKEN"] == credentials.PLACEHOLDER
    assert planned.env[credentials.SECRET_AUTHORIZATION] == f"Bearer {TOKEN}"
    assert credentials.SECRET_API_KEY not in planned.env


@pytest.mark.parametrize(
    "network, environ, reason",
    [
        ({"firewall": False}, {}, "network.firewall is false"),
        ({"name_checks": False}, {}, "network.name_checks is false"),
        ({}, {"CLAUDE_CODE_USE_BEDROCK": "1"}, "signs requests"),
    ],
)
def test_without_the_proxy_the_key_stays_with_claude_and_up_says_so(tmp_path, cd_home, network, environ, reason):
    planned = plan(config(tmp_path, **network), {"ANTHROPIC_API_KEY": KEY, **environ})
    assert planned.env["ANTHROPIC_API_KEY"] == KEY
    assert not any(name.startswith(credentials.SECRET_PREFIX) for name in planned.env)
    assert any(warning.startswith("ANTHROPIC_API_KEY reaches the agent's environment") and reason in warning for warning in planned.warnings)


def test_a_git_token_is_added_for_its_host_only(tmp_path, cd_home):
    cfg = config(tmp_path, git_credential=GitCredential("git.example.com", "GIT_TOKEN"))
    session = Session.new(cfg.project_name)
    planned = runplan.plan(cfg, session, "img", environ={"GIT_TOKEN": "ghp_abc"})
    assert planned.env[credentials.SECRET_GIT_AUTHORIZATION] == "Basic " + base64.b64encode(b"x-access-token:ghp_abc").decode()
    assert planned.env["GIT_CONFIG_KEY_0"] == f"url.http://127.0.0.1:{credentials.GIT_LISTEN_PORT}/.insteadOf"
    assert planned.env["GIT_CONFIG_VALUE_0"] == "https://git.example.com/"
    assert "GIT_TOKEN" not in planned.env
    haproxy = (session.runtime_dir / "haproxy.cfg").read_text()
    assert "sni str(git.example.com) verifyhost git.example.com" in haproxy
    assert "ghp_abc" not in haproxy
    assert "server=/git.example.com/" in (session.runtime_dir / "dnsmasq-servers.tmpl").read_text()


def test_a_missing_git_token_is_refused_in_words(tmp_path, cd_home):
    cfg = config(tmp_path, git_credential=GitCredential("git.example.com", "GIT_TOKEN"))
    with pytest.raises(ClaudeDockerError) as raised:
        plan(cfg, {})
    assert raised.value.message == "network.git_credential: GIT_TOKEN is not set in the environment or the env file"
    [problem] = credentials.check(cfg, {})  # what `validate` says first, at the key that asks for it
    assert (problem.key_path, problem.message) == (
        "network.git_credential.token_variable", f"GIT_TOKEN is not set in the environment or the env file; {credentials.TOKEN_HINT}"
    )


def test_a_credential_with_characters_no_token_has_is_refused(tmp_path, cd_home):
    with pytest.raises(ClaudeDockerError) as raised:
        plan(config(tmp_path), {"ANTHROPIC_API_KEY": 'sk-ant "%[src]'})
    assert "ANTHROPIC_API_KEY (from the environment) holds characters" in raised.value.message
    [problem] = credentials.check(config(tmp_path), {"ANTHROPIC_API_KEY": 'sk-ant "%[src]'})
    assert problem.message.startswith(raised.value.message)


def test_the_endpoint_keeps_its_scheme_and_path(tmp_path, cd_home):
    cfg = config(tmp_path, model_endpoint=ModelEndpoint("10.0.0.5", 8080, "test", "http", "/v"))
    session = Session.new(cfg.project_name)
    planned = runplan.plan(cfg, session, "img", environ={"ANTHROPIC_API_KEY": KEY})
    haproxy = (session.runtime_dir / "haproxy.cfg").read_text()
    assert "server model 10.0.0.5:8080\n" in haproxy  # plain HTTP: the endpoint's own URL says http://
    assert planned.env["ANTHROPIC_BASE_URL"].endswith("/v")


def test_claude_env_may_not_carry_a_credential(tmp_path, cd_home):
    project = tmp_path / "p"
    project.mkdir()
    (project / "claude-docker.yaml").write_text("claude:\n  env:\n    LOG: x\n    ANTHROPIC_API_KEY: sk-ant-api03-abc\n")
    with pytest.raises(ConfigError) as raised:
        load_config(str(project / "claude-docker.yaml"))
    [problem] = raised.value.problems
    assert (problem.line, problem.key_path) == (4, "claude.env.ANTHROPIC_API_KEY")
    assert problem.message == "ANTHROPIC_API_KEY is a credential, which is never read from a config file"


def test_git_credential_needs_the_proxy(tmp_path, cd_home):
    project = tmp_path / "p"
    project.mkdir()
    (project / "claude-docker.yaml").write_text(
        "network:\n  firewall: false\n  git_credential: {host: github.com, token_variable: GITHUB_TOKEN}\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_config(str(project / "claude-docker.yaml"))
    assert [p.key_path for p in raised.value.problems] == ["network.git_credential"]


def test_a_shell_in_the_session_never_gets_the_secrets():
    env = {"AGENT_UID": "1000", credentials.SECRET_API_KEY: KEY, "OTHER": "x"}
    info = ContainerInfo("c", "c", "running", "", "img", {}, env)
    argv = lifecycle.shell_argv(info, ["id"])
    assert KEY not in " ".join(argv)
    assert argv[argv.index(f"{credentials.SECRET_API_KEY}=") - 1] == "-e"
    assert f"--unset={credentials.SECRET_API_KEY}" in argv


def test_doctor_names_the_mode(tmp_path, cd_home):
    cfg = config(tmp_path)
    endpoint = ModelEndpoint("api.anthropic.com", 443, "default")
    assert credentials.mode(cfg, {"ANTHROPIC_API_KEY": KEY}, endpoint, False)[0] == "API key (ANTHROPIC_API_KEY)"
    words, detail = credentials.mode(cfg, {"CLAUDE_CODE_OAUTH_TOKEN": TOKEN}, endpoint, True)
    assert words.startswith("OAuth token") and "held by the sandbox proxy" in detail
    words, detail = credentials.mode(cfg, {}, endpoint, True)
    assert words == "/login credentials file" and "readable by the agent" in detail
    _, detail = credentials.mode(config(tmp_path, firewall=False), {"ANTHROPIC_API_KEY": KEY}, endpoint, False)
    assert "in the agent's environment, because network.firewall is false" in detail
