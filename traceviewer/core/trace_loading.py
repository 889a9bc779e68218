"""The steps of opening a trace, run off the GUI thread: from the cache or the server, parsed and
laid out; then written to the cache once shown; and a huge trace freed in chunks.

cache hit? -> layout                      (cached spans, shown at once)
else download -> parse -> layout -> shown -> cache write (in the background, after the paint)
next load of a huge trace -> discard the previous one first (two would not fit in memory)"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from traceviewer.core.cache import TraceCache
from traceviewer.core.cancel import CancelToken
from traceviewer.core.client import RestClient
from traceviewer.core.model import Trace
from traceviewer.core.otlp import parse_trace
from traceviewer.core.trace_layout import TreeLayout


@dataclass(frozen=True, slots=True)
class Loaded:
    """A trace ready to show: its layout, when it was cached (if it comes from the cache), and
    the (host, trace id) to cache it under once shown (a finished trace fresh from a server)."""

    layout: TreeLayout
    cached_at: float | None = None
    cache_as: tuple[str, str] | None = None


DISCARD_CHUNK = 500
# A trace this big is let go as soon as another load starts: two of them would not fit in
# memory together (100k spans take about 600 MB).
RELEASE_SPANS = 50_000

# Held while a trace is written to the cache, which holds the trace until it ends.
_CACHING = threading.Lock()


def from_server(client: RestClient, trace_id: str, cache: TraceCache, use_cache: bool,
                token: CancelToken) -> Loaded:
    """The trace from the cache (if `use_cache` and it is there), else from the server."""
    host = client.host
    if use_cache:
        hit = cache.get(host, trace_id, token)
        if hit is not None:
            token.progress(f"Laying out {len(hit.trace.spans):,} spans…")
            return Loaded(TreeLayout(hit.trace, token), hit.cached_at)
    token.progress(f"Downloading trace {trace_id}…")
    raw = client.get_trace_raw(trace_id)
    token.check()
    token.progress(f"Reading {len(raw) / 1e6:.1f} MB of spans…")
    trace = parse_trace(raw, token)
    del raw
    token.check()
    token.progress(f"Laying out {len(trace.spans):,} spans…")
    # A running or partial trace changes: only finished ones are worth keeping.
    keep = not trace.in_progress and not trace.partial
    return Loaded(TreeLayout(trace, token), cache_as=(host, trace_id) if keep else None)


def store(cache: TraceCache, key: tuple[str, str], holder: list[Trace],
          token: CancelToken) -> None:
    """Write the trace in `holder` to the cache under (host, trace id); `holder` is emptied so
    that `discard` frees the trace, in chunks."""
    with _CACHING:
        try:
            cache.put(*key, holder[0], token)
        finally:
            holder.clear()


def discard(holder: list[TreeLayout]) -> None:
    """Free the trace of the layout in `holder` (which this empties) a chunk of spans at a
    time, so that freeing 100k spans never holds the GIL, and so the GUI, for long."""
    trace = holder.pop().trace
    spans = list(trace.spans)
    del trace  # unless something else still holds it, only `spans` keeps the spans alive now
    with _CACHING:
        pass  # a cache write of this trace (cancelled by now) lets go of it first
    while spans:
        del spans[-DISCARD_CHUNK:]
