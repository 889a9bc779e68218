"""Span-by-span decoding of trace documents: the same result as json.loads for every shape,
keys named "spans" elsewhere in the document, bad input, and cancelling."""

from __future__ import annotations

import json
import time
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traceviewer.core import bigjson
from traceviewer.core.bigjson import loads_trace_doc
from traceviewer.core.cancel import CancelToken
from traceviewer.core.errors import Cancelled, CorruptTrace

SPANS = [{"span_id": f"s{i}", "name": "é \\\" ]", "attributes": [{"key": "k", "value": {
    "string_value": '"spans": [1, 2]'}}]} for i in range(2500)]
INFO = {"trace_id": "tr-1", "state": "OK"}


@pytest.mark.parametrize("doc", [
    {"trace": {"trace_info": INFO, "spans": SPANS}},  # REST traces/get
    {"info": INFO, "data": {"spans": SPANS}},  # Trace.to_json()
    {"spans": SPANS},  # traces.json artifact
    {"trace": {"trace_info": INFO, "spans": []}},
])
@pytest.mark.parametrize("indent", [None, 2])
def test_decodes_like_json_loads(doc, indent):
    raw = json.dumps(doc, indent=indent, ensure_ascii=False).encode()
    assert loads_trace_doc(raw) == doc


def test_objects_nested_in_spans_that_look_like_span_starts_do_not_split_a_batch():
    # Nested objects beginning with the spans' first key: the batch cuts can land inside a span.
    spans = [{"span_id": f"s{i}", "links": [{"span_id": "a"}, {"span_id": "b}, {"}]}
             for i in range(20_000)]
    doc = {"spans": spans}
    assert loads_trace_doc(json.dumps(doc)) == doc


def test_a_spans_key_inside_the_trace_info_is_not_taken_for_the_span_list():
    info = dict(INFO, assessments=[{"feedback": {"value": {"spans": [1, 2, 3]}}}])
    doc = {"trace": {"trace_info": info, "spans": SPANS[:3]}}
    assert loads_trace_doc(json.dumps(doc)) == doc


def test_truncated_document_is_corrupt_trace():
    raw = json.dumps({"trace": {"trace_info": INFO, "spans": SPANS}}).encode()
    with pytest.raises(CorruptTrace, match="not valid JSON"):
        loads_trace_doc(raw[: len(raw) // 2])


def test_bytes_that_are_not_utf8_are_corrupt_trace():
    with pytest.raises(CorruptTrace, match="UTF-8"):
        loads_trace_doc(b'{"spans": ["\xff"]}')


def test_cancelled_token_stops_decoding():
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        loads_trace_doc(json.dumps({"spans": SPANS}), token)


def test_span_lists_whose_elements_are_arrays_decode_like_json_loads():
    # The cache's rows: strings holding "], [" and nested arrays make some batch cuts false.
    rows = [[f"s{i}", None, "], [", i * 10**18, {"k": "v"}, [["event", i, {"a": [1, [2]]}]]]
            for i in range(20_000)]
    doc = {"info": INFO, "spans": rows}
    for indent in (None, 1):
        assert loads_trace_doc(json.dumps(doc, indent=indent)) == doc


# -- every shape decodes like json.loads, in time linear in the input --------------------------

SPAN_KEYS = ("trace_id", "span_id", "parent_span_id", "name", "start_time_unix_nano",
             "end_time_unix_nano", "attributes", "status")
SEPARATORS = [(",", ":"), (", ", ": "), (" ,\n", " :\t"), ("\r\n,", ":\r\n ")]


def _span(i: int, order: tuple[str, ...] = SPAN_KEYS) -> dict:
    values = {"trace_id": "w1iJPjQE8wL9EvNwOv2GlQ==", "span_id": f"s{i:08d}",
              "parent_span_id": "p} , {\"span_id\": x", "name": f"step {i} }}, {{",
              "start_time_unix_nano": 1795611751232074062 + i,
              "end_time_unix_nano": 1795611751233417421 + i,
              "attributes": [{"key": "mlflow.spanInputs", "value": {"string_value": "x" * 300}}],
              "status": {"code": "STATUS_CODE_OK"}}
    return {key: values[key] for key in order}


@settings(max_examples=60, deadline=None)
@given(orders=st.lists(st.permutations(SPAN_KEYS), min_size=1, max_size=40),
       indent=st.sampled_from([None, 0, 1, 3]), separators=st.sampled_from(SEPARATORS),
       wrap=st.sampled_from(["rest", "to_json", "artifact"]))
def test_any_key_order_and_whitespace_decodes_like_json_loads(orders, indent, separators, wrap):
    spans = [_span(i, tuple(order)) for i, order in enumerate(orders)]
    doc = {"rest": {"trace": {"trace_info": INFO, "spans": spans}},
           "to_json": {"info": INFO, "data": {"spans": spans}},
           "artifact": {"spans": spans}}[wrap]
    raw = json.dumps(doc, indent=indent, separators=separators)
    # Tiny batches and chunks, so that a few spans cross many batch and chunk boundaries.
    with patch.object(bigjson, "_BATCH_CHARS", 200), \
            patch.object(bigjson, "_MAX_BATCH_CHARS", 800, create=True), \
            patch.object(bigjson, "_CHUNK", 512):
        assert loads_trace_doc(raw.encode()) == json.loads(raw)


def _cpu_seconds(raw: bytes) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        loads_trace_doc(raw)
        best = min(best, time.process_time() - start)
    return best


def test_a_first_span_with_other_key_order_parses_as_fast_as_the_usual_shape():
    # 10,001 spans whose first one lists its keys in another order: the batch cut pattern
    # taken from it never matches, which used to rescan the window for every batch (6.8 s).
    spans = [_span(i) for i in range(10_000)]
    usual = json.dumps({"trace": {"trace_info": INFO, "spans": [_span(-1), *spans]}}).encode()
    odd = json.dumps({"trace": {"trace_info": INFO, "spans": [
        _span(-1, tuple(reversed(SPAN_KEYS))), *spans]}}).encode()
    assert loads_trace_doc(odd) == json.loads(odd)
    assert _cpu_seconds(odd) < 2.0 * _cpu_seconds(usual) + 0.05


def test_one_huge_span_parses_in_time_linear_in_its_size():
    # A span bigger than the window is decoded after growing the window by doubling, not one
    # chunk (and one rescan from its start) at a time.
    def doc(size: int) -> bytes:
        big = {"span_id": "big", "attributes": {"in": "y" * size}}
        return json.dumps({"spans": [_span(0), big, _span(1)]}).encode()

    small, large = doc(8 * 1024 * 1024), doc(64 * 1024 * 1024)
    # Linear is 8x; the old quadratic rescans were 64x. Room for allocation noise between.
    assert _cpu_seconds(large) < 8 * 4.0 * _cpu_seconds(small) + 0.05
