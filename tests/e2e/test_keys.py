"""Keys out of reach, end to end: the real Claude Code binary behind the strict firewall uses the
model (over TLS, with a test CA the image trusts) and git, while its own search of everything it
can reach (environment, readable files, /proc/*/environ, /proc/*/cmdline, /proc/*/mem, `ps`)
finds neither credential. The scripted API checks the credential of every request.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from pathlib import Path

import pytest

from claude_docker.config.model import GitCredential, NetworkConfig
from tests.fakes.anthropic import FakeAnthropic, bash, text
from tests.fakes.http import address_on
from tests.fakes.tls import test_ca
from tests.support.keys import ENDPOINT_NAME, GIT_NAME, GIT_SERVER_PY, b64, grep_count, scan_result, tls_api
from tests.support.testbed import TEST_LABEL


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


