"""How long the firewall adds to a session's start: 10, 100 and 1000 allowlisted domains vs off.

Measures, in one run on the same image, the time from `start` of the container to the moment
the entrypoint has exec'd the agent's command (the agent prints its clock; host and container
share the kernel's clock). Everything before `start` (config, render, create) is the same with
and without the firewall and is left out. The upstream resolver is a local authoritative DNS
server, so the self-test does a real lookup without touching the internet.

    python3 bench/bench_firewall.py [--runs 7] [--markdown]

Needs root (the DNS server binds port 53 on the Docker bridge) and the test base image.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import docker  # noqa: E402

from claude_docker import runplan  # noqa: E402
from claude_docker.config.model import Config, ImageConfig, NetworkConfig, PersistenceConfig, WorkspaceConfig  # noqa: E402
from claude_docker.engine import Engine  # noqa: E402
from claude_docker.imagebuild import ensure_image  # noqa: E402
from claude_docker.session import Session  # noqa: E402
from tests.fakes.dns import FakeDNS  # noqa: E402

BASE_IMAGE = os.environ.get("CLAUDE_DOCKER_TEST_BASE", "claude-docker-test/debian:bookworm")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
LABELS = {"dev.claude-docker.test": "bench-firewall"}
CASES = [("off", 0), ("10 domains", 10), ("100 domains", 100), ("1000 domains", 1000)]


class _ResolverClient:
    """The SDK client; containers it creates use the bench's DNS server as their upstream."""

    def __init__(self, client, dns: str) -> None:
        self._client, self.api, self.containers, self._dns = client, client.api, self, dns

    def create(self, **kwargs):
        return self._client.containers.create(**kwargs, dns=[self._dns])


def domains(count: int) -> tuple[str, ...]:
    """A realistic mix: three quarters exact names, a quarter wildcards."""
    return tuple(f"*.zone{i}.bench.test" if i % 4 == 3 else f"host{i}.bench.test" for i in range(count))


def one_start(engine: Engine, image: str, home: Path, count: int) -> float:
    workspace = Path(tempfile.mkdtemp(dir=home))
    cfg = Config(
        source_files=(),
        project_dir=str(workspace),
        workspace=WorkspaceConfig(path=str(workspace)),
        network=NetworkConfig(firewall=count > 0, allowed_domains=domains(count)),
        persistence=PersistenceConfig(auth="none", shell_history=False, npm_cache=False, pip_cache=False, git_config=False),
    )
    session = Session.new(cfg.project_name)
    plan = runplan.plan(cfg, session, image, command=["--exec", "date", "+%s.%N"])
    plan.labels.update(LABELS)
    container = engine.create(plan)
    try:
        started = time.time()
        engine.start(container)
        code = container.wait(timeout=120)["StatusCode"]
        logs = container.logs().decode(errors="replace")
        if code != 0:
            raise RuntimeError(f"session exited {code}: {logs}")
        agent_clock = float(logs.strip().splitlines()[-1])
        return agent_clock - started
    finally:
        container.remove(force=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--markdown", action="store_true", help="print a table for docs/benchmarks.md")
    args = parser.parse_args()

    client = docker.from_env()
    bridge = client.networks.get("bridge").attrs["IPAM"]["Config"][0]
    gateway = bridge.get("Gateway") or str(ipaddress.ip_network(bridge["Subnet"])[1])
    dns = FakeDNS(host=gateway, port=53, ttl=60, records={"*.bench.test": ["192.0.2.10"]}).start()
    image = ensure_image(Engine(client), ImageConfig(base=BASE_IMAGE, extra_ca_certificates=(CA_BUNDLE,))).tag
    engine = Engine(_ResolverClient(client, gateway))

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
        shutil.rmtree(home, ignore_errors=True)

    baseline = statistics.median(results["off"])
    rows = []
    for name, _ in CASES:
        median = statistics.median(results[name])
        rows.append((name, median * 1000, (median - baseline) * 1000, min(results[name]) * 1000))
    if args.markdown:
        print(f"{args.runs} runs each, interleaved; median start → agent exec, on {os.cpu_count()} CPUs.\n")
        print("| firewall | median start → agent exec | added by the firewall | fastest |")
        print("|---|---|---|---|")
        for name, median, added, fastest in rows:
            print(f"| {name} | {median:.0f} ms | {'—' if name == 'off' else f'{added:+.0f} ms'} | {fastest:.0f} ms |")
    else:
        for name, median, added, fastest in rows:
            print(f"{name:>13}: median {median:6.0f} ms  added {added:+6.0f} ms  fastest {fastest:6.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
