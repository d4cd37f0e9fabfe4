"""How long the firewall adds to a session's start: 10, 100 and 1000 allowlisted domains vs off.

Measures, in one run on the same image, the time from `start` of the container to the moment
the entrypoint has exec'd the agent's command (bench/harness.py: `start_to_exec`). Everything
before `start` (config, render, create) is the same with and without the firewall and is left
out. The upstream resolver is a local authoritative DNS server, so the self-test does a real
lookup without touching the internet.

    python3 bench/bench_firewall.py [--runs 7] [--markdown]

Needs root (a network namespace; the DNS server binds its host address) and the test base image.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import docker  # noqa: E402

from bench import harness  # noqa: E402
from claude_docker.engine import Engine  # noqa: E402

LABELS = {"dev.claude-docker.test": "bench-firewall"}
CASES = [("off", 0), ("10 domains", 10), ("100 domains", 100), ("1000 domains", 1000)]


def one_start(engine: Engine, image: str, home: Path, count: int) -> float:
    cfg = harness.config(home, firewall=count > 0, allowed_domains=harness.domains(count))
    return harness.start_to_exec(engine, image, cfg, LABELS)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--markdown", action="store_true", help="print a table for docs/benchmarks.md")
    args = parser.parse_args()

    client = docker.from_env()
    peer = harness.SelfTestPeer()
    dns = harness.start_dns(peer.host_address, {"*.bench.test": [peer.address]})
    image = harness.image(Engine(client))
    engine = harness.engine_with_resolver(client, peer.host_address)

    home = Path(tempfile.mkdtemp(prefix="cd-bench-"))
    os.environ["CLAUDE_DOCKER_HOME"] = str(home)
    results: dict[str, list[float]] = {name: [] for name, _ in CASES}
    try:
        one_start(engine, image, home, 10)  # warm the page cache
        for _ in range(args.runs):  # interleaved, so drift hits every case alike
            for name, count in CASES:
                results[name].append(one_start(engine, image, home, count))
    finally:
        dns.stop()
        peer.stop()
        shutil.rmtree(home, ignore_errors=True)

    baseline = statistics.median(results["off"])
    rows = []
    for name, _ in CASES:
        median = statistics.median(results[name])
        rows.append((name, harness.spread(results[name], 1000, unit=" ms"), (median - baseline) * 1000))
    if args.markdown:
        print(f"{args.runs} runs each, interleaved; median (range) start → agent exec, on {os.cpu_count()} CPUs, "
              f"load average {harness.load_average()}.\n")
        print("| firewall | start → agent exec | added by the firewall (medians) |")
        print("|---|---|---|")
        for name, spread, added in rows:
            print(f"| {name} | {spread} | {'—' if name == 'off' else f'{added:+.0f} ms'} |")
    else:
        for name, spread, added in rows:
            print(f"{name:>13}: {spread:>28}  added {added:+6.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
