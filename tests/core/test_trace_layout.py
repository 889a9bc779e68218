"""core.trace_layout on the seeded 1,000-span trace, against the SDK's reading of the same
trace: tree links and child order, times, the critical path, in-trace search, the initial
expansion's budget; and the timeline's round tick steps."""

from __future__ import annotations

import json

import pytest

from traceviewer.core.cancel import Cancelled, CancelToken
from traceviewer.core.trace_layout import TreeLayout, initial_expansion, tick_label, tick_step

BIG = "big-traces"


@pytest.fixture(scope="module")
def big1k(mlflow_server, sdk):
    """(our layout of the 1k-span trace, the SDK's spans of it)."""
    from traceviewer.core.client import RestClient

    exp = sdk.get_experiment_by_name(BIG).experiment_id
    found = sdk.search_traces(locations=[exp], include_spans=False,
                              filter_string="attributes.client_request_id = 'big-1000'")
    trace_id = found[0].info.trace_id
    with RestClient(mlflow_server.url) as client:
        layout = TreeLayout(client.get_trace(trace_id))
    return layout, sdk.get_trace(trace_id).data.spans


def ids(layout, nodes):
    return [layout.trace.spans[n].span_id for n in nodes]


def test_children_and_parents_equal_the_sdks_in_start_order(big1k):
    layout, spans = big1k
    by_id = {s.span_id: s for s in spans}
    for node, span in enumerate(layout.trace.spans):
        parent = layout.parent[node]
        assert (None if parent < 0 else layout.trace.spans[parent].span_id) == \
            by_id[span.span_id].parent_id
        kids = sorted((s for s in spans if s.parent_id == span.span_id),
                      key=lambda s: s.start_time_ns)
        assert ids(layout, layout.children(node)) == [s.span_id for s in kids]
    assert ids(layout, layout.top_nodes()) == [s.span_id for s in spans if s.parent_id is None]
    assert not layout.has_orphans


def test_times_are_milliseconds_since_the_first_span_started(big1k):
    layout, spans = big1k
    t0 = min(s.start_time_ns for s in spans)
    by_id = {s.span_id: s for s in spans}
    for node, span in enumerate(layout.trace.spans):
        theirs = by_id[span.span_id]
        assert layout.x0[node] == pytest.approx((theirs.start_time_ns - t0) / 1e6, abs=1e-6)
        assert layout.x1[node] == pytest.approx((theirs.end_time_ns - t0) / 1e6, abs=1e-6)
    assert layout.total_ms == pytest.approx(max(s.end_time_ns - t0 for s in spans) / 1e6)


def test_critical_path_follows_the_child_that_ends_last(big1k):
    layout, spans = big1k
    node = next(s for s in spans if s.parent_id is None)
    wanted = []
    while node is not None:
        wanted.append(node.span_id)
        kids = [s for s in spans if s.parent_id == node.span_id]
        node = max(kids, key=lambda s: s.end_time_ns) if kids else None
    marked = {layout.trace.spans[i].span_id for i in range(layout.n) if layout.critical[i]}
    assert marked == set(wanted)


def test_display_order_is_the_fully_expanded_tree_top_to_bottom(big1k):
    layout, spans = big1k
    kids: dict = {}
    for s in sorted(spans, key=lambda s: s.start_time_ns):
        kids.setdefault(s.parent_id, []).append(s.span_id)
    order, stack = [], list(reversed(kids[None]))
    while stack:
        span_id = stack.pop()
        order.append(span_id)
        stack.extend(reversed(kids.get(span_id, [])))
    assert ids(layout, layout.display_order.tolist()) == order


def test_search_finds_the_spans_whose_name_or_attributes_hold_the_text(big1k):
    layout, spans = big1k
    tool = next(s for s in spans if s.span_type == "TOOL")
    needle = tool.name
    wanted = {s.span_id for s in spans
              if needle.casefold() in (s.name + json.dumps(s.attributes, default=str)).casefold()}
    found = ids(layout, layout.search(needle.upper()))
    assert set(found) == wanted
    assert found == [i for i in ids(layout, layout.display_order.tolist()) if i in wanted]
    assert layout.search("no span holds this text 7f3a") == []


def test_search_stops_when_cancelled(big1k):
    layout, _ = big1k
    fresh = TreeLayout(layout.trace)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        fresh.search("x", token)


def test_initial_expansion_opens_whole_levels_within_the_budget(big1k):
    layout, spans = big1k
    roots = [s.span_id for s in spans if s.parent_id is None]
    children = {}
    for s in spans:
        children.setdefault(s.parent_id, []).append(s.span_id)
    level, shown = roots, len(roots)
    below = [k for p in level for k in children.get(p, [])]
    # The top level is always opened, however many rows it shows.
    assert set(ids(layout, initial_expansion(layout, 1))) == {p for p in level if p in children}
    budget = shown + len(below) + 10
    opened = set(ids(layout, initial_expansion(layout, budget)))
    assert {p for p in level if p in children} <= opened
    next_level = [k for p in below for k in children.get(p, [])]
    if next_level and shown + len(below) + len(next_level) > budget:
        assert not opened & set(below)


@pytest.mark.parametrize(("span_ms", "ticks", "step"), [
    (1e6, 8, 5 * 60_000), (2730, 8, 500), (0.04, 8, 0.005), (45_000, 9, 5_000),
    (7.2e6, 8, 20 * 60_000), (3.6e7, 8, 2 * 3.6e6), (65.4, 9, 10)])
def test_tick_steps_are_one_two_or_five_times_a_power_of_ten_of_a_unit(span_ms, ticks, step):
    assert tick_step(span_ms, ticks)[0] == pytest.approx(step)


@pytest.mark.parametrize(("value", "step", "label"), [
    (0, 500, "0"), (500, 500, "500 ms"), (1500, 500, "1.5 s"), (20 * 60_000, 60_000, "20 min"),
    (3.6e6, 60_000 * 20, "1 h"), (0.005, 0.005, "5 µs"), (1050, 50, "1050 ms")])
def test_tick_labels_name_one_unit(value, step, label):
    assert tick_label(value, step) == label
