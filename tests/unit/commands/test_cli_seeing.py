"""Seeing what will run: validate's warnings, its messages for missing variables and YAML
syntax, and the firewall's "none of … resolved" warning once per project."""

from __future__ import annotations

from click.testing import CliRunner

from claude_docker.cli import main
from claude_docker.config.model import Config, WorkspaceConfig
from claude_docker.features import RunContext, firewall
from claude_docker.features.firewall import plan as firewall_plan
from claude_docker.runspec import RunSpec
from claude_docker.session import Session


def test_the_unresolved_warning_is_shown_once_per_project(tmp_path, cd_home):
    """On a proxy-only network no allowlisted name resolves; saying so at every `up` is noise."""
    cfg = Config(source_files=(), project_dir=str(tmp_path), workspace=WorkspaceConfig(path=str(tmp_path)))
    first = Session(cfg.project_name, "aaaa0001")
    spec = RunSpec()
    firewall.contribute(RunContext.build(cfg, first), spec)
    assert firewall.ENV_UNRESOLVED_SEEN not in spec.env
    (first.log_dir / firewall.UNRESOLVED_MARKER).write_text("")  # what the script leaves when it warned
    later = RunSpec()
    firewall.contribute(RunContext.build(cfg, Session(cfg.project_name, "aaaa0002")), later)
    assert later.env[firewall.ENV_UNRESOLVED_SEEN] == "1"
    script = firewall.runtime_artifacts(cfg, first)[firewall.SCRIPT].content.decode()
    assert 'if [ "$UNRESOLVED_SEEN" != 1 ]; then' in script
    assert f': >"$LOG_DIR/{firewall.UNRESOLVED_MARKER}"' in script


def validate(project, text: str):
    (project / "claude-docker.yaml").write_text(text)
    return CliRunner().invoke(main, ["validate"], catch_exceptions=False)


def test_validate_warns_when_the_firewall_is_off(tmp_path, cd_home, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = validate(tmp_path, "network:\n  firewall: false\n")
    assert result.exit_code == 0
    assert result.output.splitlines()[2] == f"warning: {firewall.DISABLED_WARNING}"


def test_validate_warns_about_a_proxy_the_allowlist_does_not_admit(tmp_path, cd_home, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for host in ("proxy.corp", "10.1.2.3"):
        url = f"http://{host}:3128"
        result = validate(tmp_path, f"network:\n  proxy: {{http: '{url}', https: '{url}'}}\n")
        assert result.exit_code == 0, result.output
        warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
        assert warnings == [
            f"warning: network.proxy.{key}: the firewall does not admit the proxy host {host}; add it to "
            "network.allowed_domains (a name) or network.allowed_cidrs (an address), or the container cannot reach it"
            for key in ("http", "https")
        ]
    for allowed in ("  allowed_domains: ['*.corp']\n", "  allowed_cidrs: ['10.1.0.0/16:3128']\n"):
        host = "proxy.corp" if "domains" in allowed else "10.1.2.3"
        url = f"http://{host}:3128"
        admitted = validate(tmp_path, f"network:\n  proxy: {{http: '{url}', https: '{url}'}}\n{allowed}")
        assert admitted.exit_code == 0 and "warning:" not in admitted.output, admitted.output


def test_proxy_port_must_match_a_cidr_with_a_port():
    assert firewall_plan.proxy_admitted("http://10.1.2.3:3128", [], ["10.1.2.3"])
    assert not firewall_plan.proxy_admitted("http://10.1.2.3:3128", [], ["10.1.2.3:443"])
    assert firewall_plan.proxy_admitted("http://proxy.corp:8080", ["proxy.corp"], [])
    assert not firewall_plan.proxy_admitted("http://corp:8080", ["*.corp"], [])  # a wildcard is not the apex


def test_a_missing_variable_says_where_to_set_it(tmp_path, cd_home, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MISSING_TOKEN", raising=False)
    (tmp_path / "claude-docker.yaml").write_text("claude:\n  env:\n    TOKEN: ${MISSING_TOKEN}\n")
    result = CliRunner().invoke(main, ["validate"])
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == (
        f"error: {tmp_path}/claude-docker.yaml:3: claude.env.TOKEN: variable MISSING_TOKEN is not set; set "
        f"MISSING_TOKEN in the environment or in the env file ({cd_home}/.env)"
    )
