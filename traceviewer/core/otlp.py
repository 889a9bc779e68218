"""Decoding trace JSON into the model, and writing it back.

Two span formats reach us: the REST `traces/get` response, whose attributes are a list of typed
OTLP AnyValues, and MLflow's `Trace.to_json()` / `traces.json` artifact format, whose attributes
are a dict of JSON-encoded strings. Attribute values are decoded lazily, on first access, so
opening a 100k-span trace does not pay for megabytes of inputs nobody looks at. Every failure
to read the input becomes `CorruptTrace`."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

from traceviewer.core.bigjson import freeze_if_big, gc_paused, loads_trace_doc
from traceviewer.core.cancel import CancelToken
from traceviewer.core.errors import CorruptTrace, UsageError
from traceviewer.core.model import SPAN_TYPE_KEY, Span, SpanEvent, Trace, TraceInfo

_STATUS = {"STATUS_CODE_OK": "OK", "STATUS_CODE_ERROR": "ERROR", "STATUS_CODE_UNSET": "UNSET",
           "OK": "OK", "ERROR": "ERROR", "UNSET": "UNSET"}
_REQUEST_ID_KEY = "mlflow.traceRequestId"
_MISSING = object()


def decode_any_value(value: Any) -> Any:
    """The Python value of an OTLP JSON AnyValue (recursively); `{}` is None."""
    if not isinstance(value, dict):
        return value
    if "string_value" in value:
        return value["string_value"]
    if "int_value" in value:
        return int(value["int_value"])  # int64 may arrive as a JSON string
    if "double_value" in value:
        return float(value["double_value"])
    if "bool_value" in value:
        return value["bool_value"]
    if "kvlist_value" in value:
        return {kv["key"]: decode_any_value(kv.get("value"))
                for kv in (value["kvlist_value"] or {}).get("values", ())}
    if "array_value" in value:
        return [decode_any_value(v) for v in (value["array_value"] or {}).get("values", ())]
    if "bytes_value" in value:
        return base64.b64decode(value["bytes_value"])
    return value or None


def _decode_json_string(value: Any) -> Any:
    """An artifact-format attribute: JSON text, or (from plain OTel spans) a bare value."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


_CODECS: dict[str, Callable[[Any], Any]] = {"otlp": decode_any_value, "json": _decode_json_string}


class LazyAttributes(Mapping[str, Any]):
    """A read-only attribute map that decodes each raw value on first access.

    `raw` maps each key to its undecoded value (an OTLP AnyValue for `decode_any_value`, JSON
    text for the artifact format), or is that map's JSON text, read on first use: the cache
    keeps attributes so, and a span nobody looks at then costs a single string."""

    __slots__ = ("_cache", "_decode", "_raw")

    def __init__(self, raw: dict[str, Any] | str, decode: Callable[[Any], Any]):
        self._raw = raw
        self._decode = decode
        self._cache: dict[str, Any] = {}

    @property
    def raw(self) -> dict[str, Any]:
        """Each key's undecoded value."""
        raw = self._raw  # once: the cache write may stow the map meanwhile, in its thread
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except (ValueError, RecursionError) as exc:
                raise CorruptTrace(f"Span attributes cannot be decoded: {exc}") from exc
            if not isinstance(raw, dict):
                raise CorruptTrace("Span attributes should be a JSON object.")
            self._raw = raw
        return raw

    def __getitem__(self, key: str) -> Any:
        # .get with a sentinel, not try/except: a miss is the common case when opening a trace.
        value = self._cache.get(key, _MISSING)
        if value is not _MISSING:
            return value
        raw = self.raw[key]
        try:
            value = self._decode(raw)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError,
                binascii.Error) as exc:
            raise CorruptTrace(f"Span attribute {key!r} cannot be decoded: {exc}") from exc
        self._cache[key] = value
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def __contains__(self, key: object) -> bool:
        return key in self.raw

    def __repr__(self) -> str:
        return f"LazyAttributes({list(self.raw)})"

    def json_text(self, key: str) -> str:
        """The attribute as JSON text (the raw text for the artifact format: no re-encoding)."""
        value = self.raw[key]
        if self._decode is _decode_json_string and isinstance(value, str):
            return value
        return json.dumps(self[key], default=_json_default)

    def packed(self) -> tuple[str, str]:
        """(codec, the undecoded map as JSON text): `unpacked` makes the map again. The map is
        kept as that text from now on (`stow`): the cache write makes it anyway."""
        return ("json" if self._decode is _decode_json_string else "otlp"), self.stow()

    def stow(self) -> str:
        """Keep the undecoded map as its JSON text (returned) until it is next used: a span's
        undecoded map is a dozen small containers, which take memory and which the garbage
        collector walks over (all spans' at once, holding the GIL)."""
        raw = self._raw
        if not isinstance(raw, str):
            raw = self._raw = json.dumps(raw)
        return raw

    @staticmethod
    def unpacked(codec: str, text: str) -> LazyAttributes:
        """The map `packed` describes (KeyError for an unknown codec)."""
        return LazyAttributes(text, _CODECS[codec])


def _hex_id(value: Any, cache: dict[str, str]) -> str | None:
    """Hex of a base64 span id (REST, artifact); hex ids (older SDKs) pass through."""
    if not value or not isinstance(value, str):
        return None
    hit = cache.get(value)
    if hit is not None:
        return hit
    # 8- and 16-byte ids are 12 and 24 base64 characters; hex ids are 16 and 32.
    if len(value) in (12, 24):
        try:
            result = binascii.a2b_base64(value, strict_mode=True).hex()
        except binascii.Error:
            result = value
    else:
        result = value.lower()
    cache[value] = result
    return result


def _ns(value: Any) -> int | None:
    """Epoch ns as an int (never through a float: ns exceed 2^53)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _attributes(raw: Any) -> LazyAttributes:
    if isinstance(raw, list):  # REST: [{key, value: AnyValue}]
        return LazyAttributes({kv["key"]: kv.get("value") for kv in raw}, decode_any_value)
    if isinstance(raw, dict):  # to_json / artifact: {key: JSON text}
        return LazyAttributes(raw, _decode_json_string)
    if raw is None:
        return LazyAttributes({}, decode_any_value)
    raise CorruptTrace(f"span attributes should be a list or an object, not {type(raw).__name__}")


def _event(raw: dict[str, Any]) -> SpanEvent:
    attrs = raw.get("attributes")
    decoded = ({kv["key"]: decode_any_value(kv.get("value")) for kv in attrs}
               if isinstance(attrs, list) else dict(attrs or {}))
    return SpanEvent(name=str(raw.get("name") or ""),
                     time_ns=_ns(raw.get("time_unix_nano")) or 0, attributes=decoded)


def _span(raw: dict[str, Any], ids: dict[str, str], fallback_start_ns: int) -> Span:
    attributes = _attributes(raw.get("attributes"))
    span_type = attributes[SPAN_TYPE_KEY] if SPAN_TYPE_KEY in attributes.raw else None
    status = raw.get("status") or {}
    span_id = _hex_id(raw.get("span_id"), ids)
    if span_id is None:
        raise CorruptTrace("a span has no span_id")
    start = _ns(raw.get("start_time_unix_nano"))
    end = _ns(raw.get("end_time_unix_nano"))
    events = raw.get("events")
    code = status.get("code")
    return Span(
        span_id=span_id,
        parent_id=_hex_id(raw.get("parent_span_id"), ids),
        name=str(raw.get("name") or ""),
        span_type=span_type if isinstance(span_type, str) and span_type else "UNKNOWN",
        start_ns=start if start is not None else (end or fallback_start_ns),
        end_ns=end or None,  # OTLP writes 0 for "not ended"
        status=_STATUS.get(code, "UNSET") if isinstance(code, str) else "UNSET",
        status_message=str(status.get("message") or ""),
        attributes=attributes,
        events=tuple(_event(e) for e in events) if events else (),
    )


def _split(doc: Any) -> tuple[dict[str, Any], list[Any]]:
    """(trace info JSON, span list) of any supported document shape."""
    if not isinstance(doc, dict):
        raise CorruptTrace(f"Expected a JSON object, found {type(doc).__name__}.")
    if isinstance(doc.get("trace"), dict):  # REST get: {"trace": {"trace_info", "spans"}}
        doc = doc["trace"]
    elif isinstance(doc.get("traces"), list) and len(doc["traces"]) == 1:
        doc = doc["traces"][0]  # a batchGet response for one trace: {"traces": [{…}]}
    if "trace_info" in doc:  # REST get / batchGet element
        info, spans = doc.get("trace_info"), doc.get("spans", [])
    elif "info" in doc:  # Trace.to_json()
        info, spans = doc.get("info"), (doc.get("data") or {}).get("spans", [])
    elif "spans" in doc:  # the bare traces.json artifact: no info, take the id from a span
        info, spans = _info_from_spans(doc["spans"]), doc["spans"]
    else:
        raise CorruptTrace(
            "This JSON is not a trace: expected an MLflow `traces/get` response "
            "({\"trace\": …}) or a `Trace.to_json()` document ({\"info\": …, \"data\": …}).")
    if not isinstance(info, dict) or not isinstance(spans, list):
        raise CorruptTrace("The trace JSON has no trace info or its spans are not a list.")
    return info, spans


def _info_from_spans(spans: Any) -> dict[str, Any]:
    for raw in spans if isinstance(spans, list) else ():
        attrs = raw.get("attributes") if isinstance(raw, dict) else None
        if isinstance(attrs, dict) and _REQUEST_ID_KEY in attrs:
            return {"trace_id": _decode_json_string(attrs[_REQUEST_ID_KEY]), "state": "OK"}
    return {"state": "OK"}


# From this many spans on, a trace's attribute maps are kept as JSON text as they are read (the
# first ones then too): decoded, 100k spans' maps would take hundreds of MB more. Smaller traces
# keep them decoded until the cache write, which makes that text anyway (`LazyAttributes.packed`).
STOW_SPANS = 20_000


def parse_trace(payload: bytes | bytearray | str | dict[str, Any],
                token: CancelToken | None = None) -> Trace:
    """A `Trace` from a REST `traces/get` response, a `Trace.to_json()` document or a
    `traces.json` artifact; raises `CorruptTrace` saying what is wrong. The garbage collector
    rests meanwhile: its passes over the many new objects would cost more than the parse.

    Bytes and text are read with `loads_trace_doc`, and each span's JSON is freed as soon as
    its span is built: freeing the whole document at the end is one long call that holds the
    GIL (about 0.1 s for 100k spans). `token` cancels the read."""
    with gc_paused():
        if isinstance(payload, bytes | bytearray | str):
            trace = _parse_trace(loads_trace_doc(payload, token), owned=True)
        else:
            trace = _parse_trace(payload, owned=False)
        freeze_if_big(len(trace.spans))
        return trace


def _parse_trace(doc: Any, owned: bool) -> Trace:
    info_json, raw_spans = _split(doc)
    del doc
    try:
        info = TraceInfo.from_json(info_json)
        fallback_start_ns = info.request_time_ms * 1_000_000
        ids: dict[str, str] = {}
        spans: list[Span] = []
        stowed = 0
        for i, raw in enumerate(raw_spans):
            spans.append(_span(raw, ids, fallback_start_ns))
            if owned:
                raw_spans[i] = None
            while i >= STOW_SPANS and stowed <= i:  # a big trace's maps: kept as text at once
                cast(LazyAttributes, spans[stowed].attributes).stow()
                stowed += 1
    except CorruptTrace:
        raise
    except (KeyError, TypeError, AttributeError, ValueError, binascii.Error) as exc:
        raise CorruptTrace(f"The trace JSON has an unexpected shape: {exc!r}") from exc
    return Trace.build(info, spans)


def artifact_document(info: dict[str, Any], spans: bytes) -> bytes:
    """A `Trace.to_json()`-format document from a trace info and the bytes of its `traces.json`
    artifact, for `parse_trace`. Spliced rather than parsed and dumped again: the artifact can
    be large, parse_trace reads it once anyway (and reports a cut-off artifact as
    CorruptTrace)."""
    return b'{"info": ' + json.dumps(info).encode() + b', "data": ' + spans + b"}"


def load_trace_file(path: str | Path) -> Trace:
    """Read a trace saved as JSON (either format `parse_trace` accepts)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"Cannot read the trace file {path}: {exc.strerror or exc}") from exc
    try:
        return parse_trace(data)
    except CorruptTrace as exc:
        raise CorruptTrace(f"{path}: {exc}") from exc


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _b64_id(hex_id: str | None) -> str | None:
    if not hex_id:
        return None
    try:
        return base64.b64encode(bytes.fromhex(hex_id)).decode("ascii")
    except ValueError:
        return hex_id


def _attribute_texts(span: Span) -> dict[str, str]:
    attrs = span.attributes
    if isinstance(attrs, LazyAttributes):
        texts = {key: attrs.json_text(key) for key in attrs}
    else:
        texts = {key: json.dumps(value, default=_json_default) for key, value in attrs.items()}
    if span.span_type != "UNKNOWN":
        texts.setdefault(SPAN_TYPE_KEY, json.dumps(span.span_type))
    return texts


def dump_trace(trace: Trace) -> bytes:
    """The trace as MLflow's `Trace.to_json()` writes it (readable by `parse_trace` and by
    `mlflow.entities.Trace.from_json`)."""
    trace_id = trace.info.trace_id
    otel_trace_id = _b64_id(trace_id.removeprefix("tr-")) if trace_id.startswith("tr-") else None
    spans = [{
        "trace_id": otel_trace_id,
        "span_id": _b64_id(s.span_id),
        "parent_span_id": _b64_id(s.parent_id),
        "name": s.name,
        "start_time_unix_nano": s.start_ns,
        "end_time_unix_nano": s.end_ns,
        "events": [{"name": e.name, "time_unix_nano": e.time_ns, "attributes": dict(e.attributes)}
                   for e in s.events],
        "status": {"code": f"STATUS_CODE_{s.status}", "message": s.status_message},
        "attributes": _attribute_texts(s),
        "links": [],
    } for s in trace.spans]
    doc = {"info": trace.info.to_json(), "data": {"spans": spans}}
    return json.dumps(doc, default=_json_default).encode("utf-8")


# -- the cache's packed form ------------------------------------------------------------------
# {"info": ..., "spans": [row, ...]} with one row per span, in trace order: [span_id, parent_id,
# name, span_type, start_ns, end_ns, status, status_message, attributes codec, attributes as
# JSON text, events]. The attributes stay one string per span until the span is looked at, so
# reading a trace back costs a fraction of parsing the server's response.
_PACK_BATCH = 500  # spans encoded per call: a short hold of the GIL


def _packed_row(span: Span) -> list[Any]:
    attrs = span.attributes
    codec, text = (attrs.packed() if isinstance(attrs, LazyAttributes)
                   else ("json", json.dumps(_attribute_texts(span))))
    events = [[e.name, e.time_ns, dict(e.attributes)] for e in span.events]
    return [span.span_id, span.parent_id, span.name, span.span_type, span.start_ns, span.end_ns,
            span.status, span.status_message, codec, text, events]


def write_packed(trace: Trace, write: Callable[[bytes], Any],
                 token: CancelToken | None = None) -> None:
    """Write the trace in the packed form through `write`, a batch of spans at a time."""
    write(b'{"info": ' + json.dumps(trace.info.to_json(), default=_json_default).encode()
          + b', "spans": [')
    spans = trace.spans
    for start in range(0, len(spans), _PACK_BATCH):
        if token is not None:
            token.check()
        rows = json.dumps([_packed_row(s) for s in spans[start:start + _PACK_BATCH]],
                          default=_json_default)
        write(((", " if start else "") + rows[1:-1]).encode())
    write(b"]}")


def parse_packed(raw: bytes, token: CancelToken | None = None) -> Trace:
    """The trace `write_packed` wrote; CorruptTrace if `raw` is not one. Each row is freed once
    its span is built (as in `parse_trace`)."""
    with gc_paused():
        doc = loads_trace_doc(raw, token)
        try:
            info = TraceInfo.from_json(doc["info"])
            rows = doc["spans"]
            del doc
            spans = []
            for i, (span_id, parent_id, name, span_type, start_ns, end_ns, status, message,
                    codec, text, events) in enumerate(rows):
                spans.append(Span(span_id, parent_id, name, span_type, start_ns, end_ns, status,
                                  message, LazyAttributes.unpacked(codec, text),
                                  tuple(SpanEvent(*event) for event in events)))
                rows[i] = None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CorruptTrace(f"This is not a packed trace: {exc!r}") from exc
        trace = Trace.build(info, spans)
        freeze_if_big(len(trace.spans))
        return trace
