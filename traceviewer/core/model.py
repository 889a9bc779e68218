"""The trace data model: experiments, trace infos, assessments, spans and span trees.

Everything here is plain data (frozen slotted dataclasses) built from MLflow's JSON. `Trace`
keeps its spans in tree pre-order with aligned `array('i')` links (parent, first child, next
sibling, depth) so a tree view over 100k spans costs a few integers per span, not objects."""

from __future__ import annotations

import calendar
import json
import re
import time
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, TypeGuard

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    return _EMPTY

# RFC 3339 as MLflow writes it: "2026-11-25T13:02:27.771Z", fraction optional, maybe an offset.
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:?\d{2})?$")


def parse_rfc3339_ms(text: str | None) -> int | None:
    """Epoch milliseconds of an RFC 3339 timestamp (integer arithmetic), or None if unreadable."""
    if not isinstance(text, str):
        return None
    m = _RFC3339.match(text.strip())
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, zone = m.groups()
    seconds = calendar.timegm(
        (int(year), int(month), int(day), int(hour), int(minute), int(second)))
    if zone and zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return seconds * 1000 + int((frac or "0")[:3].ljust(3, "0"))


def format_rfc3339_ms(ms: int) -> str:
    """The RFC 3339 UTC form MLflow writes for epoch milliseconds."""
    seconds, millis = divmod(ms, 1000)
    t = time.gmtime(seconds)
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
            f"{t.tm_sec:02d}.{millis:03d}Z")


_DURATION = re.compile(r"(-?)(\d+)(?:\.(\d+))?s$")


def parse_duration_ms(value: Any) -> int | None:
    """Milliseconds of a protobuf JSON Duration ("1.648s") or a plain number of ms."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value)
    if not isinstance(value, str):
        return None
    m = _DURATION.match(value.strip())
    if m is None:
        return None
    sign, whole, frac = m.groups()
    ms = int(whole) * 1000 + int((frac or "0")[:3].ljust(3, "0"))
    return -ms if sign else ms


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    if isinstance(value, float):
        return int(value)
    return None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def str_map(value: Any) -> Mapping[str, str]:
    """A read-only str->str map from a JSON object or a `[{key, value}]` list (v2 style)."""
    if isinstance(value, dict):
        return MappingProxyType({str(k): _str(v) for k, v in value.items()})
    if isinstance(value, list):
        return MappingProxyType({
            str(item["key"]): _str(item.get("value"))
            for item in value if isinstance(item, dict) and "key" in item})
    return _EMPTY


def _json_or_none(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


@dataclass(frozen=True, slots=True)
class Experiment:
    """An MLflow experiment (times in epoch ms)."""

    experiment_id: str
    name: str
    lifecycle_stage: str = "active"
    creation_time_ms: int | None = None
    last_update_time_ms: int | None = None
    tags: Mapping[str, str] = field(default_factory=_empty)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Experiment:
        """From the REST `experiment` object."""
        return cls(
            experiment_id=_str(d.get("experiment_id")),
            name=_str(d.get("name")),
            lifecycle_stage=_str(d.get("lifecycle_stage")) or "active",
            creation_time_ms=_int_or_none(d.get("creation_time")),
            last_update_time_ms=_int_or_none(d.get("last_update_time")),
            tags=str_map(d.get("tags")),
        )


@dataclass(frozen=True, slots=True)
class Assessment:
    """A feedback or expectation attached to a trace. `error` is the failed judge's message."""

    assessment_id: str
    name: str
    trace_id: str
    source_type: str
    source_id: str
    kind: str  # "feedback" | "expectation"
    value: Any
    error: str | None = None
    rationale: str | None = None
    metadata: Mapping[str, str] = field(default_factory=_empty)
    create_time_ms: int | None = None
    last_update_time_ms: int | None = None
    valid: bool = True
    overrides: str | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Assessment:
        """From the REST `assessment` object (also what `Trace.to_json()` writes)."""
        source = d.get("source") or {}
        if isinstance(d.get("expectation"), dict):
            kind, body = "expectation", d["expectation"]
        else:
            kind, body = "feedback", d.get("feedback") or {}
        value = body.get("value")
        serialized = body.get("serialized_value")
        if value is None and isinstance(serialized, dict):
            raw = serialized.get("value")
            value = _json_or_none(raw) if serialized.get(
                "serialization_format") == "JSON_FORMAT" else raw
        error = body.get("error")
        error_text = None
        if isinstance(error, dict):
            code, message = _str(error.get("error_code")), _str(error.get("error_message"))
            error_text = f"{code}: {message}" if code and message else (message or code or None)
        rationale = d.get("rationale")
        overrides = d.get("overrides")
        return cls(
            assessment_id=_str(d.get("assessment_id")),
            name=_str(d.get("assessment_name")),
            trace_id=_str(d.get("trace_id")),
            source_type=_str(source.get("source_type")) or "SOURCE_TYPE_UNSPECIFIED",
            source_id=_str(source.get("source_id")),
            kind=kind,
            value=value,
            error=error_text,
            rationale=rationale if isinstance(rationale, str) else None,
            metadata=str_map(d.get("metadata")),
            create_time_ms=parse_rfc3339_ms(d.get("create_time")),
            last_update_time_ms=parse_rfc3339_ms(d.get("last_update_time")),
            valid=d.get("valid") is not False,
            overrides=overrides if isinstance(overrides, str) and overrides else None,
        )

    def to_json(self) -> dict[str, Any]:
        """The REST `assessment` object (the inverse of `from_json`, minus the error's stack)."""
        body: dict[str, Any] = {"value": self.value}
        if self.error is not None:
            body["error"] = {"error_message": self.error}
        d: dict[str, Any] = {
            "assessment_id": self.assessment_id,
            "assessment_name": self.name,
            "trace_id": self.trace_id,
            "source": {"source_type": self.source_type, "source_id": self.source_id},
            self.kind: body,
            "valid": self.valid,
        }
        if self.rationale is not None:
            d["rationale"] = self.rationale
        if self.metadata:
            d["metadata"] = dict(self.metadata)
        if self.create_time_ms is not None:
            d["create_time"] = format_rfc3339_ms(self.create_time_ms)
        if self.last_update_time_ms is not None:
            d["last_update_time"] = format_rfc3339_ms(self.last_update_time_ms)
        if self.overrides:
            d["overrides"] = self.overrides
        return d


SESSION_KEY = "mlflow.trace.session"
USER_KEY = "mlflow.trace.user"
TRACE_NAME_TAG = "mlflow.traceName"
TOKEN_USAGE_KEY = "mlflow.trace.tokenUsage"
SIZE_STATS_KEY = "mlflow.trace.sizeStats"


@dataclass(frozen=True, slots=True)
class TraceInfo:
    """One trace's summary as trace search returns it (v3 `trace_info`)."""

    trace_id: str
    client_request_id: str | None
    experiment_id: str
    request_time_ms: int
    duration_ms: int | None
    state: str
    request_preview: str | None = None
    response_preview: str | None = None
    tags: Mapping[str, str] = field(default_factory=_empty)
    metadata: Mapping[str, str] = field(default_factory=_empty)
    assessments: tuple[Assessment, ...] = ()

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TraceInfo:
        """From a v3 `trace_info` (REST) or the `info` of `Trace.to_json()`."""
        location = d.get("trace_location") or {}
        experiment = location.get("mlflow_experiment") or {}
        duration = d.get("execution_duration")
        if duration is None:
            duration = d.get("execution_duration_ms")
        request_time = d.get("request_time")
        request_ms = (_int_or_none(request_time) if isinstance(request_time, int)
                      else parse_rfc3339_ms(request_time))
        assessments = d.get("assessments") or ()
        return cls(
            trace_id=_str(d.get("trace_id")),
            client_request_id=d.get("client_request_id") or None,
            experiment_id=_str(experiment.get("experiment_id")),
            request_time_ms=request_ms or 0,
            duration_ms=parse_duration_ms(duration),
            state=_str(d.get("state")) or "STATE_UNSPECIFIED",
            request_preview=d.get("request_preview"),
            response_preview=d.get("response_preview"),
            tags=str_map(d.get("tags")),
            metadata=str_map(d.get("trace_metadata")),
            assessments=tuple(Assessment.from_json(a) for a in assessments
                              if isinstance(a, dict)),
        )

    def to_json(self) -> dict[str, Any]:
        """The `info` object of MLflow's `Trace.to_json()` (inverse of `from_json`)."""
        d: dict[str, Any] = {
            "trace_id": self.trace_id,
            "trace_location": {"type": "MLFLOW_EXPERIMENT",
                               "mlflow_experiment": {"experiment_id": self.experiment_id}},
            "request_time": format_rfc3339_ms(self.request_time_ms),
            "state": self.state,
            "trace_metadata": dict(self.metadata),
            "tags": dict(self.tags),
        }
        if self.client_request_id is not None:
            d["client_request_id"] = self.client_request_id
        if self.request_preview is not None:
            d["request_preview"] = self.request_preview
        if self.response_preview is not None:
            d["response_preview"] = self.response_preview
        if self.duration_ms is not None:
            d["execution_duration_ms"] = self.duration_ms
        if self.assessments:
            d["assessments"] = [a.to_json() for a in self.assessments]
        return d

    def _tag_or_metadata(self, key: str) -> str | None:
        return self.tags.get(key) or self.metadata.get(key) or None

    @property
    def name(self) -> str | None:
        """The trace name (tag `mlflow.traceName`); None while the root span is missing."""
        return self.tags.get(TRACE_NAME_TAG) or None

    @property
    def session(self) -> str | None:
        """Session id from the tags (`tags=`) or else the metadata (`session_id=`)."""
        return self._tag_or_metadata(SESSION_KEY)

    @property
    def user(self) -> str | None:
        """User id from the tags or else the metadata."""
        return self._tag_or_metadata(USER_KEY)

    @property
    def token_usage(self) -> dict[str, Any] | None:
        """Trace-level token counts (`input_tokens`, `output_tokens`, `total_tokens`), if any."""
        usage = _json_or_none(self.metadata.get(TOKEN_USAGE_KEY))
        return usage if isinstance(usage, dict) else None

    @property
    def num_spans(self) -> int | None:
        """The span count the server recorded (sizeStats), to tell a partial trace."""
        stats = _json_or_none(self.metadata.get(SIZE_STATS_KEY))
        return _int_or_none(stats.get("num_spans")) if isinstance(stats, dict) else None


@dataclass(frozen=True, slots=True)
class SpanEvent:
    """A span event, e.g. an `exception` with `exception.message`/`type`/`stacktrace`."""

    name: str
    time_ns: int
    attributes: Mapping[str, Any] = field(default_factory=_empty)


SPAN_TYPE_KEY = "mlflow.spanType"
INPUTS_KEY = "mlflow.spanInputs"
OUTPUTS_KEY = "mlflow.spanOutputs"
SPAN_TOKEN_USAGE_KEY = "mlflow.chat.tokenUsage"


@dataclass(frozen=True, slots=True)
class Span:
    """One span. Ids are hex; times are epoch ns ints; `attributes` holds decoded values."""

    span_id: str
    parent_id: str | None
    name: str
    span_type: str
    start_ns: int
    end_ns: int | None
    status: str  # "OK" | "ERROR" | "UNSET"
    status_message: str = ""
    attributes: Mapping[str, Any] = field(default_factory=_empty)
    events: tuple[SpanEvent, ...] = ()
    orphan: bool = False

    @property
    def inputs(self) -> Any:
        return self.attributes.get(INPUTS_KEY)

    @property
    def outputs(self) -> Any:
        return self.attributes.get(OUTPUTS_KEY)

    @property
    def duration_ns(self) -> int | None:
        """None while the span is still running."""
        return None if self.end_ns is None else self.end_ns - self.start_ns

    @property
    def exceptions(self) -> tuple[SpanEvent, ...]:
        return tuple(e for e in self.events if e.name == "exception")

    @property
    def token_usage(self) -> dict[str, Any] | None:
        usage = self.attributes.get(SPAN_TOKEN_USAGE_KEY)
        return usage if isinstance(usage, dict) else None

    @property
    def chat_messages(self) -> tuple[Mapping[str, Any], ...] | None:
        """The conversation of a chat span: request `messages` plus the reply, else None."""
        inputs = self.inputs
        messages = inputs.get("messages") if isinstance(inputs, dict) else None
        if not _is_message_list(messages):
            return None
        reply = _reply_message(self.outputs)
        return tuple(messages) + ((reply,) if reply is not None else ())


def _is_message_list(value: Any) -> TypeGuard[list[Mapping[str, Any]]]:
    return isinstance(value, list) and bool(value) and all(
        isinstance(m, dict) and "role" in m for m in value)


def _reply_message(outputs: Any) -> Mapping[str, Any] | None:
    """The assistant message of an OpenAI-style response or a bare message dict."""
    if not isinstance(outputs, dict):
        return None
    choices = outputs.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict) and "role" in message:
            return message
    return outputs if "role" in outputs and "content" in outputs else None


@dataclass(frozen=True, slots=True)
class Trace:
    """A trace's spans in tree pre-order with aligned links (-1 = none).

    Build with `Trace.build(info, spans)`; children are ordered by start time; orphans (parent
    not in the trace, or a parent link that closed a cycle) are roots with `Span.orphan` set.
    `duplicates` counts the spans dropped because another had the same span id (a span
    exported twice): one is kept per id, and the count says the input held more."""

    info: TraceInfo
    spans: tuple[Span, ...]
    parent: array[int]
    first_child: array[int]
    next_sibling: array[int]
    depth: array[int]
    duplicates: int = 0

    @classmethod
    def build(cls, info: TraceInfo, spans: Sequence[Span]) -> Trace:
        """Order `spans` into a tree (deduplicating ids, breaking cycles); O(n log n).

        Iterative throughout, so a 100k-deep chain cannot hit the recursion limit."""
        # Duplicate span ids (re-exports): keep a finished copy over a running one, else the
        # later one, so the choice does not depend on anything but the input order.
        index: dict[str, int] = {}
        uniq: list[Span] = []
        duplicates = 0
        for s in spans:
            j = index.get(s.span_id)
            if j is None:
                index[s.span_id] = len(uniq)
                uniq.append(s)
                continue
            duplicates += 1
            if s.end_ns is not None or uniq[j].end_ns is None:
                uniq[j] = s
        n = len(uniq)
        par = [-1] * n
        orphan = bytearray(n)
        for i, s in enumerate(uniq):
            if s.parent_id:
                p = index.get(s.parent_id, -1)
                if p == -1 or p == i:
                    orphan[i] = 1
                else:
                    par[i] = p
        _break_cycles(uniq, par, orphan)

        # Link children by start time (stable: ties keep input order), prepending in reverse.
        starts = [s.start_ns for s in uniq]
        fc = [-1] * n
        ns = [-1] * n
        root_head = -1
        for i in reversed(sorted(range(n), key=starts.__getitem__)):
            p = par[i]
            if p == -1:
                ns[i] = root_head
                root_head = i
            else:
                ns[i] = fc[p]
                fc[p] = i

        # Pre-order walk over the links, then renumber everything into walk order.
        pre: list[int] = []
        depth_old = [0] * n
        node, d = root_head, 0
        while node != -1:
            pre.append(node)
            depth_old[node] = d
            if fc[node] != -1:
                node, d = fc[node], d + 1
                continue
            while node != -1 and ns[node] == -1:
                node, d = par[node], d - 1
            if node != -1:
                node = ns[node]
        new_of = [0] * n
        for new, old in enumerate(pre):
            new_of[old] = new

        def renumbered(links: list[int]) -> array[int]:
            return array("i", [-1 if links[o] == -1 else new_of[links[o]] for o in pre])

        return cls(
            info=info,
            spans=tuple(replace(uniq[o], orphan=True) if orphan[o] else uniq[o] for o in pre),
            parent=renumbered(par),
            first_child=renumbered(fc),
            next_sibling=renumbered(ns),
            depth=array("i", [depth_old[o] for o in pre]),
            duplicates=duplicates,
        )

    @property
    def roots(self) -> list[int]:
        """Indices of the top-level spans (the root and any orphans), by start time."""
        out = []
        i = 0 if self.spans else -1
        while i != -1:
            out.append(i)
            i = self.next_sibling[i]
        return out

    def children(self, i: int) -> Iterator[int]:
        """Indices of span i's children, by start time."""
        c = self.first_child[i]
        while c != -1:
            yield c
            c = self.next_sibling[c]

    @property
    def partial(self) -> bool:
        """Fewer spans than the server says the trace has (still exporting, or lost)."""
        expected = self.info.num_spans
        return expected is not None and len(self.spans) < expected

    @property
    def in_progress(self) -> bool:
        """The trace is still running: state IN_PROGRESS or a span without an end time."""
        return self.info.state == "IN_PROGRESS" or any(s.end_ns is None for s in self.spans)

    @property
    def start_ns(self) -> int | None:
        return min((s.start_ns for s in self.spans), default=None)

    @property
    def end_ns(self) -> int | None:
        """The latest end (or start, for running spans) of any span."""
        return max((s.end_ns if s.end_ns is not None else s.start_ns for s in self.spans),
                   default=None)


def _break_cycles(spans: list[Span], par: list[int], orphan: bytearray) -> None:
    """Cut each parent cycle at its earliest-starting span, which becomes an orphan root."""
    state = bytearray(len(par))  # 0 unseen, 1 on the current path, 2 done
    for i in range(len(par)):
        path = []
        j = i
        while j != -1 and state[j] == 0:
            state[j] = 1
            path.append(j)
            j = par[j]
        if j != -1 and state[j] == 1:
            cycle = path[path.index(j):]
            cut = min(cycle, key=lambda k: (spans[k].start_ns, spans[k].span_id))
            par[cut] = -1
            orphan[cut] = 1
        for k in path:
            state[k] = 2
