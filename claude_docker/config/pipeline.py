"""find → load → interpolate → validate each file → merge along `extends` → validate → model.

The chain, base first: the built-in `default` profile, the user file
(`$CLAUDE_DOCKER_HOME/config.yaml`) with what it extends, then the project file with what it
extends. Each file is interpolated and validated on its own (so errors name the right file and
line), its relative paths are anchored at its own directory, and only then are they merged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping

from .. import paths
from ..errors import ConfigError, ConfigProblem
from .blocked_paths import Locator
from .interpolate import InterpolationError, interpolate_document, read_env_file, substitute
from .loader import Document, KeyPath, find_config_file, format_key_path
from .merge import locate, merge_documents
from .model import Config
from .profiles import DEFAULT_PROFILE, ChainResolver

# Host paths that may be relative (to the declaring file) or start with `~`.
_PATH_KEYS: tuple[KeyPath, ...] = (
    ("workspace", "path"),
    ("env_file",),
    ("image", "extra_ca_certificates", "*"),
    ("filesystem", "mounts", "*", "source"),
    ("filesystem", "blocked_paths", "*"),
    ("persistence", "dotfiles", "*"),
)


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    merged: dict  # the merged, interpolated document (what `claude-docker config` prints)
    chain: tuple[str, ...]  # profile chain for display: built-in names or file paths, base first
    digests: Mapping[str, str] = field(default_factory=dict)  # real path → SHA-256 of the bytes parsed
    locate: Locator | None = None  # merged key path → (file, line) of the file that set it


def load_config(
    config_file: str | None = None,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoadedConfig:
    """Find and load the configuration; raises ConfigError listing every problem."""
    cwd = Path(cwd or Path.cwd()).resolve()
    environ = dict(os.environ if environ is None else environ)

    project_file = _project_file(config_file, cwd)
    documents = _resolve_chain(project_file)
    variables = _variables(documents, environ)

    from .validate import schema_problems

    problems: list[ConfigProblem] = []
    env_file = str(_env_path(documents, environ))
    interpolated: list[Document] = []
    for raw in documents:
        doc, unresolved = interpolate_document(raw, variables, env_file)
        interpolated.append(doc)
        problems.extend(unresolved)
        failed = frozenset(problem.key_path for problem in unresolved)
        problems.extend(
            schema_problems(doc.data, _constant(doc.path), doc.line_of, partial=True, skip_paths=failed)
        )
    if problems:
        raise ConfigError(_ordered(problems), _hint(problems))

    documents = [_resolve_paths(doc) for doc in interpolated]
    merged, origins = merge_documents(documents)

    def file_of(path: KeyPath) -> str:
        found = locate(origins, path)
        return found[0].path if found else documents[-1].path

    def line_of(path: KeyPath) -> int | None:
        found = locate(origins, path)
        return found[0].line_of(found[1]) if found else None

    def key_of(path: KeyPath) -> str:
        found = locate(origins, path)
        return format_key_path(found[1] if found else path)

    # Patterns were checked per file (before paths became absolute); the merged pass checks shape.
    problems = schema_problems(merged, file_of, line_of, check_patterns=False, key_of=key_of)
    from .build_model import build_config, semantic_problems

    def report(path: KeyPath, message: str) -> None:
        problems.append(ConfigProblem(file_of(path), key_of(path), line_of(path), message))

    semantic_problems(merged, report)
    if problems:
        raise ConfigError(_ordered(problems), _hint(problems))

    project_dir = str(project_file.parent) if project_file else str(cwd)
    source_files = tuple(_source_path(doc) for doc in documents)
    config = build_config(merged, source_files, project_dir)
    if config.env_file is None:
        config = _with_env_file(config, str(paths.default_env_file()))

    from .blocked_paths import problems as blocked_path_problems

    def locate_merged(path: KeyPath) -> tuple[str, int | None] | None:
        return (file_of(path), line_of(path)) if locate(origins, path) else None

    extra = blocked_path_problems(config, locate_merged)
    if extra:
        raise ConfigError(_ordered(extra), _hint(extra))
    digests = {os.path.realpath(_source_path(doc)): doc.sha256 for doc in documents}
    return LoadedConfig(config=config, merged=merged, chain=tuple(doc.display for doc in documents), digests=digests,
                        locate=locate_merged)


def _constant(file: str) -> Callable[[KeyPath], str]:
    return lambda _path: file


def _project_file(config_file: str | None, cwd: Path) -> Path | None:
    if config_file is not None:
        path = Path(os.path.expanduser(config_file))
        path = path if path.is_absolute() else cwd / path
        if not path.is_file():
            raise ConfigError(
                [ConfigProblem(str(path), "", None, "file not found")],
                "check the -f/--file path",
            )
        return Path(os.path.abspath(path))
    return find_config_file(cwd)


def _resolve_chain(project_file: Path | None) -> list[Document]:
    """default, then the user file's chain, then the project file's chain; each file once."""
    resolver = ChainResolver()
    resolver.add_builtin(DEFAULT_PROFILE, [])
    user_file = paths.user_config_file()
    if user_file.is_file() and (project_file is None or user_file.resolve() != project_file.resolve()):
        resolver.add_file(user_file, [])
    if project_file is not None:
        resolver.add_file(project_file, [])
    return resolver.ordered


def _variables(documents: list[Document], environ: dict[str, str]) -> dict[str, str]:
    """The process environment over the env file named by the last file that sets `env_file`."""
    return {**read_env_file(_env_path(documents, environ)), **environ}


def _env_path(documents: list[Document], environ: Mapping[str, str]) -> Path:
    env_path = paths.default_env_file()
    for doc in reversed(documents):
        raw = doc.data.get("env_file")
        if isinstance(raw, str):
            try:
                value = substitute(raw, environ.get)
            except InterpolationError as error:
                raise ConfigError([ConfigProblem(doc.path, "env_file", doc.line_of(("env_file",)), str(error))]) from None
            env_path = Path(_absolute(value, doc.base_dir))
            break
    return env_path


def _absolute(value: str, base_dir: Path) -> str:
    expanded = os.path.expanduser(value)
    return os.path.normpath(expanded if os.path.isabs(expanded) else os.path.join(base_dir, expanded))


def _resolve_paths(doc: Document) -> Document:
    """The document with relative host paths anchored at its own directory and `~` expanded."""

    def walk(node: object, pattern: KeyPath) -> object:
        if not pattern:
            return _absolute(node, doc.base_dir) if isinstance(node, str) else node
        head, rest = pattern[0], pattern[1:]
        if head == "*" and isinstance(node, list):
            return [walk(item, rest) for item in node]
        if isinstance(node, dict) and head in node:
            return {**node, head: walk(node[head], rest)}
        return node

    data: object = doc.data
    for pattern in _PATH_KEYS:
        data = walk(data, pattern)
    assert isinstance(data, dict)
    return replace(doc, data=data)


def _source_path(doc: Document) -> str:
    if doc.path.startswith("<profile "):
        from .profiles import builtin_path

        return str(builtin_path(doc.display))
    return doc.path


def _with_env_file(config: Config, env_file: str) -> Config:
    return replace(config, env_file=env_file)


def _ordered(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    """One report per problem, grouped by file, in line order."""
    files = list(dict.fromkeys(p.file for p in problems))
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (files.index(p.file), p.line or 0, p.key_path))


def _hint(problems: list[ConfigProblem]) -> str:
    count = len(problems)
    noun = "problem" if count == 1 else "problems"
    return f"{count} {noun} found; `claude-docker schema` prints every key and its format"
