"""The validated, merged configuration as frozen dataclasses.

Everything after the config pipeline reads these objects; nothing else digs in raw dicts.
Host paths are absolute and expanded (``~`` resolved) by the time they land here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal, Mapping

NOTIFIER_EVENTS = ("stop", "notification", "failure", "session_end")

DEFAULT_BASE_IMAGE = "node:22-bookworm-slim"
DEFAULT_MOUNT_PATH = "/workspace"
DEFAULT_AGENT_UID = 1000  # used when `up` runs as root and the config names no uid


def frozen_map(data: Mapping[str, object] | None = None) -> Mapping[str, object]:
    return MappingProxyType(dict(data or {}))


@dataclass(frozen=True)
class ImageConfig:
    base: str = DEFAULT_BASE_IMAGE
    claude_code_version: str = "latest"
    apt_packages: tuple[str, ...] = ()
    npm_packages: tuple[str, ...] = ()
    pip_packages: tuple[str, ...] = ()
    extra_ca_certificates: tuple[str, ...] = ()  # absolute host paths


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
class NetworkConfig:
    firewall: bool = True
    allowed_domains: tuple[str, ...] = ()  # "example.com", "*.example.com", "github.com:22"
    allowed_cidrs: tuple[str, ...] = ()  # "10.0.0.0/8" or "10.0.0.0/8:443"
    allow_host_network: bool = False
    proxy: ProxyConfig | None = None
    name_checks: bool = True  # the name-checking proxy; False: address-level, as admitted by DNS


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


@dataclass(frozen=True)
class NotifierConfig:
    on: tuple[str, ...] = ("stop", "failure")
    min_interval_seconds: int = 60
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


@dataclass(frozen=True)
class ResourcesConfig:
    memory: str | None = None  # docker syntax, e.g. "8g"
    cpus: float | None = None
    gpus: str | int | None = None  # "all" or a count
    shm_size: str | None = None


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
    env_file: str | None = None  # absolute path; may not exist

    @property
    def project_name(self) -> str:
        """A readable, stable, collision-free name for the project: `<dirname>-<hash8>`."""
        return project_name_for(self.workspace.path)


def project_name_for(workspace_path: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", Path(workspace_path).name.lower()).strip("-") or "project"
    digest = hashlib.sha256(workspace_path.encode()).hexdigest()[:8]
    return f"{base[:40]}-{digest}"
