"""core.model: trace infos as the server writes them (times, durations, session/user in tags or
metadata, assessments), and span trees in arrays (pre-order, start-time order, deep chains)."""

from __future__ import annotations

import pytest

from traceviewer.core.model import (
    Assessment,
    Span,
    Trace,
    TraceInfo,
    format_rfc3339_ms,
    parse_duration_ms,
    parse_rfc3339_ms,
)


@pytest.mark.parametrize(("text", "ms"), [
    ("2026-11-25T13:02:27.771Z", 1795611747771),
    ("2026-11-25T13:02:27Z", 1795611747000),  # the server may leave out the milliseconds
    ("2026-11-25T13:02:27.771123456Z", 1795611747771),
    ("2026-11-25T15:02:27.771+02:00", 1795611747771),
    ("2026-11-25T08:32:27.771-0430", 1795611747771),
    ("yesterday", None),
    (None, None),
])
def test_rfc3339_times_parse_to_epoch_ms(text, ms):
    assert parse_rfc3339_ms(text) == ms


def test_rfc3339_round_trip():
    assert parse_rfc3339_ms(format_rfc3339_ms(1795611747771)) == 1795611747771


@pytest.mark.parametrize(("value", "ms"), [
    ("1.648s", 1648), ("0.040s", 40), ("12s", 12000), ("0.0005s", 0), ("-1.5s", -1500),
    (250, 250), (1.6, 2), ("fast", None), (True, None), (None, None),
])
def test_durations_parse_to_ms(value, ms):
    assert parse_duration_ms(value) == ms


def _info(**fields) -> TraceInfo:
    return TraceInfo.from_json({"trace_id": "tr-1", "request_time": "2026-11-25T13:02:27.771Z",
                                "execution_duration": "1.648s", "state": "OK", **fields})


def test_session_and_user_come_from_tags_or_else_metadata():
    in_tags = _info(tags={"mlflow.trace.session": "s-tag", "mlflow.trace.user": "u-tag"})
    in_metadata = _info(trace_metadata={"mlflow.trace.session": "s-meta",
                                        "mlflow.trace.user": "u-meta"})
    assert (in_tags.session, in_tags.user) == ("s-tag", "u-tag")
    assert (in_metadata.session, in_metadata.user) == ("s-meta", "u-meta")
    assert (_info().session, _info().user) == (None, None)


def test_info_accessors_read_name_tokens_and_span_count():
    info = _info(tags={"mlflow.traceName": "handle_chat"}, trace_metadata={
        "mlflow.trace.tokenUsage": '{"input_tokens": 12, "output_tokens": 3}',
        "mlflow.trace.sizeStats": '{"total_size_bytes": 10, "num_spans": 5}'})
    assert info.name == "handle_chat"
    assert info.token_usage == {"input_tokens": 12, "output_tokens": 3}
    assert info.num_spans == 5
    assert (info.request_time_ms, info.duration_ms) == (1795611747771, 1648)


def test_in_progress_info_without_name_or_previews():
    info = TraceInfo.from_json({"trace_id": "tr-2", "state": "IN_PROGRESS",
                                "trace_metadata": {"mlflow.trace.tokenUsage": "{cut"}})
    assert (info.name, info.request_preview, info.token_usage, info.num_spans,
            info.client_request_id) == (None, None, None, None, None)


def test_v2_style_key_value_lists_are_read():
    info = _info(tags=[{"key": "environment", "value": "production"}])
    assert dict(info.tags) == {"environment": "production"}


def test_info_to_json_round_trips():
    info = _info(client_request_id="req-1", request_preview="<b>hi</b>",
                 tags={"mlflow.trace.session": "s"}, trace_metadata={"k": "v"},
                 assessments=[{"assessment_id": "a-1", "assessment_name": "ok",
                               "trace_id": "tr-1", "feedback": {"value": True},
                               "source": {"source_type": "HUMAN", "source_id": "me"}}])
    assert TraceInfo.from_json(info.to_json()) == info


def test_assessment_values_serialized_and_failed_judges():
    expectation = Assessment.from_json({
        "assessment_id": "a-1", "assessment_name": "facts", "trace_id": "tr-1",
        "expectation": {"serialized_value": {"serialization_format": "JSON_FORMAT",
                                             "value": '["a", "b"]'}}})
    failed = Assessment.from_json({
        "assessment_id": "a-2", "assessment_name": "relevance", "trace_id": "tr-1",
        "source": {"source_type": "LLM_JUDGE", "source_id": "judge"}, "valid": False,
        "feedback": {"value": None, "error": {"error_code": "Exception",
                                              "error_message": "judge timed out"}}})
    assert (expectation.kind, expectation.value) == ("expectation", ["a", "b"])
    assert expectation.source_type == "SOURCE_TYPE_UNSPECIFIED"
    assert (failed.kind, failed.value, failed.error, failed.valid) == (
        "feedback", None, "Exception: judge timed out", False)


def _span(n: int, parent: int | None, start: int, end: int | None = None) -> Span:
    return Span(span_id=f"{n:016x}", parent_id=None if parent is None else f"{parent:016x}",
                name=f"s{n}", span_type="CHAIN", start_ns=start, end_ns=end, status="OK")


def test_tree_is_pre_order_with_children_by_start_time():
    #   1 ─┬─ 3 (t=5) ── 5
    #      └─ 2 (t=9) ── 4
    spans = [_span(4, 2, 10), _span(2, 1, 9), _span(5, 3, 6), _span(1, None, 0), _span(3, 1, 5)]
    trace = Trace.build(TraceInfo.from_json({}), spans)
    assert [s.name for s in trace.spans] == ["s1", "s3", "s5", "s2", "s4"]
    assert list(trace.parent) == [-1, 0, 1, 0, 3]
    assert list(trace.depth) == [0, 1, 2, 1, 2]
    assert list(trace.first_child) == [1, 2, -1, 4, -1]
    assert list(trace.next_sibling) == [-1, 3, -1, -1, -1]
    assert list(trace.children(0)) == [1, 3]
    assert trace.roots == [0]


def test_equal_start_times_keep_the_input_order():
    spans = [_span(1, None, 0), *(_span(n, 1, 7) for n in range(2, 7))]
    trace = Trace.build(TraceInfo.from_json({}), spans)
    assert [s.name for s in trace.spans] == ["s1", "s2", "s3", "s4", "s5", "s6"]


def test_a_100k_deep_chain_builds_without_recursion():
    n = 100_000
    spans = [_span(i, i - 1 if i else None, i) for i in range(n)]
    trace = Trace.build(TraceInfo.from_json({}), spans)
    assert trace.depth[-1] == n - 1
    assert trace.parent[-1] == n - 2


def test_partial_and_in_progress_traces_are_told_apart():
    info = TraceInfo.from_json({"state": "OK", "trace_metadata": {
        "mlflow.trace.sizeStats": '{"num_spans": 3}'}})
    complete = Trace.build(info, [_span(1, None, 0, 5), _span(2, 1, 1, 4), _span(3, 1, 2, 3)])
    partial = Trace.build(info, [_span(2, 1, 1, 4), _span(3, 1, 2)])
    assert not complete.partial and not complete.in_progress
    assert partial.partial and partial.in_progress
    assert (complete.start_ns, complete.end_ns) == (0, 5)
    assert partial.end_ns == 4  # the running span counts by its start
