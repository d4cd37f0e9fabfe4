"""`claude-docker up -- -p` to Claude Code's first API request, firewall on, against a bare
`docker run` of the same image running `claude -p` directly; and N such sessions at once.

Both sides run the real Claude Code binary against the scripted Messages API stand-in
(tests/fakes/anthropic.py) on the Docker host; the time is from the moment the command is
spawned to the stand-in's receipt of the first `POST /v1/messages` (and, for the concurrent
row, until the last of N sessions has exited). Measured in the same run, interleaved:

- `bare`: `docker run --rm -e ANTHROPIC_BASE_URL=… --entrypoint claude IMAGE -p hi` (the baseline:
  no entrypoint, no firewall, the Go CLI);
- `up, firewall off`: `python -m claude_docker up -- -p hi` with `network.firewall: false`;
- `up`: the same with the default network section (firewall, name-checking proxy, self-test).

`up` runs this checkout with this interpreter (`sys.executable`), through a small driver that
gives the session containers a local DNS server as their upstream (so the firewall's self-test
resolves and probes without the internet) and times each step of `up` on the way. The
allowlisted names resolve to an address in a network namespace of the benchmark's own that answers
TLS like a real server (bench/harness.py: SelfTestPeer); the DNS server listens on the host's end of
that namespace's veth pair, out of the way of other runs' servers on the bridge's port 53.

    python3 bench/bench_up.py [--runs 7] [--sessions 10] [--concurrent-runs 3] [--markdown] [--before DIR]

With `--before DIR` (another checkout, e.g. `git worktree add DIR main`) a fourth case, `up
(before)`, runs that checkout's `up` with the firewall on, interleaved with the others, so a
change is measured against what it changes in the same run.

Every `up` runs from compiled bytecode, as an installed package does (pip compiles it at
install): PYTHONDONTWRITEBYTECODE is dropped and the bytecode goes to a cache of the run's own
(PYTHONPYCACHEPREFIX), written by the warm-up runs.

Needs root (a network namespace, DNS on port 53), the test base image and the docker CLI.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import docker  # noqa: E402

from bench import harness  # noqa: E402
from claude_docker.engine import Engine  # noqa: E402
from tests.fakes.anthropic import FakeAnthropic  # noqa: E402

PROMPT = "hi"
DEFAULT_NAMES = ("api.anthropic.com", "platform.claude.com", "claude.ai", "registry.npmjs.org")

# Runs `python -m claude_docker` after two additions that change nothing `up` does: containers
# get BENCH_DNS as their resolver (the SDK's host config), and the steps below are timed.
DRIVER = r"""
import time; _t = time.time()
import importlib.abc, importlib.util, json, os, sys
_log, _out = [("interpreter", float(os.environ["BENCH_T0"]), _t)], os.environ["BENCH_TIMES"]

class _DnsHook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "docker.api.client":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            create = module.APIClient.create_host_config
            module.APIClient.create_host_config = lambda self, **kw: create(self, **kw, dns=[os.environ["BENCH_DNS"]])
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, _DnsHook())

def _timed(owner, attribute, label):
    original = getattr(owner, attribute)
    def wrapper(*args, **kwargs):
        began = time.time()
        try:
            return original(*args, **kwargs)
        finally:
            _log.append((label, began, time.time()))
    setattr(owner, attribute, wrapper)

_i = time.time()
import claude_docker.cli, claude_docker.commands.lifecycle_cmds as cmds, claude_docker.lifecycle as lifecycle
from claude_docker import engine, runplan
from claude_docker.features import trust
_log.append(("imports", _i, time.time()))
_timed(cmds, "load_config", "config pipeline")
_timed(trust, "require", "approval check")
_timed(engine.Engine, "connect", "engine connect")
_timed(lifecycle, "prepare_image", "image check")
_timed(lifecycle, "prune_sessions", "prune old sessions")
_timed(runplan, "plan", "run plan + runtime artifacts")
for _name in ("create", "attach", "start", "wait", "remove"):
    _timed(engine.Engine, _name, "engine " + _name)
try:
    claude_docker.cli.main(["up", *sys.argv[1:]], prog_name="claude-docker")
finally:
    with open(_out, "w") as handle:
        json.dump(_log, handle)
"""

CASES = ("bare", "up, firewall off", "up")
BEFORE = "up (before)"
LABELS = {"bare": "bare `docker run --entrypoint claude IMAGE -p` (baseline)",
          "up, firewall off": "`up -- -p`, `network.firewall: false`",
          "up": "`up -- -p`, firewall on (default network section)",
          BEFORE: "`up -- -p`, firewall on, the `--before` checkout"}


class Bench:
    def __init__(self, client, api: FakeAnthropic, image: str, gateway: str, dns_address: str, home: Path,
                 before: Path | None = None) -> None:
        self.client, self.api, self.image, self.gateway, self.home = client, api, image, gateway, home
        self.before = before
        self.cases = CASES + ((BEFORE,) if before else ())
        environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env = {
            **environ,
            "PYTHONPYCACHEPREFIX": str(home / "pycache"),
            "CLAUDE_DOCKER_HOME": str(home / "state"),
            "ANTHROPIC_BASE_URL": api.url_for(gateway),
            "ANTHROPIC_API_KEY": api.api_key,
            "BENCH_DNS": dns_address,
            "PYTHONPATH": str(harness.REPO_ROOT),
        }
        self.configs = {case: self._project(case) for case in self.cases[1:]}
        self.serial = 0

    def _project(self, case: str) -> Path:
        workspace = Path(tempfile.mkdtemp(dir=self.home, prefix="ws-"))
        if os.getuid() == 0:
            os.chown(workspace, 1000, 1000)
        config = workspace / "claude-docker.yaml"
        network = "network:\n  firewall: false\n" if case == "up, firewall off" else ""
        config.write_text(
            f"image:\n  base: {harness.BASE_IMAGE}\n  extra_ca_certificates: [{harness.CA_BUNDLE}]\n{network}"
        )
        subprocess.run([sys.executable, "-m", "claude_docker", "trust", "--yes", "-f", str(config)],
                       env=self.env, check=True, capture_output=True)
        return config

    def argv(self, case: str, times: Path) -> tuple[list[str], dict[str, str]]:
        if case == "bare":
            return ["docker", "run", "--rm", "-e", f"ANTHROPIC_BASE_URL={self.env['ANTHROPIC_BASE_URL']}",
                    "-e", f"ANTHROPIC_API_KEY={self.api.api_key}", "--entrypoint", "claude", self.image, "-p", PROMPT], self.env
        env = {**self.env, "BENCH_TIMES": str(times)}
        if case == BEFORE:
            env["PYTHONPATH"] = str(self.before)
        return [sys.executable, "-c", DRIVER, "-f", str(self.configs[case]), "--", "-p", PROMPT], env

    def run(self, case: str, count: int = 1) -> tuple[list[float], float, list[dict[str, tuple[float, float]]]]:
        """Start `count` sessions at once: seconds to each one's first request (in order of
        arrival), seconds until the last exited, and each `up`'s timed steps (relative)."""
        self.api.requests.clear()
        launches = []
        for _ in range(count):
            self.serial += 1
            times = self.home / f"times-{self.serial}.json"
            argv, env = self.argv(case, times)
            env = {**env, "BENCH_T0": repr(time.time())}
            started = time.time()
            process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            launches.append((started, process, times))
        t0 = launches[0][0]
        for _, process, _ in launches:
            out, err = process.communicate(timeout=300)
            if process.returncode != 0 or b"done" not in out:
                raise SystemExit(f"{case} failed ({process.returncode}):\n{out.decode()}\n{err.decode()}")
        ended = time.time()
        firsts = sorted(r.at for r in self.api.requests if r.method == "POST" and r.path.startswith("/v1/messages"))
        agent = sorted(r.at for r in self.api.requests if r.method == "POST" and (r.body or {}).get("tools"))
        if len(agent) < count:
            raise SystemExit(f"{case}: {len(agent)} of {count} sessions reached the API")
        steps = []
        for started, _, times in launches:
            if times.exists():
                steps.append({name: (a - started, b - started) for name, a, b in json.loads(times.read_text())})
        return [at - t0 for at in firsts[:count]], ended - t0, steps


Steps = list[dict[str, tuple[float, float]]]


def first_request_rows(bench: Bench, runs: int) -> tuple[dict[str, list[float]], dict[str, Steps]]:
    first: dict[str, list[float]] = {case: [] for case in bench.cases}
    up_steps: dict[str, Steps] = {case: [] for case in ("up", BEFORE)}
    for case in bench.cases:  # warm every path once (and write the bytecode)
        bench.run(case)
    for _ in range(runs):
        for case in bench.cases:
            firsts, _, steps = bench.run(case)
            first[case].append(firsts[0])
            if case in up_steps:
                up_steps[case].extend(steps)
    return first, up_steps


def concurrent_rows(bench: Bench, runs: int, sessions: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall time until the last of `sessions` has exited, and every session's first request."""
    wall: dict[str, list[float]] = {case: [] for case in ("bare", "up", BEFORE) if case in bench.cases}
    firsts: dict[str, list[float]] = {case: [] for case in wall}
    for _ in range(runs):
        for case in wall:
            first, ended, _ = bench.run(case, sessions)
            wall[case].append(ended)
            firsts[case].extend(first)
    return wall, firsts


def step_table(all_steps: Steps, first_up: list[float]) -> list[tuple[str, float]]:
    """Median duration of each timed step of `up`, in the order they happen, plus what lies
    between the container's start and the first request (entrypoint, firewall, Claude)."""
    names: list[str] = []
    for steps in all_steps:
        for name in sorted(steps, key=lambda n: steps[n][0]):
            if name not in names:
                names.append(name)
    rows = []
    for name in names:
        if name in ("engine wait", "engine remove"):
            continue
        durations = [steps[name][1] - steps[name][0] for steps in all_steps if name in steps]
        rows.append((name, statistics.median(durations)))
    start_end = statistics.median(steps["engine start"][1] for steps in all_steps if "engine start" in steps)
    rows.append(("container start → first API request (entrypoint, firewall, self-test, Claude)",
                 statistics.median(first_up) - start_end))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--concurrent-runs", type=int, default=3)
    parser.add_argument("--skip-concurrent", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--before", type=Path, help="another checkout, measured as a fourth case")
    args = parser.parse_args()

    client = docker.from_env()
    gateway = harness.bridge_gateway(client)
    image = harness.image(Engine(client))
    home = Path(tempfile.mkdtemp(prefix="cd-bench-up-"))
    os.chmod(home, 0o755)
    peer = harness.SelfTestPeer()
    records = {name: [peer.address] for name in DEFAULT_NAMES}
    dns = harness.start_dns(peer.host_address, records)
    loads = [harness.load_average()]
    try:
        with FakeAnthropic() as api:
            bench = Bench(client, api, image, gateway, peer.host_address, home, args.before)
            first, up_steps = first_request_rows(bench, args.runs)
            loads.append(harness.load_average())
            wall, firsts = ({}, {}) if args.skip_concurrent else concurrent_rows(bench, args.concurrent_runs, args.sessions)
            loads.append(harness.load_average())
    finally:
        dns.stop()
        peer.stop()
        shutil.rmtree(home, ignore_errors=True)

    med = statistics.median
    baseline = med(first["bare"])
    print(f"Interleaved, {args.runs} runs each; median (min–max); {os.cpu_count()} CPUs; load average at start, "
          f"middle, end: {' / '.join(loads)}. Python {sys.version.split()[0]}.\n")
    print("| first API request after spawn | time | / bare `docker run` |")
    print("|---|---|---|")
    for case in bench.cases:
        ratios = [value / baseline for value in first[case]]
        print(f"| {LABELS[case]} | {harness.spread(first[case], 1000, unit=' ms')} | "
              f"**{med(first[case]) / baseline:.2f}×** (per run vs the median baseline {min(ratios):.2f}–{max(ratios):.2f}×) |")
    print("\nWhere `up`'s time goes (medians of the firewalled runs, in order):\n")
    tables = {case: dict(step_table(up_steps[case], first[case])) for case in up_steps if up_steps[case]}
    print("| step | " + " | ".join(f"{case}, ms" for case in tables) + " |")
    print("|---|" + "---:|" * len(tables))
    for name in dict.fromkeys(name for table in tables.values() for name in table):
        print(f"| {name} | " + " | ".join(f"{table[name] * 1000:.0f}" if name in table else "—" for table in tables.values()) + " |")
    if wall:
        print(f"\n{args.sessions} sessions started at once, until the last has exited; {args.concurrent_runs} runs each:\n")
        print("| case | wall time | / bare |")
        print("|---|---|---|")
        bare = med(wall["bare"])
        print(f"| {args.sessions} × bare `docker run … claude -p` (baseline) | {harness.spread(wall['bare'], unit=' s', digits=1)} | — |")
        for case in wall:
            if case != "bare":
                print(f"| {args.sessions} × {LABELS[case]} | {harness.spread(wall[case], unit=' s', digits=1)} | "
                      f"**{med(wall[case]) / bare:.2f}×** |")
        print("\nEach session's first API request after the common start, all runs:\n")
        print("| case | median (min–max) |")
        print("|---|---|")
        for case in firsts:
            print(f"| {case} | {harness.spread(firsts[case], unit=' s', digits=1)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
