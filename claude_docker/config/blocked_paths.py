"""The blocked-path rules that govern every mount: part of judging a configuration, so
`validate` and every command that loads a config refuse a mount that breaks them.

Rule: a host path that is mounted into the container (the workspace, `filesystem.mounts`,
`persistence.dotfiles`, the host `~/.gitconfig`) must not *be*, *contain* or *lie inside* a
blocked path. Symlinks are resolved first, on both sides, so a link cannot smuggle a secret in.

Two refinements keep the rule usable:
- A workspace that *contains* a blocked path is allowed: each such path gets an empty read-only
  mask inside the container (features/filesystem.py), so it is invisible inside.
- A blocked path that is the user's home or one of its ancestors (`/root` for root, `/home`)
  only blocks what lies *outside* the home. Secrets inside the home are blocked by their own
  `~/...` entries. Without this, root could not use a workspace under `/root` at all.

The Docker socket and claude-docker's own state dir are blocked whatever the configuration says.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from .. import paths
from ..errors import ConfigProblem
from .loader import KeyPath, format_key_path
from .model import Config

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


def home_exempt(source: str, blocked: str, home: str) -> bool:
    """A blocked ancestor of the home does not block paths inside the home."""
    return is_within(home, blocked) and is_within(source, home)


def conflicts(source: str, blocked_paths: tuple[str, ...], home: str) -> Iterator[tuple[str, str]]:
    """(relation, blocked path) for each blocked path `source` is, lies inside, or contains."""
    candidates = {os.path.abspath(os.path.expanduser(source)), real(source)}
    for blocked in blocked_paths:
        for path in sorted(candidates):
            if home_exempt(path, blocked, home):
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
                continue  # masked inside the container (features/filesystem.py)
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
