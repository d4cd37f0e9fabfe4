"""Config commands: validate, config, render, schema, init, profiles, completion.

Heavy imports (jsonschema, jinja2, docker) happen inside the commands that need them, so
`claude-docker --help` and `validate` stay fast.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import click

from ..config.model import Config, ModelEndpoint
from ..errors import ClaudeDockerError, ConfigError
from .options import file_option, output_dir_option

MASK = "********"
_SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|PASS|KEY|AUTH|CREDENTIAL|COOKIE|SESSION)", re.I)
_VAR_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}")


# --- validate --------------------------------------------------------------------------------


@click.command()
@file_option
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one object with `valid`, `chain` and `problems` (for editors and CI).",
)
def validate(config_file: str | None, output_format: str) -> None:
    """Check the configuration and show its profile chain.

    Every problem is reported at once, each with file, line and key path, including what `up`
    would refuse in this environment (an MCP server's ${VAR} set nowhere, a notifier credential
    bound for the container, network.git_credential's token set nowhere, a credential the sandbox
    proxy cannot hold, a provider's credentials file it cannot mount). Exit code 0 when valid (warnings included: no firewall, a proxy
    the allowlist does not admit), 1 otherwise.

    \b
    Examples:
      claude-docker validate
      claude-docker validate -f ci/claude-docker.yaml --format json
    """
    from ..config.pipeline import load_config
    from ..features import require_runnable

    try:
        loaded = load_config(config_file)
        require_runnable(loaded)  # what `up` would refuse in this environment, with file and line
    except ConfigError as error:
        if output_format != "json":
            raise
        problems = [
            {"file": p.file, "key_path": p.key_path, "line": p.line, "message": p.message} for p in error.problems
        ]
        click.echo(json.dumps({"valid": False, "problems": problems, "hint": error.hint}, indent=2))
        sys.exit(1)
    from ..features import firewall, image, trust
    from ..features.endpoint import DEFAULT_HOST
    from ..features.firewall import plan as firewall_plan

    pending = trust.untrusted(loaded.config)
    warnings = firewall.config_warnings(loaded.config) + image.config_warnings(loaded.config)
    model_endpoint = _model_endpoint(loaded.config)
    if output_format == "json":
        approvals = [{"file": entry.path, "state": entry.state} for entry in pending]
        click.echo(json.dumps(
            {"valid": True, "chain": list(loaded.chain), "problems": [], "warnings": warnings, "untrusted": approvals,
             "model_endpoint": {"host": model_endpoint.host, "port": model_endpoint.port, "source": model_endpoint.source}},
            indent=2,
        ))
        return
    from ..paths import user_config_file

    last = loaded.chain[-1]
    user_file = str(user_config_file())
    if "/" in last and last != user_file:
        click.echo(f"{last} is valid")
    elif last == user_file:
        click.echo(f"no claude-docker.yaml found here or above; {user_file} is valid")
    else:
        click.echo("no claude-docker.yaml found here or above; the defaults are valid")
    click.echo(f"profile chain: {' -> '.join(loaded.chain)}")
    if model_endpoint.host != DEFAULT_HOST or model_endpoint.port != 443:  # said when it is not the usual one
        click.echo(f"model endpoint: {_describe_endpoint(loaded.config, model_endpoint)}")
    for warning in warnings:
        click.echo(f"warning: {warning}")
    for line in firewall_plan.describe(loaded.config):
        click.echo(line)
    for line in trust.status_lines(loaded.config):
        click.echo(line)


# --- trust -----------------------------------------------------------------------------------


@click.command("trust")
@file_option
@click.option("-y", "--yes", is_flag=True, help="Do not ask; approve what is shown.")
def trust_command(config_file: str | None, yes: bool) -> None:
    """Review and approve the config files in the workspace (needed before `up` acts on them).

    The agent can write in its workspace, so claude-docker.yaml and the profiles it extends,
    when they lie there, are approved by their content: the first time, and after every
    change. New files are shown whole, changed ones as a diff against what was approved.

    \b
    Examples:
      claude-docker trust
      claude-docker trust -f ci/claude-docker.yaml --yes
    """
    from ..config.pipeline import load_config
    from ..features import trust

    cfg = load_config(config_file).config
    pending = trust.untrusted(cfg)
    if not pending:
        click.echo("every config file in the workspace is trusted as it is")
        return
    for entry in pending:
        click.echo(trust.describe(entry), nl=False)
    if not yes:
        click.confirm(f"trust {'this file' if len(pending) == 1 else 'these files'}?", abort=True)
    trust.record(cfg, pending)
    for entry in pending:
        click.echo(f"trusted {entry.display}")


# --- config ----------------------------------------------------------------------------------


@click.command("config")
@file_option
@click.option("--show-secrets", is_flag=True, help="Print secret values instead of masking them.")
def show_config(config_file: str | None, show_secrets: bool) -> None:
    """Print the effective configuration as YAML, defaults included, secrets masked.

    This is what the sandbox is built from: every profile in the chain merged, ${VAR}
    references filled in, relative paths made absolute, every value no file sets shown with
    its default, and the blocked paths claude-docker adds itself ($CLAUDE_DOCKER_HOME, the
    Docker socket). The output is itself a valid claude-docker.yaml.

    \b
    Examples:
      claude-docker config
      claude-docker config -f other.yaml > merged.yaml
    """
    import yaml

    from ..config.pipeline import load_config

    loaded = load_config(config_file)
    effective = effective_document(loaded.config)
    document = effective if show_secrets else mask_secrets(effective)
    click.echo(f"# profile chain: {' -> '.join(loaded.chain)}")
    click.echo(yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False), nl=False)
    click.echo(f"# model endpoint: {_describe_endpoint(loaded.config, _model_endpoint(loaded.config))}")
    if (loaded.merged.get("resources") or {}).get("memory") == "auto":
        click.echo(f"# resources.memory: auto = half the Docker host's memory ({_half_local_memory()} on this machine)")


def _model_endpoint(cfg: Config) -> ModelEndpoint:
    from ..features.endpoint import derive

    return derive(cfg, os.environ)


def _describe_endpoint(cfg: Config, found: ModelEndpoint) -> str:
    """Where Claude will send its requests, where that came from and what the firewall opens."""
    from ..features import credentials

    held = [name for name in credentials.CREDENTIAL_VARIABLES if name in credentials.credential_environment(cfg, os.environ)]
    if not cfg.network.firewall:
        opened = "the firewall is off"
    elif held and credentials.not_injectable(cfg, os.environ) is None:
        opened = "only the sandbox proxy, which holds the key, connects there (Claude uses its local endpoint)"
    elif found.is_address:
        opened = "the firewall opens this address and TCP port only"
    else:
        opened = "the firewall allows this name"
    return f"{found} ({found.source}); {opened}"


def _half_local_memory() -> str:
    """What `auto` comes to when the engine runs here (the engine's own figure counts at `up`)."""
    import os

    half = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    return f"{half / 1024**3:.1f}g" if half >= 1024**3 else f"{half // 1024**2}m"


def effective_document(cfg: Config) -> dict:
    """The model as a claude-docker.yaml document: every key, defaults included.

    Unset optional values (no proxy, no Twilio, no template) are left out; resource limits
    show `null` for "no limit".
    """
    from .. import paths
    from ..config.blocked_paths import ALWAYS_BLOCKED
    from ..config.model import to_plain

    def present(section: dict) -> dict:
        return {key: value for key, value in section.items() if value is not None}

    plain = to_plain(cfg)
    assert isinstance(plain, dict)
    blocked = list(dict.fromkeys([*cfg.filesystem.blocked_paths, *ALWAYS_BLOCKED, str(paths.claude_docker_home())]))
    persistence = dict(plain["persistence"])
    persistence["auth"] = False if cfg.persistence.auth == "none" else cfg.persistence.auth
    identity = persistence.pop("git_identity")
    dotfiles = persistence.pop("dotfiles")
    if identity is not None:
        persistence["git"] = present(identity)
    persistence["dotfiles"] = dotfiles
    notifier = dict(plain["notifier"])
    twilio = notifier.pop("twilio")
    if twilio is not None:
        twilio["from"] = twilio.pop("from_number")
        notifier["twilio"] = present(twilio)
    notifier["commands"] = [command["argv"] for command in notifier["commands"]]
    claude = dict(plain["claude"])
    servers: dict[str, dict] = {}
    for server in claude.pop("mcp_servers"):
        name = server.pop("name")
        keys = ("type", "url", "headers") if server["type"] in ("http", "sse") else ("type", "command", "args", "env")
        servers[name] = {key: server[key] for key in keys}
    claude["mcp_servers"] = servers
    document = {
        "version": cfg.version,
        "image": plain["image"],
        "workspace": plain["workspace"],
        "filesystem": {**plain["filesystem"], "blocked_paths": blocked},
        "network": present(
            {**plain["network"], "proxy": present(plain["network"]["proxy"] or {}) or None, "injected_headers": None}
        ),
        "persistence": persistence,
        "notifier": present(notifier),
        "claude": present(claude),
        "resources": plain["resources"],
        "ports": [f"{port.address}:{port.host_port}:{port.container_port}" for port in cfg.ports],
    }
    if cfg.env_file:
        document["env_file"] = cfg.env_file
    return document


def _mask_url(url: str) -> str:
    """Keep the scheme and host, hide credentials, path and query (webhook URLs are secrets)."""
    match = re.match(r"^([a-z][a-z0-9+.-]*://)(?:[^@/]*@)?([^/?#]*)", url)
    if not match:
        return MASK
    return f"{match.group(1)}{match.group(2)}/{MASK}"


def _mask_unless_reference(value: object) -> object:
    return value if isinstance(value, str) and _VAR_REFERENCE.search(value) else MASK


def mask_secrets(document: dict) -> dict:
    """A copy of the merged document with every secret value replaced by a mask."""
    import copy

    data = copy.deepcopy(document)
    notifier = data.get("notifier") or {}
    twilio = notifier.get("twilio") or {}
    for key in ("auth_token", "api_key_secret"):
        if key in twilio:
            twilio[key] = MASK
    if "apprise" in notifier:
        # Apprise puts tokens anywhere, even where a host would be: only the scheme stays.
        notifier["apprise"] = [re.sub(r"://.*", f"://{MASK}", url, flags=re.S) for url in notifier["apprise"]]
    for hook in notifier.get("webhooks") or []:
        hook["url"] = _mask_url(hook["url"])
        hook["headers"] = {name: MASK for name in hook.get("headers") or {}}
    proxy = (data.get("network") or {}).get("proxy") or {}
    for key in ("http", "https"):
        if key in proxy and "@" in proxy[key]:
            proxy[key] = re.sub(r"://[^@/]*@", f"://{MASK}@", proxy[key])
    claude = data.get("claude") or {}
    env = claude.get("env") or {}
    for name in env:
        if _SECRET_NAME.search(name):
            env[name] = MASK
    for server in (claude.get("mcp_servers") or {}).values():
        for section in ("env", "headers"):
            values = server.get(section) or {}
            for name in values:
                values[name] = _mask_unless_reference(values[name])
    return data


# --- render ----------------------------------------------------------------------------------


@click.command()
@file_option
@output_dir_option("Directory to write into (created if missing).")
def render(config_file: str | None, output_dir: Path) -> None:
    """Write the rendered container files to a directory, for review.

    The image's build context (Dockerfile, entrypoint, helpers) and the per-session runtime
    files (init-firewall.sh, dnsmasq.conf, mcp.json, settings.json) land side by side. Same
    input, same bytes.

    \b
    Examples:
      claude-docker render -o rendered/
      claude-docker render -f strict.yaml -o /tmp/out && shellcheck /tmp/out/*.sh
    """
    from ..artifacts import write_artifacts
    from ..config.pipeline import load_config
    from ..render import render_build_context, render_runtime
    from ..session import Session

    cfg = load_config(config_file).config
    artifacts = dict(render_build_context(cfg))
    for name, artifact in render_runtime(cfg, Session(cfg.project_name, "render")).items():
        if name in artifacts and artifacts[name] != artifact:
            raise ClaudeDockerError(f"two rendered files are both named {name!r}")
        artifacts[name] = artifact
    output_dir.mkdir(parents=True, exist_ok=True)
    for path in write_artifacts(dict(sorted(artifacts.items())), output_dir):
        click.echo(str(path))


# --- schema ----------------------------------------------------------------------------------


@click.command()
def schema() -> None:
    """Print the JSON Schema of claude-docker.yaml (draft 2020-12).

    Editors use it for completion and checks: put
    `# yaml-language-server: $schema=PATH` at the top of the file.

    \b
    Examples:
      claude-docker schema > claude-docker.schema.json
    """
    from ..resources import schema_path

    click.echo(schema_path().read_text(encoding="utf-8"), nl=False)


# --- init ------------------------------------------------------------------------------------

SCHEMA_FILE_NAME = "claude-docker.schema.json"

STARTER = """\
# yaml-language-server: $schema=./{schema_file}
# claude-docker.yaml: the sandbox Claude Code runs in. `claude-docker validate` checks it,
# `claude-docker config` shows it merged with its profiles, `claude-docker up` starts it.
# Every file builds on the built-in `default` profile (Claude Code's own domains and the
# host paths that are never mounted); see `claude-docker profiles`.
version: 1
{extends}
image:
  base: node:22-bookworm-slim      # any image; plain Debian works too
  claude_code_version: latest      # or a pinned version such as "2.1.32"
  apt_packages: []                 # e.g. [ripgrep, jq]
  # extra_ca_certificates: [/etc/ssl/certs/corp-ca.pem]   # trusted at build and run time

workspace:
  path: .                          # mounted read-write; relative to this file
  mount_path: /workspace

filesystem:
  blocked_paths: []                # added to the default list; inherited ones always stay
  mounts: []                       # e.g. [{{source: ~/datasets, target: /data, read_only: true}}]

network:
  firewall: true                   # only allowed_domains are reachable ("*.x.com" for subdomains)
  allowed_domains: []              # e.g. [github.com, "*.githubusercontent.com"]

persistence:
  auth: project                    # project | shared | false: where the login is kept
  shell_history: true

# notifier:                        # who hears when the agent stops or needs you
#   on: [stop, notification, failure]
#   twilio:
#     account_sid: ${{TWILIO_ACCOUNT_SID}}
#     auth_token: ${{TWILIO_AUTH_TOKEN}}
#     from: "+15005550006"
#     to: ["+15551234567"]

claude:
  args: []                         # extra arguments for `claude`, e.g. ["--model", "opus"]
  # mcp_servers:
  #   docs: {{command: npx, args: ["-y", "some-mcp-server"], env: {{TOKEN: "${{DOCS_TOKEN}}"}}}}

# resources: {{memory: 8g, cpus: 2}}
# env_file: ~/.claude-docker/.env  # values for ${{VAR}} references
"""


def starter_text(profile: str | None) -> str:
    extends = f"extends: [{profile}]" if profile else "# extends: [python, github]    # built-in profiles or paths to YAML files"
    return STARTER.format(extends=extends, schema_file=SCHEMA_FILE_NAME)


@click.command()
@click.option("--profile", "profile", default=None, metavar="NAME", help="Built-in profile to extend (see `claude-docker profiles`).")
@click.option("-f", "--file", "target", default="claude-docker.yaml", show_default=True,
              type=click.Path(dir_okay=False, path_type=Path), help="Where to write the file.")
def init(profile: str | None, target: Path) -> None:
    """Write a commented starter claude-docker.yaml (never overwrites).

    Next to it goes claude-docker.schema.json, which the file's first line names for editors
    (yaml-language-server); $CLAUDE_DOCKER_HOME (~/.claude-docker) is created, private to you,
    for the env file and what sessions keep.

    \b
    Examples:
      claude-docker init
      claude-docker init --profile python
    """
    from .. import paths
    from ..config.profiles import builtin_names
    from ..resources import schema_path

    if profile is not None and profile not in builtin_names():
        raise ClaudeDockerError(
            f"there is no built-in profile {profile!r}",
            f"choose one of: {', '.join(builtin_names())}",
        )
    if target.exists():
        raise ClaudeDockerError(f"{target} already exists; not overwriting it", "edit it, or remove it first")
    schema_file = target.parent / SCHEMA_FILE_NAME
    schema_text = schema_path().read_text(encoding="utf-8")
    try:
        home, created = paths.ensure_home()
        target.write_text(starter_text(profile), encoding="utf-8")
        refresh_schema = not schema_file.exists() or schema_file.read_text(encoding="utf-8") != schema_text
        if refresh_schema:
            schema_file.write_text(schema_text, encoding="utf-8")
    except OSError as error:
        raise ClaudeDockerError(f"cannot write {error.filename}: {error.strerror}") from None
    _trust_written(target)
    if created:
        click.echo(f"created {home} (only you can read it): the env file and what sessions keep live there")
    if refresh_schema:
        click.echo(f"wrote {schema_file} (the JSON Schema editors use)")
    click.echo(f"wrote {target}; check it with `claude-docker validate`")


def _trust_written(target: Path) -> None:
    """The file `init` just wrote is the user's own: approve it (if it loads on its own)."""
    from ..config.pipeline import load_config
    from ..features import trust

    try:
        cfg = load_config(str(target)).config
    except ClaudeDockerError:
        return  # `validate` and `up` will say what is wrong
    pending = [entry for entry in trust.untrusted(cfg) if entry.path == os.path.realpath(target)]
    trust.record(cfg, pending)


# --- profiles --------------------------------------------------------------------------------


@click.command("profiles")
def list_profiles() -> None:
    """List the built-in profiles, one per line.

    Use them in `extends:`; `default` is always applied first.

    \b
    Examples:
      claude-docker profiles
    """
    import yaml

    from ..config.profiles import builtin_names, builtin_path

    names = builtin_names()
    width = max(len(name) for name in names)
    for name in names:
        data = yaml.safe_load(builtin_path(name).read_text(encoding="utf-8")) or {}
        click.echo(f"{name:<{width}}  {data.get('description', '')}".rstrip())


# --- completion ------------------------------------------------------------------------------


COMPLETION_SHELLS = ("bash", "zsh", "fish")


@click.command()
@click.argument("shell", type=click.Choice(COMPLETION_SHELLS), required=False)
def completion(shell: str | None) -> None:
    """Print the shell completion script (for SHELL, default: the one $SHELL names).

    \b
    Examples:
      eval "$(claude-docker completion)"           # in ~/.bashrc or ~/.zshrc
      claude-docker completion fish > ~/.config/fish/completions/claude-docker.fish
    """
    from click.shell_completion import get_completion_class

    from ..cli import main

    if shell is None:
        login_shell = os.path.basename(os.environ.get("SHELL", ""))
        if login_shell not in COMPLETION_SHELLS:
            raise ClaudeDockerError(
                f"cannot tell the shell: $SHELL is {os.environ.get('SHELL') or 'not set'}",
                f"name it: claude-docker completion {'|'.join(COMPLETION_SHELLS)}",
            )
        shell = login_shell

    completion_class = get_completion_class(shell)
    if completion_class is None:  # click.Choice lets only the shells click knows through
        raise click.BadParameter(f"no completion for {shell}", param_hint="SHELL")
    completer = completion_class(main, {}, "claude-docker", "_CLAUDE_DOCKER_COMPLETE")
    click.echo(completer.source())


COMMANDS: list[click.Command] = [validate, trust_command, show_config, render, schema, init, list_profiles, completion]
