"""Reading a big trace document without holding the GIL for long.

`json.loads` is one C call: on an 80 MB, 100k-span response it holds the GIL for a second or
more, and the GUI thread freezes although the work runs in the background. `loads_trace_doc`
decodes the bytes a few MB at a time and the span list a batch of spans at a time (the
interpreter can switch threads in between), then the small rest of the document in one go. The
whole text is never built: the transient memory is a window of a few MB. It accepts every shape
`otlp.parse_trace` does."""

from __future__ import annotations

import codecs
import gc
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from traceviewer.core.cancel import CancelToken
from traceviewer.core.errors import CorruptTrace

# A key named "spans" whose value is an array. Inside JSON strings quotes are escaped, so this
# only ever matches a real key; which one is checked after decoding (see _put_back).
_SPANS_KEY = re.compile(r'"spans"[ \t\n\r]*:[ \t\n\r]*\[')
_WS = re.compile(r"[ \t\n\r]*")
_FIRST_KEY = re.compile(r'\{[ \t\n\r]*"[^"\\]*"[ \t\n\r]*:')
# Where an element that is itself an array may end, followed by the next one (the cache's rows).
_ARRAY_END = re.compile(r"\][ \t\n\r]*,[ \t\n\r]*\[")
_NEVER = re.compile(r"(?!)")
# Stands in for the span list while the rest of the document is decoded (no real value has it).
_PLACEHOLDER = "\x00spans"
_PLACEHOLDER_JSON = json.dumps(_PLACEHOLDER)
_CHUNK = 2 * 1024 * 1024  # bytes decoded to text at a time
_BATCH_CHARS = 32 * 1024  # a few milliseconds of decoding, even on a slow machine
_MAX_BATCH_CHARS = 4 * _BATCH_CHARS  # how far past a batch's start its end is looked for
# From this many spans a parsed trace is kept out of the collector's passes (`freeze_if_big`):
# 2,000 spans are about 30,000 objects until the cache write stows their attribute maps.
BIG_TRACE_SPANS = 2_000


def _chunks(raw: bytes | bytearray | str) -> Iterator[str]:
    if isinstance(raw, str):
        yield from (raw[i:i + _CHUNK] for i in range(0, len(raw), _CHUNK))
        return
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(raw)
    for i in range(0, len(view), _CHUNK):
        yield decoder.decode(view[i:i + _CHUNK])
    yield decoder.decode(b"", final=True)


class _Window:
    """The part of the document's text being decoded; grows a chunk at a time at its end and
    forgets what was decoded at its start."""

    def __init__(self, raw: bytes | bytearray | str):
        self._chunks = _chunks(raw)
        self.text = ""
        self.eof = False

    def grow(self, pos: int, keep_from: int | None = None) -> int:
        """Append the next chunk, dropping the text before `keep_from` (default `pos`); return
        `pos` in the new text. At the end of the document, set `eof` instead."""
        chunk = next(self._chunks, None)
        if chunk is None:
            self.eof = True
            return pos
        start = pos if keep_from is None else keep_from
        self.text = self.text[start:] + chunk
        return pos - start

    def ensure(self, pos: int, chars: int) -> int:
        """Grow until `chars` characters follow `pos` (or the document ends), dropping the text
        before `pos`; return `pos` in the new text. The chunks are joined once, so growing by
        many chunks copies the text once, not once per chunk."""
        if len(self.text) - pos >= chars or self.eof:
            return pos
        parts = [self.text[pos:]]
        have = len(parts[0])
        while have < chars:
            chunk = next(self._chunks, None)
            if chunk is None:
                self.eof = True
                break
            parts.append(chunk)
            have += len(chunk)
        self.text = "".join(parts)
        return 0

    def skip_ws(self, pos: int) -> int:
        while True:
            space = _WS.match(self.text, pos)
            assert space is not None  # [ \t\n\r]* matches at every position
            pos = space.end()
            if pos < len(self.text) or self.eof:
                return pos
            pos = self.grow(pos)

    def rest(self, pos: int) -> str:
        """The text from `pos` to the end of the document."""
        while not self.eof:
            self.grow(pos, keep_from=0)
        return self.text[pos:]


def _find_spans(window: _Window) -> re.Match[str] | None:
    """Grow the window until it holds the "spans" key (None: the document has none)."""
    searched = 0
    while True:
        match = _SPANS_KEY.search(window.text, max(0, searched - 64))
        if match is not None or window.eof:
            return match
        searched = len(window.text)
        window.grow(0, keep_from=0)


def _spans_array(window: _Window, pos: int, token: CancelToken | None) -> tuple[list[Any], int]:
    """Decode the array whose '[' ends at `pos` in the window; return it and the position just
    past its ']'.

    The elements are decoded in batches: a batch ends at a '}' followed by ',' and the start of
    an element like the current one (for elements that are arrays: a ']' followed by ',' and
    '['), between _BATCH_CHARS and _MAX_BATCH_CHARS further on. If there is no such cut (the
    elements list their keys in another order, or are huge), or that '}' or ']' was not the
    end of an element (it was inside a string or a nested value), the next _BATCH_CHARS are
    decoded element by element instead, and the cut pattern is taken afresh from the element
    after them; so are the last ones decoded. Every step scans a bounded stretch of text past
    what it decodes, so the work is linear in the input whatever its shape.
    Batches rather than single elements, so that the decoder shares the key strings of a batch
    as `json.loads` shares them over a document."""
    scan = json.JSONDecoder().raw_decode
    items: list[Any] = []
    pos = window.skip_ws(window.ensure(pos, 2 * _BATCH_CHARS))
    if window.text.startswith("]", pos):
        return items, pos + 1
    batch_end: re.Pattern[str] | None = _cut_pattern(window.text, pos)
    single = 0  # characters left to decode element by element
    while True:
        pos = window.ensure(pos, _MAX_BATCH_CHARS)
        text, end = window.text, None
        if single <= 0:
            if batch_end is None:
                batch_end = _cut_pattern(text, pos)
            cut = batch_end.search(text, pos + _BATCH_CHARS, pos + _MAX_BATCH_CHARS)
            if cut is None:
                single = _BATCH_CHARS
                batch_end = None  # retry with the shape of the element after the singles
            else:
                try:
                    items += json.loads(f"[{text[pos:cut.start() + 1]}]")
                    end = cut.start() + 1
                except ValueError:
                    single = _BATCH_CHARS
        if end is None:
            want = _MAX_BATCH_CHARS
            while True:  # an element longer than the window: grow it and try again
                try:
                    item, end = scan(text, pos)
                    break
                except ValueError:
                    if window.eof:
                        raise
                    # Doubling: a huge element is rescanned a logarithmic number of times.
                    want = 2 * max(want, len(text) - pos)
                    pos = window.ensure(pos, want)
                    text = window.text
            items.append(item)
            single -= end - pos
        if token is not None:
            token.check()
        pos = window.skip_ws(end)
        sep = window.text[pos:pos + 1]
        pos = window.skip_ws(pos + 1)
        if sep == "]":
            return items, pos
        if sep != ",":
            raise ValueError(f"Expecting ',' or ']' in the span list near: {sep!r}")


def _cut_pattern(text: str, pos: int) -> re.Pattern[str]:
    """Where an element shaped like the one at `pos` ends and the next one starts."""
    head = _FIRST_KEY.match(text, pos)
    if head is not None:
        return re.compile(r"\}[ \t\n\r]*,[ \t\n\r]*" + re.escape(head.group()))
    return _ARRAY_END if text.startswith("[", pos) else _NEVER


def _put_back(doc: Any, spans: list[Any]) -> bool:
    """Put the span list where the placeholder landed, if that is where a trace document keeps
    its spans (REST get, Trace.to_json, traces.json artifact)."""
    if not isinstance(doc, dict):
        return False
    for holder in (doc, doc.get("trace"), doc.get("data")):
        if isinstance(holder, dict) and holder.get("spans") == _PLACEHOLDER:
            holder["spans"] = spans
            return True
    return False


@contextmanager
def corrupt_trace_errors() -> Iterator[None]:
    """Decoding errors of trace JSON as CorruptTrace saying what is wrong."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise CorruptTrace(f"The trace data is not UTF-8 text: {exc}") from exc
    except ValueError as exc:
        raise CorruptTrace(
            f"The trace data is not valid JSON (truncated or corrupt): {exc}") from exc
    except RecursionError as exc:
        raise CorruptTrace("The trace JSON is nested too deeply to read.") from exc


def loads_trace_doc(raw: bytes | bytearray | str, token: CancelToken | None = None) -> Any:
    """`json.loads(raw)` for a trace document, holding the GIL only briefly at a time; raises
    CorruptTrace for input that is not UTF-8 JSON."""
    with corrupt_trace_errors():
        window = _Window(raw)
        match = _find_spans(window)
        if match is not None:
            prefix = window.text[:match.start()]
            spans, end = _spans_array(window, match.end(), token)
            doc = json.loads(f'{prefix}"spans": {_PLACEHOLDER_JSON}{window.rest(end)}')
            if _put_back(doc, spans):
                return doc
        # No span list where a trace keeps one (not a big trace): decode it whole.
        return json.loads(raw)


class _GcPause:
    """Counts the parses in flight that turned the cyclic garbage collector off."""

    lock = threading.Lock()
    count = 0
    was_enabled = True


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a trace is parsed: wrap CPU-bound parsing
    (`parse_trace` and `parse_packed` use it themselves), never a trace's download. The one
    exception is the Overview's statistics (`stats`): it holds the pause over its whole read
    of search pages (seconds; longer for a wide range on a paced Databricks workspace), as
    their objects die page by page yet set off full collections that stalled the GUI for
    50-180 ms; cycles any thread makes meanwhile are collected once it ends.

    A big trace is millions of small acyclic objects: the collections their allocation
    triggers cost three to four times the parse, and each one holds the GIL (the GUI freezes).
    Nested and concurrent pauses share one switch; the collector is on again when the last
    ends. Whatever any thread made meanwhile is collected as usual once the pause ends, except
    after a big trace (`freeze_if_big`)."""
    with _GcPause.lock:
        if _GcPause.count == 0:
            _GcPause.was_enabled = gc.isenabled()
            gc.disable()
        _GcPause.count += 1
    try:
        yield
    finally:
        with _GcPause.lock:
            _GcPause.count -= 1
            if _GcPause.count == 0 and _GcPause.was_enabled:
                gc.enable()


def freeze_if_big(num_spans: int) -> None:
    """Called inside `gc_paused` once a trace of `num_spans` spans is built: a big one's
    objects would otherwise be walked by the next three collections (one per generation), each
    holding the GIL: 0.15-0.2 s at 100k spans, 0.1 s at 10k until their maps are stowed. So
    everything alive now goes to the collector's permanent generation (`gc.freeze`), which it
    never walks; objects are still freed when their last reference goes. `thaw_after_big`
    hands everything frozen back once the trace view lets a big trace go
    (`trace_loading.discard`): until then a cycle that was garbage at this moment is not
    collected. The CLI and the compare view, which discard nothing, keep it frozen meanwhile;
    each freeze keeps only the garbage of that moment."""
    if num_spans >= BIG_TRACE_SPANS:
        gc.freeze()


def thaw_after_big(num_spans: int) -> None:
    """Once a trace of `num_spans` spans has been freed: after a big one, what `freeze_if_big`
    froze goes back to the collector (the cycles among it are collected as usual)."""
    if num_spans >= BIG_TRACE_SPANS:
        gc.unfreeze()
