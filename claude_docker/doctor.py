"""`claude-docker doctor`: one pass/fail line per thing a session depends on."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from . import paths
from .errors import ClaudeDockerError
from .features.claude_settings import AUTH_VARIABLES

MIN_FREE_BYTES = 5 * 1024**3  # an image with Claude Code is ~0.5-1 GB; builds need headroom


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    advisory: bool = False  # shown as a warning; does not fail `doctor`


def run_checks(config_file: str | None = None) -> Iterator[Check]:
    from .config.pipeline import load_config
    from .engine import Engine

    try:
        cfg = load_config(config_file).config
        yield Check("config", True, " → ".join(cfg.source_files) or "built-in defaults")
    except ClaudeDockerError as error:
        cfg = None
        yield Check("config", False, error.message.splitlines()[0])

    engine = None
    try:
        engine = Engine.connect()
        version = engine.version()
        yield Check("engine", True, f"{engine.base_url}: {engine.product()} {version.get('Version', '?')}, API {version.get('ApiVersion', '?')}")
    except ClaudeDockerError as error:
        yield Check("engine", False, f"{error.message} ({error.hint})")

    cli = shutil.which("docker")
    yield Check("docker CLI", cli is not None, cli or "not on PATH: interactive `up` and `shell` need it")

    if cfg is not None:
        if engine is not None:
            base = _base_image(engine, cfg.image.base)
            yield base
            if base.ok and base.detail.endswith("is present"):
                yield _container_start(engine, cfg.image.base)
        for ca_file in cfg.image.extra_ca_certificates:
            readable = os.access(ca_file, os.R_OK)
            yield Check("CA file", readable, ca_file if readable else f"{ca_file} is not readable")
        yield _env_file(cfg.env_file)
        from .features.base import merged_environment
        from .features.claude_settings import missing_credential

        problem = missing_credential(cfg, merged_environment(cfg))
        yield Check("credential", problem is None, problem or "an API key, a token or a kept login", advisory=True)
        if problem is None:
            yield _credential_mode(cfg)
        yield Check(
            "notifier",
            cfg.notifier.configured,
            "configured" if cfg.notifier.configured else "none configured: nobody is told when the agent stops",
            advisory=True,
        )

    yield _disk(engine)


def _credential_mode(cfg) -> Check:
    """Which credential Claude will use, and whether the agent can read it (features/credentials.py)."""
    from .features import credentials, endpoint
    from .features.persistence import auth_dir
    from .session import Session

    try:
        model_endpoint = cfg.network.model_endpoint or endpoint.derive(cfg, os.environ)
        login = cfg.persistence.auth != "none" and (auth_dir(cfg, Session(cfg.project_name, "probe")) / ".credentials.json").is_file()
        mode, detail = credentials.mode(cfg, os.environ, model_endpoint, login)
    except ClaudeDockerError as error:
        return Check("credential mode", False, error.message.splitlines()[0], advisory=True)
    protected = "held by the sandbox proxy" in detail
    return Check("credential mode", protected, f"{mode}: {detail}", advisory=True)


def _base_image(engine, base: str) -> Check:
    if engine.image_labels(base) is not None:
        return Check("base image", True, f"{base} is present")
    reason = engine.pull_problem(base)
    if reason is None:
        return Check("base image", True, f"{base} is not present but can be pulled")
    return Check("base image", False, f"{base} is neither present nor pullable ({reason})")


def _container_start(engine, base: str) -> Check:
    """Start one throw-away container as a session would: init binary, ulimits, dropped capabilities."""
    try:
        code = engine.trial_run(base)
    except ClaudeDockerError as error:
        hint = f" (hint: {error.hint})" if error.hint else ""
        return Check("container start", False, error.message.splitlines()[0] + hint)
    if code != 0:
        return Check("container start", False, f"`true` in {base} exited with {code}")
    return Check("container start", True, f"a container of {base} starts with --init and no capabilities")


def _env_file(env_file: str | None) -> Check:
    path = Path(env_file) if env_file else paths.default_env_file()
    if not path.exists():
        present = [name for name in AUTH_VARIABLES if os.environ.get(name)]
        detail = f"{path} does not exist; " + (f"using {', '.join(present)} from the environment" if present else "no API key or token in the environment either (log in inside the container)")
        return Check("env file", True, detail)
    if not os.access(path, os.R_OK):
        return Check("env file", False, f"{path} is not readable")
    from .config.interpolate import read_env_file

    try:
        names = [name for name in AUTH_VARIABLES if read_env_file(path).get(name)]
    except ClaudeDockerError as error:
        return Check("env file", False, error.message.splitlines()[0])
    return Check("env file", True, f"{path}" + (f" (sets {', '.join(names)})" if names else ""))


def _disk(engine) -> Check:
    where = Path("/var/lib/docker")
    if engine is not None:
        where = Path(engine.root_dir() or where)
    if not where.exists():
        where = paths.claude_docker_home() if paths.claude_docker_home().exists() else Path.home()
    free = shutil.disk_usage(where).free
    return Check("free disk", free >= MIN_FREE_BYTES, f"{free / 1024**3:.1f} GB free at {where}")

