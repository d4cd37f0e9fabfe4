"""`claude-docker kube`: the sandbox as Kubernetes manifests.

The rendering half: every variant validates offline against the Kubernetes 1.37 schemas (strict:
an unknown field fails too), keeps the sandbox's posture and never inlines a credential or mounts
a host path. tests/e2e/test_kubernetes.py runs the rendered manifests for real on Podman.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from claude_docker.cli import main
from claude_docker.kubernetes import FIREWALL_SCRIPT, NOTIFIER_UID, READY_DIR
from tests.support.kube import container, pod_spec, render, workload
from tests.support.testbed import REPO_ROOT

KUBERNETES_VERSION = "1.37"


# --- rendering ----------------------------------------------------------------------------------


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
    for name in ("DOCS_TOKEN", "SEARCH_TOKEN", "GITHUB_TOKEN"):
        assert agent_env[name]["valueFrom"]["secretKeyRef"]["name"] == "team-keys", name
        assert agent_env[name]["valueFrom"]["secretKeyRef"]["key"] == name
        assert "value" not in agent_env[name]
    # The model credential: the firewall container's, where the sandbox proxy adds it.
    firewall_refs = [e["valueFrom"]["secretKeyRef"] for e in container(pod_spec(workload(files)), "firewall")["env"] if "valueFrom" in e]
    for name in ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"):
        assert {"name": "team-keys", "key": name, "optional": True} in firewall_refs, name
    assert agent_env["DOCS_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is False  # MCP needs it
    assert agent_env["SEARCH_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True  # has a default
    assert agent_env["EDITOR"] == {"name": "EDITOR", "value": "vim"}


def test_the_agent_container_never_gets_the_model_credential_only_the_firewall_does(tmp_path):
    """Keys out of reach on Kubernetes: the firewall container, where the sandbox proxy runs under
    its own uid, reads the credential from the Secret; the agent container gets the local
    endpoint as ANTHROPIC_BASE_URL and no reference to the credential at all."""
    config = "network:\n  git_credential: {host: github.com, token_variable: GITHUB_TOKEN}\n"
    files = render(tmp_path, config, "--workspace-claim", "repo", "--secret", "keys", "--", "-p", "x",
                   env={"ANTHROPIC_BASE_URL": "https://llm.example.com/anthropic"})
    spec = pod_spec(workload(files))
    agent_env = {e["name"]: e for e in container(spec, "agent")["env"]}
    for name in ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN", "GITHUB_TOKEN"):
        assert name not in agent_env, agent_env.get(name)
    agent_refs = [e["valueFrom"]["secretKeyRef"]["key"] for e in agent_env.values() if "secretKeyRef" in e.get("valueFrom", {})]
    assert not {"ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN", "GITHUB_TOKEN"} & set(agent_refs), agent_refs
    assert agent_env["ANTHROPIC_BASE_URL"] == {"name": "ANTHROPIC_BASE_URL", "value": "http://127.0.0.1:15090/anthropic"}
    assert agent_env["GIT_CONFIG_KEY_0"]["value"] == "url.http://127.0.0.1:15091/.insteadOf"
    firewall_env = {e["name"]: e for e in container(spec, "firewall")["env"]}
    refs = {name: e["valueFrom"]["secretKeyRef"] for name, e in firewall_env.items() if "valueFrom" in e}
    assert refs == {
        "CLAUDE_DOCKER_SECRET_API_KEY": {"name": "keys", "key": "ANTHROPIC_API_KEY", "optional": True},
        "CLAUDE_DOCKER_SECRET_FROM_ANTHROPIC_AUTH_TOKEN": {"name": "keys", "key": "ANTHROPIC_AUTH_TOKEN", "optional": True},
        "CLAUDE_DOCKER_SECRET_FROM_CLAUDE_CODE_OAUTH_TOKEN": {"name": "keys", "key": "CLAUDE_CODE_OAUTH_TOKEN", "optional": True},
        "CLAUDE_DOCKER_SECRET_FROM_GIT_TOKEN": {"name": "keys", "key": "GITHUB_TOKEN", "optional": False},
    }
    data = files["configmap.yaml"][0]["data"]
    assert "bind 127.0.0.1:15090" in data["haproxy.cfg"] and "bind 127.0.0.1:15091" in data["haproxy.cfg"]
    assert "readonly MODEL_HELD=1" in data["init-firewall.sh"]  # the endpoint is the proxy's alone


def test_without_the_sandbox_proxy_the_agent_container_references_the_credential_as_before(tmp_path):
    files = render(tmp_path, "network:\n  name_checks: false\n", "--workspace-claim", "repo", "--", "-p", "x", env={})
    agent_env = {e["name"]: e for e in container(pod_spec(workload(files)), "agent")["env"]}
    assert agent_env["ANTHROPIC_API_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "ANTHROPIC_API_KEY"
    assert "ANTHROPIC_BASE_URL" not in agent_env


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
    # Claude talks to the local endpoint; the sandbox proxy forwards to http://10.1.2.3:4000.
    assert env["ANTHROPIC_BASE_URL"] == {"name": "ANTHROPIC_BASE_URL", "value": "http://127.0.0.1:15090"}
    assert env["ANTHROPIC_MODEL"] == {"name": "ANTHROPIC_MODEL", "value": "claude-model-x"}
    for name in ("ANTHROPIC_CUSTOM_HEADERS", "AWS_SECRET_ACCESS_KEY"):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "claude-docker", "key": name, "optional": True}
    assert "ANTHROPIC_AUTH_TOKEN" not in env and "ANTHROPIC_API_KEY" not in env  # the firewall container's
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
    config = f"filesystem:\n  mounts: [{{source: {tmp_path / 'data'}, target: /data}}]\nnotifier:\n  commands: [[/bin/true]]\n" + "ports: [3000]\n"
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
    assert "ports are published on the Docker host and are not rendered" in result.output
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


# --- the notifier container's command, as a real process --------------------------------------------


def test_the_pod_notifier_delivers_and_sends_session_end_on_sigterm(tmp_path):
    """What Kubernetes does to a native sidecar once the agent exited: SIGTERM. The notifier
    sends the held session_end then (the final flush) and exits 0; before it, only the stop."""
    import queue
    import signal
    import threading

    from tests.fakes.webhook import WebhookReceiver

    state = tmp_path / "state"
    (state / "outbox").mkdir(parents=True)
    now = time.time_ns()  # both events wait before the notifier starts: its first pass sees them together
    (state / "outbox" / f"{now}-stop-a.json").write_text(json.dumps({"hook_event_name": "Stop", "last_assistant_message": "done"}))
    (state / "outbox" / f"{now + 1}-session_end-b.json").write_text(json.dumps({"hook_event_name": "SessionEnd"}))
    with WebhookReceiver() as hook:
        config = {"on": ["stop", "session_end"], "min_interval_seconds": 0, "webhooks": [{"url": hook.url, "headers": {}}]}
        env = {**os.environ, "CLAUDE_DOCKER_NOTIFIER": json.dumps(config), "CLAUDE_DOCKER_NOTIFIER_STATE": str(state),
               "CLAUDE_DOCKER_PROJECT": "proj", "CLAUDE_DOCKER_SESSION": "pod-1", "PYTHONPATH": str(REPO_ROOT)}
        child = subprocess.Popen([sys.executable, "-m", "claude_docker.notify.pod"], env=env, stderr=subprocess.PIPE, text=True)
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(line) for line in child.stderr], daemon=True)  # type: ignore[union-attr]
        reader.start()
        try:
            seen: list[str] = []
            while not any(line.startswith("claude-docker notifier: delivered ") for line in seen):
                seen.append(lines.get(timeout=20))  # a pass is over once it says what it delivered
            assert seen[-1].rstrip().endswith("-stop-a.json"), seen
            assert hook.events("stop") and hook.events("session_end") == []  # held for the final flush
            child.send_signal(signal.SIGTERM)
            child.wait(timeout=30)
            reader.join(timeout=10)
            stderr = "".join(seen + list(lines.queue))
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


@pytest.mark.parametrize("args", [
    ["--git-url", "https://github.com/example/repo.git", "--git-ref", "main\n"],
    ["--git-url", "https://github.com/example/repo.git\n"],
    ["--workspace-claim", "repo\n"],
    ["--workspace-claim", "repo", "--name", "task-1\n"],
], ids=["git-ref", "git-url", "claim", "name"])
def test_a_value_ending_in_a_line_break_is_refused(tmp_path, args):
    project = tmp_path / "project"
    project.mkdir()
    (project / "claude-docker.yaml").write_text("")
    result = CliRunner().invoke(main, ["kube", "-f", str(project / "claude-docker.yaml"), "-o", str(tmp_path / "out"), *args],
                                env={"CLAUDE_DOCKER_HOME": str(tmp_path / "home")})
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    assert not (tmp_path / "out").exists()
