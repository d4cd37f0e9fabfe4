"""The built wheel, installed non-editable in a fresh virtual environment, works from anywhere.

This catches data files (schema, profiles, container templates) missing from the wheel and
code that only works from a checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.support.testbed import REPO_ROOT

EXAMPLE = """\
version: 1
extends: [python, github]
image:
  apt_packages: [ripgrep]
network:
  allowed_domains: ["*.example.com"]
claude:
  mcp_servers:
    docs: {command: npx, args: ["-y", "docs-mcp"], env: {TOKEN: "${DOCS_TOKEN}"}}
"""


def _build_wheel(out: Path) -> Path:
    # The build backend pyproject.toml names, called directly: `python -m build --no-isolation`
    # would start a second interpreter to run the same backend.
    command = [sys.executable, "-m", "hatchling", "build", "--target", "wheel", "--directory", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = out.glob("claude_docker-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wheel")
    wheel = _build_wheel(root / "dist")
    env_dir = root / "venv"
    # System site-packages provide the dependencies without a download; the package itself
    # comes from the wheel, installed into the venv, which sys.path searches first.
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    # `--python` installs into the venv alone (pip >= 22.3); `--prefix` would first uninstall the
    # copy of the running environment, the developer's editable install.
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "--no-compile", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return env_dir


def _without_checkout() -> dict[str, str]:
    """The environment minus PYTHONPATH (the test suite points it at the checkout)."""
    return {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}


def _run(env_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    environ = _without_checkout()
    environ.update(HOME=str(cwd / "home"), CLAUDE_DOCKER_HOME=str(cwd / "home" / ".claude-docker"), DOCS_TOKEN="docs-token")
    return subprocess.run([str(env_dir / "bin" / "claude-docker"), *args], cwd=cwd, env=environ,
                          capture_output=True, text=True)


def test_wheel_package_is_the_installed_copy(installed, tmp_path):
    result = subprocess.run(
        [str(installed / "bin" / "python"), "-c", "import claude_docker, sys; print(claude_docker.__file__)"],
        cwd=tmp_path, capture_output=True, text=True, env=_without_checkout(),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(installed)), result.stdout
    data = installed / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages" / "claude_docker" / "_data"
    assert (data / "schema" / "claude-docker.schema.json").is_file()
    assert (data / "profiles" / "default.yaml").is_file()
    assert (data / "container").is_dir()


def test_wheel_validates_and_renders_from_an_unrelated_directory(installed, tmp_path):
    (tmp_path / "home").mkdir()
    project = tmp_path / "somewhere" / "else"
    project.mkdir(parents=True)
    (project / "claude-docker.yaml").write_text(EXAMPLE)
    result = _run(installed, project, "validate")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "profile chain: default -> python -> github ->" in result.stdout

    result = _run(installed, project, "render", "-o", "out")
    assert result.returncode == 0, result.stdout + result.stderr
    out = project / "out"
    for name in ("Dockerfile", "init-firewall.sh", "mcp.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "mcp.json").read_text())["mcpServers"]["docs"]["env"] == {"TOKEN": "${DOCS_TOKEN}"}

    result = _run(installed, project, "profiles")
    assert result.returncode == 0 and any(line.split()[0] == "default" for line in result.stdout.splitlines())
