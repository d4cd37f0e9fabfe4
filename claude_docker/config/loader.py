"""Find the config file and load YAML safely, keeping the line of every key.

Positions matter because every error names a line. Duplicate keys are rejected (PyYAML
silently keeps the last one), and booleans follow YAML 1.2 (`true`/`false` only), so the
`notifier.on` key and values such as `no` or `off` stay strings.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import ConfigError, ConfigProblem

CONFIG_FILE_NAME = "claude-docker.yaml"

KeyPath = tuple  # tuple[str | int, ...]


def format_key_path(path: KeyPath) -> str:
    """`("network", "allowed_domains", 2)` → `network.allowed_domains[2]`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


# libyaml's parser when PyYAML has it (several times faster); same positions and resolution.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """SafeLoader with YAML 1.2 booleans and duplicate-key detection."""

    duplicate_problems: list[tuple[int, str]]

    def construct_mapping(self, node, deep=False):
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):
                continue  # unhashable: the base constructor reports it with its position
            line = key_node.start_mark.line + 1
            if key in seen:
                self.duplicate_problems.append(
                    (line, f"duplicate key {key!r} (first defined on line {seen[key]})")
                )
            else:
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


# YAML 1.2 core booleans only: in YAML 1.1 `on`, `off`, `yes`, `no` are booleans too. And no
# implicit timestamps: `2024-01-01` stays text, as in YAML 1.2.
# Nor base-60 numbers: in YAML 1.1 an unquoted `8080:80` is the integer 484880, which would
# silently become another port (YAML 1.2 reads it as text, as users mean it).
_YAML11_ONLY = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _YAML11_ONLY]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(  # YAML 1.1's integers without the base-60 form
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$", re.X),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(  # YAML 1.1's floats without the base-60 form
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


@dataclass(frozen=True)
class Document:
    """One loaded config file: its data and where each key sits."""

    path: str  # absolute path, or "<built-in NAME>" style label for display
    data: dict
    lines: dict[KeyPath, int] = field(default_factory=dict)
    base_dir: Path = Path(".")  # relative paths in this file resolve against it
    display: str = ""  # how the chain shows it: a built-in name or the path
    sha256: str = ""  # of the bytes parsed: what approval (trust.py) compares, not a later re-read

    def line_of(self, path: KeyPath) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)


def _record_lines(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is None:
                continue
            child = path + (key,)
            lines.setdefault(child, key_node.start_mark.line + 1)
            _record_lines(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = path + (index,)
            lines.setdefault(child, item.start_mark.line + 1)
            _record_lines(item, child, lines)


def _non_string_keys(data: object, path: KeyPath, found: list[KeyPath]) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(key, str):
                found.append(path + (str(key),))
            else:
                _non_string_keys(value, path + (key,), found)
    elif isinstance(data, list):
        for index, item in enumerate(data):
            _non_string_keys(item, path + (index,), found)


def _codepoint(character: object) -> int:
    return character if isinstance(character, int) else ord(str(character)[:1] or "\0")


def parse(text: str, label: str) -> tuple[dict, dict[KeyPath, int]]:
    """Parse YAML text into (data, lines); raise ConfigError naming `label` on bad input."""
    loader = None
    try:
        loader = _Loader(text)
        loader.duplicate_problems = []
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as error:
        # Where the problem starts (an unclosed bracket, a quote) is the context mark; where the
        # parser noticed it, often the end of the file, is the problem mark.
        start, noticed = error.context_mark or error.problem_mark, error.problem_mark
        line = start.line + 1 if start else None
        what = " ".join(filter(None, [error.context, error.problem]))
        where = f" at column {start.column + 1}" if start else ""
        if start and noticed and (noticed.line, noticed.column) != (start.line, start.column):
            what += f" (noticed at line {noticed.line + 1}, column {noticed.column + 1})"
        raise ConfigError(
            [ConfigProblem(label, "", line, f"not valid YAML{where}: {what}")],
            "fix the YAML syntax (indentation, quotes, colons) at that line",
        ) from None
    except yaml.reader.ReaderError as error:
        line = text[: error.position].count("\n") + 1
        raise ConfigError(
            [ConfigProblem(label, "", line, f"character U+{_codepoint(error.character):04X} is not allowed in YAML")],
            "remove control characters from the file",
        ) from None
    except yaml.YAMLError as error:
        raise ConfigError([ConfigProblem(label, "", None, f"not valid YAML: {error}")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    lines: dict[KeyPath, int] = {(): 1}
    if node is not None:
        _record_lines(node, (), lines)
    problems = [ConfigProblem(label, "", line, message) for line, message in loader.duplicate_problems]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(
            ConfigProblem(label, "", 1, f"the file must be a mapping of keys, not a {type(data).__name__}")
        )
    else:
        bad_keys: list[KeyPath] = []
        _non_string_keys(data, (), bad_keys)
        for path in bad_keys:
            line = lines.get(path[:-1])
            problems.append(
                ConfigProblem(label, format_key_path(path), line, "keys must be text; quote the key")
            )
    if problems:
        duplicates = bool(loader.duplicate_problems)
        raise ConfigError(problems, "each key may appear once per mapping" if duplicates else None)
    return data, lines


def load_file(path: Path, display: str | None = None) -> Document:
    """Read and parse one config file."""
    label = str(path)
    try:
        content = path.read_bytes()
        text = content.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(label, "", None, "file not found")]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([ConfigProblem(label, "", None, f"cannot read the file: {error}")]) from None
    data, lines = parse(text, label)
    return Document(
        path=label, data=data, lines=lines, base_dir=path.parent, display=display or label,
        sha256=hashlib.sha256(content).hexdigest(),
    )


def find_config_file(cwd: Path) -> Path | None:
    """`claude-docker.yaml` in `cwd` or its nearest parent that has one.

    A second one further up is refused: the nearer file may sit in the workspace of the outer
    one, where the agent can write, and must not take over (its notifier commands run on the
    host; its firewall and mounts shape the next session). `-f` names the file meant.
    """
    found = [directory / CONFIG_FILE_NAME for directory in (cwd, *cwd.parents) if (directory / CONFIG_FILE_NAME).is_file()]
    if len(found) > 1:
        raise ConfigError(
            [ConfigProblem(str(found[0]), "", None, f"found inside the directory of another config file, {found[1]}")],
            f"name the one you mean: claude-docker -f {found[1]} ... (or -f {found[0]})",
        )
    return found[0] if found else None
