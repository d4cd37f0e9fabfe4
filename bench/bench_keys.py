"""What keeping the keys out of the agent's reach costs at start-up.

A session with an API key (the sandbox proxy holds it: the local model endpoint, its TLS backend,
the entrypoint taking the secret out of the environment) against the same session without one,
in the same run on the same image, interleaved: `docker start` to the agent's first command
(`--exec date`), median of --runs each, and the difference.

    python3 bench/bench_keys.py [--runs 10] [--markdown]

Needs root (the DNS server binds port 53 on the Docker bridge) and the test base image. Nothing
outside this machine is contacted: the endpoint's name resolves to the Docker host.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import docker  # noqa: E402

from bench import harness  # noqa: E402
from claude_docker import runplan  # noqa: E402
from claude_docker.config.model import Config, NetworkConfig, PersistenceConfig, WorkspaceConfig  # noqa: E402
from claude_docker.engine import Engine  # noqa: E402
from claude_docker.session import Session  # noqa: E402
from tests.fakes.dns import FakeDNS  # noqa: E402

LABELS = {"dev.claude-docker.test": "bench-keys"}
ENDPOINT = "llm.bench.test"
KEY = "sk-ant-api03-" + "b" * 80


def one_start(engine: Engine, image: str, home: Path, with_key: bool) -> float:
    workspace = Path(tempfile.mkdtemp(dir=home))
    cfg = Config(
        source_files=(),
        project_dir=str(workspace),
        workspace=WorkspaceConfig(path=str(workspace)),
        network=NetworkConfig(),
        persistence=PersistenceConfig(auth="none", shell_history=False, npm_cache=False, pip_cache=False, git_config=False),
    )
    environ = {"ANTHROPIC_BASE_URL": f"https://{ENDPOINT}"}
    if with_key:
        environ["ANTHROPIC_API_KEY"] = KEY
    plan = runplan.plan(cfg, Session.new(cfg.project_name), image, command=["--exec", "date", "+%s.%N"], environ=environ)
    if with_key != ("CLAUDE_DOCKER_SECRET_API_KEY" in plan.env):
        raise RuntimeError("the plan does not match the case measured")
    plan.labels.update(LABELS)
    container = engine.create(plan)
    try:
        started = time.time()
        engine.start(container)
        code = container.wait(timeout=120)["StatusCode"]
        logs = container.logs().decode(errors="replace")
        if code != 0:
            raise RuntimeError(f"session exited {code}: {logs}")
        return float(logs.strip().splitlines()[-1]) - started
    finally:
        container.remove(force=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--markdown", action="store_true", help="print a table for docs/benchmarks.md")
    args = parser.parse_args()

    client = docker.from_env()
    gateway = harness.bridge_gateway(client)
    image = harness.image(Engine(client))
    home = Path(tempfile.mkdtemp(prefix="cd-bench-"))
    os.environ["CLAUDE_DOCKER_HOME"] = str(home)
    dns = FakeDNS(host=gateway, port=53).start()
    try:
        dns.set(ENDPOINT, gateway)
        for name in ("api.anthropic.com", "platform.claude.com", "claude.ai", "registry.npmjs.org"):
            dns.set(name, gateway)  # the self-test's allowlisted names resolve (then fail to connect)
        engine = harness.engine_with_resolver(client, gateway)
        one_start(engine, image, home, True)  # warm the page cache
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.runs):
            for with_key in (False, True):
                times[with_key].append(one_start(engine, image, home, with_key))
    finally:
        dns.stop()
        shutil.rmtree(home, ignore_errors=True)
    without, with_key = statistics.median(times[False]), statistics.median(times[True])
    if args.markdown:
        print("| case | `docker start` to the agent's first command (median) |")
        print("|---|---|")
        print(f"| no credential in the environment | {without * 1000:.0f} ms |")
        print(f"| an API key, held by the sandbox proxy | {with_key * 1000:.0f} ms |")
        print(f"| difference | {(with_key - without) * 1000:+.0f} ms |")
    else:
        print(f"without: {without:.3f}s  with: {with_key:.3f}s  difference: {(with_key - without) * 1000:+.0f} ms ({args.runs} runs each)")
        print("without:", " ".join(f"{t:.3f}" for t in times[False]))
        print("with:   ", " ".join(f"{t:.3f}" for t in times[True]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
