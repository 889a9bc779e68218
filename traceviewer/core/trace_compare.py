"""What the compare view shows of two traces aligned by `core.trace_diff`: the merged tree of
aligned pairs (all of them, or only the differences and the pairs above them), the next or
previous difference, the two duration bars of each row on one time scale, and the whole-trace
summary; and the loading of both traces (from the cache or the server) and their diff, run off
the GUI thread."""

from __future__ import annotations

import bisect
import math
from array import array
from dataclasses import dataclass

from traceviewer.core import trace_loading
from traceviewer.core.cache import TraceCache
from traceviewer.core.cancel import CancelToken
from traceviewer.core.client import RestClient
from traceviewer.core.model import Trace
from traceviewer.core.trace_diff import Status, TraceDiff, diff


@dataclass(frozen=True, slots=True)
class MergedTree:
    """Rows of the merged tree over a diff's pairs (pair indices: `TraceDiff.pairs`). `roots`
    and `kids[p]` list the rows shown, in pre-order; `parent[p]` is -1 for a root and `row[p]`
    the place of `p` among its siblings. Pairs not shown have parent -1, row -1, no kids."""

    roots: list[int]
    kids: list[list[int]]
    parent: array[int]
    row: array[int]
    differences: list[int]  # the shown pairs that are not `same`, in pre-order

    def children(self, pair: int) -> list[int]:
        """The rows under `pair` (-1: the roots)."""
        return self.roots if pair < 0 else self.kids[pair]

    def step(self, pair: int, forward: bool) -> int:
        """The next (or previous) difference after (before) `pair` in tree order, wrapping
        around; from -1, the first (or last). -1 when there is no difference."""
        marks = self.differences
        if not marks:
            return -1
        if forward:
            at = bisect.bisect_right(marks, pair)
            return marks[at % len(marks)]
        at = bisect.bisect_left(marks, pair if pair >= 0 else len(self.kids)) - 1
        return marks[at]


def merged_tree(result: TraceDiff, only_differences: bool = False) -> MergedTree:
    """The pairs of `result` as a tree (the parent of a pair is the nearest earlier pair one
    level up). With `only_differences`, a `same` pair is kept only above a difference."""
    pairs = result.pairs
    n = len(pairs)
    parent = array("i", [-1]) * n
    chain: list[int] = []  # the open ancestors of the next pair, by depth
    for i, pair in enumerate(pairs):
        del chain[pair.depth:]
        if chain:
            parent[i] = chain[-1]
        chain.append(i)
    keep = [not only_differences or p.status is not Status.SAME for p in pairs]
    if only_differences:
        for i in range(n - 1, -1, -1):  # children come after their parents
            if keep[i] and parent[i] >= 0:
                keep[parent[i]] = True
    roots: list[int] = []
    kids: list[list[int]] = [[] for _ in range(n)]
    row = array("i", [-1]) * n
    for i in range(n):
        if not keep[i]:
            parent[i] = -1
            continue
        siblings = kids[parent[i]] if parent[i] >= 0 else roots
        row[i] = len(siblings)
        siblings.append(i)
    differences = [i for i in range(n) if keep[i] and pairs[i].status is not Status.SAME]
    return MergedTree(roots, kids, parent, row, differences)


@dataclass(frozen=True, slots=True)
class Bars:
    """Each pair's bar in A and in B, as fractions of one scale (the longer of the two traces,
    each measured from its own first span start): NaN where the pair has no span on that side."""

    a_start: array[float]
    a_end: array[float]
    b_start: array[float]
    b_end: array[float]


def _extent(trace: Trace) -> tuple[int, int]:
    starts = [s.start_ns for s in trace.spans]
    ends = [s.end_ns for s in trace.spans if s.end_ns is not None]
    if not starts:
        return 0, 0
    first = min(starts)
    return first, max([*ends, *starts])


def bars(result: TraceDiff) -> Bars:
    """Where each pair's two duration bars go (see `Bars`). A span still running ends at its
    trace's last known time."""
    (a0, a1), (b0, b1) = _extent(result.a), _extent(result.b)
    scale = max(a1 - a0, b1 - b0, 1)
    n = len(result.pairs)
    out = Bars(*(array("d", [math.nan]) * n for _ in range(4)))
    for side, trace, first, last, starts, ends in (
            ("a", result.a, a0, a1, out.a_start, out.a_end),
            ("b", result.b, b0, b1, out.b_start, out.b_end)):
        spans = trace.spans
        for i, pair in enumerate(result.pairs):
            index = pair.a if side == "a" else pair.b
            if index < 0:
                continue
            span = spans[index]
            end = span.end_ns if span.end_ns is not None else last
            starts[i] = (span.start_ns - first) / scale
            ends[i] = (end - first) / scale
    return out


@dataclass(frozen=True, slots=True)
class Summary:
    """The whole-trace figures of a comparison."""

    a_id: str
    b_id: str
    a_name: str
    b_name: str
    a_duration_ms: float | None
    b_duration_ms: float | None
    duration_delta_ms: float | None
    token_delta: int | None
    counts: dict[Status, int]


def summary(result: TraceDiff) -> Summary:
    """Ids, names, durations and their delta, the token delta and the pairs of each status."""
    a, b = result.a.info, result.b.info
    return Summary(a.trace_id, b.trace_id, a.name or "", b.name or "", a.duration_ms,
                   b.duration_ms, result.duration_delta_ms, result.token_delta,
                   result.counts())


@dataclass(frozen=True, slots=True)
class Compared:
    """Two traces compared, ready to show: the diff, both trees, the bars and the summary."""

    diff: TraceDiff
    tree: MergedTree
    differences_tree: MergedTree
    bars: Bars
    summary: Summary


def prepare(result: TraceDiff) -> Compared:
    """Everything the compare view derives from a diff."""
    return Compared(result, merged_tree(result), merged_tree(result, only_differences=True),
                    bars(result), summary(result))


def load_trace(client: RestClient, trace_id: str, cache: TraceCache,
               token: CancelToken) -> Trace:
    """A trace from the cache when it can be read there, else from the server (and then
    cached, as opening it does, so that opening it next comes from the cache)."""
    loaded = trace_loading.from_server(client, trace_id, cache, True, token)
    trace = loaded.layout.trace
    if loaded.cache_as is not None:
        trace_loading.store(cache, loaded.cache_as, [trace], token)
    return trace


def compare(client: RestClient, a_id: str, b_id: str, cache: TraceCache,
            token: CancelToken) -> Compared:
    """Load traces A and B and compare them; progress messages go through `token`."""
    token.progress(f"Loading trace A ({a_id})…")
    a = load_trace(client, a_id, cache, token)
    token.check()
    token.progress(f"Loading trace B ({b_id})…")
    b = a if b_id == a_id else load_trace(client, b_id, cache, token)
    token.check()
    token.progress(f"Comparing {len(a.spans):,} spans with {len(b.spans):,}…")
    result = diff(a, b, token)
    token.check()
    return prepare(result)
