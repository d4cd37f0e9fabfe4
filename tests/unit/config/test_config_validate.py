"""Every built-in profile and documented example passes the schema; any value of any type gives a
config error or a config, never a traceback."""

from __future__ import annotations

import textwrap

import jsonschema
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from claude_docker.config.loader import parse
from claude_docker.config.profiles import builtin_names, builtin_path
from claude_docker.config.validate import schema
from tests.support.examples import examples
from tests.unit.test_hostile_values import BASE, FIELDS, with_value

from .test_config_golden import CASES

ORACLE = jsonschema.Draft202012Validator(schema())


def documents() -> list:
    docs = [BASE, {}, {"version": 1}]
    docs += [parse(builtin_path(name).read_text(), name)[0] for name in builtin_names()]
    docs += [parse(textwrap.dedent(text), "example")[0] for text in CASES.values() if text]
    return docs


@pytest.mark.parametrize("index", range(len(documents())))
def test_valid_documents_pass_the_schema(index):
    assert not list(ORACLE.iter_errors(documents()[index]))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=examples(200), deadline=None, database=None)
@given(path=st.sampled_from(FIELDS), value=json_values)
def test_any_value_of_any_type_gives_a_config_error_or_a_config(path, value):
    from tests.unit.test_hostile_values import render_data

    assume(path[-1] != "*KEY" or isinstance(value, str))  # YAML keys here are text
    render_data(with_value(path, value))  # raises only for a bug (a traceback)
