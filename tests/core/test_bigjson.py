"""Span-by-span decoding of trace documents: the same result as json.loads for every shape,
keys named "spans" elsewhere in the document, bad input, and cancelling."""

from __future__ import annotations

import json

import pytest

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
