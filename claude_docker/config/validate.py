"""JSON Schema validation turned into plain-words problems (file, key path, line).

Messages are built from the structured error (`validator`, `absolute_path`, `context`, the
failing subschema's `title`/`description`), never by rewording jsonschema's English.
"""

from __future__ import annotations

import difflib
import json
from functools import lru_cache
from typing import Callable, Iterable

from ..errors import ConfigProblem
from ..resources import schema_path
from .loader import KeyPath, format_key_path

_TYPE_WORDS = {
    "object": "a mapping of keys",
    "array": "a list",
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(schema_path().read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator():
    import jsonschema  # imported here: only the commands that validate pay for it

    return jsonschema.Draft202012Validator(references_resolved(anchored_at_the_end(schema())))


def anchored_at_the_end(node: object) -> object:
    """The schema with each pattern's closing `$` written `\\Z`.

    A JSON Schema pattern is an ECMA-262 regular expression, whose `$` matches only at the end of
    the text; jsonschema runs it with Python's `re`, whose `$` also matches before a final line
    break, so `"jq\\n"` would pass `^[a-z0-9][a-z0-9+.-]*$` and end a line of the Dockerfile or
    dnsmasq.conf early. `\\Z` is Python's end of the text. (The schema file keeps `$`: editors
    read it with ECMA-262's meaning.)
    """
    if isinstance(node, list):
        return [anchored_at_the_end(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: anchored_at_the_end(value) for key, value in node.items()}
    pattern = node.get("pattern")
    if isinstance(pattern, str) and pattern.endswith("$") and not pattern.endswith("\\$"):
        result["pattern"] = pattern[:-1] + "\\Z"
    return result


def references_resolved(root: object) -> dict:
    """The schema with every `{"$ref": "#/$defs/name"}` replaced by that definition itself.

    jsonschema looks a reference up on every use, which is more than half of a validation's
    time. Only annotations (`description`) stand beside a `$ref` here, and annotations do not
    validate, so the result accepts and rejects exactly what the schema does, and an error
    raised inside a definition carries the same subschema (its title and description make the
    message). A definition that refers to itself keeps its `$ref`, which `$defs` still resolves.
    """
    assert isinstance(root, dict)
    definitions = root.get("$defs", {})

    def resolved(node: object, inside: tuple[str, ...]) -> object:
        if isinstance(node, list):
            return [resolved(item, inside) for item in node]
        if not isinstance(node, dict):
            return node
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            name = reference.removeprefix("#/$defs/")
            if name in definitions and name not in inside and set(node) <= {"$ref", "description", "title"}:
                return resolved(definitions[name], (*inside, name))
        return {key: resolved(value, inside) for key, value in node.items()}

    result = resolved(root, ())
    assert isinstance(result, dict)
    return result


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, bytes):
        return "binary data"
    return f"a YAML {type(value).__name__}"


def _show(value: object) -> str:
    if isinstance(value, (dict, list)) or not isinstance(value, (str, int, float, bool, type(None))):
        return _type_name(value)
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _expected(schema_part: dict) -> str:
    wanted = schema_part.get("type")
    if isinstance(wanted, list):
        return " or ".join(_TYPE_WORDS.get(str(t), str(t)) for t in wanted)
    return _TYPE_WORDS.get(str(wanted), str(wanted))


def _did_you_mean(key: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _described(error) -> str | None:
    """`"x" is not a valid domain name: expected ...` when the subschema is titled."""
    title = error.schema.get("title") if isinstance(error.schema, dict) else None
    if not title:
        return None
    description = error.schema.get("description")
    message = f"{_show(error.instance)} is not a valid {title}"
    return f"{message}: expected {description}" if description else message


def _branch_errors(error) -> list:
    """For oneOf/anyOf: the errors of the branch the value most nearly matched."""
    deeper = [e for e in error.context if e.validator not in ("type", "const") or e.relative_path]
    return deeper or []


Located = tuple  # (KeyPath, message)


def describe(error) -> list[Located]:
    """One jsonschema error → [(key path, plain words)]."""
    path: KeyPath = tuple(error.absolute_path)
    kind = error.validator
    schema_part = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance

    if "propertyNames" in error.schema_path:  # a bad key: jsonschema reports it at the parent
        path = path + (instance,)
        return [(path, _described(error) or f"key {instance!r} is not allowed here")]
    if kind == "additionalProperties":
        known = set(schema_part.get("properties", {}))
        return [
            (path + (key,), f"unknown key {key!r}{_did_you_mean(key, known)}")
            for key in instance
            if key not in known
        ]
    if kind == "required":
        missing = [key for key in error.validator_value if key not in instance]
        return [(path, f"missing required key {key!r}") for key in missing]
    if kind == "type":
        message = f"expected {_expected(schema_part)}, got {_type_name(instance)} ({_show(instance)})"
        if schema_part.get("type") == "string" and isinstance(instance, (int, float)):
            message += "; put the value in quotes"
        return [(path, message)]
    if kind == "pattern":
        return [(path, _described(error) or f"{_show(instance)} has characters that are not allowed")]
    if kind == "enum":
        choices = ", ".join(json.dumps(choice) for choice in error.validator_value)
        return [(path, f"{_show(instance)} is not one of: {choices}")]
    if kind == "const":
        return [(path, f"must be {json.dumps(error.validator_value)}, got {_show(instance)}")]
    if kind in ("minimum", "exclusiveMinimum"):
        word = "at least" if kind == "minimum" else "more than"
        return [(path, f"must be {word} {error.validator_value}, got {_show(instance)}")]
    if kind in ("maximum", "exclusiveMaximum"):
        word = "at most" if kind == "maximum" else "less than"
        return [(path, f"must be {word} {error.validator_value}, got {_show(instance)}")]
    if kind == "minItems":
        return [(path, f"needs at least {error.validator_value} entr{'y' if error.validator_value == 1 else 'ies'}")]
    if kind == "maxLength":
        return [(path, f"is longer than {error.validator_value} characters")]
    if kind in ("oneOf", "anyOf"):
        described = _described(error)
        if described:
            return [(path, described)]
        branch = _branch_errors(error)
        if branch:
            located: list[Located] = []
            for sub in branch:
                located.extend(describe(sub))
            return located
        expected = [sub.schema for sub in error.context if isinstance(sub.schema, dict)]
        words = " or ".join(dict.fromkeys(_expected(part) for part in expected if "type" in part))
        return [(path, f"expected {words or 'a different value'}, got {_type_name(instance)} ({_show(instance)})")]
    return [(path, f"{_show(instance)} is not allowed here ({kind})")]


def schema_problems(
    data: dict,
    file_of: Callable[[KeyPath], str],
    line_of: Callable[[KeyPath], int | None],
    *,
    partial: bool = False,
    check_patterns: bool = True,
    skip_paths: frozenset[str] = frozenset(),
    key_of: Callable[[KeyPath], str] = format_key_path,
) -> list[ConfigProblem]:
    """Every schema violation in `data`, located through `file_of`/`line_of`, in document order.

    partial: one file of a chain, so keys another file may supply are not required yet.
    check_patterns: False for the merged result, whose patterns were checked file by file.
    skip_paths: key paths already reported (e.g. a variable that was not set).
    key_of: how a key path is shown (the merged result shows each file's own paths).
    """
    problems = []
    for error in _validator().iter_errors(data):
        if (partial and error.validator == "required") or (not check_patterns and error.validator == "pattern"):
            continue
        if format_key_path(tuple(error.absolute_path)) in skip_paths:
            continue
        for path, message in describe(error):
            problems.append(ConfigProblem(file_of(path), key_of(path), line_of(path), message))
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.file, p.line or 0, p.key_path))
