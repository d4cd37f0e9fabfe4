"""Every key in the schema explains itself (editors show it on hover), and docs/config.md covers every key."""

from __future__ import annotations

import json
import re

from tests.support.testbed import REPO_ROOT

ROOT = REPO_ROOT
SCHEMA = json.loads((ROOT / "schema" / "claude-docker.schema.json").read_text())
CONFIG_DOC = (ROOT / "docs" / "config.md").read_text()


def properties(node: object, path: str = "") -> list[tuple[str, dict]]:
    """(dotted key path, subschema) for every property declared anywhere below `node`.

    `if` is skipped: its properties only test a value, they declare nothing an editor shows.
    """
    found: list[tuple[str, dict]] = []
    if isinstance(node, dict):
        for key, sub in (node.get("properties") or {}).items():
            key_path = f"{path}.{key}" if path else key
            found.append((key_path, sub))
            found += properties(sub, key_path)
        for keyword, suffix in (("items", "[]"), ("additionalProperties", ".<name>"), ("then", ""), ("else", "")):
            found += properties(node.get(keyword), path + suffix)
        for keyword in ("prefixItems", "oneOf", "anyOf", "allOf"):
            for sub in node.get(keyword) or ():
                found += properties(sub, path)
    return found


def all_properties() -> list[tuple[str, dict]]:
    found = properties(SCHEMA)
    for name, definition in SCHEMA["$defs"].items():
        found += properties(definition, f"$defs.{name}")
    return found


def test_walk_finds_every_section():
    paths = {path for path, _ in all_properties()}
    assert {"image", "network.proxy.no_proxy", "filesystem.mounts[].read_only", "notifier.webhooks[].headers",
            "notifier.twilio.to", "$defs.mcp_server.headers"} <= paths


def test_every_property_has_a_description():
    missing = [path for path, sub in all_properties()
               if not (isinstance(sub, dict) and isinstance(sub.get("description"), str) and sub["description"].strip())]
    assert not missing, "schema properties without a description: " + ", ".join(missing)


def test_every_definition_has_a_description():
    missing = [name for name, definition in SCHEMA["$defs"].items() if not definition.get("description")]
    assert not missing, "schema $defs without a description: " + ", ".join(missing)


def _reference() -> str:
    """The key reference section of docs/config.md."""
    match = re.search(r"^## Key reference$(.*?)(?=^## |\Z)", CONFIG_DOC, re.M | re.S)
    assert match, "docs/config.md has no '## Key reference' section"
    return match.group(1)


def test_config_doc_mentions_every_section_and_key():
    reference = _reference()
    missing = []
    for section, sub in SCHEMA["properties"].items():
        if f"`{section}`" not in reference:
            missing.append(section)
        for key_path, _ in properties(sub, section):
            if f"`{key_path}`" not in reference:
                missing.append(key_path)
    assert not missing, "docs/config.md's key reference does not mention: " + ", ".join(missing)


def test_config_doc_mentions_every_mcp_server_key():
    reference = _reference()
    missing = [key for key in SCHEMA["$defs"]["mcp_server"]["properties"]
               if f"`claude.mcp_servers.<name>.{key}`" not in reference]
    assert not missing, "docs/config.md's key reference does not mention mcp server keys: " + ", ".join(missing)
