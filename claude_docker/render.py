"""Render the configuration into container artifacts.

Two groups, so that only image settings can change the image:
- build context: the Dockerfile and the static helpers baked into the image (hash = image tag);
- runtime artifacts: firewall script, dnsmasq config, Claude settings and MCP config, written
  per session and mounted read-only.
Templates live in `container/` and render through one strict Jinja environment.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2

from .atomicfile import write_atomic
from .model import Config
from .resources import container_dir
from .session import Session


@dataclass(frozen=True)
class Artifact:
    content: bytes
    mode: int = 0o644


def shquote(value: object) -> str:
    """Quote one value as a single POSIX shell word (on top of the schema's pattern check)."""
    return shlex.quote(str(value))


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(container_dir())),
        undefined=jinja2.StrictUndefined,  # a missing variable in a firewall script is a bug, never ""
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["shquote"] = shquote
    return env


def render_template(name: str, **context: object) -> str:
    return environment().get_template(name).render(**context)


def render_build_context(cfg: Config) -> dict[str, Artifact]:
    """Everything `docker build` sees. Depends only on `cfg.image` (and the CA files' bytes)."""
    from .image import build_context  # the Dockerfile and its inputs

    return build_context(cfg.image)


def render_runtime(cfg: Config, session: Session) -> dict[str, Artifact]:
    """Per-session files mounted read-only at paths.CONTAINER_RUNTIME."""
    from . import claude_settings, firewall

    artifacts: dict[str, Artifact] = {}
    artifacts.update(firewall.runtime_artifacts(cfg, session))
    artifacts.update(claude_settings.runtime_artifacts(cfg, session))
    return dict(sorted(artifacts.items()))


def context_hash(artifacts: dict[str, Artifact]) -> str:
    """A stable digest of a set of artifacts (names, modes and bytes)."""
    digest = hashlib.sha256()
    for name in sorted(artifacts):
        artifact = artifacts[name]
        digest.update(name.encode() + b"\0" + oct(artifact.mode).encode() + b"\0")
        digest.update(hashlib.sha256(artifact.content).digest())
    return digest.hexdigest()


def write_artifacts(artifacts: dict[str, Artifact], directory: Path) -> list[Path]:
    written = []
    for name, artifact in artifacts.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, artifact.content, mode=artifact.mode)
        written.append(path)
    return written
