"""Configurations the tests share: the documented examples that have golden renderings, a base
document with every section, the string fields a hostile value is put into, and the rendering of
a document as the tests judge it."""

from __future__ import annotations

import atexit
import copy
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from claude_docker.config.model import Config, PersistenceConfig, WorkspaceConfig
from claude_docker.config.pipeline import load_config
from claude_docker.errors import ClaudeDockerError, ConfigError
from claude_docker.render import render_build_context, render_runtime
from claude_docker.session import Session

# Documented examples whose renderings are kept as golden files (tests/unit/config/golden/<name>).
CASES = {
    "default": None,  # no config file at all
    "example": """\
        version: 1
        extends: [python, github]
        image:
          base: node:22-bookworm-slim
          claude_code_version: "2.1.32"
          apt_packages: [ripgrep, jq]
          npm_packages: [typescript, "@org/tool@1.2.3"]
          pip_packages: ["requests==2.32.3"]
        workspace:
          mount_path: /workspace
        network:
          allowed_domains: [pypi.org, "*.example.com"]
          allowed_cidrs: ["10.0.0.0/8", "192.168.1.5/32:8080"]
        persistence:
          auth: shared
          git: {name: "Jane O'Neil", email: jane@example.com}
        notifier:
          on: [stop, notification, failure]
          webhooks: [{url: "https://hooks.example/notify"}]
        claude:
          args: ["--model", "opus"]
          env: {LOG_LEVEL: debug}
          mcp_servers:
            docs: {command: npx, args: ["-y", "some-mcp-server"], env: {TOKEN: "${DOCS_TOKEN}"}}
            web: {type: http, url: "https://mcp.example/mcp", headers: {Authorization: "Bearer ${WEB_TOKEN}"}}
        resources: {memory: 8g, cpus: 2}
        """,
}


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


def is_script(name: str, content: bytes) -> bool:
    return name.endswith(".sh") or content.startswith((b"#!/bin/bash", b"#!/bin/sh", b"#!/usr/bin/env bash"))


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


def persisted_config(workspace: Path, **persist: Any) -> Config:
    """A config for `workspace` with these persistence settings (git config off unless given)."""
    persist.setdefault("git_config", False)
    return Config(
        source_files=(str(workspace / "claude-docker.yaml"),),
        project_dir=str(workspace),
        workspace=WorkspaceConfig(path=str(workspace)),
        persistence=PersistenceConfig(**persist),
    )
