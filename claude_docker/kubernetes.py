"""The same sandbox as Kubernetes manifests: a ConfigMap with the runtime files and a Pod or Job.

One Pod, one network namespace, two containers that map onto the Docker sandbox's two phases:

- `firewall`: root with only the firewall's capabilities. It runs the rendered init-firewall.sh
  (rules, dnsmasq, self-test) and then keeps dnsmasq running. It is a native sidecar (an init
  container with `restartPolicy: Always`) whose startupProbe passes only once the self-test has
  passed, so Kubernetes starts nothing after it before the firewall is in place.
- `agent`: the agent's uid from the first instruction, no capabilities, no privilege escalation,
  the runtime's default seccomp profile. Its command waits (bounded) for the firewall's ready file
  on a shared volume it can only read, and exits 70 if the firewall failed: fail closed twice.

Credentials are `secretKeyRef`s to a Secret the user names; no value is ever written into a
manifest. The workspace is a PersistentVolumeClaim or a git clone into an emptyDir, made by an
init container behind the firewall. There are no host mounts at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from . import contract
from .artifacts import Artifact, render_template
from .config.interpolate import referenced_variables
from .config.model import AUTO_MEMORY, DEFAULT_AGENT_UID, Config
from .errors import ClaudeDockerError
from .features.claude_settings import AUTH_VARIABLES
from .features.firewall import CAPABILITIES as FIREWALL_CAPABILITIES
from .features.firewall import FIREWALL_STATE_DIR, SYSCTLS
from .features.image import build_context, image_tag, proxy_build_args
from .render import render_runtime
from .session import Session

AGENT_SCRIPT = "kube-agent.sh"
FIREWALL_SCRIPT = "kube-firewall.sh"
READY_DIR = "/run/claude-docker/ready"  # firewall: read-write; agent: read-only
DEFAULT_SECRET = "claude-docker"
DEFAULT_DEADLINE_SECONDS = 3600
FIREWALL_WAIT_SECONDS = 120  # the agent's bounded wait, and the sidecar's startupProbe window
HEADLESS_FLAGS = ("-p", "--print")

LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_PROJECT = "dev.claude-docker/project"

# A claude.env variable whose name says it is a secret comes from the Secret, never inline.
_SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|PASS|KEY|AUTH|CREDENTIAL|COOKIE|SESSION)", re.I)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_SIZE = re.compile(r"^([0-9]+)([bkmgBKMG]?)$")
_GIT_URL = re.compile(r"^(https?|ssh|git)://[^\s]+$|^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$")


@dataclass(frozen=True)
class KubeOptions:
    """What the cluster needs that claude-docker.yaml does not say."""

    name: str | None = None  # the Pod/Job name; default claude-docker-<project>
    namespace: str | None = None
    secret: str = DEFAULT_SECRET  # holds ANTHROPIC_API_KEY etc. and MCP tokens, by variable name
    image: str | None = None  # default: the content-hash tag `claude-docker build` produces
    workspace_claim: str | None = None
    git_url: str | None = None
    git_ref: str | None = None
    state_claim: str | None = None  # the agent's home: login state, history, caches
    deadline_seconds: int = DEFAULT_DEADLINE_SECONDS  # a Job's activeDeadlineSeconds
    claude_args: tuple[str, ...] = ()  # after the config's claude.args


@dataclass(frozen=True)
class Manifests:
    files: dict[str, list[dict[str, Any]]]  # file name -> YAML documents
    kind: str  # "Job" or "Pod"
    name: str
    warnings: list[str] = field(default_factory=list)
    secret_keys: list[str] = field(default_factory=list)  # keys the Secret must hold (besides the API key or token)

    def dump(self) -> dict[str, Artifact]:
        import yaml

        class Dumper(yaml.SafeDumper):
            def ignore_aliases(self, data: Any) -> bool:
                return True  # plain YAML for every reader: no &anchors for shared label maps

        return {
            name: Artifact(yaml.dump_all(documents, Dumper=Dumper, sort_keys=False, default_flow_style=False).encode())
            for name, documents in self.files.items()
        }


def is_headless(args: tuple[str, ...] | list[str]) -> bool:
    return any(arg in HEADLESS_FLAGS or arg.startswith("--print=") for arg in args)


def _check_name(what: str, value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ClaudeDockerError(
            f"{what} {value!r} is not a Kubernetes name",
            "use at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit",
        )
    return value


def quantity(size: str) -> str:
    """Docker's `8g` / `512m` (powers of 1024) as a Kubernetes quantity (`8Gi`, `512Mi`)."""
    match = _SIZE.match(size)
    if not match:
        raise ClaudeDockerError(f"resources: {size!r} is not a size", "use a number with b, k, m or g")
    number, unit = match.groups()
    return number + {"": "", "b": "", "k": "Ki", "m": "Mi", "g": "Gi"}[unit.lower()]


def runtime_files(cfg: Config, wait_seconds: int = FIREWALL_WAIT_SECONDS) -> dict[str, Artifact]:
    """The Docker sandbox's runtime artifacts plus the two container commands."""
    files = dict(render_runtime(cfg, Session(cfg.project_name, "kubernetes")))
    context = dict(
        contract.template_context(),
        runtime_dir=contract.CONTAINER_RUNTIME,
        ready_dir=READY_DIR,
        state_dir=FIREWALL_STATE_DIR,
        firewall=cfg.network.firewall,
        wait_seconds=wait_seconds,
    )
    files[AGENT_SCRIPT] = Artifact(render_template(f"{AGENT_SCRIPT}.j2", **context).encode(), 0o755)
    if cfg.network.firewall:
        files[FIREWALL_SCRIPT] = Artifact(render_template(f"{FIREWALL_SCRIPT}.j2", **context).encode(), 0o755)
    return dict(sorted(files.items()))


def _config_map_key(name: str) -> str:
    """ConfigMap keys allow [-._a-zA-Z0-9]; a nested file name keeps its path through `items`."""
    return re.sub(r"[^-._a-zA-Z0-9]", "_", name)


def _secret_env(name: str, secret: str, optional: bool) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": name, "optional": optional}}}


def _mcp_variables(cfg: Config) -> dict[str, bool]:
    """`${VAR}`s the MCP config references -> whether the reference has a default (optional)."""
    found: dict[str, bool] = {}
    for server in cfg.claude.mcp_servers:
        values = [server.command or "", server.url or "", *server.args, *server.env.values(), *server.headers.values()]
        for value in values:
            for variable in referenced_variables(value):
                optional = f"${{{variable}:-" in value
                found[variable] = found.get(variable, True) and optional
    return found


def proxy_env(cfg: Config, secret: str) -> list[dict[str, Any]]:
    """The proxy variables; a proxy URL with credentials in it comes from the Secret."""
    return [
        _secret_env(name, secret, optional=False) if "@" in value else {"name": name, "value": value}
        for name, value in proxy_build_args(cfg.network.proxy).items()
    ]


def agent_env(cfg: Config, options: KubeOptions, project: str) -> list[dict[str, Any]]:
    """The agent container's environment: plain settings inline, every credential by reference."""
    env: dict[str, dict[str, Any]] = {}

    def plain(name: str, value: str) -> None:
        env[name] = {"name": name, "value": value}

    for item in proxy_env(cfg, options.secret):
        env[item["name"]] = item
    for name, value in cfg.claude.env.items():
        if _SECRET_NAME.search(name):
            env[name] = _secret_env(name, options.secret, optional=False)
        else:
            plain(name, value)
    plain("HOME", contract.AGENT_HOME)
    plain("USER", contract.AGENT_USER)
    plain("LOGNAME", contract.AGENT_USER)
    plain("SHELL", "/bin/bash")
    plain("CLAUDE_CONFIG_DIR", contract.CLAUDE_CONFIG_DIR)
    plain("DISABLE_AUTOUPDATER", "1")
    plain("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
    plain("CLAUDE_DOCKER_SKIP_PERMISSIONS", "1" if cfg.claude.skip_permissions else "0")
    plain("CLAUDE_DOCKER_PROJECT", project)
    for name in AUTH_VARIABLES:  # an API key or an OAuth token: whichever the Secret holds
        env[name] = _secret_env(name, options.secret, optional=True)
    for name, optional in _mcp_variables(cfg).items():
        env[name] = _secret_env(name, options.secret, optional=optional)
    return list(env.values())


def required_secret_keys(env: list[dict[str, Any]]) -> list[str]:
    """Keys a missing one of which keeps the agent container from starting."""
    return [
        item["name"]
        for item in env
        if "valueFrom" in item and not item["valueFrom"]["secretKeyRef"]["optional"]
    ]


def _warnings(cfg: Config) -> list[str]:
    warnings = []
    if not cfg.network.firewall:
        warnings.append("network.firewall is false: the agent can reach anything the cluster network reaches")
    if cfg.filesystem.mounts:
        warnings.append("filesystem.mounts are host paths and are not rendered: a cluster Pod gets no host mounts")
    if cfg.persistence.dotfiles or cfg.persistence.import_host_login:
        warnings.append("persistence.dotfiles and import_host_login read host files and are not rendered")
    for server in cfg.claude.mcp_servers:
        for section, values in (("env", server.env), ("headers", server.headers)):
            for key, value in values.items():
                if value and not referenced_variables(value):
                    warnings.append(
                        f"claude.mcp_servers.{server.name}.{section}.{key} is a literal value and is written into the "
                        f"ConfigMap; write ${{VAR}} to read it from the Secret instead"
                    )
    if cfg.notifier.configured:
        warnings.append(
            "notifier: not rendered for Kubernetes yet; hook events stay in the Pod's outbox volume"
        )
    return warnings


def render_manifests(cfg: Config, options: KubeOptions) -> Manifests:
    project = cfg.project_name
    name = _check_name("the name", options.name or f"claude-docker-{project}"[:63].rstrip("-"))
    secret = options.secret
    if not re.match(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", secret):
        raise ClaudeDockerError(f"the secret name {secret!r} is not a Kubernetes name", "use lower-case letters, digits, '-' and '.'")
    if options.workspace_claim and options.git_url:
        raise ClaudeDockerError("--workspace-claim and --git-url both name the workspace", "choose one of them")
    if not options.workspace_claim and not options.git_url:
        raise ClaudeDockerError(
            "the Pod needs a workspace: a cluster cannot mount this directory",
            "pass --workspace-claim NAME (a PersistentVolumeClaim) or --git-url URL (cloned into the Pod)",
        )
    if options.git_url and not _GIT_URL.match(options.git_url):
        raise ClaudeDockerError(f"--git-url {options.git_url!r} is not a git URL", "use https://…, ssh://… or user@host:path")
    if options.git_ref and (options.git_ref.startswith("-") or not re.match(r"^[A-Za-z0-9._/-]+$", options.git_ref)):
        raise ClaudeDockerError(f"--git-ref {options.git_ref!r} is not a branch or tag name")
    for what, claim in (("--workspace-claim", options.workspace_claim), ("--state-claim", options.state_claim)):
        if claim:
            _check_name(what, claim)
    if options.deadline_seconds <= 0:
        raise ClaudeDockerError("the deadline must be a positive number of seconds")
    if cfg.resources.gpus == "all":
        raise ClaudeDockerError("resources.gpus: all has no Kubernetes equivalent", "set a number of GPUs")
    if cfg.claude.uid == 0 or cfg.claude.gid == 0:
        raise ClaudeDockerError("the agent must not run as root (uid/gid 0)", "set claude.uid / claude.gid to a non-root id")

    uid = cfg.claude.uid or DEFAULT_AGENT_UID
    gid = cfg.claude.gid or uid
    image = options.image or image_tag(build_context(cfg.image))
    args = [*cfg.claude.args, *options.claude_args]
    headless = is_headless(args)
    labels = {LABEL_NAME: "claude-docker", LABEL_INSTANCE: name, LABEL_PROJECT: project}
    metadata: dict[str, Any] = {"name": name, "labels": labels}
    if options.namespace:
        metadata["namespace"] = _check_name("the namespace", options.namespace)
    config_map_name = f"{name}-runtime"

    files = runtime_files(cfg)
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {**metadata, "name": config_map_name},
        "data": {_config_map_key(file): artifact.content.decode() for file, artifact in files.items()},
    }

    mount_path = cfg.workspace.mount_path
    runtime_mount = {"name": "runtime", "mountPath": contract.CONTAINER_RUNTIME, "readOnly": True}
    agent_security = {
        "runAsUser": uid,
        "runAsGroup": gid,
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    volumes: list[dict[str, Any]] = [
        {
            "name": "runtime",
            "configMap": {
                "name": config_map_name,
                "defaultMode": 0o444,
                "items": [
                    {"key": _config_map_key(file), "path": file, "mode": 0o555 if artifact.mode & 0o111 else 0o444}
                    for file, artifact in files.items()
                ],
            },
        },
        {"name": "ready", "emptyDir": {"sizeLimit": "1Mi"}},
        {"name": "outbox", "emptyDir": {"sizeLimit": "64Mi"}},
    ]
    if options.workspace_claim:
        volumes.append({"name": "workspace", "persistentVolumeClaim": {"claimName": options.workspace_claim}})
    else:
        volumes.append({"name": "workspace", "emptyDir": {}})
    if options.state_claim:
        volumes.append({"name": "home", "persistentVolumeClaim": {"claimName": options.state_claim}})
    else:
        volumes.append({"name": "home", "emptyDir": {}})

    agent_mounts = [
        runtime_mount,
        {"name": "ready", "mountPath": READY_DIR, "readOnly": True},
        {"name": "outbox", "mountPath": contract.CONTAINER_OUTBOX},
        {"name": "workspace", "mountPath": mount_path},
        {"name": "home", "mountPath": contract.AGENT_HOME},
    ]
    if cfg.resources.shm_size:
        volumes.append({"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": quantity(cfg.resources.shm_size)}})
        agent_mounts.append({"name": "shm", "mountPath": "/dev/shm"})

    limits: dict[str, Any] = {}
    if cfg.resources.memory and cfg.resources.memory != AUTO_MEMORY:  # "auto" is the Docker host's half: the cluster sizes the node
        limits["memory"] = quantity(cfg.resources.memory)
    if cfg.resources.cpus:
        limits["cpu"] = f"{int(round(cfg.resources.cpus * 1000))}m"
    if isinstance(cfg.resources.gpus, int):
        limits["nvidia.com/gpu"] = cfg.resources.gpus

    agent: dict[str, Any] = {
        "name": "agent",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/bash", f"{contract.CONTAINER_RUNTIME}/{AGENT_SCRIPT}"],
        "args": args,
        "workingDir": mount_path,
        "env": agent_env(cfg, options, project),
        "securityContext": agent_security,
        "volumeMounts": agent_mounts,
    }
    if limits:
        agent["resources"] = {"limits": limits}
    if not headless:
        agent["stdin"] = True
        agent["tty"] = True

    init_containers: list[dict[str, Any]] = []
    if cfg.network.firewall:
        init_containers.append(
            {
                "name": "firewall",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "restartPolicy": "Always",  # a native sidecar: runs beside the agent, ends with it
                "command": ["/bin/bash", f"{contract.CONTAINER_RUNTIME}/{FIREWALL_SCRIPT}"],
                "env": [{"name": "AGENT_UID", "value": str(uid)}],
                "securityContext": {
                    "runAsUser": 0,
                    "runAsNonRoot": False,
                    "allowPrivilegeEscalation": False,
                    "privileged": False,
                    "capabilities": {"drop": ["ALL"], "add": sorted(FIREWALL_CAPABILITIES)},
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "startupProbe": {
                    "exec": {"command": ["test", "-e", f"{READY_DIR}/ok"]},
                    "periodSeconds": 1,
                    "failureThreshold": FIREWALL_WAIT_SECONDS,
                },
                "resources": {"limits": {"memory": "64Mi", "cpu": "200m"}},
                "volumeMounts": [runtime_mount, {"name": "ready", "mountPath": READY_DIR}],
            }
        )
    if options.git_url:
        clone = ["git", "clone", "--single-branch"]
        if options.git_ref:
            clone += ["--branch", options.git_ref]
        init_containers.append(
            {
                "name": "clone",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": [*clone, "--", options.git_url, mount_path],
                "env": [{"name": "HOME", "value": "/tmp"}, *proxy_env(cfg, secret)],
                "securityContext": agent_security,
                "volumeMounts": [{"name": "workspace", "mountPath": mount_path}],
            }
        )

    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,  # the agent gets no credential for the cluster's API
        "enableServiceLinks": False,
        "securityContext": {
            "fsGroup": gid,
            "seccompProfile": {"type": "RuntimeDefault"},
            "sysctls": [{"name": key, "value": value} for key, value in SYSCTLS.items()] if cfg.network.firewall else [],
        },
        "initContainers": init_containers,
        "containers": [agent],
        "volumes": volumes,
    }
    if not pod_spec["securityContext"]["sysctls"]:
        del pod_spec["securityContext"]["sysctls"]
    if not init_containers:
        del pod_spec["initContainers"]

    if headless:
        workload: dict[str, Any] = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": metadata,
            "spec": {
                "backoffLimit": 0,
                "activeDeadlineSeconds": options.deadline_seconds,
                "template": {"metadata": {"labels": labels}, "spec": pod_spec},
            },
        }
        kind = "Job"
    else:
        workload = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec}
        kind = "Pod"
    return Manifests(
        files={"configmap.yaml": [config_map], f"{kind.lower()}.yaml": [workload]},
        kind=kind,
        name=name,
        warnings=_warnings(cfg),
        secret_keys=required_secret_keys(agent["env"]),
    )
