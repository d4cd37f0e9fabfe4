"""Turn a config and a session into a ContainerPlan: mounts, env, capabilities, labels, limits.

One RunContext is built per run and handed to every feature of the registry (features.FEATURES),
each adding what it needs to a RunSpec; this module adds the fixed security posture, writes the
rendered runtime artifacts and mounts them read-only.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Mapping

from . import contract
from .artifacts import Artifact, context_hash, write_artifacts
from .config.model import Config
from .contract import (
    AGENT_ONLY_PREFIX,
    AGENT_ONLY_VARIABLES,
    LABEL_CONFIG_FILE,
    LABEL_CONFIG_HASH,
    LABEL_DETACHED,
    LABEL_IMAGE,
    LABEL_MANAGED,
    LABEL_PROJECT,
    LABEL_PROTECT_GIT,
    LABEL_SESSION,
    LABEL_WORKSPACE,
)
from .errors import ClaudeDockerError
from .features import FEATURES, RunContext, claude_settings, credentials, endpoint, notifier
from .features.base import agent_ids as agent_ids  # where tests and benchmarks find it
from .features.firewall.plan import session_proxy_env
from .render import render_runtime
from .runspec import ContainerPlan, RunSpec
from .session import Session

# What the entrypoint needs as root before it drops to the agent (the agent keeps none of them):
# SETUID/SETGID  switch to the agent's uid/gid (setpriv);
# SETPCAP        empty the bounding set before exec (prctl PR_CAPBSET_DROP);
# CHOWN          hand the agent its home and the mount points Docker created there as root;
# DAC_OVERRIDE   setup steps prepare persisted dirs owned by the host user (not root);
# FOWNER         ... and chmod them.
ENTRYPOINT_CAPS = frozenset({"SETUID", "SETGID", "SETPCAP", "CHOWN", "DAC_OVERRIDE", "FOWNER"})


def workspace_warning(cfg: Config, uid: int, gid: int) -> str | None:
    """Say so when the agent will not be able to write in its own workspace."""
    try:
        info = os.stat(cfg.workspace.path)
    except OSError:
        return None
    writable = (
        info.st_uid == uid and info.st_mode & 0o200
        or info.st_gid == gid and info.st_mode & 0o020
        or info.st_mode & 0o002
    )
    if writable:
        return None
    return (
        f"the workspace {cfg.workspace.path} is owned by uid {info.st_uid} and the agent runs as uid {uid}: "
        "it cannot write there (chown the directory, or set claude.uid / claude.gid)"
    )


def proxy_env(cfg: Config) -> dict[str, str]:
    """The proxy reaches the session through the same variables as the build; when the sandbox
    proxy chains to it, they point at the sandbox proxy."""
    return session_proxy_env(cfg)


def config_hash(image_tag: str, runtime: dict[str, Artifact]) -> str:
    """Changes whenever anything that shapes the container changes (image or runtime files)."""
    return context_hash({"image": Artifact(image_tag.encode()), **{f"runtime/{k}": v for k, v in runtime.items()}})[:16]


def collect_spec(ctx: RunContext) -> RunSpec:
    """Every feature's mounts, env and capabilities, in registry order."""
    spec = RunSpec()
    for feature in FEATURES:
        feature.contribute(ctx, spec)
    return spec


def context(cfg: Config, session: Session, environ: Mapping[str, str] | None = None) -> RunContext:
    """The run context of one `up`: the env file read once, the agent's ids, the model endpoint
    (when the config names none, derived from what Claude will use) for the firewall to open,
    and what the sandbox proxy holds (credentials.plan, worked out once for the run). Refuses a
    notifier credential bound for the container and a credentials file that cannot be mounted,
    before anything is prepared on the host."""
    ctx = RunContext.build(cfg, session, environ)
    notifier.refuse_secrets(cfg)
    credential_problems = endpoint.credential_file_problems(cfg, ctx.process_environ, ctx.env_file_values)
    if credential_problems:
        raise ClaudeDockerError(credential_problems[0], endpoint.CREDENTIAL_FILE_HINT)
    model_endpoint = cfg.network.model_endpoint or endpoint.derive(cfg, ctx.process_environ, ctx.env_file_values)
    # The proxy holds the model credential and the git token (the credentials feature gives the
    # agent placeholders); the firewall opens the endpoint and serves the local ones.
    injection = credentials.plan(cfg, ctx.process_environ, model_endpoint, ctx.env_file_values)
    network = replace(cfg.network, model_endpoint=model_endpoint, injected_headers=injection.headers)
    return replace(ctx, config=replace(cfg, network=network), credentials=injection)


def plan(
    cfg: Config,
    session: Session,
    image_tag: str,
    extra_args: tuple[str, ...] | list[str] = (),
    *,
    interactive: bool = False,
    forward_stdin: bool = False,
    detach: bool = False,
    keep: bool = False,
    environ: Mapping[str, str] | None = None,
    command: list[str] | None = None,
) -> ContainerPlan:
    """Prepare the session's host dirs and runtime files; return what `create` needs.

    `interactive`: a terminal (tty, stdin kept open), also for a detached session one attaches
    to later; `detach`: the container is labelled to be kept after it ends (unless `keep`,
    which keeps it from pruning too).

    `command` replaces Claude's arguments entirely (e.g. ["--exec", "id"]).
    """
    ctx = context(cfg, session, environ)
    cfg = ctx.config
    spec = collect_spec(ctx)

    runtime = render_runtime(cfg, session)
    session.runtime_dir.mkdir(parents=True, exist_ok=True)
    write_artifacts(runtime, session.runtime_dir)
    spec.bind(str(session.runtime_dir), contract.CONTAINER_RUNTIME, read_only=True)

    uid, gid = ctx.ids
    warning = workspace_warning(cfg, uid, gid)
    if warning:
        spec.warnings.append(warning)
    if command is None:  # Claude Code runs: say now when it will start logged out
        warning = claude_settings.missing_credential(cfg, ctx.environ)
        if warning:
            spec.warnings.append(warning)
    env: dict[str, str] = {}
    env.update(proxy_env(cfg))
    env.update({AGENT_ONLY_PREFIX + k if k in AGENT_ONLY_VARIABLES else k: v for k, v in cfg.claude.env.items()})
    env.update(spec.env)
    env.update(
        {
            "AGENT_UID": str(uid),
            "AGENT_GID": str(gid),
            "CLAUDE_CONFIG_DIR": contract.CLAUDE_CONFIG_DIR,
            "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CLAUDE_DOCKER_SKIP_PERMISSIONS": "1" if cfg.claude.skip_permissions else "0",
            "CLAUDE_DOCKER_PROJECT": session.project,
            "CLAUDE_DOCKER_SESSION": session.session_id,
        }
    )

    labels = {
        **spec.labels,
        LABEL_MANAGED: "1",
        LABEL_PROJECT: session.project,
        LABEL_SESSION: session.session_id,
        LABEL_WORKSPACE: cfg.workspace.path,
        LABEL_PROTECT_GIT: "1" if cfg.workspace.protect_git else "0",
        LABEL_CONFIG_FILE: cfg.source_files[-1] if cfg.source_files else "",
        LABEL_CONFIG_HASH: config_hash(image_tag, runtime),
        LABEL_IMAGE: image_tag,
    }
    if detach and not keep:
        labels[LABEL_DETACHED] = "1"
    return ContainerPlan(
        name=session.container_name,
        image=image_tag,
        command=list(command) if command is not None else [*cfg.claude.args, *extra_args],
        env=env,
        labels=labels,
        mounts=list(spec.mounts),
        cap_add=sorted(ENTRYPOINT_CAPS | set(spec.cap_add)),
        working_dir=cfg.workspace.mount_path,
        tty=interactive,
        stdin_open=interactive or forward_stdin,
        stdin_once=forward_stdin,
        # A detached session outlives its end (its output and exit code, for `logs` and `ps`)
        # until `down` or pruning removes it; a foreground `up` removes its own container.
        auto_remove=False,
        memory=cfg.resources.memory,
        cpus=cfg.resources.cpus,
        gpus=cfg.resources.gpus,
        shm_size=cfg.resources.shm_size,
        pids_limit=cfg.resources.pids_limit,
        log_max_size=cfg.resources.log_max_size,
        log_max_files=cfg.resources.log_max_files,
        sysctls=dict(spec.sysctls),
        ports=[(port.address, port.host_port, port.container_port) for port in cfg.ports],
        warnings=list(spec.warnings),
    )
