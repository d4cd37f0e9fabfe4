"""What the name-checking proxy costs: throughput, latency per new connection, start-up, memory.

Every figure is a ratio or a difference against the same thing with the proxy layer off
(`network.name_checks: false`, today's address-level firewall), measured in the same run on the
same image, the two cases interleaved:

- throughput of a 200 MB HTTPS download (ratio, proxy on / off);
- time to the answer of a small HTTPS request on a new connection each time, median of 200
  (difference: the latency the proxy adds per connection);
- start-up with 100 allowlisted domains, `docker start` to the agent's exec (difference);
- the proxy's resident memory after the downloads (VmRSS, and its peak VmHWM).

The "internet" is a server container on the Docker bridge (HTTPS with its own CA) and a local
authoritative DNS server; nothing outside this machine is contacted.

    python3 bench/bench_proxy.py [--runs 5] [--markdown]

Needs root (a network namespace whose host address the DNS server binds) and the test base image.
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
from claude_docker.config.model import Config  # noqa: E402
from claude_docker.contract import drop_privileges  # noqa: E402
from claude_docker.engine import Engine  # noqa: E402
from claude_docker.session import Session  # noqa: E402
from tests.fakes.shared_host import make_certificates  # noqa: E402

LABELS = {"dev.claude-docker.test": "bench-proxy"}
NAME = "big.bench.test"
DOMAINS = 100
SIZE_MB = 200
CONNECTS = 200
CA_FILE = "/tmp/bench-ca.pem"

SERVER_JS = r"""
const https = require('https');
const chunk = Buffer.alloc(1 << 16);
https.createServer({key: process.env.TLS_KEY, cert: process.env.TLS_CERT}, (req, res) => {
  if (req.url !== '/big') { res.end('ok'); return; }
  let left = Number(process.env.SIZE_MB) * 16;
  res.writeHead(200, {'content-length': left * chunk.length});
  const more = () => { while (left > 0) { left--; if (!res.write(chunk)) { res.once('drain', more); return; } } res.end(); };
  more();
}).listen(443, () => console.log('listening'));
"""

# Sequential requests, a new TCP+TLS connection each; prints the median milliseconds.
CONNECTS_JS = r"""
const https = require('https'), fs = require('fs');
const ca = fs.readFileSync(process.argv[2]), count = Number(process.argv[3]), times = [];
const once = () => new Promise((done, fail) => {
  const started = process.hrtime.bigint();
  https.get({host: process.argv[1], path: '/', ca, agent: false}, (res) => {
    res.resume(); res.on('end', () => { times.push(Number(process.hrtime.bigint() - started) / 1e6); done(); });
  }).on('error', fail);
});
(async () => {
  for (let i = 0; i < count; i++) await once();
  times.sort((a, b) => a - b);
  console.log(times[Math.floor(times.length / 2)].toFixed(3));
})().catch((e) => { console.error(e.message); process.exit(1); });
"""


def config(home: Path, name_checks: bool, count: int) -> Config:
    """`big.bench.test` first (the self-test's name), then exact names and wildcards, `count` in all."""
    # The server container's address is on the Docker bridge, a private range: admitted from DNS.
    return harness.config(home, allowed_domains=harness.domains(count, first=(NAME,)), name_checks=name_checks,
                          allow_private_answers=True)


def one_start(engine: Engine, image: str, home: Path, name_checks: bool) -> float:
    return harness.start_to_exec(engine, image, config(home, name_checks, DOMAINS), LABELS)


class Sandbox:
    def __init__(self, engine: Engine, image: str, home: Path, name_checks: bool, ca_pem: str) -> None:
        cfg = config(home, name_checks, 1)
        plan = runplan.plan(cfg, Session.new(cfg.project_name), image, command=["--exec", "sleep", "infinity"])
        plan.labels.update(LABELS)
        self.container = engine.create(plan)
        engine.start(self.container)
        self.uid, self.gid = (str(i) for i in runplan.agent_ids(cfg))
        deadline = time.time() + 60
        while self.container.exec_run(["pgrep", "-u", self.uid, "-x", "sleep"]).exit_code != 0:
            if time.time() > deadline:
                raise RuntimeError(self.container.logs().decode(errors="replace"))
            time.sleep(0.1)
        self.run(["sh", "-c", f"cat > {CA_FILE} <<'PEM'\n{ca_pem}PEM"])

    def run(self, argv: list[str], as_agent: bool = True) -> str:
        prefix = drop_privileges(self.uid, self.gid) if as_agent else []
        code, output = self.container.exec_run(prefix + argv)
        if code != 0:
            raise RuntimeError(f"{argv[:3]} exited {code}: {output.decode(errors='replace')}")
        return output.decode().strip()

    def download_mb_per_s(self) -> float:
        url = f"https://{NAME}/big"
        speed = self.run(["curl", "-sSf", "--max-time", "120", "--cacert", CA_FILE, "-o", "/dev/null", "-w", "%{speed_download}", url])
        return float(speed) / 1e6

    def connect_ms(self) -> float:
        return float(self.run(["timeout", "120", "node", "-e", CONNECTS_JS, NAME, CA_FILE, str(CONNECTS)]))

    def proxy_memory_kb(self) -> tuple[int, int]:
        status = self.run(["sh", "-c", "cat /proc/$(cat /run/claude-docker-firewall/proxy.pid)/status"], as_agent=False)
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])

    def remove(self) -> None:
        self.container.remove(force=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--markdown", action="store_true", help="print tables for docs/benchmarks.md")
    args = parser.parse_args()

    client = docker.from_env()
    resolver = harness.SelfTestPeer()  # its host address is where the DNS server listens, its own
    # Node runs the HTTPS server and the connection timer: the image with `image.node: true`
    image = harness.image(Engine(client), node=True)
    ca_pem, cert_pem, key_pem = make_certificates((NAME, "*.bench.test"))
    server = client.containers.run(
        image,
        entrypoint=["node", "-e", SERVER_JS],
        command=[],
        environment={"TLS_KEY": key_pem, "TLS_CERT": cert_pem, "SIZE_MB": str(SIZE_MB)},
        labels=LABELS,
        detach=True,
    )
    home = Path(tempfile.mkdtemp(prefix="cd-bench-"))
    os.environ["CLAUDE_DOCKER_HOME"] = str(home)
    dns = None
    boxes: dict[bool, Sandbox] = {}
    speed: dict[bool, list[float]] = {True: [], False: []}
    latency: dict[bool, list[float]] = {True: [], False: []}
    start: dict[bool, list[float]] = {True: [], False: []}
    try:
        while b"listening" not in server.logs():
            time.sleep(0.1)
        server.reload()
        address = server.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        dns = harness.start_dns(resolver.host_address, {NAME: [address], "*.bench.test": [address]})
        engine = harness.engine_with_resolver(client, resolver.host_address)
        for checks in (True, False):
            boxes[checks] = Sandbox(engine, image, home, checks, ca_pem)
            boxes[checks].download_mb_per_s()  # warm up
        one_start(engine, image, home, True)
        for _ in range(args.runs):  # interleaved, so drift hits both cases alike
            for checks in (True, False):
                speed[checks].append(boxes[checks].download_mb_per_s())
                latency[checks].append(boxes[checks].connect_ms())
                start[checks].append(one_start(engine, image, home, checks))
        rss, peak = boxes[True].proxy_memory_kb()
    finally:
        for box in boxes.values():
            box.remove()
        server.remove(force=True)
        if dns is not None:
            dns.stop()
        resolver.stop()
        shutil.rmtree(home, ignore_errors=True)

    med = statistics.median
    rows = [
        (f"{SIZE_MB} MB HTTPS download", f"{med(speed[True]):.0f} MB/s", f"{med(speed[False]):.0f} MB/s",
         f"{med(speed[True]) / med(speed[False]):.2f}×"),
        (f"new HTTPS connection + request (median of {CONNECTS})", f"{med(latency[True]):.2f} ms",
         f"{med(latency[False]):.2f} ms", f"{med(latency[True]) - med(latency[False]):+.2f} ms"),
        (f"start → agent exec, {DOMAINS} domains", f"{med(start[True]) * 1000:.0f} ms",
         f"{med(start[False]) * 1000:.0f} ms", f"{(med(start[True]) - med(start[False])) * 1000:+.0f} ms"),
    ]
    if args.markdown:
        print(f"{args.runs} runs each, interleaved; medians, on {os.cpu_count()} CPUs.\n")
        print("| measure | proxy on | proxy off | on vs off |")
        print("|---|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        print(f"| proxy resident memory (peak) | {rss / 1024:.1f} MB ({peak / 1024:.1f} MB) | — | — |")
    else:
        for row in rows:
            print(f"{row[0]:>48}: on {row[1]:>10}  off {row[2]:>10}  {row[3]}")
        print(f"{'proxy resident memory (peak)':>48}: {rss / 1024:.1f} MB ({peak / 1024:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
