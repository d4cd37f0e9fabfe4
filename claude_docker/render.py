"""Render the configuration into container artifacts.

Two groups, so that only image settings can change the image:
- build context: the Dockerfile and the helpers baked into the image (hash = image tag);
- runtime artifacts: what each feature renders (firewall script, dnsmasq and proxy config,
  Claude settings and MCP config), written per session and mounted read-only.
Templates live in `container/` and render through one strict Jinja environment (artifacts.py).
"""

from __future__ import annotations

from .artifacts import Artifact
from .config.model import Config
from .features import FEATURES
from .features.image import build_context
from .session import Session


def render_build_context(cfg: Config) -> dict[str, Artifact]:
    """Everything `docker build` sees. Depends only on `cfg.image` (and the CA files' bytes)."""
    return build_context(cfg.image)


def render_runtime(cfg: Config, session: Session) -> dict[str, Artifact]:
    """Per-session files mounted read-only at contract.CONTAINER_RUNTIME."""
    artifacts: dict[str, Artifact] = {}
    for feature in FEATURES:
        artifacts.update(feature.runtime_artifacts(cfg, session))
    return dict(sorted(artifacts.items()))
