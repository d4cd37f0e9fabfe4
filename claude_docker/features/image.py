"""The image's build context: the Dockerfile (from container/Dockerfile.j2) and its inputs.

The image tag is a hash of exactly these bytes, so only the `image:` section (and the CA files'
contents, and the scripts shipped in container/bin/) can cause a rebuild.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping

from .. import contract
from ..artifacts import Artifact, context_hash, render_template
from ..config.config_values import ValueProblem, read_ca_certificate
from ..config.model import Config, ImageConfig, ProxyConfig
from ..errors import ClaudeDockerError, EngineError
from ..resources import container_dir

IMAGE_REPOSITORY = "claude-docker"
VERSION_FILE = f"{contract.CONTAINER_ROOT}/claude-code-version"
TEMPLATE_SUFFIX = ".j2"  # a helper under container/bin/ rendered with the contract


def build_context(image: ImageConfig) -> dict[str, Artifact]:
    """Dockerfile + entrypoint + every file under container/bin/ + the CA files' bytes.

    The entrypoint and the helpers named `*.j2` are rendered with the host/container contract
    (contract.template_context), so both sides read the same labels, paths, event kinds and
    privilege drop; the other helpers are copied as they are.
    """
    artifacts: dict[str, Artifact] = {}
    shared = contract.template_context()
    bin_dir = container_dir() / "bin"
    if bin_dir.is_dir():
        for path in sorted(bin_dir.rglob("*")):
            if path.is_file():
                mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
                name = "bin/" + path.relative_to(bin_dir).as_posix()
                if name.endswith(TEMPLATE_SUFFIX):
                    template = path.relative_to(container_dir()).as_posix()
                    artifacts[name.removesuffix(TEMPLATE_SUFFIX)] = Artifact(render_template(template, **shared).encode(), mode)
                else:
                    artifacts[name] = Artifact(path.read_bytes(), mode)
    for index, ca_file in enumerate(image.extra_ca_certificates):
        artifacts[f"ca/{index:02d}-{_safe_name(ca_file)}.crt"] = Artifact(_read_ca(ca_file))
    artifacts["entrypoint.sh"] = Artifact(render_template("entrypoint.sh.j2", **shared).encode(), 0o755)
    artifacts["Dockerfile"] = Artifact(
        render_template(
            "Dockerfile.j2",
            base=image.base,
            claude_code_version=image.claude_code_version,
            node=image.node or bool(image.npm_packages),
            apt_packages=image.apt_packages,
            npm_packages=image.npm_packages,
            pip_packages=image.pip_packages,
            ca_files=bool(image.extra_ca_certificates),
            has_bin=any(name.startswith("bin/") for name in artifacts),
            container_root=contract.CONTAINER_ROOT,
            container_bin=contract.CONTAINER_BIN,
        ).encode()
    )
    return dict(sorted(artifacts.items()))


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
    created: str | None = None  # when an image that was already present was built (RFC 3339)
    previous_version: str | None = None  # the Claude Code version `build --pull` replaced


CLAUDE_CODE_PACKAGE = "@anthropic-ai/claude-code"
DEFAULT_NPM_REGISTRY = "https://registry.npmjs.org/"
_PINNED_VERSION = re.compile(r"^\d")


def newest_claude_code(dist_tag: str, proxy: ProxyConfig | None = None, environ: Mapping[str, str] | None = None,
                       timeout: float = 10.0) -> str | None:
    """The version the npm registry's `dist_tag` (latest, stable, next) names now; None when the
    registry cannot be asked (the caller then rebuilds without the cache to be sure). The
    registry is npm's own setting ($NPM_CONFIG_REGISTRY) or registry.npmjs.org."""
    import json
    import os
    import urllib.parse
    import urllib.request

    environ = os.environ if environ is None else environ
    registry = environ.get("NPM_CONFIG_REGISTRY") or environ.get("npm_config_registry") or DEFAULT_NPM_REGISTRY
    url = urllib.parse.urljoin(registry.rstrip("/") + "/", f"-/package/{CLAUDE_CODE_PACKAGE}/dist-tags")
    handlers = []
    if proxy is not None and (proxy.https or proxy.http):
        address = proxy.https or proxy.http or ""
        handlers.append(urllib.request.ProxyHandler({"http": proxy.http or address, "https": address}))
    try:
        with urllib.request.build_opener(*handlers).open(url, timeout=timeout) as response:
            tags = json.loads(response.read(1 << 20))
    except (OSError, ValueError):
        return None
    version = tags.get(dist_tag) if isinstance(tags, dict) else None
    return version if isinstance(version, str) and _PINNED_VERSION.match(version) else None


def age_warning(result: ImageResult, max_age_days: int, now: datetime | None = None) -> str | None:
    """`up`'s reminder that a present image is old (Claude Code inside it does not update itself)."""
    if max_age_days <= 0 or result.built or not result.created:
        return None
    try:
        built = datetime.strptime(result.created[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    days = ((now or datetime.now(timezone.utc)) - built).days
    if days <= max_age_days:
        return None
    return (
        f"the image was built {days} days ago (Claude Code {result.claude_code_version}); "
        "`claude-docker build --pull` brings a newer Claude Code (image.max_age_days sets when this is said)"
    )


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
    """Build the image for `image` unless a build of the same context already exists.

    With `pull`, a Claude Code version given as a tag (`latest`) is looked up in the registry:
    when it names another release than the image holds (or cannot be looked up), every layer is
    rebuilt, since the cached install step would keep the old one; when it is the same, the
    cache is kept and only a newer base image changes anything.
    """
    artifacts = build_context(image)
    tag = image_tag(artifacts)
    existing = engine.image_labels(tag)
    present_version = existing.get(contract.LABEL_CLAUDE_CODE_VERSION, "unknown") if existing is not None else None
    if not (force or no_cache or pull) and existing is not None:
        return ImageResult(tag, False, present_version or "unknown", created=engine.image_created(tag))
    previous = None
    if pull and existing is not None and not _PINNED_VERSION.match(image.claude_code_version):
        newest = newest_claude_code(image.claude_code_version, proxy)
        if newest is None or newest != present_version:
            no_cache, previous = True, present_version
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
            contract.LABEL_MANAGED: "1",
            contract.LABEL_CONTEXT_HASH: tag.split(":", 1)[1],
            contract.LABEL_CLAUDE_CODE_VERSION: version,
        },
    )
    return ImageResult(tag, True, version, previous_version=previous)


NODE_PROGRAMS = ("node", "npm", "npx")


def config_warnings(cfg: Config) -> list[str]:
    """What `validate` says about the image: an MCP server that needs Node in an image without it
    (Claude Code itself is a native binary; Node is in the image only when asked for)."""
    if cfg.image.node or cfg.image.npm_packages:
        return []
    return [
        f"claude.mcp_servers.{server.name} runs {server.command}, but image.node is false: unless "
        f"image.base brings its own Node, set image.node: true (or extend the node profile)"
        for server in cfg.claude.mcp_servers
        if server.command and server.command.rsplit("/", 1)[-1] in NODE_PROGRAMS
    ]
