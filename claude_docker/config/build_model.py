"""The merged, validated mapping → the frozen `model.Config`, plus the checks a schema can't express.

Relative host paths have already been made absolute per file (see pipeline.resolve_paths).
"""

from __future__ import annotations

from typing import Callable

from ..contract import CLAUDE_CONFIG_DIR, CONTAINER_OUTBOX, CONTAINER_ROOT
from .config_values import ValueProblem, parse_cidr, parse_port_mapping, read_ca_certificate
from .loader import KeyPath
from .model import (
    ClaudeConfig,
    CommandNotifierConfig,
    Config,
    FilesystemConfig,
    GitCredential,
    GitIdentity,
    ImageConfig,
    McpServer,
    Mount,
    NetworkConfig,
    NotifierConfig,
    PersistenceConfig,
    ProxyConfig,
    ResourcesConfig,
    TwilioConfig,
    WebhookConfig,
    WorkspaceConfig,
    frozen_map,
)

# System directories no mount may cover.
SYSTEM_CONTAINER_PATHS = ("/proc", "/sys", "/dev", "/etc", "/usr", "/bin", "/sbin", "/lib")
# The workspace may not cover those, nor the root or claude-docker's runtime config (firewall script).
WORKSPACE_FORBIDDEN = ("/", CONTAINER_ROOT, CONTAINER_OUTBOX.rsplit("/", 1)[0], CLAUDE_CONFIG_DIR,
                       *SYSTEM_CONTAINER_PATHS)

# What claude-docker mounts itself: a user mount may not sit inside one of these or around it.
MANAGED_TARGETS = (CONTAINER_ROOT, CONTAINER_OUTBOX.rsplit("/", 1)[0], CLAUDE_CONFIG_DIR)

Report = Callable[[KeyPath, str], None]


def _section(data: dict, name: str) -> dict:
    value = data.get(name)
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list:
    return value if isinstance(value, list) else []


def build_config(data: dict, source_files: tuple[str, ...], project_dir: str) -> Config:
    """Every default comes from the model's dataclasses (model.py), the one home for defaults."""
    image = _section(data, "image")
    workspace = _section(data, "workspace")
    filesystem = _section(data, "filesystem")
    network = _section(data, "network")
    persistence = _section(data, "persistence")
    notifier = _section(data, "notifier")
    claude = _section(data, "claude")
    resources = _section(data, "resources")

    proxy = network.get("proxy")
    git_credential = network.get("git_credential")
    git = persistence.get("git")
    twilio = notifier.get("twilio")
    auth = persistence.get("auth", PersistenceConfig.auth)
    return Config(
        source_files=source_files,
        project_dir=project_dir,
        version=data.get("version", Config.version),
        workspace=WorkspaceConfig(
            path=workspace.get("path", project_dir),
            mount_path=workspace.get("mount_path", WorkspaceConfig.mount_path),
            protect_git=workspace.get("protect_git", WorkspaceConfig.protect_git),
        ),
        image=ImageConfig(
            base=image.get("base", ImageConfig.base),
            claude_code_version=image.get("claude_code_version", ImageConfig.claude_code_version),
            node=image.get("node", ImageConfig.node),
            apt_packages=tuple(image.get("apt_packages", ())),
            npm_packages=tuple(image.get("npm_packages", ())),
            pip_packages=tuple(image.get("pip_packages", ())),
            extra_ca_certificates=tuple(image.get("extra_ca_certificates", ())),
            max_age_days=image.get("max_age_days", ImageConfig.max_age_days),
        ),
        filesystem=FilesystemConfig(
            blocked_paths=tuple(filesystem.get("blocked_paths", ())),
            mounts=tuple(
                Mount(source=m["source"], target=m["target"], read_only=m.get("read_only", Mount.read_only))
                for m in filesystem.get("mounts", ())
            ),
        ),
        network=NetworkConfig(
            firewall=network.get("firewall", NetworkConfig.firewall),
            allowed_domains=tuple(network.get("allowed_domains", ())),
            allowed_cidrs=tuple(network.get("allowed_cidrs", ())),
            allow_host_network=network.get("allow_host_network", NetworkConfig.allow_host_network),
            allow_private_answers=network.get("allow_private_answers", NetworkConfig.allow_private_answers),
            name_checks=network.get("name_checks", NetworkConfig.name_checks),
            host_ports=tuple(dict.fromkeys(network.get("host_ports", ()))),
            git_credential=GitCredential(
                host=git_credential["host"],
                token_variable=git_credential["token_variable"],
                username=git_credential.get("username", GitCredential.username),
            ) if isinstance(git_credential, dict) else None,
            proxy=ProxyConfig(
                http=proxy.get("http"), https=proxy.get("https"), no_proxy=tuple(proxy.get("no_proxy", ()))
            ) if isinstance(proxy, dict) else None,
        ),
        persistence=PersistenceConfig(
            auth="none" if auth is False else auth,
            import_host_login=persistence.get("import_host_login", PersistenceConfig.import_host_login),
            shell_history=persistence.get("shell_history", PersistenceConfig.shell_history),
            npm_cache=persistence.get("npm_cache", PersistenceConfig.npm_cache),
            pip_cache=persistence.get("pip_cache", PersistenceConfig.pip_cache),
            git_config=persistence.get("git_config", PersistenceConfig.git_config),
            git_identity=GitIdentity(name=git.get("name"), email=git.get("email")) if isinstance(git, dict) else None,
            dotfiles=tuple(persistence.get("dotfiles", ())),
        ),
        notifier=NotifierConfig(
            on=tuple(notifier.get("on", NotifierConfig.on)),
            min_interval_seconds=notifier.get("min_interval_seconds", NotifierConfig.min_interval_seconds),
            max_per_session=notifier.get("max_per_session", NotifierConfig.max_per_session),
            max_per_kind=notifier.get("max_per_kind", NotifierConfig.max_per_kind),
            template=notifier.get("template"),
            twilio=TwilioConfig(
                to=tuple(twilio["to"]),
                from_number=twilio.get("from"),
                messaging_service_sid=twilio.get("messaging_service_sid"),
                account_sid=twilio.get("account_sid"),
                auth_token=twilio.get("auth_token"),
                api_key_sid=twilio.get("api_key_sid"),
                api_key_secret=twilio.get("api_key_secret"),
                api_base=twilio.get("api_base", TwilioConfig.api_base),
            ) if isinstance(twilio, dict) else None,
            apprise=tuple(notifier.get("apprise", ())),
            webhooks=tuple(
                WebhookConfig(url=w["url"], headers=frozen_map(w.get("headers"))) for w in notifier.get("webhooks", ())
            ),
            commands=tuple(CommandNotifierConfig(argv=tuple(argv)) for argv in notifier.get("commands", ())),
        ),
        claude=ClaudeConfig(
            skip_permissions=claude.get("skip_permissions", ClaudeConfig.skip_permissions),
            args=tuple(claude.get("args", ())),
            env=frozen_map(claude.get("env")),
            mcp_servers=tuple(
                McpServer(
                    name=name,
                    type=server.get("type", McpServer.type),
                    command=server.get("command"),
                    args=tuple(server.get("args", ())),
                    env=frozen_map(server.get("env")),
                    url=server.get("url"),
                    headers=frozen_map(server.get("headers")),
                )
                for name, server in (claude.get("mcp_servers") or {}).items()
            ),
            uid=claude.get("uid"),
            gid=claude.get("gid"),
        ),
        resources=ResourcesConfig(
            memory=resources.get("memory", ResourcesConfig.memory),  # an explicit null lifts the limit
            cpus=resources.get("cpus"),
            gpus=resources.get("gpus"),
            shm_size=resources.get("shm_size"),
            pids_limit=resources.get("pids_limit", ResourcesConfig.pids_limit),
            log_max_size=resources.get("log_max_size", ResourcesConfig.log_max_size),
            log_max_files=resources.get("log_max_files", ResourcesConfig.log_max_files),
        ),
        ports=tuple(dict.fromkeys(parse_port_mapping(entry) for entry in _list(data.get("ports")))),
        env_file=data.get("env_file"),
    )


# Claude Code's credentials: what the sandbox proxy holds for it (features/credentials.py).
CREDENTIAL_ENV_VARIABLES = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN")


def semantic_problems(data: dict, report: Report) -> None:
    """Rules beyond the schema: real IP networks and ports, twilio credentials, safe mount targets."""
    for index, entry in enumerate(_list(_section(data, "network").get("allowed_cidrs"))):
        _check_value(parse_cidr, entry, ("network", "allowed_cidrs", index), report)
    for index, entry in enumerate(_list(data.get("ports"))):
        if isinstance(entry, (str, int)) and not isinstance(entry, bool):
            try:
                parse_port_mapping(entry)
            except ValueProblem as problem:
                report(("ports", index), str(problem))
    _check_published_ports(_list(data.get("ports")), report)
    for index, entry in enumerate(_list(_section(data, "image").get("extra_ca_certificates"))):
        _check_value(read_ca_certificate, entry, ("image", "extra_ca_certificates", index), report)

    # The model credential and tokens come from the user's environment or env file, never from a
    # config file (a committed one could carry anybody's key, and its values are printed by `config`).
    for name in _section(_section(data, "claude"), "env"):
        if name in CREDENTIAL_ENV_VARIABLES:
            report(("claude", "env", name), f"{name} is a credential, which is never read from a config file")
    network = _section(data, "network")
    if isinstance(network.get("git_credential"), dict) and (
        network.get("firewall") is False or network.get("name_checks") is False
    ):
        report(("network", "git_credential"), "needs the firewall's proxy (network.firewall and network.name_checks true)")

    twilio = _section(_section(data, "notifier"), "twilio")
    if twilio:
        path = ("notifier", "twilio")
        if not twilio.get("from") and not twilio.get("messaging_service_sid"):
            report(path, "needs 'from' (a phone number) or 'messaging_service_sid'")
        if not twilio.get("account_sid"):
            report(path, "needs 'account_sid' (it is part of the API URL)")
        has_token = bool(twilio.get("auth_token"))
        has_key = bool(twilio.get("api_key_sid")) and bool(twilio.get("api_key_secret"))
        if not has_token and not has_key:
            report(path, "needs 'auth_token', or 'api_key_sid' with 'api_key_secret'")

    template = _section(data, "notifier").get("template")
    if isinstance(template, str):
        _check_template(template, ("notifier", "template"), report)

    workspace = _section(data, "workspace")
    if "mount_path" in workspace:
        _check_target(workspace["mount_path"], ("workspace", "mount_path"), report, WORKSPACE_FORBIDDEN)
    for index, mount in enumerate(_section(data, "filesystem").get("mounts", ())):
        if isinstance(mount, dict) and isinstance(mount.get("target"), str):
            target_path = ("filesystem", "mounts", index, "target")
            _check_target(mount["target"], target_path, report, SYSTEM_CONTAINER_PATHS, MANAGED_TARGETS)


def _check_published_ports(entries: list, report: Report) -> None:
    """One host port can be published once; one container port may be published on several."""
    seen: dict[int, int] = {}
    for index, entry in enumerate(entries):
        try:
            mapping = parse_port_mapping(entry)
        except (ValueProblem, TypeError):
            continue
        if mapping.host_port in seen and entries[seen[mapping.host_port]] != entry:
            report(("ports", index), f"host port {mapping.host_port} is already published by {entries[seen[mapping.host_port]]!r}")
        seen.setdefault(mapping.host_port, index)


def _check_value(parse: Callable[[str], object], entry: object, path: KeyPath, report: Report) -> None:
    if isinstance(entry, str):  # other types are the schema's to report
        try:
            parse(entry)
        except ValueProblem as problem:
            report(path, str(problem))


def _check_target(
    target: str, path: KeyPath, report: Report, forbidden: tuple[str, ...], managed: tuple[str, ...] = ()
) -> None:
    normal = "/" + "/".join(part for part in target.split("/") if part not in ("", "."))
    if ".." in normal.split("/"):
        report(path, f"{target!r} must not contain '..'")
        return
    for reserved in forbidden:
        if normal == reserved or (reserved != "/" and normal.startswith(reserved + "/")):
            report(path, f"{target!r} would cover {reserved}, which claude-docker or the system needs")
            return
    for reserved in managed:  # neither inside nor around what claude-docker mounts itself
        if normal == reserved or normal.startswith(reserved + "/") or reserved.startswith(normal.rstrip("/") + "/"):
            report(path, f"target {target} overlaps {reserved}, which claude-docker manages; pick another container path")
            return


def _check_template(source: str, path: KeyPath, report: Report) -> None:
    """A broken message template is a config error now, not a silent notifier failure later."""
    import jinja2.sandbox  # only when a template is configured

    try:
        jinja2.sandbox.SandboxedEnvironment().parse(source)
    except jinja2.TemplateSyntaxError as error:
        report(path, f"not a valid Jinja template: {error.message} (template line {error.lineno})")
