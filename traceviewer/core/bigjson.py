"""Reading a big trace document without holding the GIL for long.

`json.loads` is one C call: on an 80 MB, 100k-span response it holds the GIL for a second or
more, and the GUI thread freezes although the work runs in the background. `loads_trace_doc`
decodes the span list one span at a time (the interpreter can switch threads between spans)
and the small rest of the document in one go. It accepts every shape `otlp.parse_trace` does."""

from __future__ import annotations

import codecs
import json
import re
from typing import Any

from traceviewer.core.cancel import CancelToken
from traceviewer.core.errors import CorruptTrace

# A key named "spans" whose value is an array. Inside JSON strings quotes are escaped, so this
# only ever matches a real key; which one is checked after decoding (see _put_back).
_SPANS_KEY = re.compile(r'"spans"[ \t\n\r]*:[ \t\n\r]*\[')
_WS = re.compile(r"[ \t\n\r]*")
# Stands in for the span list while the rest of the document is decoded (no real value has it).
_PLACEHOLDER = "\x00spans"
_PLACEHOLDER_JSON = json.dumps(_PLACEHOLDER)
_DECODE_CHUNK = 4 * 1024 * 1024
_BATCH_CHARS = 256 * 1024  # a few milliseconds of decoding
_FIRST_KEY = re.compile(r'\{[ \t\n\r]*"[^"\\]*"[ \t\n\r]*:')


def _text(raw: bytes | str) -> str:
    if isinstance(raw, str):
        return raw
    # In chunks, so decoding 80 MB of UTF-8 is many short C calls, not one long one.
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(raw)
    parts = [decoder.decode(view[i:i + _DECODE_CHUNK]) for i in range(0, len(view),
                                                                      _DECODE_CHUNK)]
    parts.append(decoder.decode(b"", final=True))
    return "".join(parts)


def _spans_array(text: str, start: int, token: CancelToken | None) -> tuple[list[Any], int]:
    """Decode the array whose '[' ends at `start`, a batch of elements at a time; return it and
    the index just past its ']'.

    A batch ends at a '}' followed by ',' and the start of an element, about _BATCH_CHARS
    further on. If that '}' was not the end of an element (it was inside a string or a nested
    object), the batch is not valid JSON on its own and the next _BATCH_CHARS are decoded element
    by element instead; the last elements are too.
    Batches, not single elements, so that the decoder shares the key strings of a batch."""
    scan = json.JSONDecoder().raw_decode
    items: list[Any] = []
    pos = _WS.match(text, start).end()
    if text.startswith("]", pos):
        return items, pos + 1
    # Elements are objects whose first key is the same ("trace_id", or "span_id"...): a batch
    # ends before an element that starts like the first one.
    head = _FIRST_KEY.match(text, pos)
    batch_end = re.compile(r"\}[ \t\n\r]*,[ \t\n\r]*" + re.escape(head.group()) if head
                           else r"(?!)")
    single_until = pos
    while True:
        end = None
        if pos >= single_until:
            cut = batch_end.search(text, pos + _BATCH_CHARS)
            if cut is not None:
                try:
                    items += json.loads(f"[{text[pos:cut.start() + 1]}]")
                    end = cut.start() + 1
                except ValueError:
                    single_until = pos + _BATCH_CHARS
        if end is None:
            item, end = scan(text, pos)
            items.append(item)
        if token is not None:
            token.check()
        pos = _WS.match(text, end).end()
        sep = text[pos:pos + 1]
        pos = _WS.match(text, pos + 1).end()
        if sep == "]":
            return items, pos
        if sep != ",":
            raise ValueError(f"Expecting ',' or ']' in the span list at char {pos}")


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


def loads_trace_doc(raw: bytes | str, token: CancelToken | None = None) -> Any:
    """`json.loads(raw)` for a trace document, holding the GIL only briefly at a time; raises
    CorruptTrace for input that is not UTF-8 JSON."""
    try:
        text = _text(raw)
        match = _SPANS_KEY.search(text)
        if match is not None:
            spans, end = _spans_array(text, match.end(), token)
            rest = text[:match.start()] + f'"spans": {_PLACEHOLDER_JSON}' + text[end:]
            doc = json.loads(rest)
            if _put_back(doc, spans):
                return doc
        # No span list where a trace keeps one: not a big trace, decode it whole.
        return json.loads(text)
    except UnicodeDecodeError as exc:
        raise CorruptTrace(f"The trace data is not UTF-8 text: {exc}") from exc
    except ValueError as exc:
        raise CorruptTrace(
            f"The trace data is not valid JSON (truncated or corrupt): {exc}") from exc
    except RecursionError as exc:
        raise CorruptTrace("The trace JSON is nested too deeply to read.") from exc
