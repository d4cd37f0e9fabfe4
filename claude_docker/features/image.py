"""The image's build context: the Dockerfile (from container/Dockerfile.j2) and its inputs.

The image tag is a hash of exactly these bytes, so only the `image:` section (and the CA files'
contents, and the scripts shipped in container/bin/) can cause a rebuild. This module renders
and names; building is the engine side's (imagebuild.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from .. import contract
from ..artifacts import Artifact, context_hash, render_template
from ..config.config_values import ValueProblem, read_ca_certificate
from ..config.model import Config, ImageConfig, ProxyConfig
from ..errors import ClaudeDockerError
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
