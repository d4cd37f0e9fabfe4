"""Artifacts: files the tool writes for a container, the strict Jinja environment that renders
them, the `shquote` filter and the digest that names them.

A leaf module: it imports nothing from the rest of the package but `resources`, `paths` and
`atomicfile`, and loads Jinja only when a template is rendered (the engine and `blocked` use
Artifact without paying for it).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shlex
import stat
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomicfile import sync_directory, write_atomic
from .paths import claude_docker_home
from .resources import container_dir

if TYPE_CHECKING:
    import jinja2


@dataclass(frozen=True)
class Artifact:
    content: bytes
    mode: int = 0o644


def shquote(value: object) -> str:
    """Quote one value as a single POSIX shell word (on top of the schema's pattern check)."""
    return shlex.quote(str(value))


_VARIABLE = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*")


def shell_words(argv: list[str] | tuple[str, ...]) -> str:
    """An argv as shell words: each word quoted, except a word that is exactly one `$NAME`
    reference, which the shell expands (double-quoted) when the script runs."""
    return " ".join(f'"{word}"' if _VARIABLE.fullmatch(word) else shquote(word) for word in argv)


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(container_dir())),
        bytecode_cache=_compiled_templates(jinja2),
        undefined=jinja2.StrictUndefined,  # a missing variable in a firewall script is a bug, never ""
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["shquote"] = shquote
    env.filters["shell_words"] = shell_words
    return env


TEMPLATE_CACHE = "template-cache"  # in $CLAUDE_DOCKER_HOME


def _compiled_templates(jinja2: Any) -> Any:
    """Templates compiled once and kept in `$CLAUDE_DOCKER_HOME/template-cache` (keyed by each
    template's source, so an edit recompiles it): compiling the entrypoint and the firewall's
    templates again at every `up` costs more than rendering them. The cache is loaded as code,
    so it is used only in a directory that is ours alone; a damaged entry is compiled again."""
    directory = claude_docker_home() / TEMPLATE_CACHE
    try:
        directory.mkdir(mode=0o700, exist_ok=True)  # not the home: `ensure_home` makes that
        info = os.lstat(directory)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        return None

    class Cache(jinja2.FileSystemBytecodeCache):  # type: ignore[misc]
        def load_bytecode(self, bucket: Any) -> None:
            try:
                super().load_bytecode(bucket)
            except Exception:  # noqa: BLE001 (a half-written or foreign entry: compile afresh)
                bucket.reset()

        def dump_bytecode(self, bucket: Any) -> None:
            content = io.BytesIO()
            bucket.write_bytecode(content)
            try:
                write_atomic(Path(self._get_cache_filename(bucket)), content.getvalue())
            except OSError:
                pass  # no cache this time; the template is compiled and rendered all the same

    return Cache(str(directory))


def render_template(name: str, **context: object) -> str:
    return environment().get_template(name).render(**context)


def context_hash(artifacts: dict[str, Artifact]) -> str:
    """A stable digest of a set of artifacts (names, modes and bytes)."""
    digest = hashlib.sha256()
    for name in sorted(artifacts):
        artifact = artifacts[name]
        digest.update(name.encode() + b"\0" + oct(artifact.mode).encode() + b"\0")
        digest.update(hashlib.sha256(artifact.content).digest())
    return digest.hexdigest()


def write_artifacts(artifacts: dict[str, Artifact], directory: Path) -> list[Path]:
    """Write each artifact atomically (flushed, then renamed into place). The files are written
    at once, so the filesystem commits their flushes together instead of one after another
    (each waits for the disk), and each directory is flushed once, after its last rename."""
    from concurrent.futures import ThreadPoolExecutor

    written = [directory / name for name in artifacts]
    for path in written:
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(path: Path, artifact: Artifact) -> None:
        write_atomic(path, artifact.content, mode=artifact.mode, sync_parent=False)

    if written:
        with ThreadPoolExecutor(max_workers=min(8, len(written))) as pool:
            for done in [pool.submit(write, path, artifact) for path, artifact in zip(written, artifacts.values(), strict=True)]:
                done.result()
    for parent in dict.fromkeys(path.parent for path in written):
        sync_directory(parent)
    return written
