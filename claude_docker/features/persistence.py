"""What survives between sessions: login, shell history, package caches, git config, dotfiles.

Host layout (per project, under `$CLAUDE_DOCKER_HOME/projects/<project>/`):

    claude/          CLAUDE_CONFIG_DIR: .credentials.json, .claude.json, settings.json
    history/         bash_history, zsh_history
    cache/npm|pip|uv package caches

With `persistence.auth: shared` the `claude/` dir lives in `$CLAUDE_DOCKER_HOME/shared/` instead;
with `auth: none` it lives in the session's own dir and is thrown away with it. Only these
subdirectories are mounted, never the project dir itself, so the agent cannot reach the
runtime config, other sessions or other projects.

What Claude Code expects to find in `claude/` (the first-run state, the API key approval) is
claude_settings' to say; it reads and writes those files through the helpers here
(`read_state_or_recover`, `write_state`), which never follow a link the agent planted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Mapping, Sequence

from .. import contract, paths
from ..artifacts import Artifact
from ..atomicfile import set_aside, write_atomic
from ..config.blocked_paths import Locator, host_gitconfig
from ..config.model import Config
from ..errors import ClaudeDockerError, ConfigProblem
from ..runspec import RunSpec
from ..session import Session
from .base import EndedSession, RunContext
from .base import agent_ids as agent_ids  # where the run plan and tests find it

# Container side. Outside the agent's home so that Docker-created mount points do not leave
# root-owned directories in it.
CONTAINER_STATE = "/var/lib/claude-docker"
CONTAINER_HISTORY = f"{CONTAINER_STATE}/history"
CONTAINER_CACHE = "/var/cache/claude-docker"

MAX_STATE_BYTES = 64 * 2**20  # .claude.json / settings.json: Claude Code's own stay far below

CACHE_ENV = {"npm": "NPM_CONFIG_CACHE", "pip": "PIP_CACHE_DIR", "uv": "UV_CACHE_DIR"}

IMPORT_LOGIN_WARNING = (
    "imported your host login (~/.claude/.credentials.json) into the container. Refresh tokens "
    "rotate: if the host and the container (or two containers) use this login at the same time, "
    "one of them may be logged out. `claude setup-token` + CLAUDE_CODE_OAUTH_TOKEN avoids this."
)


# --- where things live ----------------------------------------------------------------------


def auth_dir(cfg: Config, session: Session) -> Path:
    """The host dir mounted as CLAUDE_CONFIG_DIR."""
    if cfg.persistence.auth == "shared":
        return paths.shared_state_dir() / "claude"
    if cfg.persistence.auth == "none":
        return session.session_dir / "claude"
    return session.state_dir / "claude"


def history_dir(state_dir: Path) -> Path:
    return state_dir / "history"


def cache_dir(state_dir: Path) -> Path:
    return state_dir / "cache"


# --- preparing host dirs --------------------------------------------------------------------


def _owned(path: Path, ids: tuple[int, int]) -> None:
    """Hand a path we created to the agent's uid. Only root can (and needs to): a normal user
    runs the agent under their own uid, so their files are already right."""
    if os.geteuid() == 0 and not path.is_symlink():
        os.chown(path, *ids)


def ensure_dir(path: Path, ids: tuple[int, int]) -> Path:
    """Create `path` (and parents) private to the user, owned by the agent."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    _owned(path, ids)
    return path


# The agent can write in CLAUDE_CONFIG_DIR, and the host reads and writes files there before the
# next start. A link planted there (`.claude.json -> ~/.docker/config.json`) would make the host
# copy its own secrets into the container, or write where the agent points. So the host never
# follows a link in that dir: a link is dropped (Claude Code only writes regular files there), and
# new files are created exclusively under a fresh name, then renamed over the old one.


def _drop_link(path: Path) -> None:
    if path.is_symlink():
        path.unlink()


class DamagedState(ClaudeDockerError):
    """A state file that is there but cannot be used as it is (cut short, not JSON, too large)."""


def _read_json(path: Path) -> dict:
    _drop_link(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise ClaudeDockerError(f"cannot read {path}: {error.strerror}", "fix or delete the file") from None
    try:
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise ValueError("not a regular file")
            raw = handle.read(MAX_STATE_BYTES + 1)  # the agent can grow it (sparse: at no cost)
            if len(raw) > MAX_STATE_BYTES:
                raise DamagedState(
                    f"{path} is too large (over {MAX_STATE_BYTES // 2**20} MiB)",
                    "delete it (claude-docker reset --auth removes the persisted login)",
                )
            data = json.loads(raw.decode() or "{}")
    except (OSError, ValueError, RecursionError) as error:  # RecursionError: the agent wrote `[[[[…`
        raise DamagedState(
            f"{path} is not valid JSON ({error})",
            "fix or delete the file (claude-docker reset --auth removes the persisted login)",
        ) from None
    if not isinstance(data, dict):
        raise DamagedState(f"{path} does not hold a JSON object", "fix or delete the file")
    return data


def backups_of(path: Path) -> list[Path]:
    """Copies Claude Code keeps of a state file, newest first: `backups/<name>.backup.<ms>` in
    the same directory (current releases) and `<name>.backup` beside it (older ones)."""
    found = []
    directory = path.parent / "backups"
    candidates = [] if directory.is_symlink() else directory.glob(f"{path.name}.backup.*")  # the agent writes here
    for candidate in candidates:
        stamp = candidate.name.rsplit(".", 1)[-1]
        if stamp.isdigit():
            found.append((int(stamp), candidate))
    legacy = path.with_name(f"{path.name}.backup")
    if legacy.exists():
        found.append((int(legacy.lstat().st_mtime * 1000), legacy))
    return [candidate for _, candidate in sorted(found, key=lambda item: item[0], reverse=True)]


def read_state_or_recover(path: Path, warnings: list[str] | None = None) -> dict:
    """Read a JSON state file; a damaged one (a crash cut it short, say) is set aside, never
    deleted, and replaced by the newest backup that parses, or else by a fresh start. One line
    in `warnings` says what was kept where, so an unattended `up` goes on instead of stopping."""
    try:
        return _read_json(path)
    except DamagedState as damage:
        kept = set_aside(path)
        for backup in backups_of(path):
            if backup.is_symlink():
                continue
            try:
                data = _read_json(backup)
            except ClaudeDockerError:
                continue
            if data:
                note = f"restored it from Claude Code's backup {backup}"
                break
        else:
            data, note = {}, "started it afresh"
        reason = damage.message.removeprefix(f"{path} ")
        if warnings is not None:
            warnings.append(f"{path} {reason}: kept the damaged copy as {kept} and {note}")
        return data


def _write_private(path: Path, content: bytes, ids: tuple[int, int]) -> None:
    """Write a 0600 file atomically, created under a fresh name (never through a planted link)."""
    write_atomic(path, content, mode=0o600, owner=ids if os.geteuid() == 0 else None)


def write_state(path: Path, data: dict, ids: tuple[int, int]) -> None:
    """Write a JSON state file in the config dir the way `_write_private` does, unless it holds
    exactly this already."""
    content = (json.dumps(data, indent=2) + "\n").encode()
    if not _holds(path, content, ids):
        _write_private(path, content, ids)


def _holds(path: Path, content: bytes, ids: tuple[int, int]) -> bool:
    """`path` is already exactly what `_write_private` would leave: a regular file (not a link,
    one name), 0600, owned by the agent's ids when we are root, with this content. Then every
    `up` after the first spares the two flushes to disk (slow on a busy disk) of rewriting it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or stat.S_IMODE(info.st_mode) != 0o600:
            return False
        if os.geteuid() == 0 and (info.st_uid, info.st_gid) != ids:
            return False
        return info.st_size == len(content) and handle.read(len(content) + 1) == content


def import_host_login(config_dir: Path, ids: tuple[int, int], host_home: Path | None = None) -> bool:
    """Copy the host's Claude login once, when none is persisted yet. True if copied."""
    source = (host_home or Path.home()) / ".claude" / ".credentials.json"
    target = config_dir / ".credentials.json"
    _drop_link(target)
    if target.exists() or not source.is_file():
        return False
    _write_private(target, source.read_bytes(), ids)
    return True


def latest_conversation(cfg: Config, session: Session, since: float) -> str | None:
    """The id of the newest conversation Claude Code saved in the persisted login dir since
    `since` (a timestamp), for `claude-docker up -- --resume <id>`; None when the login dir is
    thrown away with the session or nothing was saved."""
    if cfg.persistence.auth == "none":
        return None
    projects = auth_dir(cfg, session) / "projects"
    try:
        transcripts = [path for path in projects.glob("*/*.jsonl") if path.is_file() and not path.is_symlink()]
        newest = max(transcripts, key=lambda path: path.stat().st_mtime, default=None)
    except OSError:
        return None
    if newest is None or newest.stat().st_mtime < since:
        return None
    return newest.stem if re.fullmatch(r"[0-9A-Za-z-]{8,64}", newest.stem) else None


# --- the contribution -----------------------------------------------------------------------


def check(config: Config, environ: Mapping[str, str], locate: Locator | None = None) -> list[ConfigProblem]:
    return []


def runtime_artifacts(config: Config, session: Session) -> dict[str, Artifact]:
    return {}


def cleanup(ended: Sequence[EndedSession]) -> list[str]:
    """The throwaway login of `auth: none` goes with its session."""
    for entry in ended:
        if entry.session is not None and entry.container_gone:
            shutil.rmtree(entry.session.session_dir / "claude", ignore_errors=True)
    return []


def contribute(ctx: RunContext, spec: RunSpec) -> None:
    """Prepare persisted host dirs and add their mounts and env."""
    cfg, session = ctx.config, ctx.session
    persistence = cfg.persistence
    ids = ctx.ids

    config_dir = ensure_dir(auth_dir(cfg, session), ids)
    if persistence.import_host_login and persistence.auth != "none" and import_host_login(config_dir, ids):
        spec.warnings.append(IMPORT_LOGIN_WARNING)
    spec.bind(str(config_dir), contract.CLAUDE_CONFIG_DIR, read_only=False)
    spec.env["CLAUDE_CONFIG_DIR"] = contract.CLAUDE_CONFIG_DIR

    if persistence.shell_history:
        history = ensure_dir(history_dir(session.state_dir), ids)
        spec.bind(str(history), CONTAINER_HISTORY, read_only=False)
        spec.env["CLAUDE_DOCKER_HISTORY_DIR"] = CONTAINER_HISTORY  # read by setup.d/20-history.sh

    caches = []
    if persistence.npm_cache:
        caches.append("npm")
    if persistence.pip_cache:
        caches += ["pip", "uv"]
    for name in caches:
        host = ensure_dir(cache_dir(session.state_dir) / name, ids)
        target = f"{CONTAINER_CACHE}/{name}"
        spec.bind(str(host), target, read_only=False)
        spec.env[CACHE_ENV[name]] = target

    _git(cfg, spec)
    taken = {mount.target for mount in spec.mounts}
    for dotfile in persistence.dotfiles:
        target = dotfile_target(dotfile)
        if target not in taken:  # e.g. ~/.gitconfig listed and git_config on: Docker refuses twins
            spec.bind(os.path.realpath(dotfile), target, read_only=True)
            taken.add(target)


def _git(cfg: Config, spec: RunSpec) -> None:
    gitconfig = host_gitconfig(cfg)
    if gitconfig is not None:
        spec.bind(os.path.realpath(gitconfig), f"{contract.AGENT_HOME}/.gitconfig", read_only=True)
    identity = cfg.persistence.git_identity
    if identity is not None:
        # Environment beats any gitconfig, so this also overrides a mounted host identity.
        if identity.name:
            spec.env["GIT_AUTHOR_NAME"] = spec.env["GIT_COMMITTER_NAME"] = identity.name
        if identity.email:
            spec.env["GIT_AUTHOR_EMAIL"] = spec.env["GIT_COMMITTER_EMAIL"] = identity.email


def dotfile_target(dotfile: str, host_home: Path | None = None) -> str:
    """Where a dotfile appears: at the same place relative to the agent's home if it lives in
    the host home (`~/.config/x/y` → `/home/agent/.config/x/y`), else by its file name."""
    home = str(host_home or Path.home())
    absolute = os.path.abspath(dotfile)
    if absolute.startswith(home.rstrip("/") + "/"):
        return f"{contract.AGENT_HOME}/{os.path.relpath(absolute, home)}"
    return f"{contract.AGENT_HOME}/{os.path.basename(absolute)}"


# --- reset ----------------------------------------------------------------------------------


def reset_targets(cfg: Config, auth: bool, history: bool, caches: bool) -> list[Path]:
    """The host dirs `claude-docker reset` removes for this project."""
    state_dir = paths.project_state_dir(cfg.project_name)
    targets: list[Path] = []
    if auth:
        targets.append(paths.shared_state_dir() / "claude" if cfg.persistence.auth == "shared" else state_dir / "claude")
    if history:
        targets.append(history_dir(state_dir))
    if caches:
        targets.append(cache_dir(state_dir))
    return targets
