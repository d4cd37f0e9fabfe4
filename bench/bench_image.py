"""Benchmark the image's size, layer by layer: the default image (Claude Code's native binary,
no Node) against the same config with `image.node: true` (Node and npm in the final image, as
every image had them before), both built in this run from the same base.

    python bench/bench_image.py [--base IMAGE] [--ca FILE] [--markdown]

Needs a Docker engine and the base image. Sizes are the engine's own (`docker history`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from claude_docker.config.model import ImageConfig  # noqa: E402
from claude_docker.engine import Engine  # noqa: E402
from claude_docker.imagebuild import ensure_image  # noqa: E402

MB = 1000 * 1000


def layers(engine: Engine, tag: str) -> list[tuple[str, int]]:
    """(instruction, bytes) for every layer of `tag`, oldest first."""
    history = engine.client.api.history(tag)
    rows = []
    for entry in reversed(history):
        created_by = " ".join((entry.get("CreatedBy") or "").split())
        created_by = created_by.split("#(nop) ", 1)[-1]  # metadata steps: the instruction itself
        for shell in ("/bin/sh -eu -c ", "/bin/sh -c "):
            created_by = created_by.removeprefix(shell)
        rows.append((created_by[:90] or "(the base image)", int(entry.get("Size") or 0)))
    return rows


DPKG_SIZES = "dpkg-query -W -f '${Installed-Size} ${Package}\\n'"


def installed(engine: Engine, tag: str) -> dict[str, int]:
    """Package -> installed size in bytes (dpkg's own figure, KiB), read inside the image."""
    output = engine.client.containers.run(tag, entrypoint=["sh", "-c", DPKG_SIZES], network_disabled=True, remove=True)
    sizes = {}
    for line in output.decode().splitlines():
        size, _, package = line.partition(" ")
        sizes[package] = int(size or 0) * 1024
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default=os.environ.get("CLAUDE_DOCKER_TEST_BASE", "claude-docker-test/debian:bookworm"))
    parser.add_argument("--ca", default="/etc/ssl/certs/ca-certificates.crt")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()

    engine = Engine.connect()
    ca = (args.ca,) if args.ca else ()
    lean = ensure_image(engine, ImageConfig(base=args.base, extra_ca_certificates=ca)).tag
    with_node = ensure_image(engine, ImageConfig(base=args.base, extra_ca_certificates=ca, node=True)).tag
    base_size = engine.image_size(args.base) or 0
    sizes = {name: engine.image_size(tag) or 0 for name, tag in (("default", lean), ("image.node: true", with_node))}

    print("| image | size | over the base |")
    print("|---|---:|---:|")
    print(f"| base `{args.base}` | {base_size / MB:.0f} MB | — |")
    for name, size in sizes.items():
        print(f"| {name} | {size / MB:.0f} MB | +{(size - base_size) / MB:.0f} MB |")
    print(f"\nRatio default / image.node: true = {sizes['default'] / sizes['image.node: true']:.2f}\n")
    print("Layers of the default image (oldest first; 0-byte metadata steps left out):\n")
    print("| layer | size |")
    print("|---|---:|")
    for instruction, size in layers(engine, lean):
        if size:
            print(f"| `{instruction}` | {size / MB:.1f} MB |")

    base_packages = installed(engine, args.base)
    added = {name: size for name, size in installed(engine, lean).items() if name not in base_packages}
    biggest = sorted(added.items(), key=lambda item: -item[1])
    print(f"\nPackages the default image adds to the base: {len(added)}, {sum(added.values()) / MB:.1f} MB installed "
          "(dpkg's Installed-Size, measured before dpkg left out documentation, manuals and translations):\n")
    print("| package | installed size |")
    print("|---|---:|")
    for name, size in biggest[:12]:
        print(f"| {name} | {size / MB:.1f} MB |")
    rest = biggest[12:]
    print(f"| {len(rest)} others | {sum(size for _, size in rest) / MB:.1f} MB |")


if __name__ == "__main__":
    main()
