"""Label values, label schemas and resumable review-queue state."""

from __future__ import annotations

import pytest

from traceviewer.core.errors import ConfigError, UsageError
from traceviewer.core.model import Assessment
from traceviewer.core.review import (
    DEFAULT_SCHEMAS,
    LabelSchema,
    QueueState,
    QueueStore,
    SchemaStore,
    assessment_body,
    feedback_glance,
    feedback_lines,
    format_value,
    glance_value,
    parse_value,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("true", True), ("FALSE", False), (" True ", True),
    ("3", 3), ("-2", -2), ("0.75", 0.75), ("1e3", 1000.0), (".5", 0.5),
    ("yes", "yes"), ("3 apples", "3 apples"), ("", ""), ("nan", "nan"),
])
def test_parse_value_reads_booleans_and_numbers_else_text(text, expected):
    value = parse_value(text)
    assert value == expected
    assert type(value) is type(expected)


def test_format_value_shows_booleans_as_yes_no_and_whole_floats_as_ints():
    assert [format_value(v) for v in (True, False, 4.0, 0.5, "x", None, [1])] == \
        ["yes", "no", "4", "0.5", "x", "", "[1]"]


def test_glance_value_marks_booleans_and_separates_thousands():
    assert [glance_value(v) for v in (True, False, 1234, 0.75, 2.0, "friendly", None)] == \
        ["✓", "✗", "1,234", "0.75", "2", "friendly", ""]


def _assessment(name: str, body: dict, **extra) -> Assessment:
    return Assessment.from_json({"assessment_id": f"a-{name}", "assessment_name": name,
                                 "source": {"source_type": "HUMAN", "source_id": "ann"},
                                 **body, **extra})


def test_feedback_glance_joins_valid_feedback_and_the_tooltip_lists_it_whole():
    assessments = [
        _assessment("response_is_correct", {"feedback": {"value": False}},
                    rationale="wrong\naccount"),
        _assessment("relevance", {"feedback": {"value": 0.8}}),
        _assessment("judge", {"feedback": {"error": {"error_message": "timed out"}}}),
        _assessment("old", {"feedback": {"value": True}}, valid=False),
        _assessment("expected", {"expectation": {"value": "42"}}),
    ]
    assert feedback_glance(assessments) == (
        "response_is_correct: ✗ · relevance: 0.8 · judge: error")
    assert feedback_lines(assessments).splitlines() == [
        "response_is_correct: ✗ (by ann) — wrong account",
        "relevance: 0.8 (by ann)",
        "judge: error (by ann) — timed out"]


def test_default_schema_is_the_seed_response_is_correct_yes_no_with_comment(tmp_path):
    store = SchemaStore(tmp_path / "schemas.json")
    (schema,) = store.get("local", "1")
    assert (schema.name, schema.kind, schema.comment, schema.required) == \
        ("response_is_correct", "boolean", True, True)
    assert store.get("local", "1") == DEFAULT_SCHEMAS


def test_schemas_are_kept_per_workspace_and_experiment(tmp_path):
    store = SchemaStore(tmp_path / "schemas.json")
    tone = LabelSchema("tone", "category", options=("friendly", "neutral", "rude"), required=False)
    store.set("local", "1", [tone, LabelSchema("score", "number")])
    reopened = SchemaStore(tmp_path / "schemas.json")
    assert reopened.get("local", "1") == (tone, LabelSchema("score", "number"))
    assert reopened.get("local", "2") == DEFAULT_SCHEMAS
    assert reopened.get("other", "1") == DEFAULT_SCHEMAS
    reopened.set("local", "1", [])
    assert reopened.get("local", "1") == DEFAULT_SCHEMAS


def test_schema_rejects_duplicate_names_and_categories_without_options(tmp_path):
    with pytest.raises(ConfigError, match="no options"):
        LabelSchema("tone", "category")
    with pytest.raises(ConfigError, match="type must be one of"):
        LabelSchema("tone", "colour")
    with pytest.raises(ConfigError, match="unique"):
        SchemaStore(tmp_path / "s.json").set("w", "1", [LabelSchema("a"), LabelSchema("a")])


def test_schema_coerces_values_and_says_what_it_accepts():
    assert LabelSchema("ok").coerce("y") is True
    assert LabelSchema("ok").coerce("false") is False
    assert LabelSchema("score", "number").coerce("4") == 4
    assert LabelSchema("tone", "category", options=("a", "b")).coerce("b") == "b"
    with pytest.raises(UsageError, match="yes/no"):
        LabelSchema("ok").coerce("maybe")
    with pytest.raises(UsageError, match="number"):
        LabelSchema("score", "number").coerce(True)
    with pytest.raises(UsageError, match="one of a, b"):
        LabelSchema("tone", "category", options=("a", "b")).coerce("c")


def test_assessment_body_is_human_with_the_reviewer_as_source():
    body = assessment_body("response_is_correct", False, "alice@example.com", rationale="wrong",
                           overrides="a-1")
    assert body == {"assessment_name": "response_is_correct",
                    "source": {"source_type": "HUMAN", "source_id": "alice@example.com"},
                    "feedback": {"value": False}, "rationale": "wrong", "overrides": "a-1"}
    assert "expectation" in assessment_body("expected", "42", "bob", kind="expectation")
    with pytest.raises(UsageError, match="reviewer"):
        assessment_body("x", True, "")


def test_review_queue_resumes_where_the_reviewer_left_off(tmp_path):
    store = QueueStore(tmp_path / "queues")
    fresh = QueueState("local", "http://h", "1", "errors today", ("tr-a", "tr-b", "tr-c"))
    state = fresh.with_label("tr-a", [7]).at(1).with_skip("tr-b").at(2)
    store.save(state)
    resumed = QueueStore(tmp_path / "queues").resume(fresh)
    assert resumed == state
    assert (resumed.current, resumed.done, resumed.labelled) == ("tr-c", 2, {"tr-a": (7,)})
    other = QueueState("local", "http://h", "1", "x", ("tr-a", "tr-b"))
    assert store.resume(other) is other
    assert store.list() == [state]


def test_queue_labels_replace_skips_and_undo_forgets_them():
    state = QueueState("w", "h", "1", "", ("tr-a", "tr-b")).with_skip("tr-a")
    state = state.with_label("tr-a", [1, 2])
    assert (state.skipped, state.done) == ((), 1)
    assert state.without_label("tr-a").done == 0
    assert state.with_skip("tr-b").without_skip("tr-b").skipped == ()
    assert state.at(99).current == "tr-b" and state.at(-3).current == "tr-a"
