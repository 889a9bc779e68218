"""Two traces compared span by span: spans aligned by their path in the tree, what changed.

A span's path is the names and span types along its parent chain. Under an aligned pair of
parents (or among the roots) children pair up by (name, span type), the k-th of a kind in A with
the k-th in B in start order, so a repeated loop step aligns by position; the rest are only in A
or only in B, with their whole subtrees. A pair is `same` or `changed` (status, inputs, outputs
or other attributes differ). Durations and token counts are compared per pair and for the whole
trace; `text_diff` shows how a pair's inputs, outputs and chat messages differ."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from traceviewer.core.cancel import CancelToken
from traceviewer.core.model import INPUTS_KEY, OUTPUTS_KEY, Span, Trace

# Attributes that differ between any two traces (the trace's own id): not a change.
_IGNORED = frozenset({"mlflow.traceRequestId"})
_CHECK_EVERY = 2048  # spans between cancel checks


class Status(StrEnum):
    SAME = "same"
    CHANGED = "changed"
    ONLY_A = "only_a"
    ONLY_B = "only_b"


@dataclass(frozen=True, slots=True)
class Pair:
    """One row of the merged tree: a span of A and/or its aligned span of B."""

    path: str  # names along the parent chain, "/"-joined; "[k]" marks the k-th repeat (k ≥ 1)
    depth: int
    a: int  # index into trace A's spans, -1 if only in B
    b: int  # index into trace B's spans, -1 if only in A
    status: Status
    changes: tuple[str, ...] = ()  # of "status", "inputs", "outputs", "attributes"
    duration_delta_ms: float | None = None  # B minus A
    token_delta: int | None = None  # B minus A (total tokens)


@dataclass(frozen=True, slots=True)
class TraceDiff:
    """Two traces aligned: the pairs in merged tree pre-order, and the trace-wide deltas."""

    a: Trace
    b: Trace
    pairs: tuple[Pair, ...]

    def counts(self) -> dict[Status, int]:
        """How many pairs have each status."""
        out = dict.fromkeys(Status, 0)
        for pair in self.pairs:
            out[pair.status] += 1
        return out

    @property
    def duration_delta_ms(self) -> float | None:
        """The whole trace's duration, B minus A."""
        a, b = self.a.info.duration_ms, self.b.info.duration_ms
        return None if a is None or b is None else float(b - a)

    @property
    def token_delta(self) -> int | None:
        """The whole trace's total tokens, B minus A (None when neither records any)."""
        return _delta(_trace_tokens(self.a), _trace_tokens(self.b))

    def span(self, pair: Pair, side: str) -> Span | None:
        """The pair's span in trace "a" or "b" (None when it is not there)."""
        index = pair.a if side == "a" else pair.b
        trace = self.a if side == "a" else self.b
        return trace.spans[index] if index >= 0 else None

    def to_json(self) -> dict[str, Any]:
        """The documented JSON form: trace ids, totals, and one entry per aligned pair."""
        def span_id(trace: Trace, i: int) -> str | None:
            return trace.spans[i].span_id if i >= 0 else None

        return {
            "a": self.a.info.trace_id, "b": self.b.info.trace_id,
            "duration_delta_ms": self.duration_delta_ms, "token_delta": self.token_delta,
            "counts": {str(k): v for k, v in self.counts().items()},
            "pairs": [{"path": p.path, "a_span_id": span_id(self.a, p.a),
                       "b_span_id": span_id(self.b, p.b), "status": str(p.status),
                       "changes": list(p.changes), "duration_delta_ms": p.duration_delta_ms,
                       "token_delta": p.token_delta} for p in self.pairs],
        }


def _delta(a: int | None, b: int | None) -> int | None:
    if a is None and b is None:
        return None
    return (b or 0) - (a or 0)


def _total_tokens(usage: Mapping[str, Any] | None) -> int | None:
    if not usage:
        return None
    total = usage.get("total_tokens")
    if isinstance(total, int | float) and not isinstance(total, bool):
        return int(total)
    parts = [usage.get(k) for k in ("input_tokens", "output_tokens")]
    numbers = [int(p) for p in parts if isinstance(p, int | float) and not isinstance(p, bool)]
    return sum(numbers) if numbers else None


def _trace_tokens(trace: Trace) -> int | None:
    return _total_tokens(trace.info.token_usage)


def _span_tokens(span: Span) -> int | None:
    return _total_tokens(span.token_usage)


def _changes(a: Span, b: Span) -> tuple[str, ...]:
    """What differs between two aligned spans."""
    out = []
    if a.status != b.status:
        out.append("status")
    attrs_a, attrs_b = a.attributes, b.attributes
    raw_a = getattr(attrs_a, "raw", attrs_a)
    raw_b = getattr(attrs_b, "raw", attrs_b)
    if raw_a == raw_b:  # the common case, without decoding anything
        return tuple(out)
    differing = {k for k in raw_a.keys() | raw_b.keys()
                 if k not in _IGNORED and raw_a.get(k) != raw_b.get(k)}
    # Undecoded forms can differ for equal values (a file against the server): decode those.
    differing = {k for k in differing if attrs_a.get(k) != attrs_b.get(k)}
    if INPUTS_KEY in differing:
        out.append("inputs")
    if OUTPUTS_KEY in differing:
        out.append("outputs")
    if differing - {INPUTS_KEY, OUTPUTS_KEY}:
        out.append("attributes")
    return tuple(out)


def _duration_ms(span: Span) -> float | None:
    d = span.duration_ns
    return None if d is None else d / 1e6


def _pair(a_trace: Trace, b_trace: Trace, path: str, depth: int, a: int, b: int) -> Pair:
    if b < 0:
        return Pair(path, depth, a, -1, Status.ONLY_A)
    if a < 0:
        return Pair(path, depth, -1, b, Status.ONLY_B)
    sa, sb = a_trace.spans[a], b_trace.spans[b]
    changes = _changes(sa, sb)
    da, db = _duration_ms(sa), _duration_ms(sb)
    return Pair(path, depth, a, b, Status.CHANGED if changes else Status.SAME, changes,
                None if da is None or db is None else db - da,
                _delta(_span_tokens(sa), _span_tokens(sb)))


# (name, span type) and the occurrence of that kind among its siblings
_Key = tuple[tuple[str, str], int]


def _kind(span: Span) -> tuple[str, str]:
    return span.name, span.span_type


def _align(a_trace: Trace, b_trace: Trace, a_kids: list[int], b_kids: list[int]
           ) -> list[tuple[int, int, str]]:
    """Sibling lists paired by kind and position: (a, b, path segment), -1 for a missing side,
    in A's order with B's extra spans after the B sibling before them."""
    def keyed(trace: Trace, kids: list[int]) -> list[tuple[_Key, int]]:
        seen: dict[tuple[str, str], int] = {}
        out: list[tuple[_Key, int]] = []
        for i in kids:
            kind = _kind(trace.spans[i])
            out.append(((kind, seen.get(kind, 0)), i))
            seen[kind] = seen.get(kind, 0) + 1
        return out

    a_keys = keyed(a_trace, a_kids)
    b_keys = keyed(b_trace, b_kids)
    b_by_key = {k: i for k, i in b_keys}
    a_by_key = {k: i for k, i in a_keys}
    rows: list[tuple[int, int, str]] = []
    after: dict[int, list[tuple[int, int, str]]] = {}  # A row number -> B-only rows after it
    leading: list[tuple[int, int, str]] = []
    last_row = -1
    a_row_of: dict[int, int] = {}
    for key, i in a_keys:
        a_row_of[i] = len(rows)
        rows.append((i, b_by_key.get(key, -1), _segment(key)))
    for key, j in b_keys:
        i = a_by_key.get(key, -1)
        if i >= 0:
            last_row = a_row_of[i]
            continue
        (after.setdefault(last_row, []) if last_row >= 0 else leading).append(
            (-1, j, _segment(key)))
    merged = list(leading)
    for n, row in enumerate(rows):
        merged.append(row)
        merged.extend(after.get(n, ()))
    return merged


def _segment(key: _Key) -> str:
    (name, _type), k = key
    return f"{name}[{k}]" if k else name


def _kids(trace: Trace, i: int) -> list[int]:
    return list(trace.children(i)) if i >= 0 else []


def diff(a: Trace, b: Trace, token: CancelToken | None = None) -> TraceDiff:
    """Align trace `b` with trace `a` span by span (see the module docstring)."""
    pairs: list[Pair] = []
    # Depth-first with an explicit stack: agent loops nest deeper than Python's recursion.
    stack: list[Iterator[tuple[int, int, str]]] = [iter(_align(a, b, a.roots, b.roots))]
    paths: list[str] = []
    while stack:
        row = next(stack[-1], None)
        if row is None:
            stack.pop()
            if paths:
                paths.pop()
            continue
        i, j, segment = row
        path = f"{paths[-1]}/{segment}" if paths else segment
        pairs.append(_pair(a, b, path, len(paths), i, j))
        if token is not None and len(pairs) % _CHECK_EVERY == 0:
            token.check()
            token.progress(len(pairs))
        kids = _align(a, b, _kids(a, i), _kids(b, j))
        if kids:
            stack.append(iter(kids))
            paths.append(path)
    return TraceDiff(a, b, tuple(pairs))


def _pretty(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.splitlines()
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True,
                      default=str).splitlines()


def _messages(span: Span | None) -> list[str]:
    messages = span.chat_messages if span is not None else None
    lines: list[str] = []
    for m in messages or ():
        content = m.get("content")
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False,
                                                                   default=str)
        lines.append(f"{m.get('role', '?')}: {text}")
    return lines


def text_diff(a: Span | None, b: Span | None, context: int = 3) -> str:
    """A unified text diff of two spans' inputs, outputs and chat messages (either may be
    missing); '' when they are equal. Plain text: trace content is untrusted."""
    parts = []
    for title, get in (("inputs", lambda s: _pretty(s.inputs) if s else []),
                       ("outputs", lambda s: _pretty(s.outputs) if s else []),
                       ("messages", _messages)):
        left, right = get(a), get(b)
        if left == right:
            continue
        lines = difflib.unified_diff(left, right, f"A {title}", f"B {title}", n=context,
                                     lineterm="")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)
