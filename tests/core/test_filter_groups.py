"""core.filter_groups: OR groups and parentheses in filter strings, IN expanded where the server
has none, the server queries a filter costs, and the build/parse round trip (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.core.test_filters import _value, keys
from traceviewer.core import filter_groups as G
from traceviewer.core import filters as F
from traceviewer.core.errors import BadFilter
from traceviewer.core.filters import Clause

USER_TAG = "tags.`mlflow.trace.user`"
OK, ERR = Clause("status", "=", "OK"), Clause("status", "=", "ERROR")
SLOW, ENV = Clause("execution_time_ms", ">", 5), Clause("tags.env", "=", "prod")


@pytest.mark.parametrize(("text", "groups"), [
    (f"{USER_TAG} = 'a' OR {USER_TAG} = 'b'",
     [[Clause("user", "=", "a")], [Clause("user", "=", "b")]]),
    ("status = 'OK' AND tags.env = 'prod' OR execution_time_ms > 5", [[OK, ENV], [SLOW]]),
    ("(status = 'OK' AND tags.env = 'prod') or (status = 'ERROR' AND execution_time_ms > 5)",
     [[OK, ENV], [ERR, SLOW]]),
    ("((status = 'OK'))", [[OK]]),
    ("(status = 'OK' OR status = 'ERROR') AND tags.env = 'prod'", [[OK, ENV], [ERR, ENV]]),
    (f"{USER_TAG} IN ('a', 'b')", [[Clause("user", "IN", ("a", "b"))]]),
    ("status = 'OK' AND ", [[OK]]),
    ("", []),
])
def test_or_groups_parse_to_groups_of_and_ed_clauses(text, groups):
    assert G.parse(text) == groups


@pytest.mark.parametrize(("text", "position", "fragment"), [
    ("(status = 'OK'", 14, "Expected ) to close the ( at character 1"),
    ("status = 'OK')", 13, "closes no ("),
    ("()", 1, "Empty parentheses"),
    ("status = 'OK' OR", 16, "Expected a field name"),
    ("status = 'OK' status = 'ERROR'", 14, "Expected AND or OR"),
    ("span.content IN ('a')", 13, "does not support IN"),
    ("NOT status = 'OK'", 0, "no NOT"),
])
def test_broken_or_filter_is_rejected_with_its_position(text, position, fragment):
    with pytest.raises(BadFilter) as caught:
        G.parse(text)
    assert caught.value.position == position
    assert fragment in str(caught.value)


def test_canonical_or_string_is_written_back_unchanged():
    text = ("(status = 'OK' AND tags.env = 'prod') OR execution_time_ms > 5 OR "
            f"{USER_TAG} IN ('a', 'b')")
    assert G.build(G.parse(text)) == text


def test_an_empty_group_matches_everything():
    assert G.build([[OK], []]) == ""
    assert G.server_filters([[OK], []]) == [""]


def test_in_over_users_becomes_one_query_per_value_and_place():
    assert G.server_filters(G.parse(f"{USER_TAG} IN ('a', 'b')")) == [
        f"{USER_TAG} = 'a'", "metadata.`mlflow.trace.user` = 'a'",
        f"{USER_TAG} = 'b'", "metadata.`mlflow.trace.user` = 'b'"]


def test_not_in_over_tags_stays_one_query_of_and_ed_inequalities():
    assert G.server_filters(G.parse("tags.env NOT IN ('a', 'b')")) == [
        "tags.env != 'a' AND tags.env != 'b'"]


def test_in_where_the_server_has_it_stays_one_query():
    assert G.server_filters(G.parse("status IN ('OK', 'ERROR')")) == [
        "status IN ('OK', 'ERROR')"]


def test_branches_repeating_a_query_cost_it_once():
    assert G.cost(G.parse("status = 'OK' OR status = 'OK' OR status = 'ERROR'")) == 2


def test_too_many_queries_are_refused_with_the_count_and_the_limit():
    values = ", ".join(f"'u{i}'" for i in range(13))
    groups = G.parse(f"{USER_TAG} IN ({values})")
    assert G.cost(groups) == 26
    with pytest.raises(BadFilter, match=f"26 server queries.*at most {G.MAX_QUERIES}"):
        G.checked_server_filters(groups)
    assert "too many" in G.cost_text(groups)
    assert G.cost_text([[OK]]) == ""


# -- property test ---------------------------------------------------------------------------

# Keys the server reads as something else (tags.name: the trace name) cannot be written.
searchable_keys = keys.filter(lambda k: k.lower() not in F._REWRITTEN_KEYS)


@st.composite
def clauses(draw) -> Clause:
    spec = draw(st.sampled_from(F.FIELDS))
    op = draw(st.sampled_from(G.ops(spec)))  # the server's operators plus expanded IN
    field = f"{spec.name}.{draw(searchable_keys)}" if spec.keyed else spec.name
    if field in ("tags.mlflow.trace.session", "tags.mlflow.trace.user"):
        field = "session" if field.endswith("session") else "user"
    value = draw(_value(spec, op))
    if G.expands_in(spec, op):  # each item becomes an = value: both quote kinds impossible
        value = tuple(v for v in value if not ("'" in v and '"' in v)) or ("x",)
    return Clause(field, op, value)


groups = st.lists(st.lists(clauses(), min_size=1, max_size=3), max_size=4)


@given(groups)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_or_groups_build_parse_build_round_trips(gs):
    text = G.build(gs)
    parsed = G.parse(text)
    assert parsed == gs
    assert G.build(parsed) == text


@given(st.lists(clauses(), min_size=1, max_size=4))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_single_group_is_written_as_the_and_only_string(cs):
    if not any(G.expands_in(c.spec, c.op) for c in cs):
        assert G.build([cs]) == F.build(cs)
