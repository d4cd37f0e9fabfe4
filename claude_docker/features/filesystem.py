"""Workspace and user mounts, and the blocked-path rules that govern every mount.

Rule: a host path that is mounted into the container (the workspace, `filesystem.mounts`,
`persistence.dotfiles`, the host `~/.gitconfig`) must not *be*, *contain* or *lie inside* a
blocked path. Symlinks are resolved first, on both sides, so a link cannot smuggle a secret in.

Two refinements keep the rule usable:
- A workspace that *contains* a blocked path is allowed: each such path gets an empty read-only
  mask (a tmpfs over a directory, an empty file over a file), so it is invisible inside.
- A blocked path that is the user's home or one of its ancestors (`/root` for root, `/home`)
  only blocks what lies *outside* the home. Secrets inside the home are blocked by their own
  `~/...` entries. Without this, root could not use a workspace under `/root` at all.

The Docker socket and claude-docker's own state dir are blocked whatever the configuration says.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from .. import paths
from ..config.loader import KeyPath, format_key_path
from ..config.model import Config
from ..errors import ConfigProblem
from ..runspec import RunSpec, TmpfsMount
from ..session import Session

# Never mounted, whatever `filesystem.blocked_paths` says: it is root on the host.
ALWAYS_BLOCKED = ("/var/run/docker.sock", "/run/docker.sock")

# Locates a merged key path, e.g. ("filesystem", "mounts", 0, "source"), in the file that set it:
# returns (file, line), or None when no file did (a default). The pipeline passes one built from
# merge.locate; without it, problems point at the user's file with no line.
Locator = Callable[[KeyPath], "tuple[str, int | None] | None"]


@dataclass(frozen=True)
class HostMount:
    """One host path the configuration asks to mount, and the key that asked for it."""

    key_path: KeyPath
    source: str
    is_workspace: bool = False


def real(path: str) -> str:
    """Absolute path with `~` expanded and every symlink resolved (missing tails kept)."""
    return os.path.realpath(os.path.expanduser(path))


def is_within(path: str, ancestor: str) -> bool:
    """True if `path` is `ancestor` or lies below it (both absolute, normalised)."""
    if ancestor == "/":
        return True
    return path == ancestor or path.startswith(ancestor.rstrip("/") + "/")


def blocked_set(cfg: Config) -> tuple[str, ...]:
    """Every blocked path in its literal and resolved form, plus the Docker socket and
    claude-docker's own state (every project's login), wherever $CLAUDE_DOCKER_HOME points."""
    found: dict[str, None] = {}
    for entry in (*cfg.filesystem.blocked_paths, *ALWAYS_BLOCKED, str(paths.claude_docker_home())):
        found[os.path.abspath(os.path.expanduser(entry))] = None
        found[real(entry)] = None
    return tuple(found)


def host_mounts(cfg: Config) -> Iterator[HostMount]:
    """Every host path the configuration mounts into the container."""
    yield HostMount(("workspace", "path"), cfg.workspace.path, is_workspace=True)
    for index, mount in enumerate(cfg.filesystem.mounts):
        yield HostMount(("filesystem", "mounts", index, "source"), mount.source)
    for index, dotfile in enumerate(cfg.persistence.dotfiles):
        yield HostMount(("persistence", "dotfiles", index), dotfile)
    gitconfig = host_gitconfig(cfg)
    if gitconfig is not None:
        yield HostMount(("persistence", "git_config"), str(gitconfig))


def host_gitconfig(cfg: Config) -> Path | None:
    """The host's `~/.gitconfig` when `persistence.git_config` asks for it and it exists."""
    if not cfg.persistence.git_config:
        return None
    candidate = Path.home() / ".gitconfig"
    return candidate if candidate.is_file() else None


def _home_exempt(source: str, blocked: str, home: str) -> bool:
    """A blocked ancestor of the home does not block paths inside the home."""
    return is_within(home, blocked) and is_within(source, home)


def conflicts(source: str, blocked_paths: tuple[str, ...], home: str) -> Iterator[tuple[str, str]]:
    """(relation, blocked path) for each blocked path `source` is, lies inside, or contains."""
    candidates = {os.path.abspath(os.path.expanduser(source)), real(source)}
    for blocked in blocked_paths:
        for path in sorted(candidates):
            if _home_exempt(path, blocked, home):
                continue
            if path == blocked:
                yield "is", blocked
            elif is_within(path, blocked):
                yield "inside", blocked
            elif is_within(blocked, path):
                yield "contains", blocked
            else:
                continue
            break


def problems(cfg: Config, locate: Locator | None = None, home: str | None = None) -> list[ConfigProblem]:
    """Mounts that break the blocked-path rules, as errors.ConfigProblem; run by `validate`."""
    home = real(home or str(Path.home()))
    blocked_paths = blocked_set(cfg)
    found: list[ConfigProblem] = []

    def report(key_path: KeyPath, message: str) -> None:
        file, line = (locate(key_path) if locate else None) or (_default_file(cfg), None)
        found.append(ConfigProblem(file=file, key_path=format_key_path(key_path), line=line, message=message))

    for mount in host_mounts(cfg):
        reported: set[str] = set()  # a blocked path and its resolved form are one path
        for relation, blocked in conflicts(mount.source, blocked_paths, home):
            if relation == "contains" and mount.is_workspace:
                continue  # masked inside the container by contribute()
            if real(blocked) in reported:
                continue
            reported.add(real(blocked))
            report(mount.key_path, _blocked_message(mount.source, relation, blocked))
    for index, user_mount in enumerate(cfg.filesystem.mounts):
        key = ("filesystem", "mounts", index)
        if not os.path.exists(user_mount.source):
            report((*key, "source"), f"{user_mount.source} does not exist on this machine; create it or fix the path")
    for index, dotfile in enumerate(cfg.persistence.dotfiles):
        if not os.path.isfile(dotfile):
            report(("persistence", "dotfiles", index), f"{dotfile} is not a file on this machine; fix the path")
    for key_path, secret_file in secret_files(cfg):
        workspace = real(cfg.workspace.path)
        resolved = real(secret_file)
        if is_within(resolved, workspace) and not any(is_within(resolved, blocked) for blocked in blocked_paths):
            report(
                key_path,
                f"{secret_file} lies inside the workspace {cfg.workspace.path}, where the agent can read it; "
                "move it outside the workspace, e.g. to ~/.claude-docker/.env",
            )
    return found


def secret_files(cfg: Config) -> Iterator[tuple[KeyPath, str]]:
    """Host files the configuration names as holding secrets (notifier credentials, API keys).
    Inside the workspace the agent could read them (whether they exist yet or not: a file it
    creates there would be read by the next `up`); inside a blocked path they are masked."""
    if cfg.env_file is not None:
        yield ("env_file",), cfg.env_file


def _default_file(cfg: Config) -> str:
    return cfg.source_files[-1] if cfg.source_files else "claude-docker.yaml"


def _blocked_message(source: str, relation: str, blocked: str) -> str:
    resolved = real(source)
    if resolved != os.path.abspath(os.path.expanduser(source)):
        source = f"{source} (a link to {resolved})"
    if relation == "contains":
        return (
            f"{source} contains the blocked path {blocked}, so it cannot be mounted into the container; "
            "mount a narrower directory that leaves it out"
        )
    what = "is" if relation == "is" else "lies inside"
    return (
        f"{source} {what} the blocked path {blocked}, which never enters the container; "
        "choose a path outside it (blocked paths cannot be unblocked by a profile or project file)"
    )


def workspace_masks(cfg: Config, home: str | None = None) -> list[tuple[str, bool]]:
    """Container paths to hide inside the workspace: (path, is_directory) for each existing
    blocked path the workspace contains."""
    home = real(home or str(Path.home()))
    workspace = real(cfg.workspace.path)
    masks: dict[str, bool] = {}
    for blocked in blocked_set(cfg):
        if real(blocked) != blocked:
            continue  # masked by its resolved form; a mount target through a link would escape
        if blocked == workspace or not is_within(blocked, workspace) or _home_exempt(workspace, blocked, home):
            continue
        if not os.path.lexists(blocked):
            continue  # nothing to hide; a tmpfs mount point would create it on the host
        relative = os.path.relpath(blocked, workspace)
        target = os.path.join(cfg.workspace.mount_path, relative)
        masks[target] = os.path.isdir(blocked)
    return sorted(masks.items())


def contribute(cfg: Config, session: Session, spec: RunSpec, home: str | None = None) -> None:
    """Add the workspace mount, masks over blocked paths inside it, and `filesystem.mounts`."""
    workspace = real(cfg.workspace.path)
    mount_path = cfg.workspace.mount_path
    spec.bind(workspace, mount_path, read_only=False)
    for target, is_dir in workspace_masks(cfg, home):
        # Moved aside with its parent, a blocked path would be out of the blocked list's reach
        # (and unmasked) at the next start: its parents are mount points, which cannot move.
        _pin_directories(os.path.join(workspace, os.path.relpath(target, mount_path)), workspace, mount_path, spec)
        if is_dir:
            spec.mounts.append(TmpfsMount(target=target, read_only=True, size="1k"))
        else:
            spec.bind(str(empty_file(session)), target, read_only=True)
    if cfg.workspace.protect_git:
        spec.warnings.extend(disarm_repositories(workspace))
        _protect_git(workspace, mount_path, spec)
    _protect_config(cfg, workspace, mount_path, spec)
    for mount in cfg.filesystem.mounts:
        spec.bind(real(mount.source), mount.target, read_only=mount.read_only)


def _protect_config(cfg: Config, workspace: str, mount_path: str, spec: RunSpec) -> None:
    """Keep the config files (the project file, profiles it extends) read-only when they lie in
    the workspace, as claude-docker.yaml does by default: an agent that could edit them could turn
    off the firewall, mount more of the host or add a notifier command that runs on the host.
    Bound over themselves, they can be neither edited nor renamed away and replaced. (Files that
    appear during a session are caught by trust.py; an env file in the workspace is refused.)"""
    masked = [mount.target for mount in spec.mounts if isinstance(mount, TmpfsMount)]
    taken = {mount.target for mount in spec.mounts}
    for host in dict.fromkeys((*cfg.source_files, cfg.env_file or "")):
        resolved = real(host) if host else ""
        if not os.path.isfile(resolved) or resolved == workspace or not is_within(resolved, workspace):
            continue
        target = os.path.join(mount_path, os.path.relpath(resolved, workspace))
        if target in taken or any(is_within(target, mask) for mask in masked):
            continue  # already read-only, or hidden inside a blocked path's mask
        taken.add(target)
        _pin_directories(resolved, workspace, mount_path, spec)
        spec.bind(resolved, target, read_only=True)


def empty_file(session: Session) -> Path:
    """An empty read-only file to mount over blocked files. Not /dev/null: writes to a device
    succeed even on a read-only mount, and the agent should see the mask refuse them."""
    path = session.session_dir / "empty"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o444)
    return path


def _protect_git(workspace: str, mount_path: str, spec: RunSpec) -> None:
    """Keep git hooks and `.git/config` read-only: a hook planted there would run on the host at
    the user's next commit. `.git` itself is bound over itself so it becomes a mount point that
    cannot be renamed away and replaced by a fresh `.git` with hooks. A missing `.git/hooks` is
    created (empty) so the agent cannot create it; a `core.hooksPath` inside the workspace (husky
    and friends) is protected the same way."""
    git_dir = os.path.join(workspace, ".git")
    if not os.path.isdir(git_dir) or os.path.islink(git_dir):
        return
    container_git = os.path.join(mount_path, ".git")
    spec.bind(git_dir, container_git, read_only=False)
    hooks = os.path.join(git_dir, "hooks")
    if not os.path.lexists(hooks):
        os.mkdir(hooks)
    # `info/` holds attributes (which name the filters and diff drivers git runs) and excludes;
    # `objects/info/alternates` makes git read objects from other directories. A missing one is
    # created (empty: no alternates) so that it can be mounted read-only.
    info = os.path.join(git_dir, "info")
    if not os.path.lexists(info):
        os.mkdir(info)
    object_info = os.path.join(git_dir, "objects", "info")
    alternates = os.path.join(object_info, "alternates")
    if os.path.isdir(object_info) and not os.path.islink(object_info) and not os.path.lexists(alternates):
        Path(alternates).touch()
    # `config.worktree` is read like `config` once extensions.worktreeConfig is on (e.g. by
    # `git sparse-checkout init`).
    protected = [hooks, info, alternates, os.path.join(git_dir, "config"), os.path.join(git_dir, "config.worktree")]
    # A linked worktree (perhaps outside the workspace) finds its config and hooks through the
    # `commondir` in its dir here: rewritten, it would point the user's git there elsewhere.
    worktrees = os.path.join(git_dir, "worktrees")
    if os.path.isdir(worktrees) and not os.path.islink(worktrees):
        for name in sorted(os.listdir(worktrees)):
            protected += [os.path.join(worktrees, name, "commondir"), os.path.join(worktrees, name, "config.worktree")]
    hooks_path = _configured_hooks_path(os.path.join(git_dir, "config"), workspace)
    if hooks_path:
        protected.append(hooks_path)
    bound: set[str] = set()
    for host in protected:
        # A link (hooks -> ../tools/hooks) is protected where it points; outside the workspace
        # the container cannot see it anyway.
        resolved = real(host)
        if resolved in bound or not os.path.exists(resolved) or not is_within(resolved, workspace):
            continue
        bound.add(resolved)
        _pin_directories(resolved, workspace, mount_path, spec)
        spec.bind(resolved, os.path.join(mount_path, os.path.relpath(resolved, workspace)), read_only=True)


def _pin_directories(resolved: str, workspace: str, mount_path: str, spec: RunSpec) -> None:
    """Bind each directory between the workspace and `resolved` over itself, read-write. A mount
    point cannot be renamed; without this the agent could move the directory of a read-only file
    aside and rebuild it with a file of its own, which is what the host would then read."""
    taken = {mount.target for mount in spec.mounts}
    parts = os.path.relpath(os.path.dirname(resolved), workspace).split(os.sep)
    for depth in range(1, len(parts) + 1):
        if parts[:depth] == ["."]:
            break
        target = os.path.join(mount_path, *parts[:depth])
        if target not in taken:
            taken.add(target)
            spec.bind(os.path.join(workspace, *parts[:depth]), target, read_only=False)


# Files in a main `.git` dir that redirect git elsewhere. Git itself writes `commondir` only into
# a linked worktree's own dir (`.git/worktrees/<name>/`), never into a main `.git`; planted there,
# it makes the host's git read its config and hooks from a directory the agent wrote (e.g. a
# `core.fsmonitor` command that runs at the next `git status`). A missing file cannot be covered
# by a read-only mount without creating it on the host, so the host disables it instead: before
# each session starts and when a foreground session ends.
GIT_REDIRECTS = ("commondir",)
DISABLED_SUFFIX = ".disabled-by-claude-docker"


def disarm_git(workspace: str) -> list[str]:
    """Rename planted redirect files in the workspace's `.git` out of git's way; one warning each."""
    git_dir = os.path.join(workspace, ".git")
    if not os.path.isdir(git_dir) or os.path.islink(git_dir):
        return []
    warnings = []
    for name in GIT_REDIRECTS:
        path = os.path.join(git_dir, name)
        if not os.path.lexists(path):
            continue
        target = _rename_aside(path)
        warnings.append(
            f"disabled {os.path.join(workspace, '.git', name)} (renamed to {os.path.basename(target)}): a main "
            "repository never has it, and it would make git on this host read config and hooks from elsewhere"
        )
    return warnings


def _rename_aside(path: str) -> str:
    """Rename `path` (a link itself, never what it points to) out of git's way; the new path.
    Raises OSError when that is not possible."""
    target = path + DISABLED_SUFFIX
    while os.path.lexists(target):
        target += "~"
    os.rename(path, target)
    return target


# --- repositories nested in the workspace ------------------------------------------------------
#
# The agent can create a repository anywhere below the workspace (`git init sub`, a `.git` file
# naming a git dir of its own, a gitlink in the top-level index that makes `git status` at the
# top descend into it). Its git dir is entirely the agent's: nothing can be mounted read-only
# over a directory that does not exist yet. So when a session ends (and before the next one
# starts, for sessions that ended on their own), the host walks the workspace and takes out of
# each such git dir what would make git on the host run a program or read config from elsewhere.

NESTED_WALK_LIMIT = 100_000  # directories visited before the walk gives up (and says so)

# Config keys whose value git runs, or that send git to config, hooks, objects or a work tree
# elsewhere. (section, name) with any subsection; "*" matches every name of the section.
_RUNNING_KEYS = frozenset({
    ("core", "fsmonitor"), ("core", "hookspath"), ("core", "sshcommand"), ("core", "editor"),
    ("core", "pager"), ("core", "askpass"), ("core", "gitproxy"), ("core", "worktree"),
    ("core", "alternaterefscommand"), ("sequence", "editor"), ("diff", "external"),
    ("diff", "textconv"), ("diff", "command"), ("filter", "clean"), ("filter", "smudge"),
    ("filter", "process"), ("merge", "driver"), ("include", "path"), ("includeif", "path"),
    ("credential", "helper"), ("gpg", "program"), ("remote", "uploadpack"),
    ("remote", "receivepack"), ("uploadpack", "packobjectshook"), ("submodule", "update"),
    ("pager", "*"), ("alias", "*"), ("interactive", "difffilter"), ("protocol", "allow"),
    ("difftool", "cmd"), ("difftool", "path"), ("mergetool", "cmd"), ("mergetool", "path"),
    ("browser", "cmd"), ("browser", "path"), ("man", "cmd"), ("man", "path"), ("guitool", "cmd"),
    ("trailer", "command"), ("trailer", "cmd"), ("sendemail", "smtpserver"), ("sendemail", "tocmd"),
    ("sendemail", "cccmd"),
})
# The same, as text, for a host without git (then the whole config is set aside).
_RUNNING_TEXT = re.compile(
    r"fsmonitor|hookspath|sshcommand|editor|pager|askpass|gitproxy|worktree|alternaterefs|external|"
    r"textconv|command|clean|smudge|process|driver|include|helper|program|uploadpack|receivepack|"
    r"packobjectshook|update|alias|difffilter|allow|cmd|path|smtpserver",
    re.IGNORECASE,
)
_WHY = "git on this host would run what the agent wrote there"


def disarm_repositories(workspace: str) -> list[str]:
    """Everything `disarm_git` does for the top-level repository, and for every repository the
    agent may have nested below the workspace: one warning per change."""
    try:
        warnings = disarm_git(workspace)
    except OSError as error:
        warnings = [f"could not disarm {os.path.join(workspace, '.git')} ({error.strerror}): review it before running git there"]
    git_dirs, complete = _nested_git_dirs(workspace)
    for git_dir in git_dirs:
        try:
            warnings.extend(_disarm_git_dir(git_dir))
        except (OSError, subprocess.SubprocessError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            warnings.append(
                f"could not disarm the repository at {git_dir} ({reason}): review it before running git there"
            )
    if not complete:
        warnings.append(
            f"stopped looking for nested repositories in {workspace} after {NESTED_WALK_LIMIT} directories; "
            "review any repository below it before running git there"
        )
    return warnings


def _nested_git_dirs(workspace: str) -> tuple[list[str], bool]:
    """Real paths of the git dirs below the workspace that the agent could have written: `.git`
    dirs, links and gitfiles (where they lead inside the workspace), the top-level repository's
    submodule dirs (`.git/modules/...`) and the common dirs linked worktrees name. Links are never
    followed by the walk. (The top-level `.git` itself is protected by mounts, not here.)"""
    workspace = real(workspace)
    top = os.path.join(workspace, ".git")
    found: dict[str, None] = {}

    def add(candidate: str | None) -> None:
        if candidate is None:
            return
        resolved = real(candidate)
        if resolved == real(top) or not is_within(resolved, workspace) or resolved == workspace:
            return  # the top-level repository, or a git dir the agent cannot write
        if os.path.isdir(resolved) and resolved not in found:
            found[resolved] = None
            add(_common_dir(resolved))

    for visited, (directory, subdirectories, files) in enumerate(os.walk(workspace), start=1):
        if visited > NESTED_WALK_LIMIT:
            return list(found), False
        if ".git" in subdirectories or ".git" in files:
            path = os.path.join(directory, ".git")
            if directory == workspace:
                if os.path.isdir(path) and not os.path.islink(path):
                    for module_dir, _, module_files in os.walk(os.path.join(path, "modules")):
                        if "HEAD" in module_files:
                            add(module_dir)
            elif os.path.isfile(path) and not os.path.islink(path):
                add(_gitfile_target(path))
            else:
                add(path)  # a directory, or a link to one: resolved inside add()
        subdirectories[:] = [name for name in subdirectories if name != ".git"]
    return list(found), True


def _gitfile_target(gitfile: str) -> str | None:
    """The git dir a `.git` file names (`gitdir: PATH`), relative to the file's directory."""
    try:
        with open(gitfile, "rb") as handle:
            first = handle.read(4096).split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    except OSError:
        return None
    if not first.startswith("gitdir:"):
        return None
    return os.path.join(os.path.dirname(gitfile), first[len("gitdir:"):].strip())


def _common_dir(git_dir: str) -> str | None:
    """Where a `commondir` in `git_dir` sends git for config and hooks (None: it has none)."""
    path = os.path.join(git_dir, "commondir")
    if not os.path.isfile(path) or os.path.islink(path):
        return None
    try:
        value = Path(path).read_text(errors="replace").strip()
    except OSError:
        return None
    return os.path.join(git_dir, value) if value else None


def _disarm_git_dir(git_dir: str) -> list[str]:
    warnings = []
    for name in ("config", "config.worktree"):
        path = os.path.join(git_dir, name)
        if os.path.islink(path):
            moved = _rename_aside(path)
            warnings.append(f"disarmed {path}: a link, renamed to {os.path.basename(moved)} ({_WHY})")
        elif os.path.isfile(path):
            warnings.extend(f"disarmed {path}: {change} ({_WHY})" for change in _disarm_config(path))
    hooks = os.path.join(git_dir, "hooks")
    if os.path.islink(hooks) or (os.path.isdir(hooks) and any(not name.endswith(".sample") for name in os.listdir(hooks))):
        moved = _rename_aside(hooks)
        warnings.append(f"disarmed {hooks}: renamed to {os.path.basename(moved)} ({_WHY})")
    common = _common_dir(git_dir)
    commondir = os.path.join(git_dir, "commondir")
    if os.path.islink(commondir) or (common is not None and not _looks_like_git_dir(common)):
        moved = _rename_aside(commondir)
        warnings.append(f"disarmed {commondir}: renamed to {os.path.basename(moved)} (it sends git elsewhere)")
    alternates = os.path.join(git_dir, "objects", "info", "alternates")
    if os.path.lexists(alternates):
        moved = _rename_aside(alternates)
        warnings.append(f"disarmed {alternates}: renamed to {os.path.basename(moved)} (it sends git elsewhere)")
    return warnings


def _looks_like_git_dir(common: str) -> bool:
    """A common dir git can use (inside the workspace it is disarmed in its own right; outside,
    it is not the agent's). Anything else has no business being named there."""
    resolved = real(common)
    return os.path.isdir(os.path.join(resolved, "objects")) and os.path.isdir(os.path.join(resolved, "refs"))


def _disarm_config(path: str) -> list[str]:
    """Remove the keys of `_RUNNING_KEYS` from a git config file; one line per key removed.
    git itself parses the file (no includes followed, nothing run); without git on this host a
    config that mentions any such key is set aside whole."""
    git = shutil.which("git")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": os.devnull, "HOME": os.devnull, "LC_ALL": "C"}
    if git is None:
        try:
            text = Path(path).read_text(errors="replace")
        except OSError:
            return []
        if not _RUNNING_TEXT.search(text):
            return []
        return [f"set aside whole as {os.path.basename(_rename_aside(path))} (no git here to edit it)"]
    listed = subprocess.run(
        [git, "config", "--file", path, "--null", "--name-only", "--list"],
        capture_output=True, cwd="/", env=env, timeout=30,
    )
    if listed.returncode != 0:
        return []  # git cannot read it either, so it runs nothing
    keys = dict.fromkeys(key for key in listed.stdout.decode("utf-8", "replace").split("\0") if key)
    owner = os.lstat(path)
    changes: list[str] = []
    for key in keys:
        section, _, rest = key.partition(".")
        name = rest.rsplit(".", 1)[-1]
        if (section.lower(), name.lower()) not in _RUNNING_KEYS and (section.lower(), "*") not in _RUNNING_KEYS:
            continue
        unset = subprocess.run(
            [git, "config", "--file", path, "--unset-all", key], capture_output=True, cwd="/", env=env, timeout=30
        )
        if unset.returncode != 0:  # e.g. not ours to write: then nothing of it stays where git looks
            return [*changes, f"set aside whole as {os.path.basename(_rename_aside(path))} (git could not edit it)"]
        changes.append(f"removed {key}")
    if changes and os.geteuid() == 0:
        os.chown(path, owner.st_uid, owner.st_gid, follow_symlinks=False)  # git wrote a new file
    return changes


_HOOKS_PATH = re.compile(r"^\s*hookspath\s*=\s*(.+?)\s*$", re.IGNORECASE)


def _configured_hooks_path(config_file: str, workspace: str) -> str | None:
    """`core.hooksPath` from a repository's config, resolved against the workspace."""
    try:
        text = Path(config_file).read_text(errors="replace")
    except OSError:
        return None
    section = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped.strip("[]").strip().lower()
            continue
        match = _HOOKS_PATH.match(line)
        if section == "core" and match:
            value = match.group(1).strip('"')
            return real(os.path.join(workspace, os.path.expanduser(value)))
    return None
