"""`claude-docker kube`: the sandbox as Kubernetes manifests.

Two halves:
- rendering: every variant validates offline against the Kubernetes 1.37 schemas (strict: an
  unknown field fails too), keeps the sandbox's posture and never inlines a credential or mounts
  a host path;
- executed for real: no cluster runs here, but Podman plays Pod YAML (`podman kube play`). The
  rendered Job runs the real Claude binary against the scripted API behind the firewall container,
  with escape probes from the agent's own Bash tool calls, and a broken firewall keeps the agent
  from ever starting.

Where Podman 4.3 differs from a cluster, the manifest stays as rendered and only the test adapts
it (`adapt_for_podman`); docs/kubernetes.md lists the same adaptations.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from claude_docker.cli import main
from claude_docker.config.model import ImageConfig
from claude_docker.engine import _hard_limits
from claude_docker.features.image import build_context, image_tag
from claude_docker.kubernetes import FIREWALL_SCRIPT, NOTIFIER_UID, READY_DIR
from tests.conftest import HOST_CA_BUNDLE, TEST_BASE_IMAGE, copy_into_podman, rootful_podman
from tests.fakes.anthropic import FakeAnthropic, bash, text
from tests.fakes.http import SERVER_JS
from tests.fakes.twilio import FakeTwilio

KUBERNETES_VERSION = "1.37"
PODMAN_GATEWAY = "10.88.0.1"  # the default Podman network's gateway: the host, as a Pod sees it


# --- rendering ----------------------------------------------------------------------------------


def render(tmp_path: Path, config_yaml: str, *args: str, env: dict[str, str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Run `claude-docker kube` on a project holding `config_yaml`; return file name -> documents."""
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "claude-docker.yaml").write_text(config_yaml)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["kube", "-f", str(project / "claude-docker.yaml"), "-o", str(out), *args], env={"CLAUDE_DOCKER_HOME": str(tmp_path / "home"), **(env or {})}
    )
    assert result.exit_code == 0, result.output
    return {path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc] for path in sorted(out.iterdir())}


def workload(files: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    [document] = files.get("job.yaml") or files["pod.yaml"]
    return document


def pod_spec(document: dict[str, Any]) -> dict[str, Any]:
    return document["spec"]["template"]["spec"] if document["kind"] == "Job" else document["spec"]


def container(spec: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [c for c in [*spec.get("initContainers", []), *spec["containers"]] if c["name"] == name]
    return found


def validate(document: dict[str, Any]) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


MCP_YAML = """\
claude:
  env:
    GITHUB_TOKEN: ghp-literal-value-in-the-config
    EDITOR: vim
  mcp_servers:
    docs:
      command: npx
      args: [-y, docs-mcp]
      env: {DOCS_TOKEN: "${DOCS_TOKEN}"}
    search:
      type: http
      url: https://search.example.com/mcp
      headers: {Authorization: "Bearer ${SEARCH_TOKEN:-}"}
"""

NOTIFIER_YAML = """\
notifier:
  on: [stop, session_end]
  twilio:
    account_sid: ${TWILIO_ACCOUNT_SID}
    auth_token: ${TWILIO_AUTH_TOKEN}
    from: "+15005550006"
    to: ["+15551234567"]
  webhooks:
    - {url: "https://hooks.example.com/claude", headers: {Authorization: "Bearer ${HOOK_TOKEN}"}}
    - {url: "http://10.20.30.40:8080/hook"}
"""
NOTIFIER_ENV = {
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": "twilio-token-never-inline",
    "HOOK_TOKEN": "hook-token-never-inline",
}
PROVIDER_ENV = {
    "ANTHROPIC_BASE_URL": "http://10.1.2.3:4000",
    "ANTHROPIC_MODEL": "claude-model-x",
    "ANTHROPIC_AUTH_TOKEN": "gateway-token-never-inline",
    "ANTHROPIC_CUSTOM_HEADERS": "X-Team: secret-header-never-inline",
}

VARIANTS = {
    "job-on-a-claim": ("", ["--workspace-claim", "repo", "--", "-p", "fix the test"]),
    "pod-from-git": ("", ["--git-url", "https://github.com/example/repo.git", "--git-ref", "main", "--state-claim", "home"]),
    "no-firewall": ("network:\n  firewall: false\n", ["--workspace-claim", "repo", "--", "--print", "x"]),
    "resources-and-namespace": (
        "resources: {memory: 8g, cpus: 1.5, shm_size: 1g, gpus: 2}\n",
        ["--workspace-claim", "repo", "-n", "agents", "--name", "task-1", "--deadline", "600"],
    ),
    "mcp-and-env-secrets": (MCP_YAML, ["--workspace-claim", "repo", "--secret", "team-keys"]),
    "notifier-job": (NOTIFIER_YAML, ["--workspace-claim", "repo", "--", "-p", "x"]),
    "notifier-pod-from-git": (NOTIFIER_YAML, ["--git-url", "https://github.com/example/repo.git", "--notifier-secret", "n"]),
}
VARIANT_ENV = {**NOTIFIER_ENV, **PROVIDER_ENV}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_rendered_manifest_validates_against_the_kubernetes_schemas(tmp_path, variant):
    config, args = VARIANTS[variant]
    files = render(tmp_path, config, *args, env=VARIANT_ENV)
    documents = [doc for docs in files.values() for doc in docs]
    assert {doc["kind"] for doc in documents} in ({"ConfigMap", "Job"}, {"ConfigMap", "Pod"})
    for document in documents:
        validate(document)


def test_the_validation_can_fail(tmp_path):
    import kubernetes_validate

    document = workload(render(tmp_path, "", "--workspace-claim", "repo", "--", "-p", "x"))
    broken = copy.deepcopy(document)
    pod_spec(broken)["containers"][0]["securityContext"]["runAsNonroot"] = True  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)
    broken = copy.deepcopy(document)
    broken["spec"]["backoffLimit"] = "none"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)


def test_a_headless_task_is_a_job_that_runs_once_within_a_deadline(tmp_path):
    files = render(tmp_path, "", "--workspace-claim", "repo", "--deadline", "900", "--", "-p", "fix the test")
    job = workload(files)
    assert job["kind"] == "Job" and job["apiVersion"] == "batch/v1"
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 900
    spec = pod_spec(job)
    assert spec["restartPolicy"] == "Never"
    agent = container(spec, "agent")
    assert agent["args"] == ["-p", "fix the test"]
    assert "tty" not in agent and "stdin" not in agent


def test_an_interactive_session_is_a_pod_to_attach_to(tmp_path):
    pod = workload(render(tmp_path, "", "--workspace-claim", "repo"))
    assert pod["kind"] == "Pod"
    agent = container(pod["spec"], "agent")
    assert agent["stdin"] is True and agent["tty"] is True
    assert pod["spec"]["restartPolicy"] == "Never"


def test_the_firewall_is_a_root_sidecar_with_only_its_capabilities_and_the_agent_has_none(tmp_path):
    spec = pod_spec(workload(render(tmp_path, "", "--workspace-claim", "repo", "--", "-p", "x")))
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {"name": "net.ipv4.ping_group_range", "value": "1 0"} in spec["securityContext"]["sysctls"]
    assert "hostNetwork" not in spec and "hostPID" not in spec

    [firewall] = spec["initContainers"]
    assert firewall["name"] == "firewall" and firewall["restartPolicy"] == "Always"  # a native sidecar
    assert firewall["command"][-1].endswith(FIREWALL_SCRIPT)
    assert firewall["startupProbe"]["exec"]["command"] == ["test", "-e", f"{READY_DIR}/ok"]
    security = firewall["securityContext"]
    assert security["capabilities"]["drop"] == ["ALL"]
    assert set(security["capabilities"]["add"]) <= {"NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE", "SETUID", "SETGID", "CHOWN"}
    assert security["allowPrivilegeEscalation"] is False and security["privileged"] is False

    agent = container(spec, "agent")
    assert agent["securityContext"] == {
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    ready = {m["mountPath"]: m for m in agent["volumeMounts"]}[READY_DIR]
    assert ready["readOnly"] is True  # the agent cannot forge the firewall's ready file
    assert agent["command"] == ["/bin/bash", "/opt/claude-docker/runtime/kube-agent.sh"]


def test_credentials_are_secret_references_and_never_values(tmp_path):
    env = {"DOCS_TOKEN": "docs-secret-value", "ANTHROPIC_API_KEY": "sk-ant-never-inline", "SEARCH_TOKEN": "search-secret"}
    files = render(tmp_path, MCP_YAML, "--workspace-claim", "repo", "--secret", "team-keys", env=env)
    text_of_everything = yaml.safe_dump_all([doc for docs in files.values() for doc in docs])
    for value in (*env.values(), "ghp-literal-value-in-the-config"):
        assert value not in text_of_everything
    agent_env = {e["name"]: e for e in container(pod_spec(workload(files)), "agent")["env"]}
    for name in ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "DOCS_TOKEN", "SEARCH_TOKEN", "GITHUB_TOKEN"):
        assert agent_env[name]["valueFrom"]["secretKeyRef"]["name"] == "team-keys", name
        assert agent_env[name]["valueFrom"]["secretKeyRef"]["key"] == name
        assert "value" not in agent_env[name]
    assert agent_env["DOCS_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is False  # MCP needs it
    assert agent_env["SEARCH_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True  # has a default
    assert agent_env["EDITOR"] == {"name": "EDITOR", "value": "vim"}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_no_credential_value_is_ever_written_into_a_manifest(tmp_path, variant):
    config, args = VARIANTS[variant]
    text_of_everything = json.dumps(render(tmp_path, config, *args, env=VARIANT_ENV))
    for name, value in VARIANT_ENV.items():
        if name not in ("ANTHROPIC_BASE_URL", "ANTHROPIC_MODEL", "TWILIO_ACCOUNT_SID"):
            assert value not in text_of_everything, name


def test_the_notifier_is_a_sidecar_of_its_own_uid_with_its_own_secret(tmp_path):
    files = render(tmp_path, NOTIFIER_YAML, "--workspace-claim", "repo", "--notifier-secret", "notify-keys", "--", "-p", "x",
                   env=NOTIFIER_ENV)
    spec = pod_spec(workload(files))
    assert [c["name"] for c in spec["initContainers"]] == ["firewall", "notifier"]  # after the firewall's gate
    notifier = container(spec, "notifier")
    assert notifier["restartPolicy"] == "Always"  # a native sidecar: it never keeps the Job from completing
    assert notifier["command"] == ["python3", "-m", "claude_docker.notify.pod"]
    assert notifier["image"].startswith("claude-docker-notifier:")
    security = notifier["securityContext"]
    assert security["runAsUser"] == NOTIFIER_UID and security["runAsGroup"] == NOTIFIER_UID
    assert NOTIFIER_UID not in (0, container(spec, "agent")["securityContext"]["runAsUser"])
    assert security["capabilities"] == {"drop": ["ALL"]} and security["allowPrivilegeEscalation"] is False
    assert security["runAsNonRoot"] is True and security["readOnlyRootFilesystem"] is True
    assert spec["terminationGracePeriodSeconds"] >= 60  # time for the final delivery after SIGTERM
    [config_ref] = [e for e in notifier["env"] if "secretKeyRef" in e.get("valueFrom", {})]
    assert config_ref["valueFrom"]["secretKeyRef"] == {"name": "notify-keys", "key": "notifier.json"}
    mounts = {m["mountPath"]: m["name"] for m in notifier["volumeMounts"]}
    assert mounts == {"/run/claude-docker/notifier": "notifier-state", "/run/claude-docker/notifier/outbox": "outbox"}

    # The agent container has no way to the notifier's credentials or its state.
    agent = container(spec, "agent")
    agent_refs = [e["valueFrom"]["secretKeyRef"] for e in agent["env"] if "secretKeyRef" in e.get("valueFrom", {})]
    assert agent_refs and all(ref["name"] == "claude-docker" for ref in agent_refs)
    assert all(ref["key"] != "notifier.json" for ref in agent_refs)
    assert "notifier-state" not in {m["name"] for m in agent["volumeMounts"]}
    assert {m["name"]: m["mountPath"] for m in agent["volumeMounts"]}["outbox"] == "/run/claude-docker/outbox"
    assert not any(volume.get("secret") for volume in spec["volumes"])  # no Secret as files, anywhere


def test_the_firewall_lets_only_the_notifier_uid_out_to_the_notifier_endpoints(tmp_path):
    files = render(tmp_path, NOTIFIER_YAML, "--workspace-claim", "repo", env=NOTIFIER_ENV)
    data = files["configmap.yaml"][0]["data"]
    script = data["init-firewall.sh"]
    assert f"readonly NOTIFIER_UID={NOTIFIER_UID}" in script
    assert "-A OUTPUT -m owner --uid-owner $NOTIFIER_UID -m set --match-set cd-notify-exact dst,dst -j ACCEPT" in script
    assert "--uid-owner $NOTIFIER_UID -p tcp -m multiport --dports 443 -m set --match-set cd-notify dst -j ACCEPT" in script
    assert "add cd-notify-exact 10.20.30.40,tcp:8080" in script
    assert "api.twilio.com" not in script  # by name: through dnsmasq into cd-notify only
    assert "server=/hooks.example.com/@UPSTREAM@" in data["dnsmasq-servers.tmpl"]
    assert "server=/api.twilio.com/@UPSTREAM@" in data["dnsmasq-servers.tmpl"]
    assert "ipset=/api.twilio.com/cd-notify\n" in data["dnsmasq.conf"]  # never the agent's cd-dns
    assert "local=/*.api.twilio.com/" in data["dnsmasq.conf"]  # no DNS tunnel below the name
    assert "twilio" not in data["haproxy.cfg"] and "hooks.example.com" not in data["haproxy.cfg"]  # not for the agent
    # Without a notifier the firewall knows no notifier uid at all.
    (tmp_path / "plain").mkdir()
    plain = render(tmp_path / "plain", "", "--workspace-claim", "repo")["configmap.yaml"][0]["data"]["init-firewall.sh"]
    assert "NOTIFIER_UID" not in plain and "cd-notify" not in plain


def test_a_name_the_agent_may_reach_too_keeps_its_allow_sets(tmp_path):
    config = NOTIFIER_YAML + "network:\n  allowed_domains: ['*.example.com']\n"
    data = render(tmp_path, config, "--workspace-claim", "repo", env=NOTIFIER_ENV)["configmap.yaml"][0]["data"]
    assert "ipset=/hooks.example.com/cd-dns,cd-notify\n" in data["dnsmasq.conf"]
    assert "local=/*.hooks.example.com/" not in data["dnsmasq.conf"]


def test_the_notifier_config_is_printed_for_the_secret_and_never_written(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "claude-docker.yaml").write_text(NOTIFIER_YAML + "  commands: [[/bin/true]]\n")
    result = CliRunner().invoke(main, ["kube", "-f", str(project / "claude-docker.yaml"), "--notifier-config"],
                                env={"CLAUDE_DOCKER_HOME": str(tmp_path / "h"), **NOTIFIER_ENV})
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["twilio"]["auth_token"] == "twilio-token-never-inline"
    assert data["webhooks"][0]["headers"] == {"Authorization": "Bearer hook-token-never-inline"}
    assert data["commands"] == [] and data["apprise"] == []  # host commands never run in the Pod
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]  # no manifests, no file with the credentials
    assert sorted(p.name for p in (tmp_path / "project").iterdir()) == ["claude-docker.yaml"]


@pytest.mark.parametrize(
    "config, args, message",
    [
        (NOTIFIER_YAML, ["--notifier-secret", "claude-docker"], "the notifier's Secret must not be the agent's"),
        (NOTIFIER_YAML + f"claude:\n  uid: {NOTIFIER_UID}\n", [], f"uid {NOTIFIER_UID} is the notifier container's"),
        ("notifier:\n  webhooks: [{url: 'http://[::1]:80/x'}]\n", [], "is an IPv6 address"),
    ],
)
def test_notifier_refusals_name_the_problem(tmp_path, config, args, message):
    project = tmp_path / "project"
    project.mkdir()
    (project / "claude-docker.yaml").write_text(config)
    result = CliRunner().invoke(
        main, ["kube", "-f", str(project / "claude-docker.yaml"), "-o", str(tmp_path / "out"), "--workspace-claim", "r", *args],
        env={"CLAUDE_DOCKER_HOME": str(tmp_path / "h"), **NOTIFIER_ENV},
    )
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output


def test_provider_variables_and_the_model_endpoint_reach_the_agent_as_on_docker(tmp_path):
    files = render(tmp_path, "", "--workspace-claim", "repo", "--", "-p", "x", env=PROVIDER_ENV)
    env = {e["name"]: e for e in container(pod_spec(workload(files)), "agent")["env"]}
    assert env["ANTHROPIC_BASE_URL"] == {"name": "ANTHROPIC_BASE_URL", "value": "http://10.1.2.3:4000"}
    assert env["ANTHROPIC_MODEL"] == {"name": "ANTHROPIC_MODEL", "value": "claude-model-x"}
    for name in ("ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_CUSTOM_HEADERS", "ANTHROPIC_API_KEY", "AWS_SECRET_ACCESS_KEY"):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "claude-docker", "key": name, "optional": True}
    assert env["CLAUDE_DOCKER_ENDPOINT_HOST"]["value"] == "10.1.2.3"
    assert env["CLAUDE_DOCKER_ENDPOINT_PORT"]["value"] == "4000"
    assert env["CLAUDE_DOCKER_ENDPOINT_FIREWALL"]["value"] == "1"
    data = files["configmap.yaml"][0]["data"]
    assert "readonly ENDPOINT_HOST=10.1.2.3" in data["init-firewall.sh"]  # opened exactly, as on Docker
    assert "readonly ENDPOINT_PORT=4000" in data["init-firewall.sh"]
    assert '"$BIN/check-endpoint"' in data["kube-agent.sh"] and "EXIT_ENDPOINT_UNREACHABLE=72" in data["kube-agent.sh"]


def test_a_provider_by_name_joins_the_allowlist(tmp_path):
    config = "claude:\n  env: {CLAUDE_CODE_USE_BEDROCK: '1', AWS_REGION: eu-west-3}\n"
    files = render(tmp_path, config, "--workspace-claim", "repo", env={})
    env = {e["name"]: e for e in container(pod_spec(workload(files)), "agent")["env"]}
    assert env["CLAUDE_CODE_USE_BEDROCK"]["value"] == "1" and env["AWS_REGION"]["value"] == "eu-west-3"
    assert env["CLAUDE_DOCKER_ENDPOINT_HOST"]["value"] == "bedrock-runtime.eu-west-3.amazonaws.com"
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["key"] == "AWS_ACCESS_KEY_ID"
    assert "server=/bedrock-runtime.eu-west-3.amazonaws.com/@UPSTREAM@" in files["configmap.yaml"][0]["data"]["dnsmasq-servers.tmpl"]


def test_proxy_credentials_come_from_the_secret_and_literal_mcp_values_are_named(tmp_path):
    config = (
        "network:\n  proxy: {https: 'http://user:pw@proxy.example:3128', http: 'http://proxy.example:3128'}\n"
        "claude:\n  mcp_servers:\n    docs: {type: http, url: 'https://d.example/mcp', headers: {X-Key: literal-key}}\n"
    )
    project = tmp_path / "project"
    project.mkdir()
    (project / "claude-docker.yaml").write_text(config)
    result = CliRunner().invoke(
        main, ["kube", "-f", str(project / "claude-docker.yaml"), "-o", str(tmp_path / "out"), "--git-url", "https://g.example/r.git"],
        env={"CLAUDE_DOCKER_HOME": str(tmp_path / "h")},
    )
    assert result.exit_code == 0, result.output
    manifests = (tmp_path / "out" / "pod.yaml").read_text()
    assert "user:pw" not in manifests
    spec = yaml.safe_load(manifests)["spec"]
    for name in ("agent", "clone"):
        env = {e["name"]: e for e in container(spec, name)["env"]}
        assert env["HTTPS_PROXY"]["valueFrom"]["secretKeyRef"]["key"] == "HTTPS_PROXY"
        assert env["HTTP_PROXY"] == {"name": "HTTP_PROXY", "value": "http://proxy.example:3128"}
    assert "claude.mcp_servers.docs.headers.X-Key is a literal value and is written into the ConfigMap" in result.output


def test_the_command_names_the_keys_the_secret_must_hold(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "claude-docker.yaml").write_text(MCP_YAML)
    result = CliRunner().invoke(
        main, ["kube", "-f", str(project / "claude-docker.yaml"), "-o", str(tmp_path / "out"), "--workspace-claim", "r", "--secret", "keys"],
        env={"CLAUDE_DOCKER_HOME": str(tmp_path / "h")},
    )
    assert result.exit_code == 0, result.output
    assert "the Secret 'keys' must hold: ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN, GITHUB_TOKEN, DOCS_TOKEN" in result.output


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_no_host_path_is_ever_mounted(tmp_path, variant):
    config, args = VARIANTS[variant]
    (tmp_path / "data").mkdir()
    extra = f"filesystem:\n  mounts: [{{source: {tmp_path / 'data'}, target: /data}}]\n"
    files = render(tmp_path, config + extra, *args, env=VARIANT_ENV)
    spec = pod_spec(workload(files))
    assert all("hostPath" not in volume for volume in spec["volumes"])
    assert "hostPath" not in json.dumps(files)
    assert str(tmp_path) not in json.dumps(files)


def test_the_workspace_is_a_claim_or_a_clone_behind_the_firewall(tmp_path):
    spec = pod_spec(workload(render(tmp_path, "", "--git-url", "https://github.com/example/repo.git", "--", "-p", "x")))
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["workspace"] == {"name": "workspace", "emptyDir": {}}
    assert [c["name"] for c in spec["initContainers"]] == ["firewall", "clone"]  # the clone runs behind the firewall
    clone = container(spec, "clone")
    assert clone["command"][-3:] == ["--", "https://github.com/example/repo.git", "/workspace"]
    assert clone["securityContext"]["runAsNonRoot"] is True and clone["securityContext"]["capabilities"] == {"drop": ["ALL"]}

    (tmp_path / "claim").mkdir()
    spec = pod_spec(workload(render(tmp_path / "claim", "", "--workspace-claim", "repo", "--state-claim", "home")))
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["workspace"]["persistentVolumeClaim"] == {"claimName": "repo"}
    assert volumes["home"]["persistentVolumeClaim"] == {"claimName": "home"}


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "the Pod needs a workspace"),
        (["--workspace-claim", "a", "--git-url", "https://x.example/r.git"], "both name the workspace"),
        (["--git-url", "--upload-pack=touch /tmp/x"], "is not a git URL"),
        (["--workspace-claim", "Not_A_Name"], "is not a Kubernetes name"),
    ],
)
def test_refusals_name_the_problem(tmp_path, args, message):
    project = tmp_path / "project"
    project.mkdir()
    (project / "claude-docker.yaml").write_text("")
    result = CliRunner().invoke(
        main, ["kube", "-f", str(project / "claude-docker.yaml"), "-o", str(tmp_path / "out"), *args], env={"CLAUDE_DOCKER_HOME": str(tmp_path / "h")}
    )
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output


def test_rendering_is_deterministic_and_warns_about_what_a_cluster_cannot_have(tmp_path):
    (tmp_path / "data").mkdir()
    config = f"filesystem:\n  mounts: [{{source: {tmp_path / 'data'}, target: /data}}]\nnotifier:\n  commands: [[/bin/true]]\n"
    project = tmp_path / "project"
    project.mkdir()
    (project / "claude-docker.yaml").write_text(config)
    outputs = []
    for attempt in ("a", "b"):
        result = CliRunner().invoke(
            main, ["kube", "-f", str(project / "claude-docker.yaml"), "-o", str(tmp_path / attempt), "--workspace-claim", "r"],
            env={"CLAUDE_DOCKER_HOME": str(tmp_path / "h")},
        )
        assert result.exit_code == 0, result.output
        outputs.append({p.name: p.read_bytes() for p in (tmp_path / attempt).iterdir()})
    assert outputs[0] == outputs[1]
    assert "filesystem.mounts are host paths and are not rendered" in result.output
    assert "notifier.commands run on your machine and are not rendered" in result.output
    assert "no notifier container: hook events stay in the Pod's outbox volume" in result.output


def test_the_container_scripts_are_valid_bash(tmp_path):
    files = render(tmp_path, "", "--workspace-claim", "repo")
    data = files["configmap.yaml"][0]["data"]
    data.update(render(tmp_path, NOTIFIER_YAML, "--workspace-claim", "repo", env=NOTIFIER_ENV)["configmap.yaml"][0]["data"])
    for name in ("kube-agent.sh", "kube-firewall.sh", "init-firewall.sh"):
        script = tmp_path / name
        script.write_text(data[name])
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        if shutil.which("shellcheck"):
            check = subprocess.run(["shellcheck", "-S", "warning", str(script)], capture_output=True, text=True)
            assert check.returncode == 0, check.stdout


def test_help_has_examples():
    result = CliRunner().invoke(main, ["kube", "--help"])
    assert result.exit_code == 0 and "Examples:" in result.output


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
        deadline = time.monotonic() + 30
        while "listening" not in run_podman(self.podman, "logs", name).stdout:
            assert time.monotonic() < deadline, f"test server {label} did not start"
            time.sleep(0.2)
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
        deadline = time.monotonic() + timeout
        while True:
            state = run_podman(self.podman, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", full).stdout.split()
            if state[0] in ("exited", "stopped"):
                return int(state[1])
            assert time.monotonic() < deadline, f"{full} still {state[0]} after {timeout}s:\n{self.logs(container_name)}"
            time.sleep(1)

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


@pytest.mark.e2e
def test_the_rendered_job_runs_claude_behind_the_firewall_on_podman(played):
    allowed = played.start_server("allowed-server")
    forbidden = played.start_server("forbidden-server")
    probes = (
        f"curl -sS -m 5 http://{allowed}/; echo \" allowed-rc=$?\"; "
        f"curl -sS -m 5 http://{forbidden}/; echo \" forbidden-rc=$?\"; "
        "getent hosts example.com >/dev/null; echo \" dns-rc=$?\"; "
        "id -u; echo written-in-the-pod > /workspace/result.txt"
    )
    script = [bash(probes), text("The task is done.")]
    with FakeAnthropic(script) as api:
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
    [result] = api.tool_results()
    output = json.dumps(result.get("content"))
    assert "allowed-server allowed-rc=0" in output, output  # the allowlisted server answers
    assert "forbidden-server" not in output and "forbidden-rc=0" not in output, output  # the other one does not
    assert "dns-rc=0" not in output, output  # names outside the allowlist do not resolve:
    assert "config example.com is NXDOMAIN" in dns_log, dns_log  # dnsmasq refused it, not the upstream
    assert "1000" in output  # Claude's Bash tool runs as the agent's uid
    assert played.workspace_file("result.txt").read_text() == "written-in-the-pod\n"
    assert all(r.headers.get("x-api-key") == api.api_key for r in api.requests if r.method == "POST")


@pytest.mark.e2e
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


# --- the notifier container's command, as a real process --------------------------------------------


def test_the_pod_notifier_delivers_and_sends_session_end_on_sigterm(tmp_path):
    """What Kubernetes does to a native sidecar once the agent exited: SIGTERM. The notifier
    sends the held session_end then (the final flush) and exits 0; before it, only the stop."""
    import signal

    from tests.fakes.webhook import WebhookReceiver

    state = tmp_path / "state"
    (state / "outbox").mkdir(parents=True)
    with WebhookReceiver() as hook:
        config = {"on": ["stop", "session_end"], "min_interval_seconds": 0, "webhooks": [{"url": hook.url, "headers": {}}]}
        env = {**os.environ, "CLAUDE_DOCKER_NOTIFIER": json.dumps(config), "CLAUDE_DOCKER_NOTIFIER_STATE": str(state),
               "CLAUDE_DOCKER_PROJECT": "proj", "CLAUDE_DOCKER_SESSION": "pod-1", "PYTHONPATH": str(Path(__file__).parent.parent)}
        child = subprocess.Popen([sys.executable, "-m", "claude_docker.notify.pod"], env=env, stderr=subprocess.PIPE, text=True)
        try:
            now = time.time_ns()
            (state / "outbox" / f"{now}-stop-a.json").write_text(json.dumps({"hook_event_name": "Stop", "last_assistant_message": "done"}))
            (state / "outbox" / f"{now + 1}-session_end-b.json").write_text(json.dumps({"hook_event_name": "SessionEnd"}))
            assert hook.wait_for(lambda h: h.events("stop"), timeout=20)
            time.sleep(1.5)
            assert hook.events("session_end") == []  # held for the final flush
            child.send_signal(signal.SIGTERM)
            _, stderr = child.communicate(timeout=30)
        finally:
            child.kill()
    assert child.returncode == 0, stderr
    [end] = hook.events("session_end")
    assert end["project"] == "proj" and end["session"] == "pod-1"
    assert sorted(p.name for p in (state / "outbox").iterdir()) == []
    assert "final delivery done: 1 sent, 0 left undelivered" in stderr


def test_the_pod_notifier_refuses_a_missing_config_with_a_clear_message(tmp_path):
    env = {**os.environ, "CLAUDE_DOCKER_NOTIFIER": "", "CLAUDE_DOCKER_NOTIFIER_STATE": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "claude_docker.notify.pod"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "the notifier Secret holds no notifier.json" in result.stderr and "Traceback" not in result.stderr


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


@pytest.mark.e2e
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
            assert wait_until(lambda: len(twilio.messages) >= 1, timeout=30), played.logs("notifier")
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


def wait_until(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return bool(predicate())
