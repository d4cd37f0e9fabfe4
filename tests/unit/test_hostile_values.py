"""Hostile strings in every string field: rejected with a clear error, or rendered harmlessly.

For each field a hostile value (quotes, `$()`, backticks, newlines, `;`, `#`, unicode, a leading
`-` ...) either fails validation with a ConfigError that names the field, or renders so that
every shell script passes `bash -n` and `shellcheck`, and the value appears in a script only as
one shell-quoted word.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claude_docker.config.loader import format_key_path
from tests.support.configs import BASE, FIELDS, render_data, with_value
from tests.support.examples import examples

FRAGMENTS = [
    "'", '"', "$(id)", "`id`", "\n", ";", "#", "&&", "|", " ", "-", "--help", "\\", "é", "☃", "\t",
    "*", "?", "[a]", "{a,b}", "~", "!", ">", "<", "$HOME", "${HOME}", "\r", "\u2028", "ok", "example.com",
    "/tmp/x", "1", "=",
]
hostile = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=4), min_size=1, max_size=5).map("".join).filter(
    lambda s: "\x00" not in s
)

_CHECKED_SCRIPTS: set[str] = set()


def escape(value: str, path: tuple) -> str:
    """`$` → `$$` so the literal string reaches validation (MCP env/headers are never interpolated)."""
    passthrough = len(path) == 5 and path[:2] == ("claude", "mcp_servers") and path[3] in ("env", "headers")
    return value if passthrough or path[-1] == "*KEY" else value.replace("$", "$$")


def check_script(name: str, content: bytes, value: str, baseline: str) -> None:
    text = content.decode()
    inserted = value and text.count(value) > baseline.count(value)
    if inserted and shlex.quote(value) != value:
        assert shlex.quote(value) in text, f"{name}: {value!r} appears without shell quoting"
    digest = hashlib.sha256(content).hexdigest()
    if digest in _CHECKED_SCRIPTS:
        return
    with tempfile.NamedTemporaryFile("wb", suffix=".sh", delete=False) as handle:
        handle.write(content)
    try:
        syntax = subprocess.run(["bash", "-n", handle.name], capture_output=True, text=True)
        assert syntax.returncode == 0, f"{name}: bash -n failed for {value!r}: {syntax.stderr}"
        lint = subprocess.run(["shellcheck", "-S", "warning", handle.name], capture_output=True, text=True)
        assert lint.returncode == 0, f"{name}: shellcheck failed for {value!r}:\n{lint.stdout}"
    finally:
        os.unlink(handle.name)
    _CHECKED_SCRIPTS.add(digest)


_BASELINE: dict[str, str] = {}


def baseline_scripts() -> dict[str, str]:
    """The scripts rendered from BASE alone: text a hostile value did not put there."""
    if not _BASELINE:
        scripts = render_data(copy.deepcopy(BASE))
        assert scripts, "the base configuration must render"
        _BASELINE.update(scripts)
    return _BASELINE



def run_case(path: tuple, value: str) -> None:
    scripts = render_data(with_value(path, escape(value, path)))
    if scripts is None:
        return
    baseline = baseline_scripts()
    for name, text in scripts.items():
        if name == "Dockerfile":
            check_dockerfile(text, value, baseline.get(name, ""))
        else:
            check_script(name, text.encode(), value, baseline.get(name, ""))


def check_dockerfile(text: str, value: str, baseline: str) -> None:
    """A value in the Dockerfile stays on its line and is one quoted word in RUN commands."""
    if not value or text.count(value) <= baseline.count(value):
        return
    assert "\n" not in value and "\r" not in value, f"Dockerfile: {value!r} would start a new instruction"
    def from_lines(dockerfile: str) -> list[str]:  # every stage's FROM, without its stage name
        return [line.split(" AS ")[0] for line in dockerfile.splitlines() if line.startswith("FROM ")]

    if from_lines(text) != from_lines(baseline):  # the value is the base image
        assert set(from_lines(text)) == {f"FROM {value}"} and shlex.quote(value) == value, f"Dockerfile: FROM {value!r}"
        return
    if shlex.quote(value) != value:
        assert shlex.quote(value) in text, f"Dockerfile: {value!r} appears without shell quoting"


pytestmark = pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")


@pytest.mark.parametrize("path", FIELDS, ids=[format_key_path(tuple(str(p) for p in f)) for f in FIELDS])
@settings(max_examples=examples(15), deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=hostile)
def test_hostile_value_is_rejected_or_harmless(path, value):
    run_case(path, value)


@pytest.mark.parametrize("path", FIELDS, ids=[format_key_path(tuple(str(p) for p in f)) for f in FIELDS])
def test_obvious_injection_is_handled(path):
    for value in ("$(touch /tmp/pwned)", "a'; rm -rf / #", "`id`", "x\ny", "-rf"):
        run_case(path, value)


def test_checker_catches_an_unquoted_value():
    with pytest.raises(AssertionError, match="without shell quoting"):
        check_script("x.sh", b"#!/bin/bash\necho a'b\n", "a'b", "")
    with pytest.raises(AssertionError, match="bash -n failed"):
        check_script("y.sh", b"#!/bin/bash\nif then\n", "zzz", "")
    with pytest.raises(AssertionError, match="without shell quoting"):
        check_dockerfile("FROM x\nRUN apt-get install a;b\n", "a;b", "FROM x\n")
    with pytest.raises(AssertionError, match="new instruction"):
        check_dockerfile("FROM x\nRUN echo 'a\nRUN evil'\n", "a\nRUN evil", "")
    quoted = shlex.quote("a'b")
    check_script("z.sh", f"#!/bin/bash\necho {quoted}\n".encode(), "a'b", "")


def test_safe_values_are_accepted():
    assert render_data(with_value(("persistence", "git", "name"), "Jane O'Neil")) is not None
    assert render_data(with_value(("network", "allowed_domains", 0), "*.example.com")) is not None
    assert render_data(with_value(("image", "apt_packages", 0), "ripgrep")) is not None
