"""Benchmark `claude-docker up`: cold build time, warm start overhead against plain `docker run`,
and image size against the base image.

    python bench/bench_up.py [--runs 5] [--cold] [--base IMAGE] [--ca FILE]

--cold rebuilds every layer (no cache) and times it; without it the build is only timed when
the image is missing. Prints a Markdown table (the format of docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from claude_docker.config.model import ImageConfig  # noqa: E402
from claude_docker.engine import Engine  # noqa: E402
from claude_docker.imagebuild import ensure_image  # noqa: E402


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0 or "Claude Code" not in result.stdout:
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cold", action="store_true", help="time a no-cache build")
    parser.add_argument("--base", default=os.environ.get("CLAUDE_DOCKER_TEST_BASE", "claude-docker-test/debian:bookworm"))
    parser.add_argument("--ca", default="/etc/ssl/certs/ca-certificates.crt")
    args = parser.parse_args()

    engine = Engine.connect()
    image = ImageConfig(base=args.base, extra_ca_certificates=(args.ca,) if args.ca else ())
    started = time.perf_counter()
    result = ensure_image(engine, image, no_cache=args.cold)
    build_seconds = time.perf_counter() - started

    with tempfile.TemporaryDirectory(prefix="claude-docker-bench-") as root:
        workspace = Path(root) / "ws"
        workspace.mkdir()
        if os.getuid() == 0:
            os.chown(workspace, 1000, 1000)
        config = workspace / "claude-docker.yaml"
        ca_line = f"  extra_ca_certificates: [{args.ca}]\n" if args.ca else ""
        config.write_text(f"image:\n  base: {args.base}\n{ca_line}network:\n  firewall: false\n")
        env = {**os.environ, "CLAUDE_DOCKER_HOME": str(Path(root) / "home")}

        # approved once, as a user would (the approval check itself is part of what `up` costs)
        subprocess.run(["claude-docker", "trust", "--yes", "-f", str(config)], env=env, check=True, capture_output=True)
        up_argv = ["claude-docker", "up", "-f", str(config), "--", "--version"]
        run_argv = ["docker", "run", "--rm", "--entrypoint", "claude", result.tag, "--version"]
        timed(up_argv, env)  # warm both paths once
        timed(run_argv, env)
        up_times, run_times = [], []
        for _ in range(args.runs):  # interleave, so drift hits both alike
            up_times.append(timed(up_argv, env))
            run_times.append(timed(run_argv, env))

    up_median, run_median = statistics.median(up_times), statistics.median(run_times)
    image_size = engine.image_size(result.tag) or 0
    base_size = engine.image_size(args.base) or 0
    build_kind = "cold (no cache)" if args.cold else ("fresh" if result.built else "cached (image present)")
    print("| measure | value |\n|---|---|")
    print(f"| build, {build_kind} | {build_seconds:.1f} s |")
    print(f"| `claude-docker up -- --version` (median of {args.runs}) | {up_median:.2f} s |")
    print(f"| `docker run --rm --entrypoint claude IMAGE --version` (median of {args.runs}) | {run_median:.2f} s |")
    print(f"| ratio up / docker run (goal ≤ 1.3) | {up_median / run_median:.2f} |")
    print(f"| image size | {image_size / 1e6:.0f} MB (base {args.base}: {base_size / 1e6:.0f} MB, +{(image_size - base_size) / 1e6:.0f} MB) |")
    print(f"| Claude Code | {result.claude_code_version} |")


if __name__ == "__main__":
    main()
