"""Hostile strings in every string field: rejected with a clear error, or rendered harmlessly.

For each field a hostile value (quotes, `$()`, backticks, newlines, `;`, `#`, unicode, a leading
`-` ...) either fails validation with a ConfigError that names the field, or renders so that
every shell script passes `bash -n` and `shellcheck`, and the value appears in a script only as
one shell-quoted word.
"""

from __future__ import annotations

import atexit
import copy
import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claude_docker.config.loader import format_key_path
from claude_docker.config.pipeline import load_config
from claude_docker.errors import ClaudeDockerError, ConfigError
from claude_docker.render import render_build_context, render_runtime
from claude_docker.session import Session
from tests.support.examples import examples

SID = "AC" + "0" * 32
BASE: dict = {
    "notifier": {
        "twilio": {"account_sid": SID, "auth_token": "tok", "from": "+15005550006", "to": ["+15551234567"]},
        "webhooks": [{"url": "https://hooks.example/x", "headers": {"X-Key": "v"}}],
        "commands": [["notify-send", "done"]],
    },
    "claude": {
        "mcp_servers": {
            "docs": {"command": "npx", "args": ["-y"], "env": {"TOKEN": "v"}},
            "web": {"type": "http", "url": "https://mcp.example/x", "headers": {"Authorization": "v"}},
        },
    },
}

# Every string-valued field; "*KEY" marks a mapping key rather than a value.
FIELDS = [
    ("image", "base"), ("image", "claude_code_version"), ("image", "apt_packages", 0),
    ("image", "npm_packages", 0), ("image", "pip_packages", 0), ("image", "extra_ca_certificates", 0),
    ("workspace", "path"), ("workspace", "mount_path"),
    ("filesystem", "blocked_paths", 0), ("filesystem", "mounts", 0, "source"), ("filesystem", "mounts", 0, "target"),
    ("network", "allowed_domains", 0), ("network", "allowed_cidrs", 0),
    ("network", "proxy", "http"), ("network", "proxy", "https"), ("network", "proxy", "no_proxy", 0),
    ("persistence", "auth"), ("persistence", "git", "name"), ("persistence", "git", "email"),
    ("persistence", "dotfiles", 0),
    ("notifier", "on", 0), ("notifier", "template"),
    ("notifier", "twilio", "account_sid"), ("notifier", "twilio", "auth_token"),
    ("notifier", "twilio", "api_key_sid"), ("notifier", "twilio", "api_key_secret"),
    ("notifier", "twilio", "from"), ("notifier", "twilio", "messaging_service_sid"),
    ("notifier", "twilio", "to", 0), ("notifier", "twilio", "api_base"),
    ("notifier", "apprise", 0), ("notifier", "webhooks", 0, "url"), ("notifier", "webhooks", 0, "headers", "X-Key"),
    ("notifier", "webhooks", 0, "headers", "*KEY"),
    ("notifier", "commands", 0, 0), ("notifier", "commands", 0, 1),
    ("claude", "args", 0), ("claude", "env", "SOME_VAR"), ("claude", "env", "*KEY"),
    ("claude", "mcp_servers", "*KEY"),
    ("claude", "mcp_servers", "docs", "command"), ("claude", "mcp_servers", "docs", "args", 0),
    ("claude", "mcp_servers", "docs", "env", "TOKEN"), ("claude", "mcp_servers", "web", "url"),
    ("claude", "mcp_servers", "web", "headers", "Authorization"),
    ("resources", "memory"), ("resources", "shm_size"), ("resources", "gpus"),
    ("env_file",), ("extends", 0), ("description",),
]

FRAGMENTS = [
    "'", '"', "$(id)", "`id`", "\n", ";", "#", "&&", "|", " ", "-", "--help", "\\", "é", "☃", "\t",
    "*", "?", "[a]", "{a,b}", "~", "!", ">", "<", "$HOME", "${HOME}", "\r", "\u2028", "ok", "example.com",
    "/tmp/x", "1", "=",
]
hostile = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=4), min_size=1, max_size=5).map("".join).filter(
    lambda s: "\x00" not in s
)

_CHECKED_SCRIPTS: set[str] = set()


def with_value(path: tuple, value: str) -> dict:
    """BASE with `value` at `path`; lists and maps on the way are created."""
    data = copy.deepcopy(BASE)
    node: object = data
    for index, key in enumerate(path[:-1]):
        following = path[index + 1]
        empty: object = [] if isinstance(following, int) else {}
        if isinstance(node, list):
            while len(node) <= key:
                node.append(copy.deepcopy(empty))
            node = node[key]
        else:
            node = node.setdefault(key, empty)
    last = path[-1]
    if last == "*KEY":
        node[value] = "v" if path[-2] != "mcp_servers" else {"command": "npx"}
    elif isinstance(node, list):
        while len(node) <= last:
            node.append("placeholder")
        node[last] = value
    else:
        node[last] = value
    return data


def escape(value: str, path: tuple) -> str:
    """`$` → `$$` so the literal string reaches validation (MCP env/headers are never interpolated)."""
    passthrough = len(path) == 5 and path[:2] == ("claude", "mcp_servers") and path[3] in ("env", "headers")
    return value if passthrough or path[-1] == "*KEY" else value.replace("$", "$$")


def check_script(name: str, content: bytes, value: str, baseline: str) -> None:
    text = content.decode()
    inserted = value and text.count(value) > baseline.count(value)
    if inserted and shlex.quote(value) != value:
        assert shlex.quote(value) in text, f"{name}: {value!r} appears without shell quoting"
    digest = hashlib.sha256(content).hexdigest()
    if digest in _CHECKED_SCRIPTS:
        return
    with tempfile.NamedTemporaryFile("wb", suffix=".sh", delete=False) as handle:
        handle.write(content)
    try:
        syntax = subprocess.run(["bash", "-n", handle.name], capture_output=True, text=True)
        assert syntax.returncode == 0, f"{name}: bash -n failed for {value!r}: {syntax.stderr}"
        lint = subprocess.run(["shellcheck", "-S", "warning", handle.name], capture_output=True, text=True)
        assert lint.returncode == 0, f"{name}: shellcheck failed for {value!r}:\n{lint.stdout}"
    finally:
        os.unlink(handle.name)
    _CHECKED_SCRIPTS.add(digest)


def is_script(name: str, content: bytes) -> bool:
    return name.endswith(".sh") or content.startswith((b"#!/bin/bash", b"#!/bin/sh", b"#!/usr/bin/env bash"))


_BASELINE: dict[str, str] = {}


def baseline_scripts() -> dict[str, str]:
    """The scripts rendered from BASE alone: text a hostile value did not put there."""
    if not _BASELINE:
        scripts = render_data(copy.deepcopy(BASE))
        assert scripts, "the base configuration must render"
        _BASELINE.update(scripts)
    return _BASELINE


_SCRATCH: list[Path] = []


def scratch() -> Path:
    """One directory for every case of this process (a project and a home), made once and removed
    at exit: only the config file changes between cases, and a thousand temporary directories
    cost seconds on a slow disk."""
    if not _SCRATCH:
        root = Path(tempfile.mkdtemp(prefix="cd-hostile-"))
        atexit.register(shutil.rmtree, root, True)
        (root / "home").mkdir()
        (root / "proj").mkdir()
        _SCRATCH.append(root)
    return _SCRATCH[0]


def render_data(data: dict) -> dict[str, str] | None:
    """Rendered shell scripts for `data`, or None when it is (clearly) rejected."""
    root = scratch()
    home = root / "home"
    project = root / "proj"
    # libyaml's safe dumper when present: the same document, a tenth of the time
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    (project / "claude-docker.yaml").write_text(yaml.dump(data, Dumper=dumper, allow_unicode=True))
    old = {key: os.environ.get(key) for key in ("HOME", "CLAUDE_DOCKER_HOME")}
    os.environ.update(HOME=str(home), CLAUDE_DOCKER_HOME=str(home / ".claude-docker"))
    try:
        try:
            cfg = load_config(cwd=project, environ={}).config
        except ConfigError as error:
            assert error.problems, "a ConfigError must list its problems"
            for problem in error.problems:
                assert problem.file and problem.message
            return None
        try:
            artifacts = {**render_build_context(cfg), **render_runtime(cfg, Session(cfg.project_name, "t"))}
        except ConfigError:
            raise
        except ClaudeDockerError as error:  # e.g. a CA file that does not exist
            assert error.message
            return None
    finally:
        for key, previous in old.items():
            if previous is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = previous
    return {
        name: artifact.content.decode()
        for name, artifact in artifacts.items()
        if not name.startswith("bin/") and (is_script(name, artifact.content) or name == "Dockerfile")
    }


def run_case(path: tuple, value: str) -> None:
    scripts = render_data(with_value(path, escape(value, path)))
    if scripts is None:
        return
    baseline = baseline_scripts()
    for name, text in scripts.items():
        if name == "Dockerfile":
            check_dockerfile(text, value, baseline.get(name, ""))
        else:
            check_script(name, text.encode(), value, baseline.get(name, ""))


def check_dockerfile(text: str, value: str, baseline: str) -> None:
    """A value in the Dockerfile stays on its line and is one quoted word in RUN commands."""
    if not value or text.count(value) <= baseline.count(value):
        return
    assert "\n" not in value and "\r" not in value, f"Dockerfile: {value!r} would start a new instruction"
    def from_lines(dockerfile: str) -> list[str]:  # every stage's FROM, without its stage name
        return [line.split(" AS ")[0] for line in dockerfile.splitlines() if line.startswith("FROM ")]

    if from_lines(text) != from_lines(baseline):  # the value is the base image
        assert set(from_lines(text)) == {f"FROM {value}"} and shlex.quote(value) == value, f"Dockerfile: FROM {value!r}"
        return
    if shlex.quote(value) != value:
        assert shlex.quote(value) in text, f"Dockerfile: {value!r} appears without shell quoting"


pytestmark = pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")


@pytest.mark.parametrize("path", FIELDS, ids=[format_key_path(tuple(str(p) for p in f)) for f in FIELDS])
@settings(max_examples=examples(15), deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=hostile)
def test_hostile_value_is_rejected_or_harmless(path, value):
    run_case(path, value)


@pytest.mark.parametrize("path", FIELDS, ids=[format_key_path(tuple(str(p) for p in f)) for f in FIELDS])
def test_obvious_injection_is_handled(path):
    for value in ("$(touch /tmp/pwned)", "a'; rm -rf / #", "`id`", "x\ny", "-rf"):
        run_case(path, value)


def test_checker_catches_an_unquoted_value():
    with pytest.raises(AssertionError, match="without shell quoting"):
        check_script("x.sh", b"#!/bin/bash\necho a'b\n", "a'b", "")
    with pytest.raises(AssertionError, match="bash -n failed"):
        check_script("y.sh", b"#!/bin/bash\nif then\n", "zzz", "")
    with pytest.raises(AssertionError, match="without shell quoting"):
        check_dockerfile("FROM x\nRUN apt-get install a;b\n", "a;b", "FROM x\n")
    with pytest.raises(AssertionError, match="new instruction"):
        check_dockerfile("FROM x\nRUN echo 'a\nRUN evil'\n", "a\nRUN evil", "")
    quoted = shlex.quote("a'b")
    check_script("z.sh", f"#!/bin/bash\necho {quoted}\n".encode(), "a'b", "")


def test_safe_values_are_accepted():
    assert render_data(with_value(("persistence", "git", "name"), "Jane O'Neil")) is not None
    assert render_data(with_value(("network", "allowed_domains", 0), "*.example.com")) is not None
    assert render_data(with_value(("image", "apt_packages", 0), "ripgrep")) is not None
