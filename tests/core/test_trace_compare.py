"""core.trace_compare on real seeded traces: the merged tree's parents are the SDK's, "only
differences" keeps exactly the changed spans and those above them, stepping visits the
differences in tree order and wraps, the bars sit at the SDK's span times, the summary has the
SDK's ids, names and duration delta, loading both traces can be cancelled, and a trace compared
once is opened from the cache."""

from __future__ import annotations

from dataclasses import replace

import pytest

from traceviewer.core import trace_compare, trace_loading
from traceviewer.core.cache import TraceCache
from traceviewer.core.cancel import CancelToken
from traceviewer.core.errors import Cancelled
from traceviewer.core.model import Span, Trace
from traceviewer.core.trace_diff import Status, diff


def edited(a: Trace) -> tuple[Trace, dict[str, Status]]:
    """B: trace `a` with its last leaf removed, its first leaf failing, a span added under the
    root, and the inputs of the root's first child changed; and the span id of each change
    with its status."""
    leaves = [i for i in range(len(a.spans)) if a.first_child[i] == -1 and a.parent[i] >= 0]
    removed, failing = leaves[-1], leaves[0]
    assert removed != failing
    spans: list[Span] = [replace(s, status="ERROR") if i == failing else s
                         for i, s in enumerate(a.spans) if i != removed]
    root = a.spans[0]
    added = Span("ab" * 8, root.span_id, "retry_after_failure", "TOOL", root.end_ns - 10,
                 root.end_ns - 5, "OK")
    return Trace.build(a.info, [*spans, added]), {
        a.spans[removed].span_id: Status.ONLY_A, a.spans[failing].span_id: Status.CHANGED,
        added.span_id: Status.ONLY_B}


def span_id(result, pair) -> str:
    span = result.span(pair, "a") or result.span(pair, "b")
    return span.span_id


@pytest.fixture
def chat(client, prod_infos) -> Trace:
    trace = client.get_trace(prod_infos[0].trace_id)
    assert len(trace.spans) >= 3
    return trace


def test_merged_tree_of_a_trace_against_itself_has_the_sdks_parents(client, sdk, prod_infos):
    trace_id = next(i.trace_id for i in prod_infos
                    if len(sdk.get_trace(i.trace_id).data.spans) >= 5)
    a = client.get_trace(trace_id)
    result = diff(a, a)
    tree = trace_compare.merged_tree(result)
    sdk_parent = {s.span_id: s.parent_id for s in sdk.get_trace(trace_id).data.spans}
    ours = {}
    for i, pair in enumerate(result.pairs):
        p = tree.parent[i]
        ours[span_id(result, pair)] = span_id(result, result.pairs[p]) if p >= 0 else None
        siblings = tree.children(p)
        assert siblings[tree.row[i]] == i
    assert ours == sdk_parent
    assert tree.differences == []
    assert tree.step(-1, True) == -1


def test_only_differences_keeps_the_changed_spans_and_those_above_them(chat, sdk):
    b, changes = edited(chat)
    result = diff(chat, b)
    tree = trace_compare.merged_tree(result, only_differences=True)
    shown = set()
    stack = list(tree.roots)
    while stack:
        i = stack.pop()
        shown.add(span_id(result, result.pairs[i]))
        stack.extend(tree.kids[i])
    parents = {s.span_id: s.parent_id for s in sdk.get_trace(chat.info.trace_id).data.spans}
    parents[next(k for k, v in changes.items() if v is Status.ONLY_B)] = chat.spans[0].span_id
    expected = set()
    for changed in changes:
        node: str | None = changed
        while node is not None:
            expected.add(node)
            node = parents[node]
    assert shown == expected
    assert {span_id(result, result.pairs[i]): result.pairs[i].status
            for i in tree.differences} == changes


def test_stepping_visits_each_difference_in_tree_order_and_wraps(chat):
    b, changes = edited(chat)
    result = diff(chat, b)
    tree = trace_compare.merged_tree(result)
    forward, at = [], -1
    for _ in range(len(changes) + 1):
        at = tree.step(at, True)
        forward.append(at)
    assert {span_id(result, result.pairs[i]) for i in forward[:3]} == set(changes)
    assert forward[:3] == sorted(forward[:3]) and forward[3] == forward[0]
    assert tree.step(forward[0], False) == forward[2]
    assert tree.step(-1, False) == forward[2]
    assert tree.step(forward[1], False) == forward[0]


def test_bars_sit_at_the_sdks_span_times(client, sdk, prod_infos):
    trace_id = prod_infos[0].trace_id
    a = client.get_trace(trace_id)
    result = diff(a, a)
    bars = trace_compare.bars(result)
    spans = {s.span_id: s for s in sdk.get_trace(trace_id).data.spans}
    first = min(s.start_time_ns for s in spans.values())
    scale = max(s.end_time_ns for s in spans.values()) - first
    for i, pair in enumerate(result.pairs):
        span = spans[span_id(result, pair)]
        assert bars.a_start[i] == pytest.approx((span.start_time_ns - first) / scale)
        assert bars.a_end[i] == pytest.approx((span.end_time_ns - first) / scale)
        assert (bars.b_start[i], bars.b_end[i]) == (bars.a_start[i], bars.a_end[i])


def test_bars_of_a_span_only_in_one_trace_are_missing_on_the_other_side(chat):
    b, changes = edited(chat)
    result = diff(chat, b)
    bars = trace_compare.bars(result)
    for i, pair in enumerate(result.pairs):
        status = changes.get(span_id(result, pair))
        assert (bars.a_start[i] != bars.a_start[i]) == (status is Status.ONLY_B)
        assert (bars.b_start[i] != bars.b_start[i]) == (status is Status.ONLY_A)


def test_summary_has_the_sdks_ids_names_and_duration_delta(client, sdk, prod_infos):
    a_id, b_id = prod_infos[1].trace_id, prod_infos[0].trace_id
    result = diff(client.get_trace(a_id), client.get_trace(b_id))
    summary = trace_compare.summary(result)
    a, b = sdk.get_trace(a_id).info, sdk.get_trace(b_id).info
    assert (summary.a_id, summary.b_id) == (a_id, b_id)
    assert (summary.a_name, summary.b_name) == (a.tags["mlflow.traceName"],
                                                b.tags["mlflow.traceName"])
    assert summary.duration_delta_ms == b.execution_duration - a.execution_duration
    tokens = [(i.token_usage or {}).get("total_tokens") for i in (a, b)]
    assert summary.token_delta == (None if tokens == [None, None]
                                   else (tokens[1] or 0) - (tokens[0] or 0))
    assert sum(summary.counts.values()) == len(result.pairs)


def test_compare_reads_both_traces_and_a_cancelled_one_stops(client, sdk, prod_infos, tmp_path):
    a_id, b_id = prod_infos[1].trace_id, prod_infos[0].trace_id
    cache = TraceCache(tmp_path / "cache")
    compared = trace_compare.compare(client, a_id, b_id, cache, CancelToken())
    ids_a = {s.span_id for s in sdk.get_trace(a_id).data.spans}
    ids_b = {s.span_id for s in sdk.get_trace(b_id).data.spans}
    result = compared.diff
    assert {result.a.spans[p.a].span_id for p in result.pairs if p.a >= 0} == ids_a
    assert {result.b.spans[p.b].span_id for p in result.pairs if p.b >= 0} == ids_b
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        trace_compare.compare(client, a_id, b_id, cache, token)



def test_a_trace_compared_once_is_opened_from_the_cache(client, sdk, prod_infos, tmp_path,
                                                        monkeypatch):
    a_id, b_id = prod_infos[1].trace_id, prod_infos[0].trace_id
    cache = TraceCache(tmp_path / "cache")
    trace_compare.compare(client, a_id, b_id, cache, CancelToken())
    downloads = []
    monkeypatch.setattr(client, "get_trace_raw", lambda *a, **k: downloads.append(a))
    for trace_id in (a_id, b_id):
        opened = trace_loading.from_server(client, trace_id, cache, True, CancelToken())
        assert opened.cached_at is not None
        assert ({s.span_id for s in opened.layout.trace.spans}
                == {s.span_id for s in sdk.get_trace(trace_id).data.spans})
    assert downloads == []
