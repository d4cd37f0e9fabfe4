"""`claude-docker kube`: the sandbox as Kubernetes manifests.

Executed for real: no cluster runs here, but Podman plays Pod YAML (`podman kube play`). The
rendered Job runs the real Claude binary against the scripted API behind the firewall container,
with escape probes from the agent's own Bash tool calls, and a broken firewall keeps the agent
from ever starting. tests/unit/test_kubernetes.py checks the rendering itself.

Where Podman 4.3 differs from a cluster, the manifest stays as rendered and only the test adapts
it (`adapt_for_podman`); docs/kubernetes.md lists the same adaptations.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from claude_docker.cli import main
from claude_docker.config.model import ImageConfig
from claude_docker.engine import _hard_limits
from claude_docker.features.credentials import PLACEHOLDER
from claude_docker.features.image import build_context, image_tag
from tests.fakes.anthropic import FakeAnthropic, bash, text
from tests.fakes.http import SERVER_JS
from tests.fakes.twilio import FakeTwilio
from tests.support.kube import pod_spec, render, workload
from tests.support.testbed import HOST_CA_BUNDLE, TEST_BASE_IMAGE, copy_into_podman, rootful_podman
from tests.support.wait import wait_for

PODMAN_GATEWAY = "10.88.0.1"  # the default Podman network's gateway: the host, as a Pod sees it


# --- executed for real on Podman ------------------------------------------------------------------
#
# Podman 4.3 plays Pod YAML but differs from a cluster; adapt_for_podman changes only this:
#  1. A Job becomes its pod template as a bare Pod: `podman kube play` does not run Jobs. The
#     Job's own fields (backoffLimit, activeDeadlineSeconds) are checked by the rendering tests.
#  2. The firewall's native sidecar (an init container with restartPolicy: Always) becomes the first
#     regular container: Podman runs init containers to completion before the others and knows no
#     sidecars, and it has no startupProbe gate. The agent's own bounded wait on the ready file
#     is then what holds it back, which is what these tests prove.
#  3. The Secret is a Podman secret made with `podman secret create` holding a JSON object of
#     base64 values (what Podman 4.3 reads for secretKeyRef), not `kubectl create secret`.
#  4. The image is the one the Docker tests built, copied into Podman's store, and the CLI gets a
#     containers.conf with ulimits that fit this host (docs/engine.md, "Podman").
#  5. Podman 4.3 makes each emptyDir a volume named after it, which pods playing at the same time
#     share; the test prefixes them with the pod's name (and removes them).
#  6. `kube play --network podman`: Podman 4.3 otherwise plays pods on its own
#     podman-default-kube-network; on the default network the host (the API stand-in) is at
#     10.88.0.1, next to the test servers.


def adapt_for_podman(document: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(document)
    spec = pod_spec(document)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": document["metadata"], "spec": spec}
    sidecars = [c for c in spec.get("initContainers", []) if c.get("restartPolicy") == "Always"]
    others = [c for c in spec.get("initContainers", []) if c.get("restartPolicy") != "Always"]
    assert not others, "a clone init container would run before the firewall on Podman"
    spec.pop("initContainers", None)
    for sidecar in sidecars:
        del sidecar["restartPolicy"]
        sidecar.pop("startupProbe", None)
    spec["containers"] = [*sidecars, *spec["containers"]]
    prefix = document["metadata"]["name"]
    renamed = {v["name"]: f"{prefix}-{v['name']}" for v in spec["volumes"] if "emptyDir" in v}
    for volume in spec["volumes"]:
        volume["name"] = renamed.get(volume["name"], volume["name"])
    for each in spec["containers"]:
        for mount in each.get("volumeMounts", []):
            mount["name"] = renamed.get(mount["name"], mount["name"])
    return pod


@pytest.fixture(scope="module")
def podman(docker_client, server_image, tmp_path_factory) -> dict[str, Any]:
    """Rootful podman with the standard product image in its store; the environment for its CLI."""
    binary = rootful_podman()
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    nofile, nproc = _hard_limits()
    conf.write_text(f'[containers]\ndefault_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n')
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    env.pop("DOCKER_HOST", None)
    tag = image_tag(build_context(ImageConfig(base=TEST_BASE_IMAGE, extra_ca_certificates=(HOST_CA_BUNDLE,))))
    image = f"localhost/{tag}"
    copy_into_podman(binary, tag, image, env)
    copy_into_podman(binary, server_image, f"localhost/{server_image}", env)  # the tests' servers run Node
    return {"binary": binary, "env": env, "image": image, "server_image": f"localhost/{server_image}"}


def run_podman(podman: dict[str, Any], *args: str, check: bool = True, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([podman["binary"], *args], env=podman["env"], capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"podman {' '.join(args)}: {result.stdout}{result.stderr}"
    return result


class PlayedPod:
    """One rendered Job played on Podman, and everything the test created for it."""

    def __init__(self, podman: dict[str, Any], tmp_path: Path) -> None:
        self.podman = podman
        self.tmp_path = tmp_path
        self.name = f"cd-kube-test-{secrets.token_hex(3)}"
        self.secret = self.name
        self.claim = f"{self.name}-ws"
        self.servers: list[str] = []
        self.secrets: list[str] = []
        self.play_file: Path | None = None

    def start_server(self, label: str) -> str:
        """A test HTTP server container on Podman's network (answers with `label`); its address."""
        name = f"{self.name}-{label}"
        run_podman(self.podman, "run", "-d", "--name", name, "--entrypoint", "node", "-e", f"SERVER_NAME={label}",
                   self.podman["server_image"], "-e", SERVER_JS)
        self.servers.append(name)
        assert wait_for(lambda: "listening" in run_podman(self.podman, "logs", name).stdout, 30, interval=0.2), f"test server {label} did not start"
        return run_podman(self.podman, "inspect", "--format", "{{.NetworkSettings.IPAddress}}", name).stdout.strip()

    def create_secret(self, values: dict[str, str], name: str | None = None) -> None:
        name = name or self.secret
        body = self.tmp_path / f"{name}.json"
        body.write_text(json.dumps({key: base64.b64encode(value.encode()).decode() for key, value in values.items()}))
        run_podman(self.podman, "secret", "create", name, str(body))
        body.unlink()
        self.secrets.append(name)

    def render(self, config_yaml: str, claude_args: list[str], *extra: str, env: dict[str, str] | None = None) -> dict[str, list[dict[str, Any]]]:
        return render(self.tmp_path, config_yaml, "--name", self.name, "--secret", self.secret, "--image", self.podman["image"],
                      "--workspace-claim", self.claim, *extra, "--", *claude_args, env=env)

    def shared_volume(self, name: str) -> None:
        """An emptyDir as Kubernetes makes it (mode 0777), ahead of `kube play`, which would make
        it root's 0755: the agent's hooks and the notifier, two non-root uids, both write it."""
        volume = f"{self.name}-{name}"
        run_podman(self.podman, "volume", "create", volume)
        mountpoint = run_podman(self.podman, "volume", "inspect", "--format", "{{.Mountpoint}}", volume).stdout.strip()
        os.chmod(mountpoint, 0o777)

    def play(self, files: dict[str, list[dict[str, Any]]], adapt: Any = None) -> None:
        pod = adapt_for_podman(workload(files))
        if adapt:
            adapt(pod)
        self.play_file = self.tmp_path / "play.yaml"
        self.play_file.write_text(yaml.safe_dump_all([*files["configmap.yaml"], pod], sort_keys=False))
        run_podman(self.podman, "kube", "play", "--network", "podman", str(self.play_file), timeout=300)

    def wait(self, container_name: str, timeout: float) -> int:
        """The exit code of one of the Pod's containers, once it has exited."""
        full = f"{self.name}-{container_name}"

        def exited() -> list[str] | None:
            state = run_podman(self.podman, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", full).stdout.split()
            return state if state[0] in ("exited", "stopped") else None

        state = wait_for(exited, timeout, interval=1)
        assert state, f"{full} has not exited after {timeout}s:\n{self.logs(container_name)}"
        return int(state[1])

    def logs(self, container_name: str) -> str:
        result = run_podman(self.podman, "logs", f"{self.name}-{container_name}", check=False)
        return result.stdout + result.stderr

    def workspace_file(self, name: str) -> Path:
        mountpoint = run_podman(self.podman, "volume", "inspect", "--format", "{{.Mountpoint}}", self.claim).stdout.strip()
        return Path(mountpoint) / name

    def remove(self) -> None:
        if self.play_file is not None:
            run_podman(self.podman, "kube", "down", str(self.play_file), check=False)
        for server in self.servers:
            run_podman(self.podman, "rm", "-f", server, check=False)
        # kube play makes a volume for the claim and one for the ConfigMap; kube down keeps both.
        emptydirs = ("ready", "outbox", "home", "log", "notifier-state")
        for volume in (self.claim, f"{self.name}-runtime", *(f"{self.name}-{v}" for v in emptydirs)):
            run_podman(self.podman, "volume", "rm", "-f", volume, check=False)
        for secret in self.secrets:
            run_podman(self.podman, "secret", "rm", secret, check=False)


@pytest.fixture
def played(podman, tmp_path, cd_home):
    pod = PlayedPod(podman, tmp_path)
    yield pod
    pod.remove()


def firewall_config(allowed: str) -> str:
    """The host stays closed: the API stand-in on it is the model endpoint, opened exactly."""
    return (
        f"image:\n  base: {TEST_BASE_IMAGE}\n  extra_ca_certificates: [{HOST_CA_BUNDLE}]\n"
        "network:\n  firewall: true\n"
        f"  allowed_cidrs: [\"{allowed}/32:80\"]\n"
    )


def endpoint_env(api: FakeAnthropic) -> dict[str, str]:
    """ANTHROPIC_BASE_URL where `kube` renders: inline in the manifest, opened by the firewall."""
    return {"ANTHROPIC_BASE_URL": api.url_for(PODMAN_GATEWAY)}


def test_the_rendered_job_runs_claude_behind_the_firewall_on_podman(played):
    allowed = played.start_server("allowed-server")
    forbidden = played.start_server("forbidden-server")
    probes = (
        f"curl -sS -m 5 http://{allowed}/; echo \" allowed-rc=$?\"; "
        f"curl -sS -m 5 http://{forbidden}/; echo \" forbidden-rc=$?\"; "
        "getent hosts example.com >/dev/null; echo \" dns-rc=$?\"; "
        "id -u; echo written-in-the-pod > /workspace/result.txt"
    )
    with FakeAnthropic() as api:
        # Keys out of reach: the agent's own search of everything it can read for the key the
        # Secret holds (given base64-encoded, so no command line holds it; /usr/bin/grep -a, as
        # Claude's Bash tool replaces grep with a function that skips binary input).
        key = base64.b64encode(api.api_key.encode()).decode()
        search = (
            f'k="$(printf %s {key} | base64 -d)"; '
            "{ env; cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null; ps auxeww 2>/dev/null; } "
            "| /usr/bin/grep -a -c -F -f <(printf '%s\\n' \"$k\"); "
            "/usr/bin/grep -r -a -l -F -f <(printf '%s\\n' \"$k\") / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev 2>/dev/null; "
            'echo "search-done procs=$(ls -d /proc/[0-9]* | wc -l) key=${ANTHROPIC_API_KEY:-none}"'
        )
        api.script = [bash(probes), bash(search, "search for the key"), text("The task is done.")]
        played.create_secret({"ANTHROPIC_API_KEY": api.api_key})
        files = played.render(firewall_config(allowed), ["-p", "probe the network and write result.txt"], env=endpoint_env(api))
        assert workload(files)["kind"] == "Job"
        played.play(files)
        code = played.wait("agent", timeout=240)
        logs = played.logs("agent")
        firewall_logs = played.logs("firewall")
        dns_log = run_podman(played.podman, "exec", f"{played.name}-firewall", "cat", "/run/claude-docker/log/dns.log").stdout

    assert code == 0, logs + firewall_logs
    assert "The task is done." in logs
    assert "claude-docker: firewall ready" in firewall_logs
    [result, searched] = api.tool_results()
    output = json.dumps(result.get("content"))
    found = json.dumps(searched.get("content"))
    # Nothing: no match in the agent's environment, any /proc/*/environ or cmdline, `ps`, or any
    # file it can read; Claude holds the placeholder, and every request reached the API with the key.
    assert found.startswith('"0\\nsearch-done procs=') and f"key={PLACEHOLDER}" in found, found
    assert "allowed-server allowed-rc=0" in output, output  # the allowlisted server answers
    assert "forbidden-server" not in output and "forbidden-rc=0" not in output, output  # the other one does not
    assert "dns-rc=0" not in output, output  # names outside the allowlist do not resolve:
    assert "config example.com is NXDOMAIN" in dns_log, dns_log  # dnsmasq refused it, not the upstream
    assert "1000" in output  # Claude's Bash tool runs as the agent's uid
    assert played.workspace_file("result.txt").read_text() == "written-in-the-pod\n"
    assert all(r.headers.get("x-api-key") == api.api_key for r in api.requests if r.method == "POST")


def test_a_failed_firewall_keeps_the_agent_from_starting_on_podman(played):
    """Fail closed: without NET_ADMIN the firewall cannot load its rules, and Claude never runs,
    not even while a ready file from another Pod lies in the shared volume."""

    def break_the_firewall(pod: dict[str, Any]) -> None:
        firewall = pod["spec"]["containers"][0]
        assert firewall["name"] == "firewall"
        firewall["securityContext"]["capabilities"]["add"].remove("NET_ADMIN")
        # Start late, so the agent meets the stale ready file below before the firewall clears it.
        firewall["command"] = ["/bin/bash", "-c", f"sleep 5; exec /bin/bash {firewall['command'][-1]}"]

    with FakeAnthropic([text("must never be asked")]) as api:
        played.create_secret({"ANTHROPIC_API_KEY": api.api_key})
        files = played.render(firewall_config("10.88.255.254"), ["-p", "anything"], env=endpoint_env(api))
        # A ready file another Pod left behind (a shared volume): it names another namespace.
        stale = f"{played.name}-ready"
        run_podman(played.podman, "volume", "create", stale)
        mountpoint = run_podman(played.podman, "volume", "inspect", "--format", "{{.Mountpoint}}", stale).stdout.strip()
        (Path(mountpoint) / "ok").write_text("net:[4026531840]\n")
        played.play(files, adapt=break_the_firewall)
        code = played.wait("agent", timeout=180)
        logs = played.logs("agent")
    assert code == 70, logs
    assert "the firewall could not be set up; the session did not start" in logs
    assert api.requests == []
    assert played.wait("firewall", timeout=30) == 70


# --- the notifier container on Podman ----------------------------------------------------------------
#
# Two more adaptations (docs/kubernetes.md lists them):
#  7. Podman does not stop the (former) sidecars when the agent exits, as Kubernetes does with
#     SIGTERM; the test sends that SIGTERM itself (`podman stop`) once the agent has exited.
#  8. emptyDirs that two non-root uids write (the outbox: the agent's hooks and the notifier; the
#     notifier's state) are created ahead with the mode Kubernetes gives an emptyDir (0777).


@pytest.fixture(scope="module")
def notifier_image(podman, docker_client) -> str:
    """The notifier image `kube --build` makes, built on the test's sandbox image, in Podman's store."""
    from claude_docker.engine import Engine
    from claude_docker.kubernetes import notifier_build_context, notifier_image_tag

    sandbox = podman["image"].removeprefix("localhost/")
    tag = notifier_image_tag(sandbox)
    engine = Engine(docker_client)
    if engine.image_labels(tag) is None:
        engine.build(notifier_build_context(sandbox), tag=tag)
    copy_into_podman(podman["binary"], tag, f"localhost/{tag}", podman["env"])
    return f"localhost/{tag}"


def test_the_notifier_container_delivers_the_session_end_and_the_agent_cannot_use_its_credentials(played, notifier_image):
    """A Job with a Twilio notifier: Claude's Stop and the session_end arrive at the Twilio
    stand-in, sent by the notifier container with its own Secret (the stand-in checks the
    credentials). From its own Bash tool call the agent looks for that credential (environment,
    every /proc/*/environ and cmdline it can see, every file it can read) and finds nothing, and
    cannot reach the Twilio endpoint that the notifier reaches: the owner match."""
    twilio = FakeTwilio(host="0.0.0.0", auth_token="tw-" + secrets.token_hex(12)).start()
    half = len(twilio.auth_token) // 2
    head, tail = twilio.auth_token[:half], twilio.auth_token[half:]
    endpoint = f"http://{PODMAN_GATEWAY}:{twilio.port}/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    probes = (
        # The token is looked for without ever being written whole on a command line.
        f"printf '%s%s' '{head}' '{tail}' > /tmp/pattern; "
        "in_processes=$( { env; cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null; } "
        "| /usr/bin/grep -a -c -F -f /tmp/pattern ); "
        "in_files=$( /usr/bin/grep -a -r -l -F -f /tmp/pattern /run /opt /home /workspace /etc /var /tmp 2>/dev/null "
        "| /usr/bin/grep -v -x /tmp/pattern | wc -l ); echo \" secret-hits=$in_processes/$in_files\"; "
        "env | /usr/bin/grep -c -i -e twilio -e CLAUDE_DOCKER_NOTIFIER | sed 's/^/ notifier-env=/'; "
        "ls -d /run/claude-docker/notifier 2>/dev/null; echo \" state-dir-rc=$?\"; "
        "ps -eo user,comm | /usr/bin/grep -c python | sed 's/^/ notifier-processes=/'; "
        f"curl -sS -m 5 -u '{twilio.account_sid}:guess' -d To=+15551234567 -d From=+15005550006 -d Body=from-the-agent "
        f"{endpoint}; echo \" notifier-endpoint-rc=$?\""
    )
    config = firewall_config("10.88.255.254") + (
        "notifier:\n  on: [stop, session_end]\n  min_interval_seconds: 0\n"
        "  twilio:\n    account_sid: ${TWILIO_ACCOUNT_SID}\n    auth_token: ${TWILIO_AUTH_TOKEN}\n"
        f"    api_base: http://{PODMAN_GATEWAY}:{twilio.port}\n    from: '+15005550006'\n    to: ['+15551234567']\n"
    )
    notifier_env = {"TWILIO_ACCOUNT_SID": twilio.account_sid, "TWILIO_AUTH_TOKEN": twilio.auth_token}
    try:
        with FakeAnthropic([bash(probes), text("The task is done.")]) as api:
            played.create_secret({"ANTHROPIC_API_KEY": api.api_key})
            env = {**endpoint_env(api), **notifier_env}
            files = played.render(config, ["-p", "probe for the notifier's credentials"], "--notifier-image", notifier_image,
                                  "--notifier-secret", f"{played.name}-notify", env=env)
            result = CliRunner().invoke(
                main, ["kube", "-f", str(played.tmp_path / "project" / "claude-docker.yaml"), "--notifier-config"],
                env={"CLAUDE_DOCKER_HOME": str(played.tmp_path / "home"), **env},
            )
            assert result.exit_code == 0, result.output
            played.create_secret({"notifier.json": result.stdout.strip()}, name=f"{played.name}-notify")
            for volume in ("outbox", "notifier-state"):
                played.shared_volume(volume)
            played.play(files)
            code = played.wait("agent", timeout=240)
            logs = played.logs("agent")
            # The Stop message goes out while the Pod runs; the session_end waits for the final flush.
            assert wait_for(lambda: len(twilio.messages) >= 1, timeout=30), played.logs("notifier")
            before_sigterm = list(twilio.messages)
            run_podman(played.podman, "stop", "--time", "60", f"{played.name}-notifier", timeout=90)  # Kubernetes' SIGTERM
            notifier_code = played.wait("notifier", timeout=10)
            notifier_logs = played.logs("notifier")
    finally:
        twilio.stop()

    assert code == 0, logs + played.logs("firewall")
    assert "The task is done." in logs
    [result] = api.tool_results()
    output = json.dumps(result.get("content"))
    assert "secret-hits=0/0" in output, output  # not in its environment, no process, no file it can read
    assert "notifier-env=0" in output, output
    assert "state-dir-rc=0" not in output, output
    assert "notifier-processes=0" in output, output
    assert "notifier-endpoint-rc=7" in output, output  # refused by the firewall (owner match): no connection
    assert all(r.form.get("Body") != "from-the-agent" for r in twilio.requests)

    assert notifier_code == 0, notifier_logs
    project = workload(files)["metadata"]["labels"]["dev.claude-docker/project"]
    assert len(before_sigterm) == 1 and before_sigterm[0]["Body"].startswith(f"claude-docker {project}: Claude finished"), before_sigterm
    bodies = [m["Body"] for m in twilio.messages]
    assert len(bodies) == 2 and bodies[0].endswith("The task is done."), bodies
    assert "session ended" in bodies[1], bodies
    assert all(r.auth == (twilio.account_sid, twilio.auth_token) for r in twilio.requests)  # the notifier's own Secret
    assert "final delivery done: 1 sent, 0 left undelivered" in notifier_logs, notifier_logs


