"""How a child file combines with what it extends: the whole rule table lives here.

    lists    union in order, duplicates dropped (blocked paths, domains, packages, mounts ...)
    maps     merged key by key, recursively
    scalars  the child's value wins
    except   the keys in REPLACE, whose list is one value (an argv, a choice of events)

Because lists only ever grow, a child can never remove an inherited blocked path or domain.
Every merged value remembers which file set it, so errors in the result point at a file and line.
"""

from __future__ import annotations

import copy

from .loader import Document, KeyPath

# Lists that are one value rather than a collection: the child's list replaces the parent's.
REPLACE: frozenset[KeyPath] = frozenset(
    {
        ("claude", "args"),  # an argv: order and repeats matter
        ("notifier", "on"),  # a choice of events, so a child can narrow it
        ("extends",),  # each file's own list; the chain is resolved before merging
    }
)

Origins = dict  # merged KeyPath -> (Document that set it, KeyPath inside that document)


def _record(origins: Origins, value: object, path: KeyPath, doc: Document, local: KeyPath) -> None:
    origins[path] = (doc, local)
    if isinstance(value, dict):
        for key, item in value.items():
            _record(origins, item, path + (key,), doc, local + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _record(origins, item, path + (index,), doc, local + (index,))


def merge_value(
    base: object, child: object, path: KeyPath, doc: Document, origins: Origins, local: KeyPath = ()
) -> object:
    """Combine `child` (at `local` in `doc`) onto `base` (at `path` in the result) by the table above."""
    if isinstance(base, dict) and isinstance(child, dict):
        merged = dict(base)
        for key, value in child.items():
            if key in merged:
                merged[key] = merge_value(merged[key], value, path + (key,), doc, origins, local + (key,))
            else:
                merged[key] = copy.deepcopy(value)
                _record(origins, value, path + (key,), doc, local + (key,))
        return merged
    if isinstance(base, list) and isinstance(child, list) and path not in REPLACE:
        merged_list = list(base)
        for index, value in enumerate(child):
            if value not in merged_list:
                _record(origins, value, path + (len(merged_list),), doc, local + (index,))
                merged_list.append(copy.deepcopy(value))
        return merged_list
    for stale in [key for key in origins if key[: len(path)] == path]:
        del origins[stale]
    _record(origins, child, path, doc, local)
    return copy.deepcopy(child)


def merge_documents(documents: list[Document]) -> tuple[dict, Origins]:
    """Merge base-first `documents` into one mapping, remembering the file behind every key path."""
    merged: dict = {}
    origins: Origins = {}
    for doc in documents:
        data = {key: value for key, value in doc.data.items() if key not in ("extends", "description")}
        merged = merge_value(merged, data, (), doc, origins)  # type: ignore[assignment]
    return merged, origins


def locate(origins: Origins, path: KeyPath) -> tuple[Document, KeyPath] | None:
    """The document and its own key path behind merged `path` (via the nearest recorded ancestor)."""
    for cut in range(len(path), 0, -1):
        found = origins.get(tuple(path[:cut]))
        if found:
            doc, local = found
            return doc, local + tuple(path[cut:])
    return None
