"""The image's build context: the Dockerfile (from container/Dockerfile.j2) and its inputs.

The image tag is a hash of exactly these bytes, so only the `image:` section (and the CA files'
contents, and the scripts shipped in container/bin/) can cause a rebuild.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import paths
from .artifacts import Artifact, context_hash, render_template
from .config_values import ValueProblem, read_ca_certificate
from .errors import ClaudeDockerError, EngineError
from .model import ImageConfig, ProxyConfig
from .resources import container_dir

IMAGE_REPOSITORY = "claude-docker"
LABEL_CLAUDE_CODE_VERSION = "dev.claude-docker.claude-code-version"
LABEL_CONTEXT_HASH = "dev.claude-docker.image-hash"
LABEL_MANAGED = "dev.claude-docker.managed"
VERSION_FILE = f"{paths.CONTAINER_ROOT}/claude-code-version"


def build_context(image: ImageConfig) -> dict[str, Artifact]:
    """Dockerfile + entrypoint + every file under container/bin/ + the CA files' bytes."""
    artifacts: dict[str, Artifact] = {}
    bin_dir = container_dir() / "bin"
    if bin_dir.is_dir():
        for path in sorted(bin_dir.rglob("*")):
            if path.is_file():
                mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
                artifacts["bin/" + path.relative_to(bin_dir).as_posix()] = Artifact(path.read_bytes(), mode)
    for index, ca_file in enumerate(image.extra_ca_certificates):
        artifacts[f"ca/{index:02d}-{_safe_name(ca_file)}.crt"] = Artifact(_read_ca(ca_file))
    artifacts["entrypoint.sh"] = Artifact(_render_entrypoint().encode(), 0o755)
    artifacts["Dockerfile"] = Artifact(
        render_template(
            "Dockerfile.j2",
            base=image.base,
            claude_code_version=image.claude_code_version,
            apt_packages=image.apt_packages,
            npm_packages=image.npm_packages,
            pip_packages=image.pip_packages,
            ca_files=bool(image.extra_ca_certificates),
            has_bin=any(name.startswith("bin/") for name in artifacts),
            container_root=paths.CONTAINER_ROOT,
            container_bin=paths.CONTAINER_BIN,
        ).encode()
    )
    return dict(sorted(artifacts.items()))


def _render_entrypoint() -> str:
    return render_template(
        "entrypoint.sh",
        container_runtime=paths.CONTAINER_RUNTIME,
        container_bin=paths.CONTAINER_BIN,
        agent_user=paths.AGENT_USER,
        agent_home=paths.AGENT_HOME,
        exit_firewall_failed=paths.EXIT_FIREWALL_FAILED,
        exit_setup_failed=paths.EXIT_SETUP_FAILED,
    )


def _safe_name(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(path).stem)[:40] or "ca"


def _read_ca(path: str) -> bytes:
    try:
        return read_ca_certificate(path)  # `validate` reports the same problems with file and line
    except ValueProblem as problem:
        raise ClaudeDockerError(f"image.extra_ca_certificates: {problem}", "run `claude-docker validate`") from None


def image_tag(artifacts: dict[str, Artifact]) -> str:
    """`claude-docker:<content hash>` — equal contexts give equal tags, so nothing rebuilds."""
    return f"{IMAGE_REPOSITORY}:{context_hash(artifacts)[:20]}"


def proxy_build_args(proxy: ProxyConfig | None) -> dict[str, str]:
    """Docker's predefined proxy build args: used by RUN steps, kept out of the cache key and history."""
    if proxy is None:
        return {}
    args: dict[str, str] = {}
    if proxy.http:
        args["HTTP_PROXY"] = args["http_proxy"] = proxy.http
    if proxy.https:
        args["HTTPS_PROXY"] = args["https_proxy"] = proxy.https
    if proxy.no_proxy:
        args["NO_PROXY"] = args["no_proxy"] = ",".join(proxy.no_proxy)
    return args


@dataclass(frozen=True)
class ImageResult:
    tag: str
    built: bool  # False when the tag was already present
    claude_code_version: str


def ensure_image(
    engine,
    image: ImageConfig,
    proxy: ProxyConfig | None = None,
    *,
    on_output: Callable[[str], None] | None = None,
    force: bool = False,
    no_cache: bool = False,
    pull: bool = False,
) -> ImageResult:
    """Build the image for `image` unless a build of the same context already exists."""
    artifacts = build_context(image)
    tag = image_tag(artifacts)
    if not (force or no_cache or pull):
        existing = engine.image_labels(tag)
        if existing is not None:
            return ImageResult(tag, False, existing.get(LABEL_CLAUDE_CODE_VERSION, "unknown"))
    try:
        image_id = engine.build(
            artifacts,
            tag=tag,
            buildargs=proxy_build_args(proxy),
            on_output=on_output,
            no_cache=no_cache,
            pull=pull,
        )
    except EngineError as error:
        if engine.image_labels(image.base) is None:
            reason = error.message.splitlines()[0].removeprefix("image build failed: ")
            raise EngineError(
                f"image.base {image.base} is not present locally and could not be pulled: {reason}",
                "check the name, or make it available first (`docker pull`, `docker load`, or a local build)",
            ) from None
        raise
    version = engine.read_file(image_id, VERSION_FILE).strip() or "unknown"
    engine.label_image(
        tag,
        {
            LABEL_MANAGED: "1",
            LABEL_CONTEXT_HASH: tag.split(":", 1)[1],
            LABEL_CLAUDE_CODE_VERSION: version,
        },
    )
    return ImageResult(tag, True, version)
