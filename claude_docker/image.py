"""The image's build context: the Dockerfile (from container/Dockerfile) and its inputs."""

from __future__ import annotations

from .model import ImageConfig


def build_context(image: ImageConfig) -> dict:
    raise NotImplementedError
