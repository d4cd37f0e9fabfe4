"""Every built-in profile and documented example passes the schema; any value of any type gives a
config error or a config, never a traceback."""

from __future__ import annotations

import json
import textwrap

import jsonschema
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from claude_docker.config.loader import parse
from claude_docker.config.profiles import builtin_names, builtin_path
from claude_docker.config.validate import _validator, anchored_at_the_end, describe, schema
from tests.support.configs import BASE, CASES, FIELDS, render_data, with_value
from tests.support.examples import examples

ORACLE = jsonschema.Draft202012Validator(schema())
ANCHORED = jsonschema.Draft202012Validator(anchored_at_the_end(schema()))


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
    assume(path[-1] != "*KEY" or isinstance(value, str))  # YAML keys here are text
    render_data(with_value(path, value))  # raises only for a bug (a traceback)


@settings(max_examples=examples(150), deadline=None, database=None)
@given(path=st.sampled_from(FIELDS), value=json_values | st.sampled_from(["", "x y", "-rf", "a\nb", "ex.com", "10.0.0.0/8"]))
def test_the_validator_judges_as_the_schema_does(path, value):
    """claude-docker validates with the schema's references resolved ahead (validate.py): the same
    documents fail, with the same errors at the same places, as under the schema itself (its
    patterns anchored at the very end, as the schema means them)."""
    assume(path[-1] != "*KEY" or isinstance(value, str))
    document = with_value(path, value)

    def judged(validator) -> list[tuple]:
        return sorted((list(e.absolute_path), e.validator, e.message, describe(e)) for e in validator.iter_errors(document))

    assert judged(_validator()) == judged(ANCHORED)


def test_the_resolved_schema_has_no_reference_left():
    assert '"$ref"' not in json.dumps(_validator().schema)
