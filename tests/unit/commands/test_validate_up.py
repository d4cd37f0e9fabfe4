"""`validate` refuses what `up` would refuse, with the same file, key path and line: a problem
found only when the session starts is one the user could have been told about first."""

from __future__ import annotations

import json
import textwrap

import pytest
from click.testing import CliRunner

from claude_docker.cli import main

TWILIO = """\
notifier:
  twilio:
    to: ["+15551234567"]
    from: "+15005550006"
    account_sid: AC0123456789abcdef0123456789abcdef
    auth_token: ${TWILIO_AUTH_TOKEN}
"""


@pytest.fixture
def project(tmp_path, monkeypatch, cd_home):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("NOPE_TOKEN", "DOCS_TOKEN", "TWILIO_AUTH_TOKEN", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    directory = tmp_path / "proj"
    directory.mkdir()
    monkeypatch.chdir(directory)
    return directory


def write(project, text: str, extra: str = "") -> None:
    (project / "claude-docker.yaml").write_text("version: 1\n" + textwrap.dedent(text) + extra)


def both(project) -> tuple[str, str]:
    """What `validate` and `up --dry-run` say, each refusing (exit 1)."""
    runner = CliRunner()
    validate = runner.invoke(main, ["validate"])
    dry_run = runner.invoke(main, ["up", "--trust", "--dry-run", "--", "-p", "task"])
    assert validate.exit_code == 1, validate.output
    assert dry_run.exit_code == 1, dry_run.output
    return validate.output, dry_run.output


SECRET = "tw-secret-token-0123"

# (config, the notifier section or "", the line both must print after "<file>:")
REFUSED = {
    "an unset MCP variable": (
        """\
        claude:
          mcp_servers:
            docs:
              command: npx
              env:
                TOKEN: ${NOPE_TOKEN}
        """, "",
        "7: claude.mcp_servers.docs.env.TOKEN: variable NOPE_TOKEN is not set",
    ),
    "an unset variable in an MCP header": (
        """\
        claude:
          mcp_servers:
            search:
              type: http
              url: https://search.example.com/mcp
              headers:
                Authorization: Bearer ${NOPE_TOKEN}
        """, "",
        "8: claude.mcp_servers.search.headers.Authorization: variable NOPE_TOKEN is not set",
    ),
    "an MCP variable holding a notifier secret": (
        """\
        claude:
          mcp_servers:
            twilio:
              command: npx
              env:
                T: ${TWILIO_AUTH_TOKEN}
        """, TWILIO,
        "7: claude.mcp_servers.twilio.env.T: TWILIO_AUTH_TOKEN holds a notifier credential, which never enters the container",
    ),
    "claude.env holding a notifier secret": (
        """\
        claude:
          env:
            HELPER_TOKEN: ${TWILIO_AUTH_TOKEN}
        """, TWILIO,
        "4: claude.env.HELPER_TOKEN: holds a notifier credential, which never enters the container",
    ),
    "a proxy holding a notifier secret": (
        """\
        network:
          proxy:
            https: http://user:${TWILIO_AUTH_TOKEN}@proxy.example.com:3128
        """, TWILIO,
        "4: network.proxy.https: holds a notifier credential",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_both_refuse_with_file_key_and_line(project, monkeypatch, case):
    text, notifier, where_and_what = REFUSED[case]
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", SECRET)
    write(project, text, notifier)
    validate, dry_run = both(project)
    expected = f"{project}/claude-docker.yaml:{where_and_what}"
    assert expected in validate and expected in dry_run, (validate, dry_run)
    assert SECRET not in validate + dry_run


def test_a_set_mcp_variable_passes_both(project, monkeypatch):
    monkeypatch.setenv("DOCS_TOKEN", "docs")
    write(project, """\
        claude:
          mcp_servers:
            docs:
              command: npx
              env:
                TOKEN: ${DOCS_TOKEN}
                OPTIONAL: ${NOT_SET_EITHER:-fallback}
        """)
    runner = CliRunner()
    assert runner.invoke(main, ["validate"]).exit_code == 0
    result = runner.invoke(main, ["up", "--trust", "--dry-run", "--", "-p", "task"])
    assert result.exit_code == 0, result.output
    assert "DOCS_TOKEN" in result.output


def test_a_credential_the_proxy_cannot_hold_is_refused_by_both(project, monkeypatch):
    """The key's characters are checked before `up` starts anything: HAProxy would read `%` or
    a quote in it as part of its own configuration."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant bad%key")
    write(project, "")
    validate, dry_run = both(project)
    expected = "ANTHROPIC_API_KEY (from the environment) holds characters a key or token never has"
    assert expected in validate and expected in dry_run, (validate, dry_run)
    assert "sk-ant bad%key" not in validate + dry_run


def test_validate_lists_environment_problems_as_json_too(project, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant bad%key")
    write(project, "network:\n  git_credential: {host: git.example.com, token_variable: NOPE_TOKEN}\n")
    result = CliRunner().invoke(main, ["validate", "--format", "json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["valid"] is False
    found = {(problem["key_path"], problem["line"]) for problem in report["problems"]}
    assert ("network.git_credential.token_variable", 3) in found and ("", None) in found, report


def test_a_credentials_file_that_is_not_there_is_refused_by_both(project, monkeypatch, tmp_path):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))
    write(project, "")
    validate, dry_run = both(project)
    expected = f"GOOGLE_APPLICATION_CREDENTIALS (the environment) names {tmp_path}/no-such-key.json, which is not a file on this machine"
    assert expected in validate and expected in dry_run, (validate, dry_run)
