"""Building the image: the engine side of features/image.py, which only renders the build
context and names its tag. `up`, `build` and `kube` call `ensure_image`; it asks the engine
whether the tag exists and builds it when it does not (or when asked to).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable, Mapping

from . import contract
from .config.model import ImageConfig, ProxyConfig
from .errors import EngineError
from .features.image import VERSION_FILE, build_context, image_tag, proxy_build_args

if TYPE_CHECKING:
    from .engine import Engine


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
    engine: Engine,
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
