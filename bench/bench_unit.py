"""Benchmark: the unit test run (`python -m pytest tests/unit`, no engine) of this checkout,
against another checkout's in the same run.

The developer's loop: every test in tests/unit, the way the README says to run them, with the
engine address pointing nowhere. Each run is a fresh process of this interpreter with the
checkout's own code first on PYTHONPATH and the checkout as the working directory; the two
checkouts alternate, so drift in the machine's speed hits both alike. The result is the ratio of
the medians.

    git worktree add /tmp/before <commit>
    python3 bench/bench_unit.py --before /tmp/before [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def unit_run(checkout: Path) -> tuple[float, str]:
    """Seconds for one unit run of `checkout`, and pytest's summary line."""
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/claude-docker-bench.sock", "PYTHONPATH": str(checkout)}
    command = [sys.executable, "-m", "pytest", "tests/unit", "-q", "-p", "no:cacheprovider"]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    if result.returncode != 0:
        raise SystemExit(f"the unit run of {checkout} failed: {summary}\n{result.stdout[-2000:]}")
    return elapsed, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="another checkout (e.g. a worktree of an earlier commit)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    cases = {"this checkout": REPO_ROOT, "before": args.before.resolve()}
    times: dict[str, list[float]] = {name: [] for name in cases}
    summaries: dict[str, str] = {}
    for _ in range(args.runs):
        for name, checkout in cases.items():
            elapsed, summaries[name] = unit_run(checkout)
            times[name].append(elapsed)
    before = statistics.median(times["before"])
    print(f"{args.runs} runs each, alternating; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}\n")
    print("| checkout | median s | min–max s | / before | pytest says |")
    print("|---|---:|---:|---:|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.1f} | {min(values):.1f}–{max(values):.1f} | {median / before:.2f}x | {summaries[name]} |")


if __name__ == "__main__":
    main()
