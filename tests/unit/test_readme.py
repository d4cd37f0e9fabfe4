"""The README's annotated example is a real, valid configuration, and its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

import click
from click.testing import CliRunner

from claude_docker.cli import main
from claude_docker.config.pipeline import load_config
from tests.support.testbed import REPO_ROOT

README = REPO_ROOT / "README.md"


def _annotated_example() -> str:
    text = README.read_text()
    section = text[text.index("## A complete, annotated example") :]
    return re.search(r"```yaml\n(.*?)```", section, re.S).group(1)


def test_annotated_example_validates(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "datasets").mkdir(parents=True)
    (home / ".bash_aliases").write_text("alias ll='ls -l'\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CLAUDE_DOCKER_HOME", str(home / ".claude-docker"))
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "HOOK_TOKEN"):
        monkeypatch.setenv(name, "AC" + "0" * 32 if name == "TWILIO_ACCOUNT_SID" else "secret-value")

    project = tmp_path / "project"
    (project / ".claude-docker" / "profiles").mkdir(parents=True)
    (project / ".claude-docker" / "profiles" / "team.yaml").write_text(
        "version: 1\nnetwork:\n  allowed_domains: [internal.example.com]\n"
    )
    # The example names a corporate CA under /etc; use a readable file of the same kind here.
    corp_ca = tmp_path / "corp-ca.pem"
    corp_ca.write_text(Path("/etc/ssl/certs/ca-certificates.crt").read_text()[:4000])
    example = _annotated_example().replace("/etc/ssl/certs/corp-ca.pem", str(corp_ca))
    config_file = project / "claude-docker.yaml"
    config_file.write_text(example)

    loaded = load_config(str(config_file), cwd=project)
    cfg = loaded.config
    assert cfg.workspace.path == str(project)
    assert "*.githubusercontent.com" in cfg.network.allowed_domains
    assert "internal.example.com" in cfg.network.allowed_domains  # from the team profile
    assert "api.anthropic.com" in cfg.network.allowed_domains  # from default
    assert cfg.notifier.twilio is not None and cfg.notifier.twilio.to == ("+15551234567",)
    assert [server.name for server in cfg.claude.mcp_servers] == ["docs", "search"]
    # MCP secrets stay references, expanded by Claude Code inside the container.
    assert dict(cfg.claude.mcp_servers[0].env) == {"TOKEN": "${DOCS_TOKEN}"}


def test_every_command_in_the_readme_exists():
    table = README.read_text().split("## Commands", 1)[1].split("Exit codes", 1)[0]
    named = set(re.findall(r"`claude-docker ([a-z]+)", table))
    assert named, "the command table lists no commands"
    commands = set(main.list_commands(click.Context(main)))
    assert named <= commands, named - commands
    assert commands <= named, f"undocumented: {commands - named}"


def test_every_command_has_help_with_usage():
    runner = CliRunner()
    for name in main.list_commands(click.Context(main)):
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert f"Usage: main {name}" in result.output or f"Usage: claude-docker {name}" in result.output


def test_every_lazily_loaded_command_is_where_the_table_says():
    from claude_docker.commands import COMMAND_MODULES, load_command

    for name in COMMAND_MODULES:
        command = load_command(name)
        assert command is not None and command.name == name


def _help_pages(group: click.Group, prefix: list[str]):
    for name in group.list_commands(click.Context(group)):
        command = group.get_command(click.Context(group), name)
        yield prefix + [name], command
        if isinstance(command, click.Group):
            yield from _help_pages(command, prefix + [name])


def test_every_help_page_shows_an_example():
    runner = CliRunner()
    for argv, command in _help_pages(main, []):
        if isinstance(command, click.Group):
            continue  # a group's page lists its commands; each of those has examples
        output = runner.invoke(main, [*argv, "--help"]).output
        usage_free = output.split("\n", 1)[1]  # drop the Usage: line itself
        assert f"claude-docker {' '.join(argv)}" in usage_free, f"`{' '.join(argv)} --help` shows no example"
