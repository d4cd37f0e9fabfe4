"""load_config end to end on real files: finding, profile chain, merge rules, paths, interpolation."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from claude_docker.config.interpolate import InterpolationError, read_env_file, referenced_variables, substitute
from claude_docker.config.merge import REPLACE, merge_value
from claude_docker.config.pipeline import load_config
from claude_docker.config.profiles import builtin_names
from claude_docker.errors import ConfigError

CLAUDE_DOMAINS = ("api.anthropic.com", "platform.claude.com", "claude.ai", "registry.npmjs.org")


@pytest.fixture
def home(tmp_path, monkeypatch, cd_home):
    directory = tmp_path / "home"
    directory.mkdir()
    monkeypatch.setenv("HOME", str(directory))
    return directory


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_no_file_anywhere_gives_default_profile_and_cwd_workspace(tmp_path, home):
    cwd = tmp_path / "empty"
    cwd.mkdir()
    loaded = load_config(cwd=cwd, environ={})
    assert loaded.chain == ("default",)
    assert loaded.config.workspace.path == str(cwd)
    assert loaded.config.project_dir == str(cwd)
    assert loaded.config.network.allowed_domains == CLAUDE_DOMAINS
    assert str(home / ".ssh") in loaded.config.filesystem.blocked_paths
    assert "/var/run/docker.sock" in loaded.config.filesystem.blocked_paths


def test_file_found_in_nearest_parent(tmp_path, home):
    project = tmp_path / "proj"
    write(project / "claude-docker.yaml", "network:\n  allowed_domains: [pypi.org]\n")
    nested = project / "src" / "pkg"
    nested.mkdir(parents=True)
    loaded = load_config(cwd=nested, environ={})
    assert loaded.chain == ("default", str(project / "claude-docker.yaml"))
    assert loaded.config.workspace.path == str(project)  # the file's directory, not the cwd
    assert loaded.config.network.allowed_domains == CLAUDE_DOMAINS + ("pypi.org",)


def test_explicit_file_missing_is_an_error(tmp_path, home):
    with pytest.raises(ConfigError) as caught:
        load_config("nope.yaml", cwd=tmp_path, environ={})
    assert caught.value.problems[0].format() == f"{tmp_path}/nope.yaml: file not found"


def test_chain_order_user_file_beneath_project_and_each_file_once(tmp_path, home, cd_home):
    write(cd_home / "config.yaml", "extends: [github]\nnotifier:\n  min_interval_seconds: 5\n")
    project = tmp_path / "proj"
    write(project / "team.yaml", "extends: [python, default]\n")
    write(project / "claude-docker.yaml", "extends: [./team.yaml, github]\nnotifier:\n  min_interval_seconds: 9\n")
    loaded = load_config(cwd=project, environ={})
    assert loaded.chain == (
        "default",
        "github",
        str(cd_home / "config.yaml"),
        "python",
        str(project / "team.yaml"),
        str(project / "claude-docker.yaml"),
    )
    assert loaded.config.notifier.min_interval_seconds == 9  # scalar: the last file wins
    assert loaded.config.source_files[0].endswith("profiles/default.yaml")
    assert loaded.config.source_files[-1] == str(project / "claude-docker.yaml")


def test_user_file_alone_applies_in_any_directory(tmp_path, home, cd_home):
    write(cd_home / "config.yaml", "resources:\n  memory: 4g\n")
    loaded = load_config(cwd=tmp_path, environ={})
    assert loaded.config.resources.memory == "4g"
    assert loaded.config.workspace.path == str(tmp_path)


def test_merge_rules_lists_union_maps_deep_scalars_child(tmp_path, home):
    project = tmp_path / "proj"
    write(
        project / "base.yaml",
        """
        image:
          apt_packages: [git, jq]
        claude:
          args: ["--model", "sonnet"]
          env: {A: "1", B: "2"}
          mcp_servers:
            docs: {command: npx, args: ["-y", "docs"], env: {X: "1"}}
        notifier:
          on: [stop, failure, notification]
        resources: {memory: 2g, cpus: 1}
        """,
    )
    write(
        project / "claude-docker.yaml",
        """
        extends: [./base.yaml]
        image:
          apt_packages: [jq, ripgrep]
        claude:
          args: ["--model", "opus"]
          env: {B: "3", C: "4"}
          mcp_servers:
            docs: {env: {Y: "2"}}
        notifier:
          on: [stop]
        resources: {memory: 8g}
        """,
    )
    cfg = load_config(cwd=project, environ={}).config
    assert cfg.image.apt_packages == ("git", "jq", "ripgrep")  # union in order, deduplicated
    assert dict(cfg.claude.env) == {"A": "1", "B": "3", "C": "4"}  # deep merge, child wins
    (docs,) = cfg.claude.mcp_servers
    assert (docs.command, docs.args, dict(docs.env)) == ("npx", ("-y", "docs"), {"X": "1", "Y": "2"})
    assert cfg.claude.args == ("--model", "opus")  # an argv is replaced, not unioned
    assert cfg.notifier.on == ("stop",)  # a choice is replaced, so a child can narrow it
    assert (cfg.resources.memory, cfg.resources.cpus) == ("8g", 1)


def test_child_cannot_remove_inherited_blocked_path_or_domain(tmp_path, home):
    project = tmp_path / "proj"
    write(project / "claude-docker.yaml", "filesystem:\n  blocked_paths: []\nnetwork:\n  allowed_domains: []\n")
    cfg = load_config(cwd=project, environ={}).config
    assert str(home / ".ssh") in cfg.filesystem.blocked_paths
    assert cfg.network.allowed_domains == CLAUDE_DOMAINS


def test_merge_table_is_explicit():
    assert ("claude", "args") in REPLACE and ("notifier", "on") in REPLACE
    assert ("filesystem", "blocked_paths") not in REPLACE


def test_merge_value_records_origin_of_each_new_item():
    from claude_docker.config.loader import Document

    parent, child = Document("p", {}), Document("c", {})
    origins: dict = {}
    merged = merge_value({"a": [1, 2]}, {"a": [2, 3]}, (), parent, origins)
    merged = merge_value(merged, {"a": [4]}, (), child, origins)
    assert merged == {"a": [1, 2, 3, 4]}
    assert origins[("a", 3)] == (child, ("a", 0))
    assert origins[("a", 2)] == (parent, ("a", 1))


def test_relative_paths_resolve_against_declaring_file_and_tilde_against_home(tmp_path, home):
    project = tmp_path / "proj"
    write(
        project / "profiles" / "team.yaml",
        """
        image:
          extra_ca_certificates: [certs/corp.pem]
        filesystem:
          mounts: [{source: ../data, target: /data}]
        """,
    )
    write(
        project / "claude-docker.yaml",
        """
        extends: [./profiles/team.yaml]
        workspace: {path: ./src}
        persistence:
          dotfiles: [~/.vimrc]
        filesystem:
          blocked_paths: [~/secrets]
        """,
    )
    (project / "data").mkdir()
    (project / "profiles" / "certs").mkdir()
    (project / "profiles" / "certs" / "corp.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (home / ".vimrc").write_text("set nu\n")
    cfg = load_config(cwd=tmp_path, environ={}, config_file=str(project / "claude-docker.yaml")).config
    assert cfg.image.extra_ca_certificates == (str(project / "profiles" / "certs" / "corp.pem"),)
    assert cfg.filesystem.mounts[0].source == str(project / "data")
    assert cfg.filesystem.mounts[0].read_only is True
    assert cfg.workspace.path == str(project / "src")
    assert cfg.persistence.dotfiles == (str(home / ".vimrc"),)
    assert str(home / "secrets") in cfg.filesystem.blocked_paths


def test_model_field_mapping(tmp_path, home):
    project = tmp_path / "proj"
    write(
        project / "claude-docker.yaml",
        """
        persistence:
          auth: false
          git: {name: "Jane O'Neil", email: jane@example.com}
        notifier:
          on: [stop, notification]
          twilio:
            account_sid: AC00000000000000000000000000000000
            api_key_sid: SK00000000000000000000000000000000
            api_key_secret: s3cret
            from: "+15005550006"
            to: ["+15551234567"]
          apprise: ["tgram://bottoken/chat"]
          webhooks: [{url: "https://hooks.example/x", headers: {Authorization: "Bearer t"}}]
          commands: [[notify-send, "claude is done"]]
        claude:
          uid: 1234
          mcp_servers:
            web: {type: sse, url: "https://mcp.example/sse", headers: {X-Key: "${WEB_KEY}"}}
        resources: {gpus: all, shm_size: 1g}
        network:
          allowed_cidrs: ["10.0.0.0/8", "192.168.1.5:8080"]
          proxy: {https: "http://proxy.corp:3128", no_proxy: [localhost, .corp]}
        """,
    )
    cfg = load_config(cwd=project, environ={}).config
    assert cfg.persistence.auth == "none"
    assert (cfg.persistence.git_identity.name, cfg.persistence.git_identity.email) == ("Jane O'Neil", "jane@example.com")
    twilio = cfg.notifier.twilio
    assert (twilio.from_number, twilio.api_key_sid, twilio.api_base) == (
        "+15005550006", "SK00000000000000000000000000000000", "https://api.twilio.com")
    assert cfg.notifier.on == ("stop", "notification")
    assert cfg.notifier.apprise == ("tgram://bottoken/chat",)
    assert dict(cfg.notifier.webhooks[0].headers) == {"Authorization": "Bearer t"}
    assert cfg.notifier.commands[0].argv == ("notify-send", "claude is done")
    assert cfg.claude.uid == 1234 and cfg.claude.gid is None
    (web,) = cfg.claude.mcp_servers
    assert (web.name, web.type, web.url, dict(web.headers)) == ("web", "sse", "https://mcp.example/sse", {"X-Key": "${WEB_KEY}"})
    assert (cfg.resources.gpus, cfg.resources.shm_size) == ("all", "1g")
    assert cfg.network.allowed_cidrs == ("10.0.0.0/8", "192.168.1.5:8080")
    assert cfg.network.proxy.https == "http://proxy.corp:3128" and cfg.network.proxy.no_proxy == ("localhost", ".corp")


# --- interpolation ---------------------------------------------------------------------------


def test_substitute_forms():
    env = {"A": "x", "EMPTY": ""}.get
    assert substitute("${A}-${B:-dflt}-$${A}-${EMPTY:-e}", env) == "x-dflt-${A}-e"
    with pytest.raises(InterpolationError, match="variable B is not set"):
        substitute("${B}", env)
    with pytest.raises(InterpolationError, match="write \\$\\$"):
        substitute("$(whoami)", env)
    assert referenced_variables("Bearer ${TOKEN} ${X:-y}") == ["TOKEN", "X"]


def test_env_file_dotenv_syntax(tmp_path):
    env_file = write(
        tmp_path / ".env",
        """
        # a comment
        export A=1
        B = "two words"  # trailing
        C='single # not a comment'
        D=plain # comment

        """,
    )
    assert read_env_file(env_file) == {"A": "1", "B": "two words", "C": "single # not a comment", "D": "plain"}
    assert read_env_file(tmp_path / "missing.env") == {}


def test_env_file_bad_line_is_reported_with_its_line(tmp_path):
    env_file = write(tmp_path / ".env", "A=1\nnot a pair\n")
    with pytest.raises(ConfigError) as caught:
        read_env_file(env_file)
    assert caught.value.problems[0].format() == f"{env_file}:2: expected NAME=value"


def test_interpolation_from_default_env_file_and_process_env_wins(tmp_path, home, cd_home):
    write(cd_home / ".env", "TOKEN=from-file\nMEM=3g\n")
    project = tmp_path / "proj"
    write(
        project / "claude-docker.yaml",
        """
        claude:
          env: {TOKEN: "${TOKEN}", PRICE: "$$5", LEVEL: "${LEVEL:-info}"}
          mcp_servers:
            docs: {command: npx, env: {DOCS_TOKEN: "${DOCS_TOKEN}"}}
        resources: {memory: "${MEM}"}
        """,
    )
    cfg = load_config(cwd=project, environ={"TOKEN": "from-env"}).config
    assert dict(cfg.claude.env) == {"TOKEN": "from-env", "PRICE": "$5", "LEVEL": "info"}
    assert cfg.resources.memory == "3g"
    assert dict(cfg.claude.mcp_servers[0].env) == {"DOCS_TOKEN": "${DOCS_TOKEN}"}  # left for Claude Code
    assert cfg.env_file == str(cd_home / ".env")


def test_env_file_key_relative_to_its_file(tmp_path, home):
    project = tmp_path / "proj"
    (project / "ws").mkdir(parents=True)
    write(project / "secrets" / "dev.env", "HOOK=https://hooks.example/abc\n")
    write(
        project / "claude-docker.yaml",
        "workspace:\n  path: ws\nenv_file: secrets/dev.env\nnotifier:\n  webhooks: [{url: \"${HOOK}\"}]\n",
    )
    cfg = load_config(cwd=project, environ={}).config
    assert cfg.notifier.webhooks[0].url == "https://hooks.example/abc"
    assert cfg.env_file == str(project / "secrets" / "dev.env")


def test_builtin_profiles_all_load(tmp_path, home):
    assert {"default", "strict", "python", "node", "github"} <= set(builtin_names())
    for name in builtin_names():
        write(tmp_path / name / "claude-docker.yaml", f"extends: [{name}]\n")
        loaded = load_config(cwd=tmp_path / name, environ={})
        assert loaded.chain[0] == "default"
        assert set(CLAUDE_DOMAINS) <= set(loaded.config.network.allowed_domains)


def test_strict_profile_turns_host_state_off(tmp_path, home):
    write(tmp_path / "claude-docker.yaml", "extends: [strict]\n")
    cfg = load_config(cwd=tmp_path, environ={}).config
    assert cfg.persistence.git_config is False and cfg.persistence.npm_cache is False
    assert str(home / ".netrc") in cfg.filesystem.blocked_paths


def test_loaded_config_is_deterministic(tmp_path, home):
    write(tmp_path / "claude-docker.yaml", "extends: [python, github]\n")
    first = load_config(cwd=tmp_path, environ={})
    second = load_config(cwd=tmp_path, environ={})
    assert first.config == second.config and first.merged == second.merged


def test_symlinked_project_file_belongs_to_the_project(tmp_path, home):
    shared = tmp_path / "dotfiles"
    write(shared / "claude-docker.yaml", "extends: [./team.yaml]\n")
    write(tmp_path / "proj" / "team.yaml", "network:\n  allowed_domains: [team.example]\n")
    (tmp_path / "proj" / "claude-docker.yaml").symlink_to(shared / "claude-docker.yaml")
    loaded = load_config(cwd=tmp_path / "proj", environ={})
    assert loaded.config.workspace.path == str(tmp_path / "proj")
    assert "team.example" in loaded.config.network.allowed_domains


def test_cycle_through_a_symlink_is_found(tmp_path, home):
    write(tmp_path / "a.yaml", "extends: [./link.yaml]\n")
    (tmp_path / "link.yaml").symlink_to(tmp_path / "claude-docker.yaml")
    write(tmp_path / "claude-docker.yaml", "extends: [./a.yaml]\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(cwd=tmp_path, environ={})
