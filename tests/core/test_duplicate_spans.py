"""A span exported twice is kept once, and the trace says how many duplicates were merged: in
the model (for the GUI) and in `trace show`'s summary line."""

from __future__ import annotations

import json

from traceviewer.cli.trace import _tree_lines
from traceviewer.core.otlp import parse_trace


def _span(span_id: str, parent: str | None, end: int | None) -> dict:
    return {"span_id": span_id, "parent_span_id": parent, "name": f"span {span_id}",
            "start_time_unix_nano": 1, "end_time_unix_nano": end, "attributes": {}}


def _doc(spans: list[dict]) -> bytes:
    return json.dumps({"info": {"trace_id": "tr-1", "state": "OK"},
                       "data": {"spans": spans}}).encode()


ROOT, CHILD = "00000000000000a1", "00000000000000b2"


def test_duplicate_span_ids_are_counted_and_the_finished_copy_is_kept():
    trace = parse_trace(_doc([_span(ROOT, None, 9), _span(CHILD, ROOT, None),
                              _span(CHILD, ROOT, 5), _span(CHILD, ROOT, None)]))
    assert [s.span_id for s in trace.spans] == [ROOT, CHILD]
    assert trace.spans[1].end_ns == 5
    assert trace.duplicates == 2


def test_a_trace_without_duplicates_reports_none():
    trace = parse_trace(_doc([_span(ROOT, None, 9), _span(CHILD, ROOT, 5)]))
    assert trace.duplicates == 0
    assert "duplicate" not in _tree_lines(trace)[0]


def test_trace_show_summary_says_how_many_duplicates_were_merged():
    trace = parse_trace(_doc([_span(ROOT, None, 9), _span(CHILD, ROOT, 5),
                              _span(CHILD, ROOT, 5)]))
    summary = _tree_lines(trace)[0]
    assert "2 spans" in summary and "1 duplicate span id merged" in summary
