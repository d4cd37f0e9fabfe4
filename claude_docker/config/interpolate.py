"""`${VAR}`, `${VAR:-default}` and `$$` in config values, from the environment and an env file.

A lone `$` is an error rather than literal text: it keeps `$(...)` and typos out of values.
MCP server `env` and `headers` values are left untouched: Claude Code expands their
`${VAR}` references itself, inside the container, at run time.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Callable, Mapping

from ..errors import ConfigError, ConfigProblem
from .loader import Document, KeyPath, format_key_path

_TOKEN = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}|(?P<bad>))"
)
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}")
_DOTENV_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


class InterpolationError(ValueError):
    pass


class UnsetVariable(InterpolationError):
    def __init__(self, name: str) -> None:
        super().__init__(f"variable {name} is not set")
        self.name = name


def substitute(text: str, lookup: Callable[[str], str | None]) -> str:
    """Replace every `${...}`/`$$` in `text`; raise InterpolationError for unset or malformed ones."""

    def replace(match: re.Match) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("name")
        if name is None:
            raise InterpolationError(
                "a '$' must start ${NAME} or ${NAME:-default}; write $$ for a literal dollar sign"
            )
        value = lookup(name)
        if value is None or (value == "" and match.group("default") is not None):
            if match.group("default") is not None:
                return match.group("default")
            raise UnsetVariable(name)
        return value

    return _TOKEN.sub(replace, text)


def referenced_variables(text: str) -> list[str]:
    """Names of the `${VAR}` references in `text` (for MCP values passed through to Claude Code)."""
    return _REFERENCE.findall(text)


def _is_passthrough(path: KeyPath) -> bool:
    """`claude.mcp_servers.<name>.env.*` and `.headers.*` keep their `${VAR}` text."""
    return (
        len(path) == 5
        and path[0] == "claude"
        and path[1] == "mcp_servers"
        and path[3] in ("env", "headers")
    )


def interpolate_document(
    doc: Document, variables: Mapping[str, str], env_file: str | None = None
) -> tuple[Document, list[ConfigProblem]]:
    """The document with its values interpolated (`doc` itself is left as it is), and one problem
    per bad value (an unset variable's names where it can be set: the environment or `env_file`)."""
    problems: list[ConfigProblem] = []

    def walk(value: object, path: KeyPath) -> object:
        if isinstance(value, dict):
            return {key: walk(item, path + (key,)) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, path + (index,)) for index, item in enumerate(value)]
        if isinstance(value, str) and "$" in value and not _is_passthrough(path):
            try:
                return substitute(value, variables.get)
            except InterpolationError as error:
                message = str(error)
                if isinstance(error, UnsetVariable) and env_file:
                    message += f"; set {error.name} in the environment or in the env file ({env_file})"
                problems.append(ConfigProblem(doc.path, format_key_path(path), doc.line_of(path), message))
        return value

    data = walk(doc.data, ())
    assert isinstance(data, dict)
    return replace(doc, data=data), problems


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a dotenv file: `KEY=value`, `export KEY=value`, quotes, `#` comments, blank lines."""
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return values
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([ConfigProblem(str(path), "", None, f"cannot read the env file: {error}")]) from None
    problems = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _DOTENV_LINE.match(line)
        if not match:
            problems.append(ConfigProblem(str(path), "", number, "expected NAME=value"))
            continue
        name, value = match.group(1), match.group(2).strip()
        if value[:1] in ("'", '"'):
            quote = value[0]
            end = value.find(quote, 1)
            if end == -1:
                problems.append(ConfigProblem(str(path), name, number, f"missing closing {quote}"))
                continue
            value = value[1:end]
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
        values[name] = value
    if problems:
        raise ConfigError(problems, "env files hold one NAME=value per line; '#' starts a comment")
    return values
