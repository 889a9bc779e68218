"""The collector rests only while a trace is parsed, and nothing made meanwhile, in any thread,
escapes it: a reference cycle made during a load is collected afterwards (after a big trace,
once that trace is let go)."""

from __future__ import annotations

import gc
import json
import threading
import weakref

from traceviewer.core.bigjson import BIG_TRACE_SPANS, gc_paused
from traceviewer.core.cancel import CancelToken
from traceviewer.core.otlp import parse_trace
from traceviewer.core.trace_layout import TreeLayout
from traceviewer.core.trace_loading import discard


class Node:
    """A reference cycle once it points at itself."""


def _cycle_in_another_thread() -> weakref.ref:
    made: list[weakref.ref] = []

    def make() -> None:
        node = Node()
        node.me = node
        made.append(weakref.ref(node))

    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
    return made[0]


class _MakesACycleMidParse(CancelToken):
    """Checked between span batches: makes a cycle in another thread in the middle of a load,
    then checks that the collector is paused there."""

    ref: weakref.ref | None = None
    paused_meanwhile: bool | None = None

    def check(self) -> None:
        if self.ref is None:
            self.ref = _cycle_in_another_thread()
            self.paused_meanwhile = not gc.isenabled()
        super().check()


def _trace_json(num_spans: int) -> bytes:
    spans = [{"span_id": f"{i:016x}", "parent_span_id": None if i == 0 else f"{0:016x}",
              "name": f"s{i}", "start_time_unix_nano": i, "end_time_unix_nano": i + 1,
              "attributes": {"mlflow.spanInputs": json.dumps("x" * 200)}}
             for i in range(num_spans)]
    return json.dumps({"info": {"trace_id": "tr-1", "state": "OK"},
                       "data": {"spans": spans}}).encode()


def test_a_cycle_made_in_another_thread_during_a_load_is_collected_afterwards():
    assert gc.isenabled()
    token = _MakesACycleMidParse()
    trace = parse_trace(_trace_json(BIG_TRACE_SPANS - 1), token)  # not frozen: see below
    assert len(trace.spans) == BIG_TRACE_SPANS - 1
    assert token.ref is not None and token.paused_meanwhile  # it was made during the pause
    gc.collect()
    assert token.ref() is None  # a collection freed it: nothing was frozen
    assert gc.isenabled()


def test_nested_and_concurrent_pauses_turn_the_collector_on_when_the_last_ends():
    entered, leave = threading.Event(), threading.Event()

    def other_parse() -> None:
        with gc_paused():
            entered.set()
            leave.wait()

    thread = threading.Thread(target=other_parse)
    with gc_paused():
        thread.start()
        entered.wait()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert not gc.isenabled()  # the other thread still parses
    leave.set()
    thread.join()
    assert gc.isenabled()
    ref = _cycle_in_another_thread()
    gc.collect()
    assert ref() is None


def test_a_big_trace_stays_out_of_collections_until_it_is_let_go_then_its_cycles_are_collected():
    token = _MakesACycleMidParse()
    frozen_before = gc.get_freeze_count()
    trace = parse_trace(_trace_json(BIG_TRACE_SPANS), token)
    assert len(trace.spans) == BIG_TRACE_SPANS
    # The span objects went to the permanent generation: no collection walks them, and the
    # young generation they were made in is empty again.
    assert gc.get_freeze_count() - frozen_before >= 2 * BIG_TRACE_SPANS
    assert gc.get_count()[0] < 1000
    gc.collect()
    assert token.ref is not None and token.ref() is not None  # frozen with the trace

    discard([TreeLayout(trace)])
    del trace

    assert gc.get_freeze_count() == 0
    gc.collect()
    assert token.ref() is None  # handed back to the collector, and collected
