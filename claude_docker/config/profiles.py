"""Resolve `extends` into one base-first chain of documents.

An entry is a built-in profile name (a file in `profiles/`) or a path relative to the file
that names it. The `default` profile (what Claude Code itself needs) always comes first, so a
file that extends only `python` still reaches api.anthropic.com. Each file appears once, at
its first position; a cycle or a missing profile is an error that shows the chain.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import replace
from pathlib import Path

from ..errors import ConfigError, ConfigProblem
from ..resources import profiles_dir
from .loader import Document, load_file

DEFAULT_PROFILE = "default"
_BUILTIN_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\Z")


def builtin_names() -> list[str]:
    return sorted(path.stem for path in profiles_dir().glob("*.yaml"))


def builtin_path(name: str) -> Path:
    return profiles_dir() / f"{name}.yaml"


def load_builtin(name: str) -> Document:
    return replace(load_file(builtin_path(name), display=name), path=f"<profile {name}>")


def _extends_list(doc: Document) -> list[str]:
    value = doc.data.get("extends", [])
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _identity(path: str | Path) -> str:
    """Built-in labels as they are; files by their real path, so links cannot form hidden cycles."""
    text = str(path)
    return text if text.startswith("<") else os.path.realpath(text)


def _chain_text(trail: list[str]) -> str:
    return " -> ".join(trail)


class ChainResolver:
    """Walks `extends` depth-first, collecting each document once, base first."""

    def __init__(self) -> None:
        self.ordered: list[Document] = []  # base first
        self._done: set[str] = set()
        self._stack: list[str] = []  # files being resolved, to spot cycles

    def add_builtin(self, name: str, trail: list[str], referrer: Document | None = None, index: int = 0) -> None:
        if not builtin_path(name).is_file():
            close = difflib.get_close_matches(name, builtin_names(), n=1)
            suggestion = f"; did you mean {close[0]!r}?" if close else ""
            self._missing(
                f"built-in profile {name!r} does not exist{suggestion}", trail + [name], referrer, index,
                f"built-in profiles: {', '.join(builtin_names())}; a path to a file must end in .yaml",
            )
        if f"<profile {name}>" not in self._done:
            self._visit(load_builtin(name), trail)

    def add_file(self, path: Path, trail: list[str], referrer: Document | None = None, index: int = 0) -> None:
        # Relative paths inside a file resolve against where it was found (a symlinked
        # claude-docker.yaml still belongs to its project); identity uses the real path.
        located = Path(os.path.abspath(os.path.expanduser(path)))  # os.path: "~x" stays text, no error
        if not located.is_file():
            self._missing(
                f"profile file {located} does not exist", trail + [str(located)], referrer, index,
                "paths in extends are relative to the file that names them",
            )
        if _identity(located) not in self._done:
            self._visit(load_file(located), trail)

    def add_entry(self, entry: str, referrer: Document, trail: list[str], index: int) -> None:
        if _BUILTIN_NAME.match(entry):
            self.add_builtin(entry, trail, referrer, index)
        else:
            self.add_file(referrer.base_dir / os.path.expanduser(entry), trail, referrer, index)

    def _missing(self, what: str, trail: list[str], referrer: Document | None, index: int, hint: str) -> None:
        if referrer is None:
            raise ConfigError([ConfigProblem(trail[-1], "", None, what)], hint)
        listed = isinstance(referrer.data.get("extends"), list)
        key = f"extends[{index}]" if listed else "extends"
        line = referrer.line_of(("extends", index) if listed else ("extends",))
        raise ConfigError([ConfigProblem(referrer.path, key, line, f"{what} (chain: {_chain_text(trail)})")], hint)

    def _visit(self, doc: Document, trail: list[str]) -> None:
        here = trail + [doc.display]
        identity = _identity(doc.path)
        if identity in self._stack:
            raise ConfigError(
                [ConfigProblem(doc.path, "extends", doc.line_of(("extends",)),
                               f"profiles extend each other in a cycle: {_chain_text(here)}")],
                "remove one of the extends entries so the chain ends",
            )
        self._stack.append(identity)
        try:
            for index, entry in enumerate(_extends_list(doc)):
                self.add_entry(entry, doc, here, index)
        finally:
            self._stack.pop()
        self._done.add(identity)
        self.ordered.append(doc)
