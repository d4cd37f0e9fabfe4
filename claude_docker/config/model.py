"""The validated, merged configuration as frozen dataclasses.

Everything after the config pipeline reads these objects; nothing else digs in raw dicts.
Host paths are absolute and expanded (``~`` resolved) by the time they land here.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import hashlib
import ipaddress
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal, Mapping, TypeVar

from ..contract import EVENT_KINDS

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

NOTIFIER_EVENTS = EVENT_KINDS  # what `notifier.on` may name: the kinds the hook helper writes

DEFAULT_BASE_IMAGE = "node:22-bookworm-slim"
DEFAULT_MOUNT_PATH = "/workspace"
DEFAULT_AGENT_UID = 1000  # used when `up` runs as root and the config names no uid

_V = TypeVar("_V")
_Model = TypeVar("_Model", bound="DataclassInstance")


def frozen_map(data: Mapping[str, _V] | None = None) -> Mapping[str, _V]:
    return MappingProxyType(dict(data or {}))


@dataclass(frozen=True)
class ImageConfig:
    base: str = DEFAULT_BASE_IMAGE
    claude_code_version: str = "latest"
    node: bool = False  # Node.js and npm in the final image (npm_packages imply it)
    apt_packages: tuple[str, ...] = ()
    npm_packages: tuple[str, ...] = ()
    pip_packages: tuple[str, ...] = ()
    extra_ca_certificates: tuple[str, ...] = ()  # absolute host paths
    max_age_days: int = 30  # `up` warns about an older image; 0 never (not part of the build context)


@dataclass(frozen=True)
class WorkspaceConfig:
    path: str  # absolute host directory, mounted read-write
    mount_path: str = DEFAULT_MOUNT_PATH
    protect_git: bool = True  # .git/hooks and .git/config mounted read-only


@dataclass(frozen=True)
class Mount:
    source: str  # absolute host path
    target: str  # absolute container path
    read_only: bool = True


@dataclass(frozen=True)
class FilesystemConfig:
    blocked_paths: tuple[str, ...] = ()  # absolute host paths (expanded)
    mounts: tuple[Mount, ...] = ()


@dataclass(frozen=True)
class ProxyConfig:
    http: str | None = None
    https: str | None = None
    no_proxy: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelEndpoint:
    """Where Claude sends its model requests (endpoint.derive), opened by the firewall exactly."""

    host: str  # lower-case name or IPv4 address
    port: int
    source: str  # where it came from, in words
    scheme: str = "https"  # "http" only when the URL says so
    path: str = ""  # the URL's path prefix, without a trailing slash (a gateway's /anthropic)

    @property
    def is_address(self) -> bool:
        try:
            ipaddress.IPv4Address(self.host)
        except ValueError:
            return False
        return True

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class PublishedPort:
    """A container port published on the host (`ports:`, `up -p`): `address:host_port` on the
    host forwards to `container_port` inside, and the firewall admits inbound TCP to it."""

    host_port: int
    container_port: int
    address: str = "127.0.0.1"  # the host's loopback unless the entry names another address

    def __str__(self) -> str:
        return f"{self.address}:{self.host_port} -> {self.container_port}/tcp"


@dataclass(frozen=True)
class GitCredential:
    """network.git_credential: the variable holding a token for one git host over HTTPS. The
    token itself is read from the environment or the env file at `up`, never from a file here."""

    host: str  # an exact lower-case name
    token_variable: str
    username: str = "x-access-token"


@dataclass(frozen=True)
class NetworkConfig:
    firewall: bool = True
    allowed_domains: tuple[str, ...] = ()  # "example.com", "*.example.com", "github.com:22"
    allowed_cidrs: tuple[str, ...] = ()  # "10.0.0.0/8" or "10.0.0.0/8:443"
    allow_host_network: bool = False
    allow_private_answers: bool = False  # admit DNS answers in RFC 1918 / 100.64.0.0/10 outside allowed_cidrs
    proxy: ProxyConfig | None = None
    name_checks: bool = True  # the name-checking proxy; False: address-level, as admitted by DNS
    host_ports: tuple[int, ...] = ()  # TCP ports of the Docker host the container may reach
    model_endpoint: ModelEndpoint | None = None  # set by runplan from what Claude will use
    git_credential: GitCredential | None = None  # a token the sandbox proxy adds for one git host
    # Set by runplan: the request headers the sandbox proxy fills with the model credential
    # ("x-api-key", "authorization"); empty when Claude holds its credential itself.
    injected_headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class GitIdentity:
    name: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class PersistenceConfig:
    auth: Literal["project", "shared", "none"] = "project"  # YAML `false` maps to "none"
    import_host_login: bool = False
    shell_history: bool = True
    npm_cache: bool = True
    pip_cache: bool = True  # covers pip and uv
    git_config: bool = True  # mount the host ~/.gitconfig read-only
    git_identity: GitIdentity | None = None  # user.name / user.email set in the container
    dotfiles: tuple[str, ...] = ()  # absolute host files, read-only in the agent's home


@dataclass(frozen=True)
class TwilioConfig:
    to: tuple[str, ...]
    from_number: str | None = None  # YAML key `from`
    messaging_service_sid: str | None = None
    account_sid: str | None = None
    auth_token: str | None = None  # secret
    api_key_sid: str | None = None
    api_key_secret: str | None = None  # secret
    api_base: str = "https://api.twilio.com"


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    headers: Mapping[str, str] = field(default_factory=frozen_map)  # values are secrets


@dataclass(frozen=True)
class CommandNotifierConfig:
    argv: tuple[str, ...]  # run without a shell; event JSON on stdin


DEFAULT_MAX_PER_SESSION = 20
DEFAULT_MAX_PER_KIND = 10


@dataclass(frozen=True)
class NotifierConfig:
    on: tuple[str, ...] = ("stop", "failure")
    min_interval_seconds: int = 60
    max_per_session: int = DEFAULT_MAX_PER_SESSION  # messages per session and target, all kinds
    max_per_kind: int = DEFAULT_MAX_PER_KIND  # ... and of one kind (stop, failure ...)
    template: str | None = None  # Jinja template for the message text; None = built-in
    twilio: TwilioConfig | None = None
    apprise: tuple[str, ...] = ()  # Apprise URLs (secrets)
    webhooks: tuple[WebhookConfig, ...] = ()
    commands: tuple[CommandNotifierConfig, ...] = ()

    @property
    def configured(self) -> bool:
        return bool(self.twilio or self.apprise or self.webhooks or self.commands)


@dataclass(frozen=True)
class McpServer:
    name: str
    type: Literal["stdio", "http", "sse"] = "stdio"
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=frozen_map)  # may hold literal ${VAR} references
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=frozen_map)  # may hold ${VAR} references


@dataclass(frozen=True)
class ClaudeConfig:
    skip_permissions: bool = True
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=frozen_map)
    mcp_servers: tuple[McpServer, ...] = ()
    uid: int | None = None  # agent uid; None = the host user who runs `up` (1000 if root)
    gid: int | None = None


DEFAULT_PIDS_LIMIT = 4096
DEFAULT_LOG_MAX_SIZE = "10m"
DEFAULT_LOG_MAX_FILES = 3
AUTO_MEMORY = "auto"  # half the Docker host's memory, decided when the container is created


@dataclass(frozen=True)
class ResourcesConfig:
    memory: str | None = AUTO_MEMORY  # docker syntax, e.g. "8g"; "auto"; None = no limit
    cpus: float | None = None
    gpus: str | int | None = None  # "all" or a count
    shm_size: str | None = None
    pids_limit: int | None = DEFAULT_PIDS_LIMIT  # None = no limit
    log_max_size: str = DEFAULT_LOG_MAX_SIZE  # json-file log rotation
    log_max_files: int = DEFAULT_LOG_MAX_FILES


@dataclass(frozen=True)
class Config:
    """The whole merged configuration plus where it came from."""

    source_files: tuple[str, ...]  # the extends chain, base first, the user's file last
    project_dir: str  # absolute directory the project is anchored at (the config file's dir or cwd)
    workspace: WorkspaceConfig
    version: int = 1
    image: ImageConfig = field(default_factory=ImageConfig)
    filesystem: FilesystemConfig = field(default_factory=FilesystemConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    persistence: PersistenceConfig = field(default_factory=PersistenceConfig)
    notifier: NotifierConfig = field(default_factory=NotifierConfig)
    claude: ClaudeConfig = field(default_factory=ClaudeConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    ports: tuple[PublishedPort, ...] = ()  # container ports published on the host
    env_file: str | None = None  # absolute path; may not exist

    @property
    def project_name(self) -> str:
        """A readable, stable, collision-free name for the project: `<dirname>-<hash8>`."""
        return project_name_for(self.workspace.path)


def project_name_for(workspace_path: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", Path(workspace_path).name.lower()).strip("-") or "project"
    digest = hashlib.sha256(workspace_path.encode()).hexdigest()[:8]
    return f"{base[:40]}-{digest}"


# --- plain data (JSON) round trip, derived from the dataclasses' own fields -----------------------


def to_plain(value: object) -> object:
    """A model value as JSON-ready data: dataclasses become dicts, tuples lists, maps dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {item.name: to_plain(getattr(value, item.name)) for item in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [to_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: to_plain(item) for key, item in value.items()}
    return value


def from_plain(cls: type[_Model], data: Mapping[str, object]) -> _Model:
    """The inverse of `to_plain` for the dataclass `cls`, guided by its type hints."""
    hints = typing.get_type_hints(cls)
    return cls(**{item.name: _typed(hints[item.name], data[item.name]) for item in dataclasses.fields(cls) if item.name in data})


def _typed(hint: object, value: object) -> object:
    if value is None:
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):  # X | None
        return _typed(next(arg for arg in args if arg is not type(None)), value)
    if origin is tuple and isinstance(value, list):
        return tuple(_typed(args[0], item) for item in value)
    if origin is collections.abc.Mapping and isinstance(value, Mapping):
        return frozen_map(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        return from_plain(hint, value)
    return value
