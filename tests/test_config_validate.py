"""The fast validity check agrees with jsonschema (the oracle), and never lets through what it rejects."""

from __future__ import annotations

import textwrap

import jsonschema
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from claude_docker.loader import parse
from claude_docker.profiles import builtin_names, builtin_path
from claude_docker.validate import quick_valid, schema

from .test_config_golden import CASES
from .test_hostile_values import BASE, FIELDS, hostile, with_value

ORACLE = jsonschema.Draft202012Validator(schema())


def oracle_valid(data: object, partial: bool = False) -> bool:
    return not [e for e in ORACLE.iter_errors(data) if not (partial and e.validator == "required")]


def documents() -> list:
    docs = [BASE, {}, {"version": 1}]
    docs += [parse(builtin_path(name).read_text(), name)[0] for name in builtin_names()]
    docs += [parse(textwrap.dedent(text), "example")[0] for text in CASES.values() if text]
    return docs


@pytest.mark.parametrize("index", range(len(documents())))
def test_valid_documents_pass_both(index):
    data = documents()[index]
    assert oracle_valid(data)
    assert quick_valid(data)


@settings(max_examples=300, deadline=None, database=None)
@given(path=st.sampled_from(FIELDS), value=hostile | st.integers() | st.booleans() | st.none() | st.floats(allow_nan=False))
def test_quick_check_agrees_with_jsonschema(path, value):
    data = with_value(path, value)
    assert quick_valid(data) == oracle_valid(data)
    assert quick_valid(data, skip_required=True) == oracle_valid(data, partial=True)


@pytest.mark.parametrize(
    "data",
    [
        {"notifier": {"twilio": {"account_sid": "AC" + "0" * 32}}},  # required `to` missing
        {"claude": {"mcp_servers": {"x": {"type": "http", "command": "a", "url": "https://x.example"}}}},
        {"claude": {"mcp_servers": {"x": {"args": ["a"]}}}},
        {"resources": {"gpus": True}},
        {"resources": {"cpus": 0}},
        {"notifier": {"commands": [[]]}},
        {"notifier": {"commands": [["-x"]]}},
        {"persistence": {"auth": True}},
        {"version": True},
        {"claude": {"uid": 0}},
    ],
)
def test_edge_cases_agree(data):
    assert quick_valid(data) == oracle_valid(data) is False


def test_unknown_schema_keyword_is_refused():
    with pytest.raises(ValueError, match="does not understand"):
        quick_valid("x", {"format": "email"})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None, database=None)
@given(path=st.sampled_from(FIELDS), value=json_values)
def test_any_value_of_any_type_gives_a_config_error_or_a_config(path, value):
    from .test_hostile_values import render_data

    assume(path[-1] != "*KEY" or isinstance(value, str))  # YAML keys here are text
    render_data(with_value(path, value))  # raises only for a bug (a traceback)
