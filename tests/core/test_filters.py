"""core.filters: quoting, building, parsing hand-written strings, round trips (hypothesis), and
agreement with the grammar MLflow's own parser and server implement."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from traceviewer.core import filters as F
from traceviewer.core.client import RestClient
from traceviewer.core.errors import BadFilter
from traceviewer.core.filters import Clause

# -- hand-written filters --------------------------------------------------------------------

HAND_WRITTEN = [
    # The seed document's two examples.
    ("tags.`mlflow.trace.user` = 'user-jane-doe-12345'",
     [Clause("user", "=", "user-jane-doe-12345")]),
    ("tags.`mlflow.trace.session` = 'session-123'", [Clause("session", "=", "session-123")]),
    # Aliases the server accepts.
    ("tag.mlflow.trace.session = 's1'", [Clause("session", "=", "s1")]),
    ('tags."mlflow.trace.user" LIKE \'user-%\'', [Clause("user", "LIKE", "user-%")]),
    ("metadata.`mlflow.trace.session` = 's'", [Clause("metadata.mlflow.trace.session", "=", "s")]),
    ("request_metadata.`mlflow.trace.user` IS NULL",
     [Clause("metadata.mlflow.trace.user", "IS NULL")]),
    ("attributes.client_request_id = 'req-3'", [Clause("client_request_id", "=", "req-3")]),
    ("trace.client_request_id IN ('a','b')", [Clause("client_request_id", "IN", ("a", "b"))]),
    # Lists are read as Python literals by the server, so escapes work there (only there).
    ("""client_request_id IN ('it\\'s "x"', 'C:\\\\tmp')""",
     [Clause("client_request_id", "IN", ('it\'s "x"', "C:\\tmp"))]),
    ("client_request_id like 'req-%'", [Clause("client_request_id", "LIKE", "req-%")]),
    ("attributes.status = 'ERROR'", [Clause("status", "=", "ERROR")]),
    ("status != 'OK' and trace.status NOT IN ('IN_PROGRESS')",
     [Clause("status", "!=", "OK"), Clause("status", "NOT IN", ("IN_PROGRESS",))]),
    ("attributes.timestamp_ms > 1795611684503", [Clause("timestamp_ms", ">", 1795611684503)]),
    ("timestamp >= 1795611684503 AND end_time_ms < 1795611684999",
     [Clause("timestamp_ms", ">=", 1795611684503), Clause("end_time_ms", "<", 1795611684999)]),
    ("execution_time > 100", [Clause("execution_time_ms", ">", 100)]),
    ("attributes.execution_time_ms <= 2.5", [Clause("execution_time_ms", "<=", 2.5)]),
    ("trace.name = 'handle_chat'", [Clause("name", "=", "handle_chat")]),
    ("name = 'handle_chat'", [Clause("name", "=", "handle_chat")]),
    ("tags.`mlflow.traceName` = 'handle_chat'",
     [Clause("tags.mlflow.traceName", "=", "handle_chat")]),
    ("tags.environment LIKE 'prod%'", [Clause("tags.environment", "LIKE", "prod%")]),
    ("tags.environment ILIKE 'PROD%' AND tags.region RLIKE '^eu-'",
     [Clause("tags.environment", "ILIKE", "PROD%"), Clause("tags.region", "RLIKE", "^eu-")]),
    ("tags.customer IS NOT NULL", [Clause("tags.customer", "IS NOT NULL")]),
    ('tags.customer = "O\'Brien"', [Clause("tags.customer", "=", "O'Brien")]),
    ("span.name = 'lookup_balance'", [Clause("span.name", "=", "lookup_balance")]),
    ("span.type IN ('TOOL', 'LLM')", [Clause("span.type", "IN", ("TOOL", "LLM"))]),
    ("span.status = 'ERROR'", [Clause("span.status", "=", "ERROR")]),
    ("span.attributes.`mlflow.spanFunctionName` LIKE '%lookup%'",
     [Clause("span.attributes.mlflow.spanFunctionName", "LIKE", "%lookup%")]),
    ("span.content ILIKE '%timed out%'", [Clause("span.content", "ILIKE", "%timed out%")]),
    ("trace.text ILIKE '%x%'", [Clause("span.content", "ILIKE", "%x%")]),
    ("feedback.`response_is_correct` = 'true'",
     [Clause("feedback.response_is_correct", "=", "true")]),
    ("feedback.relevance > 0.3", [Clause("feedback.relevance", ">", 0.3)]),
    ("feedback.relevance IS NOT NULL AND expectation.answer = '42'",
     [Clause("feedback.relevance", "IS NOT NULL"), Clause("expectation.answer", "=", "42")]),
    ("run_id = 'abc123'", [Clause("run_id", "=", "abc123")]),
    ("issue.id = 'iss-1'", [Clause("issue.id", "=", "iss-1")]),
    # A trailing AND is tolerated, as by the server; whitespace is free.
    ("  status = 'OK'   AND  ", [Clause("status", "=", "OK")]),
    ("", []),
    ("   ", []),
]


@pytest.mark.parametrize(("text", "expected"), HAND_WRITTEN, ids=[t for t, _ in HAND_WRITTEN])
def test_hand_written_filter_parses_to_expected_clauses(text, expected):
    assert F.parse(text) == expected


@pytest.mark.parametrize(("text", "expected"), HAND_WRITTEN, ids=[t for t, _ in HAND_WRITTEN])
def test_hand_written_filter_rebuilds_to_an_equivalent_string(text, expected):
    assert F.parse(F.build(F.parse(text))) == expected


BAD = [
    # (text, 0-based position, fragment of the message)
    ("status = 'OK' OR status = 'ERROR'", 14, "no OR"),
    ("status = 'OK' or status = 'ERROR'", 14, "no OR"),
    ("NOT status = 'OK'", 0, "no NOT"),
    ("(status = 'OK')", 0, "no parentheses"),
    ("status = 'OK' AND (status = 'OK')", 18, "no parentheses"),
    ("status === 'OK'", 7, "Unknown operator '==='"),
    ("status <> 'OK'", 7, "Unknown operator '<>'"),
    ("status = 'OK", 9, "Unterminated ' quote"),
    ('tags.x = "abc', 9, 'Unterminated " quote'),
    ("tags.`x = 'a'", 5, "Unterminated ` quote"),
    ("state = 'ERROR'", 0, "called status"),
    ("tags.env = production", 11, "Put the value in quotes"),
    ("tags.customer = 'O''Brien'", 16, "no escapes"),
    ("tags.customer = 'O\\'Brien'", 16, "no escapes"),
    ("feedback.relevance > '0.3'", 21, "needs a number"),
    ("timestamp_ms > '2026-01-01'", 15, "needs a number"),
    ("tags.customer IN ('a')", 14, "does not support IN"),
    ("span.content = 'x'", 13, "does not support ="),
    ("span.foo = 'x'", 0, "Unknown span field"),
    ("tags = 'x'", 0, "needs a key"),
    ("status = 'OK' AND AND status = 'OK'", 18, "Expected a condition"),
    ("status = 'OK' status = 'ERROR'", 14, "Expected AND"),
    ("status", 6, "Expected an operator"),
    ("status IS 'OK'", 7, "IS NULL or IS NOT NULL"),
    ("client_request_id IN 'a'", 21, "list in parentheses"),
    ("client_request_id IN ('a' 'b')", 26, "Expected , or )"),
    ("request_preview LIKE '%x%'", 0, "Unknown field 'request_preview'"),
    ("assessment.x = 'y'", 0, "Unknown field"),
    ("status = 'OK' ; DROP", 14, "Unexpected character ';'"),
]


@pytest.mark.parametrize(("text", "position", "fragment"), BAD, ids=[t for t, _, _ in BAD])
def test_invalid_filter_is_rejected_with_its_position(text, position, fragment):
    with pytest.raises(BadFilter) as caught:
        F.parse(text)
    assert caught.value.position == position
    assert fragment in str(caught.value)


def test_or_message_says_the_app_offers_or_as_separate_filters():
    with pytest.raises(BadFilter, match="separate filter"):
        F.parse("status = 'OK' OR status = 'ERROR'")


# -- quoting ---------------------------------------------------------------------------------

def test_session_filter_quotes_dotted_key_with_backticks():
    assert F.build([F.session("s-1")]) == "tags.`mlflow.trace.session` = 's-1'"


def test_plain_key_stays_bare_and_odd_keys_get_backticks():
    assert F.field_key("tags.customer") == "tags.customer"
    assert F.field_key("tags.my key") == "tags.`my key`"
    assert F.field_key("feedback.is-correct") == "feedback.`is-correct`"
    assert F.field_key("span.attributes.mlflow.spanType") == "span.attributes.`mlflow.spanType`"


def test_value_with_single_quote_is_written_in_double_quotes():
    assert F.quote_value("O'Brien") == '"O\'Brien"'
    assert F.quote_value('say "hi"') == "'say \"hi\"'"


def test_value_with_both_quote_kinds_is_rejected_with_a_like_hint():
    with pytest.raises(BadFilter, match=r"cannot be matched exactly.*LIKE"):
        F.build([F.tag("note", "it's \"odd\"")])


def test_list_values_use_python_escapes_as_the_server_decodes_lists():
    built = F.build([Clause("client_request_id", "IN", ("it's \"x\"", "a\\b"))])
    assert built == """client_request_id IN ('it\\'s "x"', 'a\\\\b')"""


def test_value_ending_in_backslash_is_rejected():
    with pytest.raises(BadFilter, match="backslash"):
        F.quote_value("C:\\")


def test_key_with_backtick_is_rejected():
    with pytest.raises(BadFilter, match="backtick"):
        F.tag("a`b", "x")


def test_feedback_comparison_numbers_are_unquoted_and_equality_values_quoted():
    assert F.build([Clause("feedback.relevance", ">=", 0.5)]) == "feedback.relevance >= 0.5"
    assert F.build([Clause("feedback.ok", "=", True)]) == "feedback.ok = 'true'"
    assert F.build([Clause("feedback.score", "=", 3)]) == "feedback.score = '3'"


def test_numbers_never_use_exponents_the_server_cannot_read():
    # A float keeps its point (so it parses back as a float); the server reads both.
    assert F.build([Clause("execution_time_ms", ">", 1e20)]) == (
        "execution_time_ms > 100000000000000000000.0")
    assert F.build([Clause("feedback.p", "<", 1e-7)]) == "feedback.p < 0.0000001"
    with pytest.raises(BadFilter, match="finite"):
        F.build([Clause("feedback.p", "<", float("nan"))])


def test_operator_not_offered_by_a_field_is_rejected_on_build():
    with pytest.raises(BadFilter, match="does not support IN"):
        F.build([Clause("tags.customer", "IN", ("a",))])


# -- convenience builders, time values and alternatives --------------------------------------

NOW = 1_795_611_684_503


def test_since_presets_are_relative_to_now():
    assert F.since("1h", NOW) == Clause("timestamp_ms", ">=", NOW - 3_600_000)
    assert F.since("24h", NOW).value == NOW - 86_400_000
    assert F.since("7d", NOW).value == NOW - 7 * 86_400_000


def test_since_accepts_iso_dates_and_epoch_ms():
    assert F.since("2026-11-25T13:02:27.771Z").value == 1_795_611_747_771
    assert F.since("2026-11-25T14:02:27.771+01:00").value == 1_795_611_747_771
    assert F.since("1795611684503").value == 1_795_611_684_503


def test_unreadable_time_names_the_accepted_forms():
    with pytest.raises(BadFilter, match="preset like 1h"):
        F.since("yesterday")


def test_time_row_keeps_its_preset_until_built():
    row = Clause("timestamp_ms", ">=", "24h")
    assert F.build([row], now_ms=NOW) == f"timestamp_ms >= {NOW - 86_400_000}"


def test_status_builder_normalises_case_and_rejects_unknown_states():
    assert F.status("error") == Clause("status", "=", "ERROR")
    with pytest.raises(BadFilter, match="OK, ERROR, IN_PROGRESS"):
        F.status("FAILED")


def test_session_and_user_expand_to_tags_or_metadata_alternatives():
    assert F.alternatives([F.session("s"), F.status("OK")]) == [
        "tags.`mlflow.trace.session` = 's' AND status = 'OK'",
        "metadata.`mlflow.trace.session` = 's' AND status = 'OK'",
    ]
    assert len(F.alternatives([F.session("s"), F.user("u")])) == 4


def test_missing_session_means_missing_in_both_places():
    assert F.alternatives([Clause("session", "IS NULL")]) == [
        "tags.`mlflow.trace.session` IS NULL AND metadata.`mlflow.trace.session` IS NULL"]


def test_filter_without_virtual_fields_is_one_alternative():
    assert F.alternatives([F.client_request_id("r")]) == ["client_request_id = 'r'"]
    assert F.alternatives([]) == [""]


def test_field_catalog_describes_value_kinds_per_operator():
    feedback = F.split_field("feedback.relevance")
    assert feedback == (F.split_field("feedback.x")[0], "relevance")
    spec = feedback[0]
    assert spec.value_kind(">") is F.ValueKind.NUMBER
    assert spec.value_kind("=") is F.ValueKind.TEXT
    assert spec.value_kind("IS NULL") is F.ValueKind.NONE
    assert F.split_field("status")[0].value_kind("IN") is F.ValueKind.LIST
    assert Clause("tags.mlflow.trace.session", "=", "x").key == "mlflow.trace.session"
    with pytest.raises(BadFilter, match="Unknown filter field"):
        F.split_field("bogus")


# -- property tests --------------------------------------------------------------------------

texts = st.text(min_size=0, max_size=20).filter(
    lambda s: not ("'" in s and '"' in s) and not s.endswith("\\"))
list_items = st.text(max_size=20).filter(lambda s: not s.endswith("\\"))
keys = st.text(min_size=1, max_size=15).filter(lambda s: "`" not in s)
numbers = st.one_of(st.integers(-10**12, 10**15),
                    st.floats(allow_nan=False, allow_infinity=False, width=64))


def _value(spec: F.FieldSpec, op: str) -> st.SearchStrategy:
    kind = spec.value_kind(op)
    if kind is F.ValueKind.NONE:
        return st.none()
    if kind is F.ValueKind.LIST:
        return st.lists(list_items, min_size=1, max_size=4).map(tuple)
    if kind is F.ValueKind.TIME:
        return st.integers(0, 4_000_000_000_000)
    if kind is F.ValueKind.NUMBER:
        return numbers
    return texts


@st.composite
def clauses(draw) -> Clause:
    spec = draw(st.sampled_from(F.FIELDS))
    op = draw(st.sampled_from(spec.ops))
    field = f"{spec.name}.{draw(keys)}" if spec.keyed else spec.name
    if field in ("tags.mlflow.trace.session", "tags.mlflow.trace.user"):
        field = "session" if field.endswith("session") else "user"
    return Clause(field, op, draw(_value(spec, op)))


filters = st.lists(clauses(), max_size=5)


@given(filters)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_build_parse_build_round_trips(cs):
    text = F.build(cs)
    parsed = F.parse(text)
    assert parsed == cs
    assert F.build(parsed) == text


def _mlflow_view(clause: Clause) -> tuple[str, str]:
    """(type, key) MLflow's own parser should report for a clause."""
    spec, key = clause.spec, clause.key
    virtual = {"session": "mlflow.trace.session", "user": "mlflow.trace.user"}
    mapped = {"name": ("tag", "mlflow.traceName"),
              "run_id": ("request_metadata", "mlflow.sourceRun"),
              "prompt": ("tag", "mlflow.linkedPrompts"), "issue.id": ("issue", "id")}
    if spec.name in virtual:
        return "tag", virtual[spec.name]
    if spec.name in mapped:
        return mapped[spec.name]
    prefixes = {"tags": "tag", "metadata": "request_metadata", "feedback": "feedback",
                "expectation": "expectation"}
    if spec.name in prefixes:
        return prefixes[spec.name], key
    if spec.name == "span.attributes":
        return "span", f"attributes.{F.quote_key(key)}"
    if spec.name.startswith("span."):
        return "span", spec.name.removeprefix("span.")
    return "attribute", spec.name


@given(filters)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_built_strings_mean_the_same_to_mlflows_own_parser(cs):
    """The server parses filters with SearchTraceUtils; our quoting must survive its tokenizer
    (backslashes, quotes, keywords, unicode) and give back exactly our keys and values."""
    from mlflow.utils.search_utils import SearchTraceUtils

    parsed = SearchTraceUtils.parse_search_filter_for_search_traces(F.build(cs))
    got = [(p["type"], p["key"], p["comparator"].upper(), p["value"]) for p in parsed]
    want = [(*_mlflow_view(c), c.op, c.value) for c in cs]
    assert got == want


# -- against the real server -----------------------------------------------------------------

_SAMPLES = {F.ValueKind.TEXT: "x", F.ValueKind.CHOICE: "OK", F.ValueKind.NUMBER: 5,
            F.ValueKind.TIME: 1_795_611_684_503, F.ValueKind.LIST: ("a", "b"),
            F.ValueKind.NONE: None}


def test_server_accepts_every_field_and_operator_in_the_catalog(mlflow_server):
    client = RestClient(mlflow_server.url)
    experiment = client.resolve_experiment("/Shared/production-genai-app")
    rejected = []
    for spec in F.FIELDS:
        field = f"{spec.name}.some.key" if spec.keyed else spec.name
        for op in spec.ops:
            value = "p/1" if spec.name == "prompt" else _SAMPLES[spec.value_kind(op)]
            for text in F.alternatives([Clause(field, op, value)]):
                try:
                    client.search_traces([experiment.experiment_id], filter=text, max_results=1)
                except BadFilter as exc:
                    rejected.append(f"{text}: {exc}")
    assert rejected == []
