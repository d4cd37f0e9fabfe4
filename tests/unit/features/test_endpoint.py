"""The model endpoint derived from what Claude will use, host ports, provider variables and profiles."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from claude_docker import runplan
from claude_docker.cli import main
from claude_docker.config.model import ClaudeConfig, Config, ModelEndpoint, NetworkConfig, WorkspaceConfig, frozen_map
from claude_docker.config.pipeline import load_config
from claude_docker.errors import ClaudeDockerError
from claude_docker.features import credentials, endpoint, firewall
from claude_docker.session import Session


def config(tmp_path, network: NetworkConfig | None = None, env_file: str | None = None, claude_env=None) -> Config:
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    return Config(
        source_files=(),
        project_dir=str(workspace),
        workspace=WorkspaceConfig(path=str(workspace)),
        network=network or NetworkConfig(),
        claude=ClaudeConfig(env=frozen_map(claude_env or {})),
        env_file=env_file,
    )


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, ("api.anthropic.com", 443)),
        ({"ANTHROPIC_BASE_URL": "http://172.17.0.1:4000"}, ("172.17.0.1", 4000)),
        ({"ANTHROPIC_BASE_URL": "https://LLM-Gateway.example.com/v1"}, ("llm-gateway.example.com", 443)),
        ({"ANTHROPIC_BASE_URL": "http://gw.example.com"}, ("gw.example.com", 80)),
        ({"CLAUDE_CODE_USE_BEDROCK": "1", "AWS_REGION": "eu-west-1"}, ("bedrock-runtime.eu-west-1.amazonaws.com", 443)),
        ({"CLAUDE_CODE_USE_BEDROCK": "0", "AWS_REGION": "eu-west-1"}, ("api.anthropic.com", 443)),
        ({"CLAUDE_CODE_USE_VERTEX": "1", "CLOUD_ML_REGION": "europe-west4"}, ("europe-west4-aiplatform.googleapis.com", 443)),
        ({"CLAUDE_CODE_USE_VERTEX": "1", "CLOUD_ML_REGION": "global"}, ("aiplatform.googleapis.com", 443)),
        (
            {"CLAUDE_CODE_USE_BEDROCK": "1", "ANTHROPIC_BEDROCK_BASE_URL": "https://bedrock.gw.example:8443"},
            ("bedrock.gw.example", 8443),
        ),
    ],
)
def test_the_endpoint_is_derived_from_what_claude_will_use(tmp_path, environ, expected):
    found = endpoint.derive(config(tmp_path), environ)
    assert (found.host, found.port) == expected


def test_the_environment_wins_over_the_env_file_over_claude_env(tmp_path):
    env_file = tmp_path / "secrets.env"
    env_file.write_text("ANTHROPIC_BASE_URL=http://10.0.0.5:8080\n")
    cfg = config(tmp_path, env_file=str(env_file), claude_env={"ANTHROPIC_BASE_URL": "http://10.0.0.9:9"})
    assert endpoint.derive(cfg, {}).source == f"ANTHROPIC_BASE_URL in env_file {env_file}"
    assert str(endpoint.derive(cfg, {})) == "10.0.0.5:8080"
    assert str(endpoint.derive(cfg, {"ANTHROPIC_BASE_URL": "http://10.1.1.1:1"})) == "10.1.1.1:1"
    assert str(endpoint.derive(config(tmp_path, claude_env={"ANTHROPIC_BASE_URL": "http://10.0.0.9:9"}), {})) == "10.0.0.9:9"


def render(cfg: Config) -> str:
    return firewall.runtime_artifacts(cfg, Session.new(cfg.project_name))[firewall.SCRIPT].content.decode()


def test_an_endpoint_address_is_rendered_as_one_address_and_port(tmp_path):
    script = render(config(tmp_path, NetworkConfig(model_endpoint=ModelEndpoint("172.17.0.1", 4000, "test"))))
    assert "readonly ENDPOINT_HOST=172.17.0.1" in script
    assert "readonly ENDPOINT_PORT=4000" in script
    assert "-A OUTPUT -m set --match-set cd-exact dst,dst -j ACCEPT" in script


def test_an_endpoint_name_joins_the_allowlist(tmp_path):
    cfg = config(tmp_path, NetworkConfig(model_endpoint=ModelEndpoint("llm-gateway.example.com", 443, "test")))
    artifacts = firewall.runtime_artifacts(cfg, Session.new(cfg.project_name))
    assert b"server=/llm-gateway.example.com/" in artifacts[firewall.DNSMASQ_SERVERS].content
    assert b"ipset=/llm-gateway.example.com/cd-dns" in artifacts[firewall.DNSMASQ_CONF].content


def test_host_ports_and_single_address_ports_are_rendered(tmp_path):
    network = NetworkConfig(host_ports=(5432, 4000), allowed_cidrs=("172.17.0.1/32:6379", "10.0.0.0/8:443"))
    script = render(config(tmp_path, network))
    assert "readonly HOST_PORTS=(5432 4000 )" in script
    assert "add cd-exact 172.17.0.1,tcp:6379" in script
    assert "cd-exact 10.0.0.0" not in script


def test_runplan_passes_provider_variables_and_the_endpoint_at_run_time(tmp_path, cd_home):
    cfg = config(tmp_path)
    environ = {
        "ANTHROPIC_BASE_URL": "http://172.17.0.1:4000",
        "ANTHROPIC_AUTH_TOKEN": "tok",
        "ANTHROPIC_MODEL": "m",
        "ANTHROPIC_CUSTOM_HEADERS": "X-A: b",
        "AWS_BEARER_TOKEN_BEDROCK": "bearer",
        "UNRELATED": "no",
    }
    plan = runplan.plan(cfg, Session.new(cfg.project_name), "img", environ=environ)
    for name in ("ANTHROPIC_MODEL", "ANTHROPIC_CUSTOM_HEADERS", "AWS_BEARER_TOKEN_BEDROCK"):
        assert plan.env[name] == environ[name]
    assert "UNRELATED" not in plan.env
    assert plan.env[endpoint.ENV_HOST] == "172.17.0.1" and plan.env[endpoint.ENV_PORT] == "4000"
    # The gateway token is the sandbox proxy's; Claude gets a placeholder and the local endpoint.
    assert plan.env["ANTHROPIC_AUTH_TOKEN"] == credentials.PLACEHOLDER
    assert plan.env[credentials.SECRET_AUTHORIZATION] == "Bearer tok"
    assert plan.env["ANTHROPIC_BASE_URL"] == f"http://127.0.0.1:{credentials.MODEL_LISTEN_PORT}"


def test_a_credentials_file_is_mounted_alone_and_read_only(tmp_path, cd_home):
    key = tmp_path / "keys" / "vertex.json"
    key.parent.mkdir()
    key.write_text("{}")
    cfg = config(tmp_path)
    plan = runplan.plan(cfg, Session.new(cfg.project_name), "img", environ={"GOOGLE_APPLICATION_CREDENTIALS": str(key)})
    target = f"{endpoint.CONTAINER_CREDENTIALS_DIR}/google-credentials.json"
    assert plan.env["GOOGLE_APPLICATION_CREDENTIALS"] == target
    [mount] = [m for m in plan.mounts if m.target == target]
    assert mount.source == str(key) and mount.read_only


@pytest.mark.parametrize("where", ["workspace", "blocked", "missing"])
def test_a_credentials_file_in_the_workspace_a_blocked_path_or_missing_is_refused(tmp_path, cd_home, monkeypatch, where):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    cfg = config(tmp_path)
    if where == "workspace":
        key = tmp_path / "ws" / "key.json"
    elif where == "blocked":
        key = home / ".config" / "gcloud" / "application_default_credentials.json"
        cfg = Config(**{**cfg.__dict__, "filesystem": type(cfg.filesystem)(blocked_paths=(str(home / ".config/gcloud"),))})
    else:
        key = tmp_path / "nowhere.json"
    if where != "missing":
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_text("{}")
    environ = {"GOOGLE_APPLICATION_CREDENTIALS": str(key)}
    [problem] = endpoint.credential_file_problems(cfg, environ)
    assert {"workspace": "inside the workspace", "blocked": "the blocked path", "missing": "not a file"}[where] in problem
    with pytest.raises(ClaudeDockerError):
        runplan.plan(cfg, Session.new(cfg.project_name), "img", environ=environ)


@pytest.fixture
def project(tmp_path, monkeypatch, cd_home):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("ANTHROPIC_BASE_URL", "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX", "AWS_REGION", "CLOUD_ML_REGION"):
        monkeypatch.delenv(name, raising=False)
    directory = tmp_path / "proj"
    directory.mkdir()
    monkeypatch.chdir(directory)
    return directory


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_validate_and_config_show_the_endpoint_and_its_source(project):
    result = run("validate", env={"ANTHROPIC_BASE_URL": "http://172.17.0.1:4000"})
    assert result.exit_code == 0, result.output
    assert (
        "model endpoint: 172.17.0.1:4000 (ANTHROPIC_BASE_URL in the environment); "
        "the firewall opens this address and TCP port only"
    ) in result.output
    assert "model endpoint" not in run("validate").output  # the usual one goes without saying
    shown = json.loads(run("validate", "--format", "json").output)["model_endpoint"]
    assert shown == {"host": "api.anthropic.com", "port": 443, "source": "the default: no ANTHROPIC_BASE_URL or provider set"}
    assert "# model endpoint: gw.example:8443 (ANTHROPIC_BASE_URL in the environment); the firewall allows this name" in run(
        "config", env={"ANTHROPIC_BASE_URL": "https://gw.example:8443"}
    ).output


def test_validate_warns_about_cidrs_covering_the_docker_host(project, monkeypatch):
    monkeypatch.setattr(firewall, "host_addresses", lambda: ["172.17.0.1"])
    (project / "claude-docker.yaml").write_text(
        'network:\n  allowed_cidrs: ["172.16.0.0/12", "172.17.0.1/32:5432", "10.0.0.0/8"]\n  host_ports: [4000]\n'
    )
    result = run("validate")
    assert result.exit_code == 0, result.output
    assert (
        "warning: network.allowed_cidrs: 172.16.0.0/12 covers the Docker host (172.17.0.1), which stays closed; "
        "open single ports with network.host_ports: [PORT, ...], or everything with allow_host_network: true"
    ) in result.output
    assert "172.17.0.1/32:5432 covers" not in result.output and "10.0.0.0/8 covers" not in result.output


@pytest.mark.parametrize(
    ("profile", "environ", "domain", "variable"),
    [
        ("bedrock", {"AWS_REGION": "eu-central-1"}, None, "CLAUDE_CODE_USE_BEDROCK"),
        ("vertex", {}, "oauth2.googleapis.com", "CLAUDE_CODE_USE_VERTEX"),
    ],
)
def test_provider_profiles_allow_exact_region_names(project, profile, environ, domain, variable):
    (project / "claude-docker.yaml").write_text(f"extends: [{profile}]\n")
    cfg = load_config(cwd=project, environ=environ).config
    assert domain is None or domain in cfg.network.allowed_domains
    assert not any(name.startswith("*.") for name in cfg.network.allowed_domains)
    assert cfg.claude.env[variable] == "1"
    found = endpoint.derive(cfg, environ)
    expected = "bedrock-runtime.eu-central-1.amazonaws.com" if profile == "bedrock" else "us-east5-aiplatform.googleapis.com"
    assert (found.host, found.port) == (expected, 443)


def test_an_ipv6_endpoint_is_refused_in_words(tmp_path):
    from claude_docker.errors import FirewallError

    cfg = config(tmp_path, NetworkConfig(model_endpoint=endpoint.derive(config(tmp_path), {"ANTHROPIC_BASE_URL": "http://[::1]:4000"})))
    with pytest.raises(FirewallError, match="IPv6"):
        render(cfg)
