"""The steps of opening a trace, run off the GUI thread: from the cache or the server, parsed and
laid out; then written to the cache once shown; and a huge trace freed in chunks.

cache hit? -> layout                      (cached spans, shown at once)
else download -> parse -> layout -> shown -> cache write (in the background, after the paint)
next load of a huge trace -> discard the previous one first (two would not fit in memory)

The download reports bytes received (and the total when the server says it). It can start
before anyone asks (`prefetch`: the trace named on the command line, while the window is still
being built; a cached one is read and laid out then); the first `from_server` then takes that
work over instead of starting it again, and lets go of any fetched ahead for another trace. A
cache entry that cannot be read is downloaded instead."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from traceviewer.core.bigjson import thaw_after_big
from traceviewer.core.cache import TraceCache
from traceviewer.core.cancel import CancelToken
from traceviewer.core.client import RestClient
from traceviewer.core.errors import Cancelled
from traceviewer.core.model import Trace
from traceviewer.core.otlp import parse_trace

if TYPE_CHECKING:
    from traceviewer.core.trace_layout import TreeLayout


@dataclass(frozen=True, slots=True)
class Loaded:
    """A trace ready to show: its layout, when it was cached (if it comes from the cache), and
    the (host, trace id) to cache it under once shown (a finished trace fresh from a server)."""

    layout: TreeLayout
    cached_at: float | None = None
    cache_as: tuple[str, str] | None = None


DISCARD_CHUNK = 500
# A trace this big is let go as soon as another load starts: two of them would not fit in memory
# together (100k spans take about 600 MB). What its parse froze (`bigjson.freeze_if_big`) is
# then handed back to the collector before the next one's parse freezes again.
RELEASE_SPANS = 20_000

# Held while a trace is written to the cache, which holds the trace until it ends.
_CACHING = threading.Lock()
PROGRESS_EVERY_S = 0.1  # download progress is reported at most this often


def download_progress(trace_id: str, token: CancelToken) -> Callable[[int, int | None], None]:
    """A `get_trace_raw` progress callback that reports 'Downloading 12.3 of 45.6 MB of trace …'
    through `token`, at most every PROGRESS_EVERY_S."""
    last = [0.0]

    def report(received: int, expected: int | None) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_EVERY_S and received != expected:
            return
        last[0] = now
        of = f" of {expected / 1e6:.1f}" if expected else ""
        token.progress(f"Downloading {received / 1e6:.1f}{of} MB of trace {trace_id}…")

    return report


T = TypeVar("T")


class Prefetch(Generic[T]):
    """A trace download (or cache read) running in its own thread since before the view asked
    for it."""

    def __init__(self, host: str, trace_id: str,
                 fetch: Callable[[Callable[[int, int | None], None]], T]) -> None:
        self.host, self.trace_id = host, trace_id
        self._done = threading.Event()
        self._raw: T | None = None
        self._error: BaseException | None = None
        # Bytes received so far and the total; None until the first bytes (never for a cache read).
        self.received: tuple[int, int | None] | None = None
        self._fetch = fetch
        threading.Thread(target=self._run, name=f"prefetch {trace_id}", daemon=True).start()

    def _run(self) -> None:
        try:
            self._raw = self._fetch(self._progress)
        except BaseException as exc:  # handed to whoever takes the download over
            self._error = exc
        finally:
            self._done.set()

    def _progress(self, received: int, expected: int | None) -> None:
        self.received = (received, expected)

    def wait(self, token: CancelToken) -> T | None:
        """The response bytes (or what was read, None if nothing was), once there (download
        progress reported through `token`); raises what the fetch raised."""
        report = download_progress(self.trace_id, token)
        while not self._done.wait(PROGRESS_EVERY_S):
            token.check()
            if self.received is not None:
                report(*self.received)
        token.check()
        if self._error is not None:
            raise self._error
        raw, self._raw = self._raw, None
        return raw


_prefetched: dict[tuple[str, str], Prefetch[bytes | bytearray]] = {}
_read_ahead: dict[tuple[str, str], Prefetch[Loaded | None]] = {}
_prefetch_lock = threading.Lock()


def prefetch(open_client: Callable[[], RestClient | None], trace_id: str,
             cache: TraceCache) -> threading.Thread:
    """Start downloading a trace now, in a thread (or reading it from the cache when it is
    there): `open_client` is called there (it may read the keyring) and the client closed once
    the bytes are in. The next `from_server` takes the work over if it is for that host and
    trace, and lets go of it otherwise.
    Returns the thread that opens the client and starts the work (it ends once that is under
    way)."""

    def start() -> None:
        client = open_client()
        if client is None:
            return
        host = client.host
        if cache.has(host, trace_id):
            client.close()
            read = Prefetch(host, trace_id, lambda _progress: from_cache(cache, host, trace_id))
            with _prefetch_lock:
                _read_ahead[(host, trace_id)] = read
            return

        def fetch(progress: Callable[[int, int | None], None]) -> bytes | bytearray:
            try:
                return client.get_trace_raw(trace_id, progress=progress)
            finally:
                client.close()

        with _prefetch_lock:
            _prefetched[(client.host, trace_id)] = Prefetch(client.host, trace_id, fetch)

    thread = threading.Thread(target=_quietly(start), name="prefetch client", daemon=True)
    thread.start()
    return thread


def prefetch_from_workspace(trace_id: str, workspace: str | None) -> threading.Thread:
    """`prefetch` from the workspace the GUI will connect to: `workspace` if there is one of
    that name, else the last used, else the first (the config and the keyring are read in the
    prefetch's thread)."""
    from traceviewer.core.workspaces import WorkspaceMemory, WorkspaceStore, open_client

    def client() -> RestClient | None:
        store = WorkspaceStore()
        names = [ws.name for ws in store.list()]
        last = WorkspaceMemory().current
        name = workspace if workspace in names else (last if last in names else
                                                     (names[0] if names else None))
        found = store.get(name) if name else None
        return open_client(found) if found is not None else None

    return prefetch(client, trace_id, TraceCache())


def _quietly(work: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        try:
            work()
        except Exception:  # the view's own load reports what goes wrong
            return
    return run


def from_cache(cache: TraceCache, host: str, trace_id: str,
               token: CancelToken | None = None) -> Loaded | None:
    """The trace laid out from the cache, or None when it is not there."""
    hit = cache.get(host, trace_id, token)
    if hit is None:
        return None
    if token is not None:
        token.progress(f"Laying out {len(hit.trace.spans):,} spans…")
    return Loaded(_laid_out(hit.trace, token), hit.cached_at)


def _laid_out(trace: Trace, token: CancelToken | None) -> TreeLayout:
    # Imported here: `traceviewer --trace` imports this module to start the download, which
    # need not wait for numpy (which the layout uses).
    from traceviewer.core.trace_layout import TreeLayout

    return TreeLayout(trace, token)


def _unless_unreadable(read: Callable[[], Loaded | None]) -> Loaded | None:
    """What `read` took from the cache, or None when that failed: a cache that cannot be read
    must not keep a trace from being shown (it is downloaded instead)."""
    try:
        return read()
    except Cancelled:
        raise
    except Exception:
        return None


def from_server(client: RestClient, trace_id: str, cache: TraceCache, use_cache: bool,
                token: CancelToken) -> Loaded:
    """The trace from the cache (if `use_cache` and it can be read there), else from the
    server."""
    host = client.host
    with _prefetch_lock:
        ahead = _read_ahead.pop((host, trace_id), None)
        early = _prefetched.pop((host, trace_id), None)
        # Fetched ahead once, for the first view: one left for another trace is let go.
        _read_ahead.clear()
        _prefetched.clear()
    if use_cache:
        loaded = None
        if ahead is not None:
            token.progress("Reading the trace from the cache…")
            loaded = _unless_unreadable(lambda: ahead.wait(token))
        if loaded is None:
            loaded = _unless_unreadable(lambda: from_cache(cache, host, trace_id, token))
        if loaded is not None:
            return loaded
    token.progress(f"Downloading trace {trace_id}…")
    raw = early.wait(token) if early is not None else None
    if raw is None:
        raw = client.get_trace_raw(trace_id, token, progress=download_progress(trace_id, token))
    token.check()
    token.progress(f"Reading {len(raw) / 1e6:.1f} MB of spans…")
    trace = parse_trace(raw, token)
    del raw
    token.check()
    token.progress(f"Laying out {len(trace.spans):,} spans…")
    # A running or partial trace changes: only finished ones are worth keeping.
    keep = not trace.in_progress and not trace.partial
    return Loaded(_laid_out(trace, token), cache_as=(host, trace_id) if keep else None)


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
    time, so that freeing 100k spans never holds the GIL, and so the GUI, for long; then give
    the collector back what a big trace's parse froze."""
    trace = holder.pop().trace
    spans = list(trace.spans)
    del trace  # unless something else still holds it, only `spans` keeps the spans alive now
    with _CACHING:
        pass  # a cache write of this trace (cancelled by now) lets go of it first
    num_spans = len(spans)
    while spans:
        del spans[-DISCARD_CHUNK:]
    thaw_after_big(num_spans)
