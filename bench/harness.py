"""What the engine benchmarks share: the image, a local upstream resolver, a session's plan run
through the product's own engine module, and medians with ranges.

Every benchmark measures its figures against a baseline in the same run, the cases interleaved,
because this machine is shared: single figures move by tens of percent between runs.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from claude_docker import runplan  # noqa: E402
from claude_docker.config.model import Config, ImageConfig, NetworkConfig, PersistenceConfig, WorkspaceConfig  # noqa: E402
from claude_docker.engine import Engine  # noqa: E402
from claude_docker.imagebuild import ensure_image  # noqa: E402
from claude_docker.session import Session  # noqa: E402

BASE_IMAGE = os.environ.get("CLAUDE_DOCKER_TEST_BASE", "claude-docker-test/debian:bookworm")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def image(engine: Engine, *, node: bool = False) -> str:
    """The benchmarks' image: the test base, the host CA bundle, built once and then reused."""
    return ensure_image(engine, ImageConfig(base=BASE_IMAGE, extra_ca_certificates=(CA_BUNDLE,), node=node)).tag


def bridge_gateway(client: Any) -> str:
    """The host's address on Docker's default bridge, as containers see it."""
    bridge = client.api.inspect_network("bridge")["IPAM"]["Config"][0]
    return bridge.get("Gateway") or str(ipaddress.ip_network(bridge["Subnet"])[1])


class _ResolverAPI:
    """The SDK's low-level client, with `dns` added to every container's host config."""

    def __init__(self, api: Any, dns: str) -> None:
        self._api, self._dns = api, dns

    def create_host_config(self, **options: Any) -> Any:
        return self._api.create_host_config(**options, dns=[self._dns])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)


class _ResolverClient:
    def __init__(self, client: Any, dns: str) -> None:
        self._client, self.api = client, _ResolverAPI(client.api, dns)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def engine_with_resolver(client: Any, dns: str) -> Engine:
    """The product's Engine; the containers it creates use `dns` as their upstream resolver
    (Engine.create goes through the SDK's low-level `create_host_config`)."""
    return Engine(_ResolverClient(client, dns))


PEER_SERVER = r"""
import socket, sys, threading
server = socket.create_server((sys.argv[1], 443))
def answer(connection):
    with connection:
        try:
            connection.settimeout(5)
            connection.recv(4096)
            connection.sendall(bytes.fromhex("15030100020228"))  # TLS alert: fatal, handshake_failure
        except OSError:
            pass
print("listening", flush=True)
while True:
    threading.Thread(target=answer, args=(server.accept()[0],), daemon=True).start()
"""


class SelfTestPeer:
    """What the allowlisted names resolve to in the benchmarks: an address in a network namespace
    of its own, behind a veth pair (so it is none of the host's addresses, which the firewall
    refuses), answering every TCP connection on port 443 with a TLS alert, as a real server
    answers the firewall self-test's ClientHello. An address where nothing answers would make the
    self-test wait out its timeouts. `host_address`, the host's end of the pair, is where the
    benchmark's DNS server listens. Needs root."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 10000}{random.randrange(100)}"
        subnet = random.randrange(1, 255)
        self.namespace, self.host_link, peer_link = f"cdbench{tag}", f"cdbh{tag}", f"cdbp{tag}"
        self.address = f"198.19.{subnet}.2"  # RFC 2544 benchmarking range: not private, not ours
        # The host's end: a resolver bound here is the benchmark's own (others bind the bridge's :53)
        self.host_address = f"198.19.{subnet}.1"
        run = lambda *argv: subprocess.run(argv, check=True, capture_output=True)  # noqa: E731
        run("ip", "netns", "add", self.namespace)
        atexit.register(self.stop)
        try:
            run("ip", "link", "add", self.host_link, "type", "veth", "peer", "name", peer_link)
            run("ip", "link", "set", peer_link, "netns", self.namespace)
            run("ip", "addr", "add", f"198.19.{subnet}.1/30", "dev", self.host_link)
            run("ip", "link", "set", self.host_link, "up")
            run("ip", "-n", self.namespace, "addr", "add", f"{self.address}/30", "dev", peer_link)
            run("ip", "-n", self.namespace, "link", "set", peer_link, "up")
            run("ip", "-n", self.namespace, "route", "add", "default", "via", f"198.19.{subnet}.1")
            self._server = subprocess.Popen(
                ["ip", "netns", "exec", self.namespace, sys.executable, "-c", PEER_SERVER, self.address],
                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
            )
            assert self._server.stdout is not None
            self._server.stdout.readline()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None and server.poll() is None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "link", "del", self.host_link], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True)


def start_dns(host: str, records: dict[str, list[str]], wait: float = 120.0) -> Any:
    """A local authoritative DNS server on `host`:53 (tests/fakes/dns.py). Other runs on this
    machine bind the same port now and then: retry until it is free."""
    from tests.fakes.dns import FakeDNS

    deadline = time.time() + wait
    while True:
        try:
            return FakeDNS(host=host, port=53, ttl=60, records=records).start()
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


def domains(count: int, first: tuple[str, ...] = ()) -> tuple[str, ...]:
    """`first`, then a realistic mix: three quarters exact names, a quarter wildcards."""
    rest = count - len(first)
    return first + tuple(f"*.zone{i}.bench.test" if i % 4 == 3 else f"host{i}.bench.test" for i in range(max(rest, 0)))


def config(home: Path, **network: Any) -> Config:
    """A session config with nothing persisted, in a fresh workspace under `home`."""
    workspace = Path(tempfile.mkdtemp(dir=home))
    return Config(
        source_files=(),
        project_dir=str(workspace),
        workspace=WorkspaceConfig(path=str(workspace)),
        network=NetworkConfig(**network),
        persistence=PersistenceConfig(auth="none", shell_history=False, npm_cache=False, pip_cache=False, git_config=False),
    )


def start_to_exec(engine: Engine, image_tag: str, cfg: Config, labels: dict[str, str]) -> float:
    """Seconds from `start` of the session's container to the entrypoint's exec of the agent's
    command (the agent prints its clock; host and container share the kernel's clock)."""
    plan = runplan.plan(cfg, Session.new(cfg.project_name), image_tag, command=["--exec", "date", "+%s.%N"])
    plan.labels.update(labels)
    container = engine.create(plan)
    try:
        started = time.time()
        engine.start(container)
        code = engine.wait(container)
        logs = b"".join(engine.logs(container)).decode(errors="replace")
        if code != 0 or "warning" in logs:
            raise RuntimeError(f"session exited {code}: {logs}")
        return float(logs.strip().splitlines()[-1]) - started
    finally:
        engine.remove(container)


def spread(values: list[float], scale: float = 1.0, digits: int = 0, unit: str = "") -> str:
    """`median (min–max)` of `values` times `scale`."""
    low, mid, high = min(values) * scale, statistics.median(values) * scale, max(values) * scale
    return f"{mid:.{digits}f}{unit} ({low:.{digits}f}–{high:.{digits}f})"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"
