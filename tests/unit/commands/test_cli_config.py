"""The config commands through click's runner: output, exit codes, masking, init, render."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from claude_docker.cli import main
from claude_docker.commands.config_cmds import COMMANDS, MASK, mask_secrets


@pytest.fixture
def project(tmp_path, monkeypatch, cd_home):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    directory = tmp_path / "proj"
    directory.mkdir()
    monkeypatch.chdir(directory)
    return directory


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


SECRETS_YAML = """\
notifier:
  twilio:
    account_sid: AC00000000000000000000000000000000
    auth_token: ${TW_TOKEN}
    from: "+15005550006"
    to: ["+15551234567"]
  apprise: ["tgram://123456:secretbot/987"]
  webhooks:
    - {url: "https://hooks.slack.example/services/T0/B0/secret", headers: {Authorization: "Bearer abc"}}
claude:
  env: {GITHUB_TOKEN: ghp_secret, LOG_LEVEL: debug}
  mcp_servers:
    docs: {command: npx, env: {DOCS_TOKEN: "${DOCS_TOKEN}", LITERAL: plain-secret}}
network:
  proxy: {https: "http://user:pw@proxy.corp:3128"}
"""


def test_validate_ok_prints_chain(project):
    (project / "claude-docker.yaml").write_text("extends: [python]\n")
    result = run("validate")
    assert result.exit_code == 0
    assert result.output == (
        f"{project}/claude-docker.yaml is valid\n"
        f"profile chain: default -> python -> {project}/claude-docker.yaml\n"
        "egress: 6 allowed names, decided by the name asked for on ports 80 and 443 (TLS SNI, HTTP Host; no TLS decryption)\n"
        "trust: claude-docker.yaml is not trusted yet — run `claude-docker trust`\n"
    )
    assert run("trust", "--yes").exit_code == 0
    assert not [line for line in run("validate").output.splitlines() if line.startswith("trust:")]


def test_validate_says_what_is_checked_by_name_and_what_by_address(project):
    (project / "claude-docker.yaml").write_text(
        "network:\n  allowed_domains: [github.com, 'github.com:22', '*.corp.example:8443']\n  allowed_cidrs: [10.1.2.3/32:5432]\n"
    )
    assert run("trust", "--yes").exit_code == 0
    lines = run("validate").output.splitlines()[2:]
    assert lines == [
        "egress: 6 allowed names, decided by the name asked for on ports 80 and 443 (TLS SNI, HTTP Host; no TLS decryption)",
        "egress: by address only (TCP, any site on the same addresses): github.com:22, *.corp.example:8443",
        "egress: by address: 10.1.2.3/32:5432",
    ]
    (project / "claude-docker.yaml").write_text("network:\n  name_checks: false\n")
    assert run("trust", "--yes").exit_code == 0
    assert run("validate").output.splitlines()[2:] == [
        "egress: 4 allowed names, by address only (network.name_checks is false): "
        "every port and protocol of any address they resolve to"
    ]


def test_validate_errors_exit_1_with_every_problem(project):
    (project / "claude-docker.yaml").write_text("network:\n  firewall: maybe\n  alowed_domains: []\n")
    result = CliRunner().invoke(main, ["validate"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert f"{project}/claude-docker.yaml:2: network.firewall: expected true or false" in result.output
    assert "did you mean 'allowed_domains'?" in result.output
    assert "hint: 2 problems found" in result.output


def test_validate_json(project):
    (project / "claude-docker.yaml").write_text("version: 3\n")
    result = CliRunner().invoke(main, ["validate", "--format", "json"])
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["valid"] is False
    assert document["problems"] == [
        {"file": f"{project}/claude-docker.yaml", "key_path": "version", "line": 1, "message": "must be 1, got 3"}
    ]
    (project / "claude-docker.yaml").write_text("version: 1\n")
    result = run("validate", "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.output) == {
        "valid": True, "chain": ["default", f"{project}/claude-docker.yaml"], "problems": [], "warnings": [],
        "untrusted": [{"file": f"{project}/claude-docker.yaml", "state": "new"}],
        "model_endpoint": {"host": "api.anthropic.com", "port": 443, "source": "the default: no ANTHROPIC_BASE_URL or provider set"},
    }


def test_validate_without_any_file(project):
    result = run("validate")
    assert result.exit_code == 0
    assert result.output == (
        "no claude-docker.yaml found here or above; the defaults are valid\nprofile chain: default\n"
        "egress: 4 allowed names, decided by the name asked for on ports 80 and 443 (TLS SNI, HTTP Host; no TLS decryption)\n"
    )


def test_config_prints_merged_yaml_with_secrets_masked(project, monkeypatch):
    monkeypatch.setenv("TW_TOKEN", "twilio-secret-token")
    monkeypatch.setenv("DOCS_TOKEN", "never-shown")
    (project / "claude-docker.yaml").write_text(SECRETS_YAML)
    result = run("config")
    assert result.exit_code == 0
    for secret in ("twilio-secret-token", "secretbot", "services/T0", "Bearer abc", "ghp_secret", "plain-secret", "user:pw"):
        assert secret not in result.output
    merged = yaml.safe_load(result.output)
    assert merged["notifier"]["twilio"]["auth_token"] == MASK
    assert merged["notifier"]["apprise"] == [f"tgram://{MASK}"]
    assert merged["notifier"]["webhooks"][0] == {"url": f"https://hooks.slack.example/{MASK}", "headers": {"Authorization": MASK}}
    assert merged["claude"]["env"] == {"GITHUB_TOKEN": MASK, "LOG_LEVEL": "debug"}
    assert merged["claude"]["mcp_servers"]["docs"]["env"] == {"DOCS_TOKEN": "${DOCS_TOKEN}", "LITERAL": MASK}
    assert merged["network"]["proxy"]["https"] == f"http://{MASK}@proxy.corp:3128"
    assert "api.anthropic.com" in merged["network"]["allowed_domains"]
    assert result.output.startswith(f"# profile chain: default -> {project}/claude-docker.yaml\n")


def test_mask_keeps_apprise_scheme_and_webhook_host_only():
    masked = mask_secrets({"notifier": {
        "apprise": ["tgram://123456:secretbot/987", "mailto://u:p@mail.example"],
        "webhooks": [{"url": "https://u:p@hooks.example:8443/x?token=1"}],
    }})
    assert masked["notifier"]["apprise"] == [f"tgram://{MASK}", f"mailto://{MASK}"]
    assert masked["notifier"]["webhooks"] == [{"url": f"https://hooks.example:8443/{MASK}", "headers": {}}]


def test_config_show_secrets(project, monkeypatch):
    monkeypatch.setenv("TW_TOKEN", "twilio-secret-token")
    monkeypatch.setenv("DOCS_TOKEN", "x")
    (project / "claude-docker.yaml").write_text(SECRETS_YAML)
    assert "twilio-secret-token" in run("config", "--show-secrets").output


def test_schema_prints_valid_json_schema():
    result = run("schema")
    document = json.loads(result.output)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert {"image", "workspace", "filesystem", "network", "persistence", "notifier", "claude", "resources"} <= set(
        document["properties"]
    )


def test_init_writes_a_valid_file_and_never_overwrites(project):
    result = run("init", "--profile", "python")
    assert result.exit_code == 0
    text = (project / "claude-docker.yaml").read_text()
    assert "extends: [python]" in text
    assert text.startswith("# yaml-language-server: $schema=./claude-docker.schema.json\n# claude-docker.yaml")
    assert run("validate").exit_code == 0
    result = CliRunner().invoke(main, ["init"])
    assert result.exit_code == 1
    assert "already exists; not overwriting it" in result.output
    assert (project / "claude-docker.yaml").read_text() == text


def test_init_without_profile_validates(project):
    assert run("init").exit_code == 0
    loaded = run("validate", "--format", "json")
    assert json.loads(loaded.output)["valid"] is True


def test_init_unknown_profile(project):
    result = CliRunner().invoke(main, ["init", "--profile", "rust"])
    assert result.exit_code == 1
    assert "there is no built-in profile 'rust'" in result.output
    assert not (project / "claude-docker.yaml").exists()


def test_profiles_one_line_each():
    lines = run("profiles").output.splitlines()
    names = [line.split()[0] for line in lines]
    assert names == sorted(names) and {"default", "strict", "python", "node", "github"} <= set(names)
    assert all(len(line.split(None, 1)) == 2 for line in lines)  # every profile has a description


def test_render_writes_build_and_runtime_files(project):
    (project / "claude-docker.yaml").write_text(
        "claude:\n  mcp_servers:\n    docs: {command: npx, args: [-y, docs-mcp]}\n"
    )
    result = run("render", "-o", "out")
    assert result.exit_code == 0
    out = project / "out"
    for name in ("Dockerfile", "init-firewall.sh", "mcp.json", "settings.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "mcp.json").read_text())["mcpServers"]["docs"]["command"] == "npx"


@pytest.mark.parametrize("command", [command.name for command in COMMANDS])
def test_every_config_command_has_help_with_examples(command):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.output


def test_completion_script():
    result = run("completion", "bash")
    assert "_CLAUDE_DOCKER_COMPLETE" in result.output


def test_config_output_is_itself_a_valid_config_with_the_same_result(project, monkeypatch):
    monkeypatch.setenv("TW_TOKEN", "t0k")
    monkeypatch.setenv("DOCS_TOKEN", "x")
    (project / "claude-docker.yaml").write_text("extends: [python, github]\n" + SECRETS_YAML)
    first = run("config", "--show-secrets").output
    copy = project / "copy"
    copy.mkdir()
    (copy / "claude-docker.yaml").write_text(first)
    second = run("config", "--show-secrets", "-f", str(copy / "claude-docker.yaml")).output
    assert first.split("\n", 1)[1] == second.split("\n", 1)[1]  # all but the chain comment


def test_validate_with_only_the_user_file(project, cd_home):
    (cd_home / "config.yaml").write_text("resources: {memory: 4g}\n")
    result = run("validate")
    assert result.output == (
        f"no claude-docker.yaml found here or above; {cd_home}/config.yaml is valid\n"
        f"profile chain: default -> {cd_home}/config.yaml\n"
        "egress: 4 allowed names, decided by the name asked for on ports 80 and 443 (TLS SNI, HTTP Host; no TLS decryption)\n"
    )


def test_validate_refuses_an_env_file_in_the_workspace(project):
    """It holds secrets (notifier credentials, API keys) and the agent can read the workspace,
    whether or not the file exists yet (a file it creates there would feed the next `up`)."""
    (project / "claude-docker.yaml").write_text("version: 1\nenv_file: secrets/dev.env\n")
    result = CliRunner().invoke(main, ["validate"])
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == (
        f"error: {project}/claude-docker.yaml:2: env_file: {project}/secrets/dev.env lies inside the workspace "
        f"{project}, where the agent can read it; move it outside the workspace, e.g. to ~/.claude-docker/.env"
    )


def test_config_shows_the_default_limits(project):
    output = run("config").output
    document = yaml.safe_load(output)
    limits = {key: document["resources"][key] for key in ("memory", "pids_limit", "log_max_size", "log_max_files")}
    assert limits == {"memory": "auto", "pids_limit": 4096, "log_max_size": "10m", "log_max_files": 3}
    assert "# resources.memory: auto = half the Docker host's memory (" in output
    (project / "claude-docker.yaml").write_text("resources: {memory: 2g, pids_limit: null}\n")
    document = yaml.safe_load(run("config").output)
    assert document["resources"]["memory"] == "2g" and document["resources"]["pids_limit"] is None
