"""The layout of a trace for the span tree and the timeline, computed off the GUI thread.

`TreeLayout(trace)` derives, with numpy, everything the tree and the timeline need per span:
child lists, row numbers, times relative to the trace start, span-type styles, the critical
path, and the in-trace search. Nodes 0..n-1 are spans; node n is a synthetic "missing parent"
node when the trace has orphans (spans whose parent is not in the trace)."""

from __future__ import annotations

import json
import math

import numpy as np

from traceviewer.core.cancel import CancelToken
from traceviewer.core.fmt import duration_ms
from traceviewer.core.model import Span, Trace
from traceviewer.core.otlp import LazyAttributes

# Families of span types, each drawn alike (the ui's palette gives each an icon and a colour):
# 0 unknown, 1 chain, 2 agent, 3 llm, 4 retriever, 5 tool, 6 reranker, 7 parser, 8 embedding.
_STYLE_OF_TYPE = {
    "CHAIN": 1, "TASK": 1, "AGENT": 2, "LLM": 3, "CHAT_MODEL": 3, "RETRIEVER": 4, "MEMORY": 4,
    "TOOL": 5, "RERANKER": 6, "PARSER": 7, "EMBEDDING": 8,
}

def style_index(span_type: str | None) -> int:
    """Index into STYLES for an MLflow span type (unknown types get the neutral style)."""
    return _STYLE_OF_TYPE.get((span_type or "").upper(), 0)


def format_duration(ns: int | None) -> str:
    """A span duration for display; '…' while the span is still running."""
    return "…" if ns is None else duration_ms(ns / 1e6)


def span_tokens(span: Span) -> int | None:
    """Total tokens a span reports, if any."""
    usage = span.token_usage
    if not usage:
        return None
    total = usage.get("total_tokens")
    if total is None:
        total = (usage.get("input_tokens") or 0) + (usage.get("output_tokens") or 0)
    return int(total)


# Units of the timeline's ticks, in milliseconds (its axis unit), smallest first.
TIME_UNITS: tuple[tuple[float, str], ...] = (
    (1e-3, "µs"), (1.0, "ms"), (1e3, "s"), (6e4, "min"), (3.6e6, "h"))


def tick_step(span_ms: float, ticks: float) -> tuple[float, float, str]:
    """A round step for about `ticks` ticks over `span_ms`: 1, 2 or 5 × 10ⁿ of the largest time
    unit not longer than the raw step. Returns (step in ms, unit in ms, unit name)."""
    raw = max(span_ms / max(ticks, 1.0), 1e-9)
    unit, name = next(((u, n) for u, n in reversed(TIME_UNITS) if u <= raw), TIME_UNITS[0])
    x = raw / unit
    mag = 10.0 ** math.floor(math.log10(x))
    step = next(m * mag for m in (1.0, 2.0, 5.0, 10.0) if m * mag >= x * (1 - 1e-9))
    return step * unit, unit, name


def tick_label(value_ms: float, step_ms: float) -> str:
    """A tick's label: in the largest unit that shows the value with at most one decimal and
    is not longer than the value ('500 ms', '1.5 s', '20 min', '1 h'), else in the step's."""
    if abs(value_ms) < step_ms * 1e-6:
        return "0"
    for unit, name in reversed(TIME_UNITS):
        amount = value_ms / unit
        if unit <= abs(value_ms) * (1 + 1e-9) and abs(amount * 10 - round(amount * 10)) < 1e-6:
            return f"{round(amount, 1):g} {name}"
    unit, name = next(((u, n) for u, n in reversed(TIME_UNITS) if u <= step_ms * (1 + 1e-9)),
                      TIME_UNITS[0])
    return f"{round(value_ms / unit, 6):g} {name}"


class TreeLayout:
    """Per-span arrays derived from a Trace for the tree model and the timeline.

    Nodes 0..n-1 are spans; node n is the synthetic "missing parent" node when the trace has
    orphans. Built off the GUI thread."""

    def __init__(self, trace: Trace, token: CancelToken | None = None):
        self.trace = trace
        spans = trace.spans
        n = self.n = len(spans)
        parent = np.frombuffer(trace.parent, dtype=np.int32) if n else np.empty(0, np.int32)
        orphan = np.fromiter((s.orphan for s in spans), dtype=bool, count=n)
        self.has_orphans = bool(orphan.any())
        self.syn = n if self.has_orphans else -1
        self.top = top = n + 1  # the bucket of the top-level nodes
        key = np.where(parent >= 0, parent, np.where(orphan, n, top))
        order = np.argsort(key, kind="stable")  # stable: siblings keep their start order
        starts = np.searchsorted(key[order], np.arange(n + 3))
        row = np.empty(n, dtype=np.int64)
        row[order] = np.arange(n) - starts[key[order]]
        # Node-indexed lists (list indexing is much cheaper than numpy scalars in data()).
        self.kids: list[int] = order.tolist()
        self.child_start: list[int] = starts[:-1].tolist()
        self.child_count: list[int] = np.diff(starts).tolist()
        self.row_of: list[int] = row.tolist()
        self.parent: list[int] = np.where(key == top, -1, key).tolist()
        if self.has_orphans:
            # The top bucket sorts last, so the synthetic node can join it at the end.
            self.kids.append(n)
            self.row_of.append(self.child_count[top])
            self.child_count[top] += 1
            self.parent.append(-1)
        if token:
            token.check()

        # Display order: the real roots' subtrees (pre-order blocks), then the orphans' blocks.
        is_root = parent < 0
        root_of = np.maximum.accumulate(np.where(is_root, np.arange(n), 0)) if n else parent
        in_orphan_tree = orphan[root_of] if n else orphan
        self.display_order = np.concatenate(
            [np.flatnonzero(~in_orphan_tree), np.flatnonzero(in_orphan_tree)])

        t0 = self.t0 = trace.start_ns or 0
        end_fallback = trace.end_ns or t0
        start_ns = np.fromiter((s.start_ns for s in spans), dtype=np.int64, count=n)
        end_ns = np.fromiter((end_fallback if s.end_ns is None else s.end_ns for s in spans),
                             dtype=np.int64, count=n)
        self.open_ended = np.fromiter((s.end_ns is None for s in spans), dtype=bool, count=n)
        self.in_progress = trace.info.state == "IN_PROGRESS" or bool(self.open_ended.any())
        # Relative ms as float64: exact to the µs for traces shorter than years.
        self.x0 = (start_ns - t0) / 1e6
        self.x1 = np.maximum(end_ns - t0, start_ns - t0) / 1e6
        self.total_ms = float(self.x1.max()) if n else 0.0
        self.style = np.fromiter((style_index(s.span_type) for s in spans), dtype=np.int8,
                                 count=n)
        self.error = np.fromiter((s.status == "ERROR" for s in spans), dtype=bool, count=n)
        self.critical = self._critical_path(end_ns)
        self._haystacks: list[str] | None = None

    def children(self, node: int) -> list[int]:
        """Child nodes of a node (the synthetic node's children are the orphans)."""
        start = self.child_start[node]
        return self.kids[start:start + self.child_count[node]]

    def top_nodes(self) -> list[int]:
        """Top-level nodes: the real roots, then the synthetic node if any."""
        return self.children(self.top)

    def ancestors(self, node: int) -> list[int]:
        """Nodes above `node`, nearest first (the synthetic node for orphans)."""
        out = []
        node = self.parent[node]
        while node >= 0:
            out.append(node)
            node = self.parent[node]
        return out

    def _critical_path(self, end_ns: np.ndarray) -> np.ndarray:
        """Spans on the critical path: from the root, repeatedly the child that ends last
        (the one the parent waited for)."""
        marked = np.zeros(self.n, dtype=bool)
        roots = [r for r in self.top_nodes() if r != self.syn] or (
            self.children(self.syn) if self.has_orphans else [])
        if not roots:
            return marked
        node = max(roots, key=lambda i: end_ns[i])
        while True:
            marked[node] = True
            kids = self.children(node)
            if not kids:
                return marked
            node = max(kids, key=lambda i: end_ns[i])

    def search(self, text: str, token: CancelToken | None = None) -> list[int]:
        """Spans whose name, type, attributes (inputs and outputs among them) or events contain
        `text` (case-insensitive), in display order."""
        needle = text.casefold()
        if self._haystacks is None:
            haystacks = []
            for i, span in enumerate(self.trace.spans):
                if token and i % 500 == 0:
                    token.check()
                attrs = span.attributes
                texts = ([attrs.json_text(k) for k in attrs] if isinstance(attrs, LazyAttributes)
                         else [json.dumps(v, default=str) for v in attrs.values()])
                events = [f"{e.name} {json.dumps(dict(e.attributes), default=str)}"
                          for e in span.events]
                fields = (span.name, span.span_type, span.span_id, *attrs, *texts, *events)
                haystacks.append("\n".join(fields).casefold())
            self._haystacks = haystacks
        hay = self._haystacks
        # Attribute texts are JSON: also look for the needle as JSON escapes it (quotes, é).
        escaped = json.dumps(text)[1:-1].casefold()
        return [i for i in self.display_order.tolist() if needle in hay[i] or escaped in hay[i]]


def initial_expansion(layout: TreeLayout, budget: int) -> list[int]:
    """Nodes to expand on open, parents first: whole tree levels while the tree shows at most
    `budget` rows (the top level is always expanded)."""
    expanded: list[int] = []
    level = layout.top_nodes()
    shown = len(level)
    while level:
        below = sum(layout.child_count[node] for node in level)
        if not below or (expanded and shown + below > budget):
            break
        expanded += [node for node in level if layout.child_count[node]]
        shown += below
        level = [child for node in level for child in layout.children(node)]
    return expanded
