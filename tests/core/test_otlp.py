"""core.otlp: decoding both span JSON formats, robustness to what production data does (missing
fields, orphans, duplicates, cycles, running spans, clock skew, huge values, corrupt JSON), and
reading trace files written by the REST API and by MLflow's own `Trace.to_json()`."""

from __future__ import annotations

import base64
import gc
import json

import httpx
import pytest
from mlflow.entities import Trace as MlflowTrace

from tests.conftest import BIG_EXPERIMENT, PROD_EXPERIMENT, experiment_id
from traceviewer.core.cache import TraceCache
from traceviewer.core.errors import CorruptTrace, UsageError
from traceviewer.core.otlp import (
    STOW_SPANS,
    decode_any_value,
    dump_trace,
    load_trace_file,
    parse_trace,
)
from traceviewer.core.trace_layout import TreeLayout
from traceviewer.core.trace_loading import discard

TRACE_HEX = "7fea94dbd9043489cca2c90db7b1055c"
T0 = 1_795_611_751_232_074_062  # epoch ns beyond 2**53: must stay exact


def _b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def sid(n: int) -> str:
    """The hex id of test span n."""
    return f"{n:016x}"


def span(n: int, parent: int | None = None, start: int = 0, end: int | None = 10, **extra):
    """A REST-format span (base64 ids, typed attributes) with times relative to T0."""
    raw = {"trace_id": _b64(TRACE_HEX), "span_id": _b64(sid(n)), "name": f"s{n}",
           "start_time_unix_nano": T0 + start,
           "attributes": [{"key": "mlflow.spanType", "value": {"string_value": "TOOL"}}],
           "status": {"code": "STATUS_CODE_OK"}}
    if end is not None:
        raw["end_time_unix_nano"] = T0 + end
    if parent is not None:
        raw["parent_span_id"] = _b64(sid(parent))
    raw.update(extra)
    return raw


def rest_doc(spans: list[dict], **info) -> dict:
    trace_info = {"trace_id": f"tr-{TRACE_HEX}", "request_time": "2026-11-25T13:02:27.771Z",
                  "execution_duration": "1.648s", "state": "OK", **info}
    return {"trace": {"trace_info": trace_info, "spans": spans}}


def links(trace) -> dict[str, str | None]:
    """span id -> parent span id, as the tree links say (None for top-level spans)."""
    return {s.span_id: (trace.spans[trace.parent[i]].span_id if trace.parent[i] != -1 else None)
            for i, s in enumerate(trace.spans)}


# -- values and ids ------------------------------------------------------------------------------

def test_any_values_decode_to_python_values_recursively():
    value = {"kvlist_value": {"values": [
        {"key": "s", "value": {"string_value": "x"}},
        {"key": "i", "value": {"int_value": "9007199254740993"}},  # int64 as a JSON string
        {"key": "d", "value": {"double_value": 0.25}},
        {"key": "b", "value": {"bool_value": False}},
        {"key": "a", "value": {"array_value": {"values": [{"int_value": 1}, {}]}}},
        {"key": "y", "value": {"bytes_value": base64.b64encode(b"\x00\xff").decode()}},
    ]}}
    assert decode_any_value(value) == {"s": "x", "i": 9007199254740993, "d": 0.25, "b": False,
                                       "a": [1, None], "y": b"\x00\xff"}


def test_base64_ids_become_hex_and_times_stay_exact_integers():
    trace = parse_trace(json.dumps(rest_doc([span(1), span(2, parent=1, start=3)])))
    assert [(s.span_id, s.parent_id) for s in trace.spans] == [(sid(1), None), (sid(2), sid(1))]
    assert trace.spans[0].start_ns == T0
    assert trace.spans[1].duration_ns == 7


def test_hex_ids_of_older_sdks_pass_through():
    spans = [span(1, span_id=sid(1).upper()), span(2, span_id=sid(2), parent_span_id=sid(1))]
    trace = parse_trace(rest_doc(spans))
    assert links(trace) == {sid(1): None, sid(2): sid(1)}


# -- production data ---------------------------------------------------------------------------

def test_span_with_only_an_id_gets_defaults():
    trace = parse_trace(rest_doc([{"span_id": _b64(sid(1))}]))
    (s,) = trace.spans
    assert (s.name, s.span_type, s.status, s.parent_id) == ("", "UNKNOWN", "UNSET", None)
    assert s.start_ns == 1795611747771 * 1_000_000  # the trace's request time
    assert s.end_ns is None and dict(s.attributes) == {}


def test_trace_info_with_missing_fields_still_parses():
    trace = parse_trace({"trace": {"trace_info": {}, "spans": [span(1)]}})
    assert trace.info.state == "STATE_UNSPECIFIED" and trace.info.duration_ms is None
    assert len(trace.spans) == 1


def test_span_without_an_id_is_corrupt():
    with pytest.raises(CorruptTrace, match="no span_id"):
        parse_trace(rest_doc([{"name": "x"}]))


def test_unknown_span_type_is_kept_verbatim():
    raw = span(1, attributes=[{"key": "mlflow.spanType",
                               "value": {"string_value": "QUANTUM_ORACLE"}}])
    assert parse_trace(rest_doc([raw])).spans[0].span_type == "QUANTUM_ORACLE"


def test_orphans_are_kept_flagged_at_the_top_level():
    trace = parse_trace(rest_doc([span(1), span(2, parent=1, start=1), span(3, parent=99)]))
    assert links(trace) == {sid(1): None, sid(2): sid(1), sid(3): None}
    assert [s.orphan for s in trace.spans] == [False, False, True]
    assert trace.spans[2].parent_id == sid(99)  # the missing parent is still known


def test_duplicate_span_ids_keep_the_finished_copy_once():
    running = span(2, parent=1, start=1, end=None, name="running copy")
    finished = span(2, parent=1, start=1, end=5, name="finished copy")
    for order in ([running, finished], [finished, running]):
        trace = parse_trace(rest_doc([span(1), *order]))
        assert [s.name for s in trace.spans] == ["s1", "finished copy"]


def test_parent_cycles_are_cut_and_every_span_stays():
    # 1 -> 2 -> 3 -> 1, plus a self-parented span and a child hanging off the cycle.
    spans = [span(1, parent=3, start=0), span(2, parent=1, start=1), span(3, parent=2, start=2),
             span(4, parent=4, start=3), span(5, parent=2, start=4)]
    trace = parse_trace(rest_doc(spans))
    assert sorted(s.span_id for s in trace.spans) == [sid(i) for i in range(1, 6)]
    assert links(trace) == {sid(1): None, sid(2): sid(1), sid(3): sid(2), sid(4): None,
                            sid(5): sid(2)}
    assert {s.span_id for s in trace.spans if s.orphan} == {sid(1), sid(4)}


def test_in_progress_spans_have_no_end():
    spans = [span(1, end=None), span(2, parent=1, end_time_unix_nano=0)]
    trace = parse_trace(rest_doc(spans, state="IN_PROGRESS"))
    assert [s.end_ns for s in trace.spans] == [None, None]
    assert [s.duration_ns for s in trace.spans] == [None, None]
    assert trace.in_progress


def test_children_starting_before_their_parent_stay_its_children_in_start_order():
    spans = [span(1, start=100), span(2, parent=1, start=300), span(3, parent=1, start=50),
             span(4, parent=1, start=-20)]
    trace = parse_trace(rest_doc(spans))
    assert [s.span_id for s in trace.spans] == [sid(1), sid(4), sid(3), sid(2)]
    assert list(trace.depth) == [0, 1, 1, 1]


def test_huge_attribute_values_are_decoded_only_when_read():
    big = "x" * 20_000_000
    raw = span(1, attributes=[{"key": "mlflow.spanInputs", "value": {"string_value": big}}])
    trace = parse_trace(json.dumps(rest_doc([raw])))
    assert trace.spans[0].inputs == big


def test_an_attribute_that_cannot_be_decoded_is_corrupt_when_read():
    raw = span(1, attributes=[{"key": "blob", "value": {"bytes_value": "not base64!"}}])
    trace = parse_trace(rest_doc([raw]))  # opening the trace still works
    with pytest.raises(CorruptTrace, match="'blob' cannot be decoded"):
        trace.spans[0].attributes["blob"]


@pytest.mark.parametrize(("payload", "message"), [
    (b'{"trace": {"trace_info": {}, "spans": [{"span_id": "AA', "truncated or corrupt"),
    (b"<html>502 Bad Gateway</html>", "not valid JSON"),
    (b'{"name": "\xff"}', "not UTF-8"),
    (b"[1, 2]", "Expected a JSON object, found list"),
    (b'{"hello": 1}', "not a trace"),
    (b'{"trace": {"trace_info": {}, "spans": {"a": 1}}}', "spans are not a list"),
    (b'{"trace": {"trace_info": {}, "spans": [{"span_id": "AAAAAAAAAAE=", "attributes": 5}]}}',
     "attributes should be a list or an object"),
    (b"[" * 100_000, "nested too deeply|not valid JSON"),
])
def test_corrupt_json_is_a_corrupt_trace_with_a_clear_message(payload, message):
    with pytest.raises(CorruptTrace, match=message):
        parse_trace(payload)


# -- trace files ---------------------------------------------------------------------------------

def test_artifact_format_attributes_are_json_strings():
    doc = {"info": {"trace_id": f"tr-{TRACE_HEX}", "state": "OK"}, "data": {"spans": [
        {"span_id": _b64(sid(1)), "parent_span_id": None, "name": "root",
         "start_time_unix_nano": T0, "end_time_unix_nano": T0 + 5,
         "status": {"code": "STATUS_CODE_ERROR", "message": "boom"},
         "attributes": {"mlflow.spanType": '"LLM"', "mlflow.spanInputs": '{"q": 1}',
                        "plain": "not json"},
         "events": [{"name": "exception", "time_unix_nano": T0 + 1,
                     "attributes": {"exception.message": "boom"}}]}]}}
    (s,) = parse_trace(doc).spans
    assert (s.span_type, s.status, s.status_message, s.inputs) == ("LLM", "ERROR", "boom",
                                                                   {"q": 1})
    assert s.attributes["plain"] == "not json"
    assert s.exceptions[0].attributes == {"exception.message": "boom"}


def test_missing_trace_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="Cannot read the trace file"):
        load_trace_file(tmp_path / "nope.json")


def test_corrupt_trace_file_names_the_file(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text('{"info": {')
    with pytest.raises(CorruptTrace, match=r"cut\.json"):
        load_trace_file(path)


@pytest.fixture(scope="module")
def seeded_trace_id(mlflow_server, sdk):
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    # An error trace: exception events, error status, no outputs on the failing span.
    (found,) = sdk.search_traces(locations=[exp_id], filter_string="status = 'ERROR'",
                                 max_results=1, include_spans=False)
    return found.info.trace_id


def _summary(trace) -> list[tuple]:
    return [(s.span_id, s.parent_id, s.name, s.span_type, s.start_ns, s.end_ns, s.status,
             s.inputs, s.outputs, [(e.name, dict(e.attributes)) for e in s.events])
            for s in trace.spans]


def test_rest_get_response_file_and_to_json_file_give_the_same_trace(
        mlflow_server, sdk, seeded_trace_id, tmp_path):
    rest = tmp_path / "rest.json"
    rest.write_bytes(httpx.get(f"{mlflow_server.url}/api/3.0/mlflow/traces/get",
                               params={"trace_id": seeded_trace_id}).content)
    theirs = sdk.get_trace(seeded_trace_id)
    to_json = tmp_path / "to_json.json"
    to_json.write_text(theirs.to_json())

    from_rest, from_sdk = load_trace_file(rest), load_trace_file(to_json)
    assert _summary(from_rest) == _summary(from_sdk)
    assert from_rest.info.trace_id == from_sdk.info.trace_id == seeded_trace_id
    assert from_sdk.info.session == theirs.info.tags["mlflow.trace.session"]
    assert {s.span_id: s.parent_id for s in from_sdk.spans} == \
        {s.span_id: s.parent_id for s in theirs.data.spans}
    assert any(s.status == "ERROR" and s.exceptions for s in from_sdk.spans)


def test_dump_trace_is_read_by_mlflow_and_by_us(mlflow_server, sdk, seeded_trace_id):
    rest = httpx.get(f"{mlflow_server.url}/api/3.0/mlflow/traces/get",
                     params={"trace_id": seeded_trace_id}).content
    ours = parse_trace(rest)
    dumped = dump_trace(ours)
    assert _summary(parse_trace(dumped)) == _summary(ours)
    theirs = MlflowTrace.from_json(dumped.decode())
    assert [(s.span_id, s.parent_id, s.name, s.inputs) for s in theirs.data.spans] == \
        [(s.span_id, s.parent_id, s.name, s.inputs) for s in ours.spans]


def test_the_cache_write_leaves_the_collector_two_objects_a_span_not_its_nested_values(
        client, sdk, tmp_path):
    big = experiment_id(sdk, BIG_EXPERIMENT)
    (found,) = sdk.search_traces(locations=[big], include_spans=False,
                                 filter_string="attributes.client_request_id = 'big-1000'")
    raw = client.get_trace_raw(found.info.trace_id)
    gc.collect()
    before = len(gc.get_objects())
    trace = parse_trace(raw)
    TraceCache(tmp_path).put(client.host, found.info.trace_id, trace)
    gc.collect()
    # A Span and its attribute map: the collector's passes walk these, and for a big trace
    # each pass holds the GIL (the GUI) for as long as there are objects.
    assert len(gc.get_objects()) - before < 3 * len(trace.spans)
    theirs = {s.span_id: (s.inputs, s.outputs)
              for s in sdk.get_trace(found.info.trace_id).data.spans}
    assert {s.span_id: (s.inputs, s.outputs) for s in trace.spans} == theirs


def _tracked_in_map(attributes) -> list:
    """The containers an attribute map holds that the collector tracks (not its decoder)."""
    return [r for r in gc.get_referents(attributes) if gc.is_tracked(r) and not callable(r)]


def test_a_trace_of_many_spans_keeps_each_attribute_map_as_text_from_the_parse_on():
    spans = [{"span_id": f"{i:016x}", "parent_span_id": None if i == 0 else f"{0:016x}",
              "name": f"s{i}", "start_time_unix_nano": i, "end_time_unix_nano": i + 1,
              "attributes": {"mlflow.spanInputs": json.dumps({"q": [i, {"k": "v"}]})}}
             for i in range(STOW_SPANS + 10)]
    doc = json.dumps({"info": {"trace_id": "tr-1", "state": "OK"}, "data": {"spans": spans}})

    trace = parse_trace(doc.encode())

    assert [s for s in trace.spans if _tracked_in_map(s.attributes)] == []
    assert trace.spans[0].inputs == {"q": [0, {"k": "v"}]}  # decoded again when used
    assert trace.spans[-1].inputs == {"q": [STOW_SPANS + 9, {"k": "v"}]}
    discard([TreeLayout(trace)])  # what the parse froze goes back to the collector
