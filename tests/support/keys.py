"""Keys out of reach, the tests' side: the agent's search for a secret, a git server over TLS,
and sessions of the product image that trusts the test CA (fixtures, imported by the tests).

The real Claude Code binary runs in the product image behind the strict firewall, against the
scripted Messages API served over TLS with a test CA the image trusts, at a test name that
resolves to the Docker host. The scripted API checks the credential of every request; through
its Bash tool, the agent searches everything it can reach for the credential: its environment,
every readable file, /proc/*/environ, /proc/*/cmdline, /proc/*/mem and `ps` output.

The search (SCAN_PY) gets the secrets base64-encoded and decodes them in memory, so its own
command line never holds them; it reads the memory of other processes before it starts any
child that could hold them.
"""

from __future__ import annotations

import base64
import json
import os

import pytest

from claude_docker import runplan
from claude_docker.config.model import (
    Config,
    ImageConfig,
    NetworkConfig,
    PersistenceConfig,
    WorkspaceConfig,
)
from claude_docker.engine import Engine
from claude_docker.imagebuild import ensure_image
from claude_docker.session import Session
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.tls import test_ca
from tests.support.sandbox import _TestNetworkClient, remove_all, start_box
from tests.support.testbed import HOST_CA_BUNDLE, TEST_BASE_IMAGE

ENDPOINT_NAME = "llm-gateway.test"
GIT_NAME = "git.test"

# What the agent runs through its Bash tool: prints one JSON line,
# {"hits": [where, ...], "read": {kind: count}}.
SCAN_PY = r'''
import base64, json, os, re, subprocess, sys
secrets = [base64.b64decode(arg) for arg in sys.argv[1:]]
me = os.getpid()
hits, read = [], {"environ": 0, "cmdline": 0, "mem": 0, "files": 0, "ps": 0, "env": 0}

def found(data):
    return any(secret in data for secret in secrets)

if found("\0".join(f"{k}={v}" for k, v in os.environ.items()).encode()):
    hits.append("own environment")
read["env"] = 1
pids = [p for p in os.listdir("/proc") if p.isdigit()]
for pid in pids:
    for kind in ("environ", "cmdline"):
        try:
            data = open(f"/proc/{pid}/{kind}", "rb").read()
        except OSError:
            continue
        read[kind] += 1
        if found(data):
            hits.append(f"/proc/{pid}/{kind}")
    if int(pid) == me:
        continue
    try:
        maps = open(f"/proc/{pid}/maps").read().splitlines()
        mem = open(f"/proc/{pid}/mem", "rb", buffering=0)
    except OSError:
        continue
    read["mem"] += 1
    for line in maps:
        fields = line.split()
        if "r" not in fields[1] or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]")):
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        try:
            mem.seek(start)
            if found(mem.read(end - start)):
                hits.append(f"/proc/{pid}/mem")
                break
        except (OSError, OverflowError, ValueError):
            continue
for top in ("/",):
    for root, dirs, files in os.walk(top):
        if root == "/":
            dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev")]
        for name in files:
            path = os.path.join(root, name)
            try:
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            read["files"] += 1
            if found(data):
                hits.append(path)
ps = subprocess.run(["ps", "auxeww"], capture_output=True).stdout
read["ps"] = len(ps.splitlines())
if found(ps):
    hits.append("ps auxeww")
print(json.dumps({"hits": hits, "read": read}))
'''

# Inside Claude's Bash tool `grep` is a function running an embedded ugrep that skips binary
# input: /usr/bin/grep -a is the real one. The patterns come from a pipe, not the command line.
GREP_SH = r'''
decoded="$(printf %s "$1" | base64 -d)"
{ env; cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null; ps auxeww; } \
    | /usr/bin/grep -a -c -F -f <(printf '%s\n' "$decoded") || true
'''

# A git server over TLS: `git http-backend` behind Python's HTTP server, answering 401 unless
# the request carries the expected Authorization; every Authorization it saw goes to stdout.
GIT_SERVER_PY = r'''
import http.server, os, ssl, subprocess, sys
expected = os.environ["EXPECTED"]
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))
    def _any(self):
        auth = self.headers.get("Authorization", "")
        print("AUTH " + (auth or "-"), flush=True)
        body = self._body()
        if auth != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        env = {"GIT_PROJECT_ROOT": "/srv", "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path, "QUERY_STRING": query,
               "REQUEST_METHOD": self.command, "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "CONTENT_LENGTH": str(len(body)), "REMOTE_USER": "agent", "REMOTE_ADDR": "127.0.0.1",
               "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""), "PATH": os.environ["PATH"]}
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        sep = b"\r\n\r\n" if b"\r\n\r\n" in out else b"\n\n"
        head, _, rest = out.partition(sep)
        status = 200
        headers = []
        for line in head.decode().splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        self.wfile.write(rest)
    do_GET = do_POST = _any
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
open("/tmp/cert.pem", "w").write(os.environ["TLS_CERT"])
open("/tmp/key.pem", "w").write(os.environ["TLS_KEY"])
context.load_cert_chain("/tmp/cert.pem", "/tmp/key.pem")
server = http.server.ThreadingHTTPServer(("0.0.0.0", 443), Handler)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("listening", flush=True)
server.serve_forever()
'''


@pytest.fixture(scope="module")
def keys_image(docker_client) -> str:
    """The product image trusting the test CA (as image.extra_ca_certificates), with python3 and
    git for the agent's side and for the git server."""
    image = ImageConfig(
        base=TEST_BASE_IMAGE,
        extra_ca_certificates=(HOST_CA_BUNDLE, str(test_ca().cert_path)),
        apt_packages=("python3", "git"),
    )
    return ensure_image(Engine(docker_client), image).tag


@pytest.fixture
def start(docker_client, keys_image, gateway, cd_home, tmp_path):
    """start(network, environ, command) -> Sandbox: a session through the product's run plan."""
    created = []

    def run(network: NetworkConfig, environ: dict[str, str], command=("--exec", "sleep", "infinity"), wait=True, prepare=None,
            runtime=None, image=None):
        """`prepare(workspace)` and `runtime(runtime_dir)` change the workspace and the rendered
        runtime files before the container starts; `image` replaces the image trusting the test CA."""
        workspace = tmp_path / f"ws-{len(created)}"
        workspace.mkdir()
        (workspace / "scan.py").write_text(SCAN_PY)
        (workspace / "grep.sh").write_text(GREP_SH)
        if prepare:
            prepare(workspace)
        cfg = Config(
            source_files=(),
            project_dir=str(workspace),
            workspace=WorkspaceConfig(path=str(workspace)),
            network=network,
            persistence=PersistenceConfig(auth="none", shell_history=False, npm_cache=False, pip_cache=False, git_config=False),
        )
        uid, gid = runplan.agent_ids(cfg)
        for path in [workspace, *workspace.rglob("*")]:
            os.chown(path, uid, gid, follow_symlinks=False)
        session = Session.new(cfg.project_name)
        plan = runplan.plan(cfg, session, image or keys_image, command=list(command), environ=environ)
        if runtime:
            runtime(session.runtime_dir)
        engine = Engine(_TestNetworkClient(docker_client, [gateway], None, [], {}))
        return start_box(engine, plan, session, (uid, gid), created, wait)

    yield run
    remove_all(created)


def b64(secret: str) -> str:
    return base64.b64encode(secret.encode()).decode()


def scan_result(api: FakeAnthropic) -> dict:
    """The scanner's JSON line from the tool results Claude sent back."""
    for block in api.tool_results():
        content = block.get("content")
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        for line in str(content).splitlines():
            if line.startswith('{"hits"'):
                return json.loads(line)
    raise AssertionError(f"no scan result in {api.tool_results()}")


def grep_count(api: FakeAnthropic) -> str:
    for block in api.tool_results():
        content = block.get("content")
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        if str(content).strip().isdigit():
            return str(content).strip()
    raise AssertionError(f"no grep count in {api.tool_results()}")


def tls_api(script) -> FakeAnthropic:
    return FakeAnthropic(script, tls=test_ca().server_context((ENDPOINT_NAME,)))


