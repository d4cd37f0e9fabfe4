"""What every feature is handed and what it offers: the run context, the ended session, and the
small protocol the run plan, `render`, `validate` and session clean-up iterate over.

A feature is a module (see the registry in features/__init__.py) with four functions:

    check(config, environ, locate)   problems a user can fix, with file, key path and line
                                     (environ: the environment over the env file)
    runtime_artifacts(config, session)  files mounted read-only at contract.CONTAINER_RUNTIME
    contribute(ctx, spec)            mounts, environment, capabilities for one run
    cleanup(ended)                   what its runs left on the host, once their containers are gone

A feature that has nothing to do at a step returns an empty result.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Protocol, Sequence

from ..artifacts import Artifact
from ..config.blocked_paths import Locator
from ..config.interpolate import read_env_file
from ..config.loader import KeyPath, format_key_path
from ..config.model import DEFAULT_AGENT_UID, Config
from ..errors import ConfigProblem
from ..runspec import RunSpec
from ..session import Session


def agent_ids(cfg: Config) -> tuple[int, int]:
    """The uid/gid the agent runs as, so files it writes in the workspace belong to the right user.

    claude.uid/gid win; otherwise the host user who runs `up`. When that is root (servers, CI),
    the agent stays non-root: it takes the workspace owner's ids, or 1000 if root owns it.
    """
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        try:
            owner = os.stat(cfg.workspace.path)
            uid, gid = owner.st_uid, owner.st_gid
        except OSError:
            uid = gid = 0
        if uid == 0:
            uid = gid = DEFAULT_AGENT_UID
        gid = gid or uid
    return (cfg.claude.uid if cfg.claude.uid is not None else uid, cfg.claude.gid if cfg.claude.gid is not None else gid)


def merged_environment(cfg: Config, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment over the env file (`env_file`): where run-time values come from."""
    environ = os.environ if environ is None else environ
    from_file = read_env_file(Path(cfg.env_file)) if cfg.env_file else {}
    return {**from_file, **environ}


def split_environment(cfg: Config, merged: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """A merged environment (what `check` gets) back as (the process's, the env file's), so a
    problem can say where a value came from; a value both hold alike counts as the file's."""
    from_file = read_env_file(Path(cfg.env_file)) if cfg.env_file else {}
    return {name: value for name, value in merged.items() if from_file.get(name) != value}, from_file


@dataclass(frozen=True)
class Injection:
    """What the container gets of the credentials (features/credentials.py `plan`): placeholders
    for the agent, secrets for the sandbox proxy only."""

    headers: tuple[str, ...]  # the model request headers the proxy fills
    agent_env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, str] = field(default_factory=dict)
    unprotected: tuple[str, ...] = ()  # credential variables Claude holds itself, and why (warnings)


@dataclass(frozen=True)
class RunContext:
    """Built once per `up` and handed to every feature: the env file is read here, once, the
    agent's ids are worked out here, once, and so are the credentials (runplan.context)."""

    config: Config
    session: Session
    uid: int
    gid: int
    process_environ: Mapping[str, str]  # the environment `up` runs in
    env_file_values: Mapping[str, str]  # `env_file`, read once
    home: str | None = None  # the host user's home; None: Path.home()
    credentials: Injection | None = None  # credentials.plan for this run; runplan.context fills it in

    @classmethod
    def build(
        cls, config: Config, session: Session, environ: Mapping[str, str] | None = None, home: str | None = None
    ) -> RunContext:
        uid, gid = agent_ids(config)
        process = dict(os.environ if environ is None else environ)
        from_file = read_env_file(Path(config.env_file)) if config.env_file else {}
        return cls(config, session, uid, gid, process, from_file, home)

    @property
    def environ(self) -> dict[str, str]:
        """The process environment over the env file: where run-time values come from."""
        return {**self.env_file_values, **self.process_environ}

    @property
    def ids(self) -> tuple[int, int]:
        return self.uid, self.gid


def agent_writable_dir(directory: Path, ctx: RunContext) -> None:
    """Make a per-session host dir the agent may write (the outbox, the progress dir): owned by the
    agent's uid when we can chown, else sticky and shared so that we (the owner) can still read
    and remove what it adds."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.geteuid() == 0:
        os.chown(directory, ctx.uid, ctx.gid)
        directory.chmod(0o700)
    elif ctx.uid != os.getuid():
        directory.chmod(0o1777)


@dataclass(frozen=True)
class EndedSession:
    """A session whose run is over, as clean-up sees it. `up` builds it from the config, `down`
    and the watcher from the container's labels (which the agent cannot change)."""

    session: Session | None  # None when the labels cannot be trusted to name a session dir
    workspace: str | None = None  # the host workspace
    protect_git: bool = True
    container_gone: bool = True  # False with `up --keep` or a detach: the session's files stay


def problem_at(config: Config, locate: Locator | None, key_path: KeyPath, message: str) -> ConfigProblem:
    """A problem at a merged key path, in the file and at the line that set it (the user's file
    without a line when no file did)."""
    default = config.source_files[-1] if config.source_files else "claude-docker.yaml"
    file, line = (locate(key_path) if locate else None) or (default, None)
    return ConfigProblem(file=file, key_path=format_key_path(key_path), line=line, message=message)


class Feature(Protocol):
    def check(self, config: Config, environ: Mapping[str, str], locate: Locator | None = None) -> list[ConfigProblem]: ...

    def runtime_artifacts(self, config: Config, session: Session) -> dict[str, Artifact]: ...

    def contribute(self, ctx: RunContext, spec: RunSpec) -> None: ...

    def cleanup(self, ended: Sequence[EndedSession]) -> list[str]: ...
