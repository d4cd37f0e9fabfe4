"""The same sandbox as Kubernetes manifests: a ConfigMap with the runtime files and a Pod or Job.

One Pod, one network namespace, two containers that map onto the Docker sandbox's two phases:

- `firewall`: root with only the firewall's capabilities. It runs the rendered init-firewall.sh
  (rules, dnsmasq, self-test) and then keeps dnsmasq running. It is a native sidecar (an init
  container with `restartPolicy: Always`) whose startupProbe passes only once the self-test has
  passed, so Kubernetes starts nothing after it before the firewall is in place.
- `notifier` (when a Twilio or webhook notifier is configured): a second native sidecar, its own
  uid (`NOTIFIER_UID`: neither the agent's nor root), no capabilities. It reads the outbox volume
  the agent's hooks write and delivers it with the host's own delivery code
  (`claude_docker.notify.pod`) and credentials from a Secret of its own, which the agent
  container never references. The firewall lets only this uid out to the notifier's endpoints
  (owner match); on SIGTERM, after the agent has exited, it sends what is left and exits.
- `agent`: the agent's uid from the first instruction, no capabilities, no privilege escalation,
  the runtime's default seccomp profile. Its command waits (bounded) for the firewall's ready file
  on a shared volume it can only read, and exits 70 if the firewall failed: fail closed twice.
  Then, as on Docker, it checks the model endpoint through the firewall (exit 72) before Claude.

Credentials are `secretKeyRef`s to a Secret the user names; no value is ever written into a
manifest. The provider's plain settings (ANTHROPIC_BASE_URL, the model, the region, ...) are
inline, taken from the environment at render time, the same values the firewall opens the model
endpoint for. The workspace is a PersistentVolumeClaim or a git clone into an emptyDir, made by
an init container behind the firewall. There are no host mounts at all.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from . import contract
from .artifacts import Artifact, context_hash, render_template
from .config.interpolate import referenced_variables
from .config.model import AUTO_MEMORY, DEFAULT_AGENT_UID, Config, NotifierConfig, to_plain
from .errors import ClaudeDockerError
from .features import credentials, endpoint, firewall
from .features.claude_settings import auth_env
from .features.firewall import CAPABILITIES as FIREWALL_CAPABILITIES
from .features.firewall import FIREWALL_STATE_DIR, SYSCTLS
from .features.firewall.plan import NotifierEgress, is_ipv4, normalise_domain
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
LOG_DIR = contract.CONTAINER_LOG_DIR  # the firewall's dns.log: firewall read-write, agent read-only

# The notifier container: its own uid (the usual "nonroot" uid of minimal images; no image user
# holds it), its own Secret holding the notifier section as JSON under one key.
NOTIFIER_UID = 65532
DEFAULT_NOTIFIER_SECRET = "claude-docker-notifier"
NOTIFIER_SECRET_KEY = "notifier.json"
NOTIFIER_ENV = "CLAUDE_DOCKER_NOTIFIER"  # what notify.pod reads the JSON from
NOTIFIER_STATE_DIR = "/run/claude-docker/notifier"  # delivery state; the outbox is mounted below it
NOTIFIER_IMAGE_REPOSITORY = "claude-docker-notifier"
NOTIFIER_PYTHON_DIR = f"{contract.CONTAINER_ROOT}/python"
NOTIFIER_MODULE = "claude_docker.notify.pod"
# Kubernetes sends SIGTERM to the sidecars once the agent has exited and kills them this much
# later: the notifier's final delivery (session_end, retries of a slow endpoint) fits in it.
TERMINATION_GRACE_SECONDS = 90

# Provider variables (endpoint.PROVIDER_VARIABLES) that are credentials: Secret references.
# The others (base URLs, models, regions, provider switches) are plain settings, inline.
SECRET_PROVIDER_VARIABLES = (
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_CUSTOM_HEADERS",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_BEARER_TOKEN_BEDROCK",
)
SECRET_AUTH_VARIABLES = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN")
# Keys out of reach: with the sandbox proxy in the firewall container, the model credential and
# the git token are that container's (secretKeyRef into its environment, under the contract's
# secret names); kube-firewall.sh turns the raw values into the headers the proxy adds. The agent
# container gets the local endpoints and, once the firewall is ready, placeholders for the
# credentials the Secret holds (their names are in HELD_FILE, in the ready dir).
RAW_SECRET_PREFIX = contract.SECRET_PREFIX + "FROM_"  # a raw token, before kube-firewall.sh formats it
RAW_GIT_TOKEN = RAW_SECRET_PREFIX + "GIT_TOKEN"
HELD_FILE = "held"
# Which credential the Secret holds is known in the Pod only, so the local endpoint fills both headers.
HELD_HEADERS = ("x-api-key", "authorization")

LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_PROJECT = "dev.claude-docker/project"

# A claude.env variable whose name says it is a secret comes from the Secret, never inline.
_SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|PASS|KEY|AUTH|CREDENTIAL|COOKIE|SESSION)", re.I)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
_SIZE = re.compile(r"^([0-9]+)([bkmgBKMG]?)\Z")
_GIT_URL = re.compile(r"^(https?|ssh|git)://[^\s]+\Z|^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+\Z")


@dataclass(frozen=True)
class KubeOptions:
    """What the cluster needs that claude-docker.yaml does not say."""

    name: str | None = None  # the Pod/Job name; default claude-docker-<project>
    namespace: str | None = None
    secret: str = DEFAULT_SECRET  # holds ANTHROPIC_API_KEY etc. and MCP tokens, by variable name
    image: str | None = None  # default: the content-hash tag `claude-docker build` produces
    notifier_secret: str = DEFAULT_NOTIFIER_SECRET  # holds NOTIFIER_SECRET_KEY, for the notifier only
    notifier_image: str | None = None  # default: notifier_image_tag(cfg)
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
    notifier_endpoints: list[str] = field(default_factory=list)  # host:port the notifier container may reach

    def dump(self) -> dict[str, Artifact]:
        import yaml

        # libyaml's emitter when PyYAML has it (its wheels do): the scripts in the ConfigMap are long
        # strings, and the pure-Python emitter analyses them character by character (~20x slower).
        base = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

        class Dumper(base):  # type: ignore[valid-type,misc]
            def ignore_aliases(self, data: Any) -> bool:
                return True  # plain YAML for every reader: no &anchors for shared label maps

        def text(dumper: Any, value: str) -> Any:
            # The scripts and configs in the ConfigMap as they are written, a line per line (`|`);
            # the emitter falls back to quoting a string a block cannot hold (trailing blanks).
            return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

        Dumper.add_representer(str, text)

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
    """The Docker sandbox's runtime artifacts plus the container commands; with a notifier, the
    firewall also lets the notifier's uid (and only it) out to the notifier's endpoints."""
    session = Session(cfg.project_name, "kubernetes")
    files = dict(render_runtime(cfg, session))
    notifier = kube_notifier(cfg)
    if notifier is not None and cfg.network.firewall:
        egress = NotifierEgress(NOTIFIER_UID, notifier_endpoints(notifier))
        files.update(firewall.runtime_artifacts(cfg, session, egress))
    context = dict(
        contract.template_context(),
        runtime_dir=contract.CONTAINER_RUNTIME,
        bin_dir=contract.CONTAINER_BIN,
        ready_dir=READY_DIR,
        state_dir=FIREWALL_STATE_DIR,
        firewall=cfg.network.firewall,
        wait_seconds=wait_seconds,
        held=bool(cfg.network.injected_headers),
        held_file=HELD_FILE,
        placeholder=credentials.PLACEHOLDER,
        api_key_variable=credentials.API_KEY_VARIABLE,
        bearer_variables=credentials.BEARER_VARIABLES,
        raw_secret_prefix=RAW_SECRET_PREFIX,
        raw_git_token=RAW_GIT_TOKEN,
        git_username=cfg.network.git_credential.username if _git_held(cfg) and cfg.network.git_credential else "",
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


def provider_env(cfg: Config, secret: str, environ: Mapping[str, str]) -> list[dict[str, Any]]:
    """What Claude Code reads for its endpoint, model and provider, as on Docker (claude_settings.
    auth_env: the environment over the env file): plain settings inline, the credentials among
    them as optional references (whichever the Secret holds), and the model endpoint the agent
    container checks before Claude starts (the one the firewall opened). With the key held by
    the sandbox proxy, the model credentials are the firewall container's (firewall_secret_env)
    and ANTHROPIC_BASE_URL is the local endpoint."""
    held = bool(cfg.network.injected_headers)
    kept_out = (*credentials.CREDENTIAL_VARIABLES, "ANTHROPIC_BASE_URL") if held else ()
    found = auth_env(cfg, environ)
    env: list[dict[str, Any]] = []
    for name, value in found.items():
        if name not in SECRET_PROVIDER_VARIABLES and name not in SECRET_AUTH_VARIABLES and name not in kept_out:
            env.append({"name": name, "value": value})
    for name in (*SECRET_AUTH_VARIABLES, *SECRET_PROVIDER_VARIABLES):
        if name not in kept_out:
            env.append(_secret_env(name, secret, optional=True))
    if cfg.network.model_endpoint is not None:
        if held:
            env.append({"name": "ANTHROPIC_BASE_URL", "value": credentials.local_base_url(cfg.network.model_endpoint)})
        env += [{"name": k, "value": v} for k, v in endpoint.container_env(cfg.network.model_endpoint).items()]
    if _git_held(cfg) and cfg.network.git_credential is not None:
        env += [{"name": k, "value": v} for k, v in credentials.git_agent_env(cfg.network.git_credential).items()]
    return env


def _git_held(cfg: Config) -> bool:
    """The firewall container's proxy serves the local git endpoint."""
    return cfg.network.git_credential is not None and cfg.network.firewall and cfg.network.name_checks


def firewall_secret_env(cfg: Config, secret: str) -> list[dict[str, Any]]:
    """The firewall container's references to the credentials its proxy adds: the API key as is,
    a bearer token and the git token raw (kube-firewall.sh formats them into headers)."""
    env: list[dict[str, Any]] = []

    def ref(name: str, key: str, optional: bool) -> None:
        env.append({"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key, "optional": optional}}})

    if cfg.network.injected_headers:
        ref(contract.SECRET_API_KEY, credentials.API_KEY_VARIABLE, True)
        for name in credentials.BEARER_VARIABLES:
            ref(RAW_SECRET_PREFIX + name, name, True)
    if _git_held(cfg) and cfg.network.git_credential is not None:
        ref(RAW_GIT_TOKEN, cfg.network.git_credential.token_variable, False)
    return env


def agent_env(cfg: Config, options: KubeOptions, project: str, environ: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The agent container's environment: plain settings inline, every credential by reference."""
    environ = os.environ if environ is None else environ
    env: dict[str, dict[str, Any]] = {}

    def plain(name: str, value: str) -> None:
        env[name] = {"name": name, "value": value}

    for item in proxy_env(cfg, options.secret):
        env[item["name"]] = item
    held = credentials.CREDENTIAL_VARIABLES if cfg.network.injected_headers else ()
    for name, value in cfg.claude.env.items():
        if name in held:
            continue  # the firewall container's (firewall_secret_env)
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
    for item in provider_env(cfg, options.secret, environ):
        env[item["name"]] = item
    if cfg.network.firewall:
        plain("CLAUDE_DOCKER_ENDPOINT_FIREWALL", "1")  # bin/check-endpoint, run as the agent
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


# --- the notifier container -------------------------------------------------------------------


def kube_notifier(cfg: Config) -> NotifierConfig | None:
    """The notifier section as the notifier container runs it: Twilio and webhooks. Host commands
    and Apprise (not in the notifier image; its endpoints cannot be told from its URLs) are left
    out, with a warning; None when nothing is left to send to."""
    notifier = cfg.notifier
    if not (notifier.twilio or notifier.webhooks):
        return None
    return replace(notifier, apprise=(), commands=())


def _endpoint_of(url: str, where: str) -> tuple[str, int]:
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".").lower()
    try:
        port = parts.port or (80 if parts.scheme == "http" else 443)
    except ValueError:
        host = ""
    if parts.scheme not in ("http", "https") or not host:
        raise ClaudeDockerError(f"{where}: {url!r} is not an http(s) URL the firewall can open", "use https://host[:port]/path")
    if ":" in host:
        raise ClaudeDockerError(f"{where}: {host} is an IPv6 address, and the firewall closes IPv6", "use a name or an IPv4 address")
    if not is_ipv4(host):
        normalise_domain(host)
    return host, port


def notifier_endpoints(notifier: NotifierConfig) -> tuple[tuple[str, int], ...]:
    """(host, TCP port) of every endpoint the notifier container sends to."""
    found = []
    if notifier.twilio:
        found.append(_endpoint_of(notifier.twilio.api_base, "notifier.twilio.api_base"))
    for index, hook in enumerate(notifier.webhooks):
        found.append(_endpoint_of(hook.url, f"notifier.webhooks[{index}].url"))
    return tuple(dict.fromkeys(found))


def notifier_secret_data(cfg: Config) -> str:
    """The value of the notifier Secret's one key: the notifier section, credentials included, as
    the notifier container reads it (model.from_plain). Printed to stdout, never written to a file."""
    notifier = kube_notifier(cfg)
    if notifier is None:
        raise ClaudeDockerError("no notifier to run on Kubernetes", "configure notifier.twilio or notifier.webhooks")
    return json.dumps(to_plain(notifier), sort_keys=True)


def notifier_build_context(product_image: str) -> dict[str, Artifact]:
    """The notifier image: the sandbox image plus Debian's Python with the two libraries the
    notifier imports (Jinja for message templates, PyYAML for the config loader) and this
    package's own modules. Built on the sandbox image, so it shares its layers and trusts the
    same CA files."""
    package = Path(__file__).resolve().parent
    artifacts = {
        "python/claude_docker/" + path.relative_to(package).as_posix(): Artifact(path.read_bytes())
        for path in sorted(package.rglob("*.py"))
        if "_data" not in path.relative_to(package).parts and "__pycache__" not in path.parts
    }
    artifacts["Dockerfile"] = Artifact(
        render_template(
            "Dockerfile.notifier.j2",
            base=product_image,
            python_dir=NOTIFIER_PYTHON_DIR,
            notifier_uid=NOTIFIER_UID,
            module=NOTIFIER_MODULE,
        ).encode()
    )
    return dict(sorted(artifacts.items()))


def notifier_image_tag(product_image: str) -> str:
    return f"{NOTIFIER_IMAGE_REPOSITORY}:{context_hash(notifier_build_context(product_image))[:20]}"


def notifier_container(notifier_image: str, secret: str, project: str) -> dict[str, Any]:
    return {
        "name": "notifier",
        "image": notifier_image,
        "imagePullPolicy": "IfNotPresent",
        "restartPolicy": "Always",  # a native sidecar: beside the agent, SIGTERM after it exits
        "command": ["python3", "-m", NOTIFIER_MODULE],
        "env": [
            {"name": NOTIFIER_ENV, "valueFrom": {"secretKeyRef": {"name": secret, "key": NOTIFIER_SECRET_KEY}}},
            {"name": "CLAUDE_DOCKER_PROJECT", "value": project},
            {"name": "CLAUDE_DOCKER_SESSION", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "CLAUDE_DOCKER_NOTIFIER_STATE", "value": NOTIFIER_STATE_DIR},
            {"name": "HOME", "value": NOTIFIER_STATE_DIR},
        ],
        "securityContext": {
            "runAsUser": NOTIFIER_UID,
            "runAsGroup": NOTIFIER_UID,
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "resources": {"limits": {"memory": "128Mi", "cpu": "200m"}},
        "volumeMounts": [
            {"name": "notifier-state", "mountPath": NOTIFIER_STATE_DIR},
            {"name": "outbox", "mountPath": f"{NOTIFIER_STATE_DIR}/outbox"},
        ],
    }


def _warnings(cfg: Config) -> list[str]:
    warnings = []
    if not cfg.network.firewall:
        warnings.append("network.firewall is false: the agent can reach anything the cluster network reaches")
    if cfg.filesystem.mounts:
        warnings.append("filesystem.mounts are host paths and are not rendered: a cluster Pod gets no host mounts")
    if cfg.persistence.dotfiles or cfg.persistence.import_host_login:
        warnings.append("persistence.dotfiles and import_host_login read host files and are not rendered")
    if cfg.ports:
        warnings.append("ports are published on the Docker host and are not rendered: use `kubectl port-forward` to reach a Pod's port")
    for server in cfg.claude.mcp_servers:
        for section, values in (("env", server.env), ("headers", server.headers)):
            for key, value in values.items():
                if value and not referenced_variables(value):
                    warnings.append(
                        f"claude.mcp_servers.{server.name}.{section}.{key} is a literal value and is written into the "
                        f"ConfigMap; write ${{VAR}} to read it from the Secret instead"
                    )
    if cfg.notifier.commands:
        warnings.append("notifier.commands run on your machine and are not rendered: a Pod has no host to run them on")
    if cfg.notifier.apprise:
        warnings.append("notifier.apprise is not rendered: the notifier container sends to Twilio and webhooks only")
    if cfg.notifier.configured and kube_notifier(cfg) is None:
        warnings.append("no notifier container: hook events stay in the Pod's outbox volume")
    for variable in endpoint.CREDENTIAL_FILE_VARIABLES:
        if any(variable in source for source in (os.environ, cfg.claude.env)):
            warnings.append(f"{variable} names a file on this machine, which is not rendered: a Pod gets no host files")
    return warnings


def render_manifests(cfg: Config, options: KubeOptions, environ: Mapping[str, str] | None = None) -> Manifests:
    environ = os.environ if environ is None else environ
    # The model endpoint as on Docker (runplan.plan): the firewall opens it, the agent checks it.
    model_endpoint = cfg.network.model_endpoint or endpoint.derive(cfg, environ)
    # Keys out of reach, as on Docker: the firewall container's proxy holds the model credential.
    held_headers = HELD_HEADERS if credentials.not_injectable(cfg, environ) is None else ()
    cfg = replace(cfg, network=replace(cfg.network, model_endpoint=model_endpoint, injected_headers=held_headers))
    project = cfg.project_name
    name = _check_name("the name", options.name or f"claude-docker-{project}"[:63].rstrip("-"))
    secret = options.secret
    for what, value in (("the secret name", secret), ("the notifier secret name", options.notifier_secret)):
        if not re.match(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\Z", value):
            raise ClaudeDockerError(f"{what} {value!r} is not a Kubernetes name", "use lower-case letters, digits, '-' and '.'")
    notifier = kube_notifier(cfg)
    if notifier is not None and options.notifier_secret == secret:
        raise ClaudeDockerError(
            f"the notifier's Secret must not be the agent's ({secret!r}): the agent container could then be given its credentials",
            "pass --notifier-secret with another name (default: claude-docker-notifier)",
        )
    if options.workspace_claim and options.git_url:
        raise ClaudeDockerError("--workspace-claim and --git-url both name the workspace", "choose one of them")
    if not options.workspace_claim and not options.git_url:
        raise ClaudeDockerError(
            "the Pod needs a workspace: a cluster cannot mount this directory",
            "pass --workspace-claim NAME (a PersistentVolumeClaim) or --git-url URL (cloned into the Pod)",
        )
    if options.git_url and not _GIT_URL.match(options.git_url):
        raise ClaudeDockerError(f"--git-url {options.git_url!r} is not a git URL", "use https://…, ssh://… or user@host:path")
    if options.git_ref and (options.git_ref.startswith("-") or not re.match(r"^[A-Za-z0-9._/-]+\Z", options.git_ref)):
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
    if notifier is not None and NOTIFIER_UID in (cfg.claude.uid, cfg.claude.gid):
        raise ClaudeDockerError(
            f"uid {NOTIFIER_UID} is the notifier container's: the agent must not share it", "set claude.uid / claude.gid to another id"
        )
    endpoints = notifier_endpoints(notifier) if notifier is not None else ()

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
    if cfg.network.firewall:
        volumes.append({"name": "log", "emptyDir": {"sizeLimit": "16Mi"}})
    if notifier is not None:
        volumes.append({"name": "notifier-state", "emptyDir": {"sizeLimit": "16Mi"}})
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
    if cfg.network.firewall:  # dns.log, which bin/check-endpoint reads to say why a name failed
        agent_mounts.append({"name": "log", "mountPath": LOG_DIR, "readOnly": True})
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
        "env": agent_env(cfg, options, project, environ),
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
                "env": [{"name": "AGENT_UID", "value": str(uid)}, *firewall_secret_env(cfg, secret)],
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
                "volumeMounts": [
                    runtime_mount,
                    {"name": "ready", "mountPath": READY_DIR},
                    {"name": "log", "mountPath": LOG_DIR},
                ],
            }
        )
    if notifier is not None:  # after the firewall: it starts only once the firewall is ready
        notifier_image = options.notifier_image or notifier_image_tag(image)
        init_containers.append(notifier_container(notifier_image, options.notifier_secret, project))
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
    if notifier is not None:
        pod_spec["terminationGracePeriodSeconds"] = TERMINATION_GRACE_SECONDS
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
        secret_keys=required_secret_keys([*agent["env"], *firewall_secret_env(cfg, secret)]),
        notifier_endpoints=[f"{host}:{port}" for host, port in endpoints],
    )
