"""Git protection: the host's git must never run what the agent wrote in the workspace.

The top-level repository's hooks, config and the files that redirect git are mounted read-only
(bound over themselves, so they cannot be renamed away and replaced); what cannot be covered by a
mount (a planted `commondir`, nested repositories, submodule dirs) is disarmed on the host before
each session starts and once it has ended (`cleanup`), `down` included.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

from ..artifacts import Artifact
from ..config.blocked_paths import Locator, is_within, real
from ..config.model import Config
from ..errors import ConfigProblem
from ..runspec import RunSpec
from ..session import Session
from .base import EndedSession, RunContext
from .filesystem import pin_directories


def check(config: Config, environ: Mapping[str, str], locate: Locator | None = None) -> list[ConfigProblem]:
    return []


def runtime_artifacts(config: Config, session: Session) -> dict[str, Artifact]:
    return {}


def contribute(ctx: RunContext, spec: RunSpec) -> None:
    """Disarm what an earlier session planted, then keep the repository's git files read-only."""
    if not ctx.config.workspace.protect_git:
        return
    workspace = real(ctx.config.workspace.path)
    spec.warnings.extend(disarm_repositories(workspace))
    protect(workspace, ctx.config.workspace.mount_path, spec)


def cleanup(ended: Sequence[EndedSession]) -> list[str]:
    """What the agent planted must not wait for the next `up`: disarm each workspace once."""
    warnings: list[str] = []
    workspaces = dict.fromkeys(
        session.workspace for session in ended
        if session.protect_git and session.workspace and os.path.isabs(session.workspace) and os.path.isdir(session.workspace)
    )
    for workspace in workspaces:
        assert workspace is not None
        warnings.extend(disarm_repositories(real(workspace)))
    return warnings


def protect(workspace: str, mount_path: str, spec: RunSpec) -> None:
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
        pin_directories(resolved, workspace, mount_path, spec)
        spec.bind(resolved, os.path.join(mount_path, os.path.relpath(resolved, workspace)), read_only=True)


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

# Config keys whose value git runs, that send git to config, hooks, objects or a work tree
# elsewhere, or that send its traffic, and the credentials the user's helper hands out for the
# real host, through or to a place the agent chose (a proxy with certificate checks off, another
# CA, a rewritten URL, an extra header). (section, name) with any subsection; "*" matches every
# name of the section.
_RUNNING_KEYS = frozenset({
    ("core", "fsmonitor"), ("core", "hookspath"), ("core", "sshcommand"), ("core", "editor"),
    ("core", "pager"), ("core", "askpass"), ("core", "gitproxy"), ("core", "worktree"),
    ("core", "alternaterefscommand"), ("sequence", "editor"), ("diff", "external"),
    ("diff", "textconv"), ("diff", "command"), ("filter", "clean"), ("filter", "smudge"),
    ("filter", "process"), ("merge", "driver"), ("include", "path"), ("includeif", "path"),
    ("credential", "helper"), ("gpg", "program"), ("gpg", "defaultkeycommand"), ("remote", "uploadpack"),
    ("remote", "receivepack"), ("uploadpack", "packobjectshook"), ("submodule", "update"),
    ("pager", "*"), ("alias", "*"), ("interactive", "difffilter"), ("protocol", "allow"),
    ("difftool", "cmd"), ("difftool", "path"), ("mergetool", "cmd"), ("mergetool", "path"),
    ("browser", "cmd"), ("browser", "path"), ("man", "cmd"), ("man", "path"), ("guitool", "cmd"),
    ("trailer", "command"), ("trailer", "cmd"), ("sendemail", "smtpserver"), ("sendemail", "tocmd"),
    ("sendemail", "cccmd"), ("sendemail", "sendmailcmd"),
    # git-lfs, run by the host's filter.lfs.*: custom transfer agents and extensions run commands
    ("lfs", "path"), ("lfs", "clean"), ("lfs", "smudge"),
    # where fetches and pushes go, and whom they trust
    ("http", "proxy"), ("http", "sslverify"), ("http", "sslcainfo"), ("http", "sslcapath"), ("http", "sslcert"),
    ("http", "sslkey"), ("http", "extraheader"), ("http", "cookiefile"), ("http", "curloptresolve"),
    ("remote", "proxy"), ("remote", "pushurl"), ("url", "insteadof"), ("url", "pushinsteadof"),
})
# The same, as text, for a host without git (then the whole config is set aside).
_RUNNING_TEXT = re.compile(
    r"fsmonitor|hookspath|sshcommand|editor|pager|askpass|gitproxy|worktree|alternaterefs|external|"
    r"textconv|command|clean|smudge|process|driver|include|helper|program|uploadpack|receivepack|"
    r"packobjectshook|update|alias|difffilter|allow|cmd|path|smtpserver|defaultkeycommand|proxy|ssl|extraheader|"
    r"cookiefile|curloptresolve|pushurl|insteadof",
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
    dirs, links and gitfiles (where they lead inside the workspace), directories that are git dirs
    themselves (git run there takes the directory for a bare repository, and its `core.worktree`
    gives it a work tree, fsmonitor and hooks included), the top-level repository's submodule dirs
    (`.git/modules/...`) and the common dirs linked worktrees name. Links are never followed by
    the walk. (The top-level `.git` itself is protected by mounts, not here.)"""
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
        if _is_git_dir_shaped(subdirectories, files):
            add(directory)
        subdirectories[:] = [name for name in subdirectories if name != ".git"]
    return list(found), True


def _is_git_dir_shaped(subdirectories: list[str], files: list[str]) -> bool:
    """What git's own test of a git dir looks for (is_git_directory): a HEAD, and objects and
    refs here or in the dir a `commondir` names. Entries of any kind count (git only checks that
    they can be opened), links included."""
    names = set(subdirectories) | set(files)
    return "HEAD" in names and ("commondir" in names or {"objects", "refs"} <= names)


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
