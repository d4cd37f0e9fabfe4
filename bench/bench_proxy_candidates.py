"""The candidates for the name-checking proxy, side by side: HAProxy, Squid and sniproxy (Debian).

In one throw-away container of the product image (nothing else is touched), each candidate is
installed from Debian (Squid as squid-openssl: the plain package has no
TLS peeking), configured to pass one allowlisted TLS name by SNI, and put behind the
same `nat OUTPUT` redirect the firewall uses. An HTTPS server on 127.0.0.2 plays the upstream
and dnsmasq resolves its name. For each candidate, and for no proxy at all:

- start-up: launch to listening;
- resident memory of all its processes after the runs;
- time to the answer of a small HTTPS request on a new connection, median of 200;
- throughput of a 200 MB HTTPS download.

    python3 bench/bench_proxy_candidates.py

Needs the test base image and Debian's mirror reachable from containers (apt-get install).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import docker  # noqa: E402

from bench import harness  # noqa: E402
from claude_docker.engine import Engine  # noqa: E402
from tests.fakes.shared_host import make_certificates  # noqa: E402

LABELS = {"dev.claude-docker.test": "bench-proxy-candidates"}

SERVER_JS = r"""
const https = require('https'), fs = require('fs');
const chunk = Buffer.alloc(1 << 16);
https.createServer({key: fs.readFileSync('/bench/key.pem'), cert: fs.readFileSync('/bench/cert.pem')}, (req, res) => {
  if (req.url !== '/big') { res.end('ok'); return; }
  let left = 200 * 16;
  res.writeHead(200, {'content-length': left * chunk.length});
  const more = () => { while (left > 0) { left--; if (!res.write(chunk)) { res.once('drain', more); return; } } res.end(); };
  more();
}).listen(443, '127.0.0.2', () => console.log('listening'));
"""

CONNECTS_JS = r"""
const https = require('https'), fs = require('fs');
const ca = fs.readFileSync('/bench/ca.pem'), times = [];
const once = () => new Promise((done, fail) => {
  const started = process.hrtime.bigint();
  https.get({host: 'shop.bench.test', path: '/', ca, agent: false}, (res) => {
    res.resume(); res.on('end', () => { times.push(Number(process.hrtime.bigint() - started) / 1e6); done(); });
  }).on('error', fail);
});
(async () => { for (let i = 0; i < 200; i++) await once(); times.sort((a, b) => a - b);
  console.log(times[100].toFixed(3)); })().catch((e) => { console.error(e.message); process.exit(1); });
"""

HAPROXY_CFG = """
global
    user haproxy
    group haproxy
    nbthread 1
defaults
    timeout connect 5s
    timeout client 1h
    timeout server 1h
resolvers local
    nameserver dnsmasq 127.0.0.1:53
    hold valid 1s
frontend tls
    mode tcp
    bind 127.0.0.1:15443
    tcp-request inspect-delay 10s
    tcp-request content reject unless { req.ssl_hello_type 1 }
    tcp-request content set-var(txn.name) req.ssl_sni,lower
    tcp-request content reject unless { var(txn.name) -m str shop.bench.test }
    tcp-request content do-resolve(txn.address,local,ipv4) var(txn.name)
    tcp-request content reject unless { var(txn.address) -m found }
    tcp-request content set-dst var(txn.address)
    default_backend up
backend up
    mode tcp
    server up 0.0.0.0:443
"""

SQUID_CONF = """
http_port 127.0.0.1:3128
https_port 127.0.0.1:15443 intercept ssl-bump generate-host-certificates=off tls-cert=/bench/cert.pem tls-key=/bench/key.pem
pinger_enable off
acl step1 at_step SslBump1
acl allowed ssl::server_name shop.bench.test
ssl_bump peek step1
ssl_bump splice allowed
ssl_bump terminate all
# Intercepted TLS arrives as a CONNECT to the dialled address: ssl_bump decides by SNI.
http_access allow all
cache deny all
cache_mem 0
access_log none
cache_log /var/log/squid/cache.log
pid_filename /run/squid-bench.pid
dns_nameservers 127.0.0.1
"""

SNIPROXY_CONF = """
user daemon
pidfile /run/sniproxy-bench.pid
resolver {
    nameserver 127.0.0.1
    mode ipv4_only
}
listener 127.0.0.1:15443 {
    protocol tls
    table allowed
}
table allowed {
    ^shop\\.bench\\.test$ *:443
}
"""

SCRIPT = r"""
set -eu
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends squid-openssl sniproxy >/dev/null 2>&1
service squid stop >/dev/null 2>&1 || true; pkill -x squid || true; pkill -x sniproxy || true
dnsmasq --port=53 --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts --address=/bench.test/127.0.0.2 --user=dnsmasq
printf 'nameserver 127.0.0.1\n' > /etc/resolv.conf
node /bench/server.js & sleep 1
export NODE_EXTRA_CA_CERTS=/bench/ca.pem
listening() { (exec 3<>/dev/tcp/127.0.0.1/15443) 2>/dev/null; }
measure() { # name user start-command
    local name="$1" user="$2"; shift 2
    local uid; uid="$(id -u "$user")"
    iptables -t nat -F OUTPUT
    iptables -t nat -A OUTPUT -p tcp -d 127.0.0.2 --dport 443 -m owner ! --uid-owner "$uid" -j REDIRECT --to-ports 15443
    local t0 t1; t0=$(date +%s%N); "$@"; until listening; do sleep 0.002; done; t1=$(date +%s%N)
    local latency; latency="$(node /bench/connects.js)"
    local speed; speed="$(curl -s -o /dev/null --cacert /bench/ca.pem -w '%{speed_download}' https://shop.bench.test/big)"
    speed="$(curl -s -o /dev/null --cacert /bench/ca.pem -w '%{speed_download}' https://shop.bench.test/big)"
    local refused=no; curl -s -k --max-time 3 --connect-to ::127.0.0.2:443 https://other.bench.test/ >/dev/null || refused=yes
    local rss; rss="$(ps -u "$user" -o rss= | awk '{ s += $1 } END { print s }')"
    printf '%s|%s|%s|%s|%s|%s\n' "$name" "$(( (t1 - t0) / 1000000 ))" "$rss" "$latency" "$(( ${speed%.*} / 1000000 ))" "$refused"
}
iptables -t nat -F OUTPUT
node /bench/connects.js >/dev/null; curl -s -o /dev/null --cacert /bench/ca.pem https://shop.bench.test/big  # warm up
printf 'none|-|-|%s|%s|-\n' "$(node /bench/connects.js)" "$(( $(curl -s -o /dev/null --cacert /bench/ca.pem -w '%{speed_download}' https://shop.bench.test/big | cut -d. -f1) / 1000000 ))"
measure haproxy haproxy sh -c 'haproxy -D -f /bench/haproxy.cfg'
pkill -x haproxy; sleep 0.5
measure squid proxy sh -c 'squid -f /bench/squid.conf'
squid -f /bench/squid.conf -k shutdown >/dev/null 2>&1 || true; pkill -x squid || true; sleep 1
measure sniproxy daemon sh -c 'sniproxy -c /bench/sniproxy.conf'
"""


def main() -> int:
    client = docker.from_env()
    image = harness.image(Engine(client), node=True)  # Node runs the HTTPS server and the connection timer
    ca, cert, key = make_certificates(("shop.bench.test", "other.bench.test"))
    files = {
        "ca.pem": ca, "cert.pem": cert, "key.pem": key, "server.js": SERVER_JS, "connects.js": CONNECTS_JS,
        "haproxy.cfg": HAPROXY_CFG, "squid.conf": SQUID_CONF, "sniproxy.conf": SNIPROXY_CONF, "run.sh": SCRIPT,
    }
    writes = " && ".join(f"printf %s \"$F_{i}\" > /bench/{name}" for i, name in enumerate(files))
    container = client.containers.run(
        image,
        entrypoint=["bash", "-c", f"mkdir -p /bench && {writes} && bash /bench/run.sh"],
        command=[],
        environment={f"F_{i}": content for i, content in enumerate(files.values())},
        cap_add=["NET_ADMIN"],
        labels=LABELS,
        detach=True,
    )
    try:
        code = container.wait(timeout=900)["StatusCode"]
        output = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    if code != 0:
        print(output, file=sys.stderr)
        return 1
    print("| proxy | start-up | resident memory | new HTTPS connection + request (median of 200) | 200 MB download | other SNI refused |")
    print("|---|---|---|---|---|---|")
    for line in output.splitlines():
        if line.count("|") == 5:
            name, start, rss, latency, speed, refused = line.split("|")
            memory = f"{int(rss) / 1024:.1f} MB" if rss != "-" else "—"
            print(f"| {name} | {start if start == '-' else start + ' ms'} | {memory} | {latency} ms | {speed} MB/s | {refused} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
