"""MLflow trace filter strings: clauses, building with correct quoting, and parsing back.

A filter is a list of `Clause(field, op, value)` joined by AND (the server has no OR, NOT or
parentheses; the app offers OR as alternatives, see `alternatives` and `core.search`). The field
catalog `FIELDS` says, for a rows UI, which fields exist, their labels, operators and value kinds.

Field names are canonical: `session`, `user`, `client_request_id`, `request_id`, `status`,
`name`, `timestamp_ms`, `end_time_ms`, `execution_time_ms`, `run_id`, `prompt`, `issue.id`,
`span.name`, `span.type`, `span.status`, `span.content`, and keyed fields written as
`<prefix>.<key>`: `tags.<k>`, `metadata.<k>`, `feedback.<k>`, `expectation.<k>`,
`span.attributes.<k>` (the key may itself hold dots: `tags.mlflow.trace.session`).

`session` and `user` are the app's own fields: they match `mlflow.trace.session`/`.user` in the
tags or in the trace metadata (apps store them in either). In a string they are written in the
tags form, which `parse` reads back as `session`/`user`; `alternatives` expands them into the
AND-only strings whose union is the filter."""

from __future__ import annotations

import ast
import itertools
import math
import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from traceviewer.core.errors import BadFilter
from traceviewer.core.model import SESSION_KEY, USER_KEY

Value = str | int | float | tuple[str, ...] | None


class ValueKind(StrEnum):
    """What a value editor should offer for a field (and, via `FieldSpec.value_kind`, an op)."""

    TEXT = "text"  # a quoted string
    CHOICE = "choice"  # a quoted string, usually one of `FieldSpec.choices`
    NUMBER = "number"  # an unquoted number
    TIME = "time"  # epoch ms; also accepts "24h"-style presets and ISO dates (see resolve_time)
    ASSESSMENT = "assessment"  # quoted text for =, != and LIKE; a number for <, <=, >, >=
    LIST = "list"  # IN / NOT IN: a tuple of strings
    NONE = "none"  # IS NULL / IS NOT NULL: no value


NULL_OPS = ("IS NULL", "IS NOT NULL")
LIST_OPS = ("IN", "NOT IN")
PATTERN_OPS = ("LIKE", "ILIKE", "RLIKE")
ORDER_OPS = ("<", "<=", ">", ">=")
# Operator sets the server (MLflow 3.17.2 SQL store) accepts per kind of field.
_TAG_OPS = ("=", "!=", *PATTERN_OPS, *NULL_OPS)
_ATTR_TEXT_OPS = ("=", "!=", *LIST_OPS, *PATTERN_OPS)
_NUMERIC_OPS = ("=", "!=", *ORDER_OPS)
_ASSESSMENT_OPS = ("=", "!=", *ORDER_OPS, *PATTERN_OPS, *NULL_OPS)
_SPAN_OPS = ("=", "!=", *LIST_OPS, *PATTERN_OPS)

STATES = ("OK", "ERROR", "IN_PROGRESS")
SPAN_STATUSES = ("OK", "ERROR", "UNSET")
SPAN_TYPES = ("CHAIN", "CHAT_MODEL", "LLM", "RETRIEVER", "TOOL", "AGENT", "EMBEDDING",
              "RERANKER", "PARSER", "UNKNOWN")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One filterable field: its canonical name, label, operators and value kind."""

    name: str
    label: str
    kind: ValueKind
    ops: tuple[str, ...]
    keyed: bool = False  # the clause field is `<name>.<key>`, e.g. a tag name
    choices: tuple[str, ...] = ()
    help: str = ""

    def value_kind(self, op: str) -> ValueKind:
        """The kind of value `op` takes on this field."""
        if op in NULL_OPS:
            return ValueKind.NONE
        if op in LIST_OPS:
            return ValueKind.LIST
        if self.kind is ValueKind.ASSESSMENT:
            return ValueKind.NUMBER if op in ORDER_OPS else ValueKind.TEXT
        return self.kind


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("session", "Session", ValueKind.TEXT, _TAG_OPS,
              help="mlflow.trace.session in the trace's tags or metadata"),
    FieldSpec("user", "User", ValueKind.TEXT, _TAG_OPS,
              help="mlflow.trace.user in the trace's tags or metadata"),
    FieldSpec("client_request_id", "Client request ID", ValueKind.TEXT, _ATTR_TEXT_OPS),
    FieldSpec("request_id", "Trace ID", ValueKind.TEXT, _ATTR_TEXT_OPS, help="tr-…"),
    FieldSpec("status", "State", ValueKind.CHOICE, _ATTR_TEXT_OPS, choices=STATES,
              help="case-sensitive"),
    FieldSpec("name", "Trace name", ValueKind.TEXT, _TAG_OPS),
    FieldSpec("timestamp_ms", "Request time", ValueKind.TIME, _NUMERIC_OPS,
              help="epoch ms; presets like 1h, 24h, 7d mean that long ago; ISO dates"),
    FieldSpec("end_time_ms", "End time", ValueKind.TIME, _NUMERIC_OPS),
    FieldSpec("execution_time_ms", "Execution time (ms)", ValueKind.NUMBER, _NUMERIC_OPS),
    FieldSpec("run_id", "Run ID", ValueKind.TEXT, _TAG_OPS, help="metadata mlflow.sourceRun"),
    FieldSpec("tags", "Tag", ValueKind.TEXT, _TAG_OPS, keyed=True),
    FieldSpec("metadata", "Metadata", ValueKind.TEXT, _TAG_OPS, keyed=True),
    FieldSpec("feedback", "Feedback", ValueKind.ASSESSMENT, _ASSESSMENT_OPS, keyed=True,
              help="by assessment name; compare numbers with <, >, text or true/false with ="),
    FieldSpec("expectation", "Expectation", ValueKind.ASSESSMENT, _ASSESSMENT_OPS, keyed=True),
    FieldSpec("span.name", "Span name", ValueKind.TEXT, _SPAN_OPS, help="any span matches"),
    FieldSpec("span.type", "Span type", ValueKind.CHOICE, _SPAN_OPS, choices=SPAN_TYPES),
    FieldSpec("span.status", "Span status", ValueKind.CHOICE, _SPAN_OPS, choices=SPAN_STATUSES),
    FieldSpec("span.content", "Span content", ValueKind.TEXT, ("LIKE", "ILIKE"),
              help="full text of any span (inputs, outputs, attributes); use %fragment%"),
    FieldSpec("span.attributes", "Span attribute", ValueKind.TEXT, PATTERN_OPS, keyed=True,
              help="pattern on the JSON-encoded value, e.g. LIKE '%lookup%'"),
    FieldSpec("prompt", "Linked prompt", ValueKind.TEXT, ("=",), help="name/version"),
    FieldSpec("issue.id", "Issue", ValueKind.TEXT, ("=",)),
)
_BY_NAME = {spec.name: spec for spec in FIELDS}
_KEYED = sorted((s for s in FIELDS if s.keyed), key=lambda s: -len(s.name))
# Virtual field -> the tag/metadata key it stands for.
_VIRTUAL = {"session": SESSION_KEY, "user": USER_KEY}


@dataclass(frozen=True, slots=True)
class Clause:
    """One condition: `field op value` (value None for IS [NOT] NULL, a tuple for IN)."""

    field: str
    op: str
    value: Value = None

    @property
    def spec(self) -> FieldSpec:
        """The field's catalog entry (BadFilter if the field is unknown)."""
        return split_field(self.field)[0]

    @property
    def key(self) -> str | None:
        """The tag/metadata/assessment/attribute key of a keyed field, else None."""
        return split_field(self.field)[1]


def split_field(field: str) -> tuple[FieldSpec, str | None]:
    """(catalog entry, key) of a canonical field name: `tags.a.b` -> (Tag, "a.b")."""
    spec = _BY_NAME.get(field)
    if spec is not None and not spec.keyed:
        return spec, None
    for spec in _KEYED:
        if field.startswith(spec.name + ".") and len(field) > len(spec.name) + 1:
            return spec, field[len(spec.name) + 1:]
    raise BadFilter(f"Unknown filter field {field!r}.")


# -- building --------------------------------------------------------------------------------

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_FRAGMENT_HINT = ("MLflow filter strings have no escape characters, so it cannot be matched "
                  "exactly; use LIKE with a fragment that avoids it, e.g. LIKE '%fragment%'.")


def quote_key(key: str) -> str:
    """A tag/metadata/assessment key as the server reads it: bare if a plain name, else in
    backticks (dots would otherwise split it)."""
    if not key:
        raise BadFilter("A tag, metadata or assessment key cannot be empty.")
    if _PLAIN_KEY.match(key) and key.upper() not in _KEYWORDS:  # tags.IN would not parse
        return key
    if "`" in key:
        raise BadFilter(f"The key {key!r} contains a backtick, which filter strings cannot "
                        "express.")
    return f"`{key}`"


def quote_value(value: str) -> str:
    """A string value in the quotes the server reads verbatim: '…', or "…" if it holds a '.
    Values holding both quote kinds (or ending in a backslash) cannot be written."""
    if "'" in value and '"' in value:
        raise BadFilter(f"The value {value!r} contains both ' and \". " + _FRAGMENT_HINT)
    if value.endswith("\\"):
        # The server's tokenizer reads \' as an escaped quote, so the string would not end.
        raise BadFilter(f"The value {value!r} ends with a backslash. " + _FRAGMENT_HINT)
    return f'"{value}"' if "'" in value else f"'{value}'"


def _list_literal(value: str) -> str:
    """An IN-list item: the server decodes lists as Python literals, so escapes are needed."""
    if value.endswith("\\"):
        raise BadFilter(f"The value {value!r} ends with a backslash. " + _FRAGMENT_HINT)
    return repr(value)


# Keys MLflow's filter parser (SearchTraceUtils._replace_key_to_tag_or_metadata, 3.17.2)
# rewrites, compared in lower case and after removing backticks or quotes, under every prefix
# but span.: such a tag, metadata or assessment key cannot be named in a filter at all.
_REWRITTEN_KEYS = {
    "name": "the trace name (write name = '…' for that)",
    "prompt": "the trace's linked prompts (write prompt = 'name/version' for that)",
    "run_id": "the source run, metadata mlflow.sourceRun (write run_id = '…' for that)",
    "text": "the full text of the spans (write span.content LIKE '%…%' for that)",
    "timestamp": "the key timestamp_ms",
    "execution_time": "the key execution_time_ms",
    "end_time": "the key end_time_ms",
}
_REWRITTEN_PREFIXES = ("tags", "metadata", "feedback", "expectation")


def check_key(prefix: str, key: str) -> None:
    """BadFilter if the server would read `prefix.key` as something else (see
    _REWRITTEN_KEYS): `tags.name = 'x'` matches traces *named* x, whatever the quoting."""
    meaning = _REWRITTEN_KEYS.get(key.lower())
    if meaning is not None and prefix in _REWRITTEN_PREFIXES:
        raise BadFilter(
            f"MLflow reads {prefix}.{key} as {meaning}, whatever the quotes or backticks, so a "
            f"{_PREFIX_NOUNS[prefix]} named {key!r} cannot be searched on the server.")


_PREFIX_NOUNS = {"tags": "tag", "metadata": "metadata key", "feedback": "feedback",
                 "expectation": "expectation"}


def field_key(field: str) -> str:
    """The server's identifier for a canonical field: `tags.a.b` -> tags.`a.b`."""
    spec, key = split_field(field)
    if spec.name in _VIRTUAL:
        return f"tags.{quote_key(_VIRTUAL[spec.name])}"
    if key is None:
        return spec.name
    check_key(spec.name, key)
    return f"{spec.name}.{quote_key(key)}"


# Time range presets of the filter builder and the Overview ("that long ago").
TIME_PRESETS = ("1h", "24h", "7d", "30d")

_RELATIVE = re.compile(r"(\d+)\s*([smhdw])\Z")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def resolve_time(value: str | int | float, now_ms: int | None = None) -> int:
    """Epoch ms of a time value: epoch ms as a number or digits, a relative preset meaning
    that long ago (`30m`, `1h`, `24h`, `7d`, `2w`), or an ISO date/date-time (local time
    unless it carries an offset or Z)."""
    if isinstance(value, bool):
        raise BadFilter(f"{value!r} is not a time.")
    if isinstance(value, int | float):
        return _checked_time(value)
    text = value.strip()
    if text.isdigit():
        return _checked_time(_number(text, "A time"))
    m = _RELATIVE.match(text.lower())
    if m:
        now = int(time.time() * 1000) if now_ms is None else now_ms
        return now - int(m.group(1)) * _UNIT_MS[m.group(2)]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadFilter(
            f"{value!r} is not a time: use a preset like 1h, 24h or 7d, an ISO date such as "
            "2026-11-25 or 2026-11-25T13:00:00Z, or epoch milliseconds.") from None
    if len(text) == 10:  # a bare date means its midnight, local time
        moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
    return round(moment.timestamp() * 1000)


def _checked_time(value: int | float) -> int:
    _checked_number(value, "A time")
    if abs(value) >= _MAX_TIME:
        raise BadFilter(f"A time of {value:.3g} ms is too large: the server compares times "
                        f"below {_MAX_TIME:,} ms.")
    return int(value)


def _render_value(clause: Clause, spec: FieldSpec, now_ms: int | None) -> str:
    kind = spec.value_kind(clause.op)
    value = clause.value
    if kind is ValueKind.NONE:
        return ""
    if kind is ValueKind.LIST:
        items = (value,) if isinstance(value, str) else value
        if not isinstance(items, tuple | list) or not items:
            raise BadFilter(f"{clause.op} on {spec.label} needs a list of values.")
        return " (" + ", ".join(_list_literal(str(v)) for v in items) + ")"
    if kind is ValueKind.TIME:
        if value is None or isinstance(value, tuple):
            raise BadFilter(f"{spec.label} needs a time.")
        if isinstance(value, float):  # epoch ms with a fraction: kept, not cut to an int
            _checked_time(value)
            return f" {_number_text(value, spec)}"
        return f" {resolve_time(value, now_ms)}"
    if kind is ValueKind.NUMBER:
        if isinstance(value, str):
            value = _number(value, spec.label)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise BadFilter(f"{spec.label} {clause.op} needs a number.")
        return f" {_number_text(value, spec)}"
    if value is None or isinstance(value, tuple):
        raise BadFilter(f"{spec.label} {clause.op} needs a value.")
    # Booleans and numbers in = comparisons are quoted too: the server requires it.
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return " " + quote_value(text)


def _number_text(value: int | float, spec: FieldSpec) -> str:
    """Plain decimal digits: the server's tokenizer reads no exponents, inf or nan."""
    _checked_number(value, spec.label)
    text = f"{Decimal(repr(value)):f}"
    # A float keeps its point so that it reads back as a float (1e16 -> 10000000000000000.0).
    return text + ".0" if isinstance(value, float) and "." not in text else text


# The server stores times as 64-bit integers; no double has more than 309 integer digits.
_MAX_TIME = 2 ** 63
_MAX_DIGITS = 309


def _checked_number(value: int | float, label: str) -> int | float:
    """`value` if it is a finite number (BadFilter otherwise)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise BadFilter(f"{label} needs a finite number, not {value!r}.")
    return value


def _number(text: str, label: str) -> int | float:
    digits = text.lstrip("-").partition(".")[0]
    if len(digits) > _MAX_DIGITS:
        # Python refuses int() beyond 4,300 digits (and float() makes it inf): say so plainly.
        raise BadFilter(f"{label}: a {len(digits):,}-digit number is too large to compare.")
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise BadFilter(f"{label} needs a number, not {text!r}.") from None


def render(clause: Clause, now_ms: int | None = None) -> str:
    """One clause as filter text, validated against the field catalog."""
    spec = clause.spec
    if clause.op not in spec.ops:
        raise BadFilter(f"{spec.label} does not support {clause.op}; use one of: "
                        + ", ".join(spec.ops) + ".")
    return f"{field_key(clause.field)} {clause.op}{_render_value(clause, spec, now_ms)}"


def build(clauses: Sequence[Clause], now_ms: int | None = None) -> str:
    """The filter string for clauses ANDed (session/user in their tags form)."""
    return " AND ".join(render(c, now_ms) for c in clauses)


def _expand(clause: Clause) -> list[list[Clause]]:
    """Alternatives (OR of AND-lists) for one clause: session/user look in tags and metadata."""
    key = _VIRTUAL.get(clause.field)
    if key is None:
        return [[clause]]
    tag = Clause(f"tags.{key}", clause.op, clause.value)
    meta = Clause(f"metadata.{key}", clause.op, clause.value)
    # "No session" means absent from both places; any other test matches either place.
    return [[tag, meta]] if clause.op == "IS NULL" else [[tag], [meta]]


def alternatives(clauses: Sequence[Clause], now_ms: int | None = None) -> list[str]:
    """AND-only server filter strings whose union is the filter (one unless session/user
    clauses need both their tags and metadata forms)."""
    options = [_expand(c) for c in clauses]
    strings = [build([c for part in combo for c in part], now_ms)
               for combo in itertools.product(*options)]
    return list(dict.fromkeys(strings))


# Convenience builders (command-line flags, quick filters).

def session(value: str) -> Clause:
    """Traces of this session (tags or metadata)."""
    return Clause("session", "=", value)


def user(value: str) -> Clause:
    """Traces of this user (tags or metadata)."""
    return Clause("user", "=", value)


def tag(key: str, value: str) -> Clause:
    """Traces whose tag `key` equals `value`."""
    quote_key(key)
    check_key("tags", key)
    return Clause(f"tags.{key}", "=", value)


def status(value: str) -> Clause:
    """Traces in this state (OK, ERROR, IN_PROGRESS); the server is case-sensitive."""
    state = value.upper()
    if state not in STATES:
        raise BadFilter(f"Unknown state {value!r}: use one of " + ", ".join(STATES) + ".")
    return Clause("status", "=", state)


def since(value: str, now_ms: int | None = None) -> Clause:
    """Traces requested at or after a time (a preset like 24h, an ISO date or epoch ms)."""
    return Clause("timestamp_ms", ">=", resolve_time(value, now_ms))


def client_request_id(value: str) -> Clause:
    """The trace(s) with this client request id."""
    return Clause("client_request_id", "=", value)


# -- parsing ---------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<num>-?\d+(?:\.\d+)?(?![\w.]))
  | (?P<word>[^\W\d]\w*)
  | (?P<bq>`[^`]*`)
  | (?P<str>'[^']*'|"[^"]*")
  | (?P<op>!=|>=|<=|==+|<>|=|<|>|!)
  | (?P<punct>[.(),])
""", re.VERBOSE)
# Inside IN (...) the server reads the list with Python's literal_eval: backslash escapes count.
_LIST_TOKEN = re.compile(r"""
    (?P<str>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
  | (?P<punct>[(),])
""", re.VERBOSE)
_SPACE = re.compile(r"\s*")


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # num | word | bq | str | op | punct | end
    text: str
    pos: int


def _lex(text: str, pos: int, pattern: re.Pattern[str]) -> _Tok:
    """The token at `pos` (after any whitespace)."""
    space = _SPACE.match(text, pos)
    assert space is not None  # \s* matches at every position
    pos = space.end()
    if pos == len(text):
        return _Tok("end", "", pos)
    m = pattern.match(text, pos)
    if m is None:
        char = text[pos]
        if char in "'\"`":
            raise BadFilter(f"Unterminated {char} quote starting at character {pos + 1}.", pos)
        raise BadFilter(f"Unexpected character {char!r} at character {pos + 1}.", pos)
    if m.lastgroup == "str" and pattern is _TOKEN:
        _check_string(text, m.start(), m.end())
    return _Tok(m.lastgroup or "", m.group(), pos)


def _check_string(text: str, start: int, end: int) -> None:
    """Reject the escape spellings the server silently takes literally ('O''Brien', 'O\\'B')."""
    quote = text[start]
    other = "'" if quote == '"' else '"'
    escaped = text[end:end + 1] == quote or text[end - 2:end - 1] == "\\"
    if escaped:
        raise BadFilter(
            f"The string at character {start + 1} uses an escape ({quote}{quote} or \\{quote}), "
            f"but MLflow filters have no escapes: the server would look for those characters "
            f"literally. Put a value containing {quote} in {other}…{other} quotes instead.",
            start)


_PREFIXES = {"tags": "tags", "tag": "tags", "metadata": "metadata",
             "request_metadata": "metadata", "feedback": "feedback",
             "expectation": "expectation"}
_ATTRIBUTE_PREFIXES = ("attributes", "attribute", "trace")
_ATTRIBUTE_ALIASES = {"timestamp": "timestamp_ms", "execution_time": "execution_time_ms",
                      "end_time": "end_time_ms", "text": "span.content"}
_SPAN_FIELDS = ("name", "type", "status", "content")
_KEYWORDS = {"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE", "RLIKE"}
_NO_OR = ("MLflow filters have no OR: every condition is joined by AND. Add the alternative as "
          "a separate filter (the app runs each and merges the results).")


def _show(tok: _Tok) -> str:
    return repr(tok.text) if tok.kind != "end" else "the end"


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self._peeked: _Tok | None = None

    @property
    def tok(self) -> _Tok:
        """The next token (not consumed)."""
        if self._peeked is None:
            self._peeked = _lex(self.text, self.pos, _TOKEN)
        return self._peeked

    def take(self, pattern: re.Pattern[str] = _TOKEN) -> _Tok:
        """Consume the next token, lexed with `pattern`."""
        tok = self.tok if pattern is _TOKEN else _lex(self.text, self.pos, pattern)
        self._peeked = None
        self.pos = tok.pos + len(tok.text)
        return tok

    def word(self, tok: _Tok | None = None) -> str | None:
        tok = tok or self.tok
        return tok.text.upper() if tok.kind == "word" else None

    def fail(self, message: str, tok: _Tok | None = None) -> BadFilter:
        pos = (tok or self.tok).pos
        return BadFilter(f"{message} (at character {pos + 1})", pos)

    def parse(self) -> list[Clause]:
        clauses: list[Clause] = []
        while self.tok.kind != "end":
            clauses.append(self.clause())
            if self.tok.kind == "end":
                break
            if self.word() == "OR":
                raise self.fail(_NO_OR)
            if self.word() != "AND":
                raise self.fail(f"Expected AND between conditions, found {_show(self.tok)}")
            self.take()  # a trailing AND is tolerated, as the server does
        return clauses

    def clause(self) -> Clause:
        tok = self.tok
        if self.word() == "NOT":
            raise self.fail("MLflow filters have no NOT: use !=, NOT IN or IS NULL instead")
        if tok.text == "(":
            raise self.fail("MLflow filters have no parentheses: join conditions with AND; "
                            "for OR add a separate filter")
        if self.word() in ("AND", "OR"):
            raise self.fail(f"Expected a condition before {tok.text}")
        field = self.identifier()
        op_tok = self.tok
        op = self.operator()
        spec = split_field(field)[0]
        if op not in spec.ops:
            raise self.fail(f"{spec.label} does not support {op}; use one of: "
                            + ", ".join(spec.ops), op_tok)
        value = self.value(spec, op)
        return Clause(field, op, value)

    def identifier(self) -> str:
        start = self.tok
        parts: list[_Tok] = []
        while True:
            tok = self.tok
            if tok.kind not in ("word", "bq", "str") or (
                    not parts and self.word(tok) in _KEYWORDS):
                raise self.fail(f"Expected a field name, found {_show(tok)}")
            if tok.kind == "str" and tok.text[0] == "'":
                raise self.fail("A field name cannot be in single quotes (use backticks)")
            parts.append(self.take())
            if not (self.tok.text == "." and self.tok.kind == "punct"):
                break
            self.take()
        return self._field(parts, start)

    def _field(self, parts: list[_Tok], start: _Tok) -> str:
        head = parts[0].text
        rest = parts[1:]

        def key_of(segments: list[_Tok]) -> str:
            if not segments:
                raise self.fail(f"{head} needs a key, e.g. {head}.`my.key`", start)
            if len(segments) == 1 and segments[0].kind in ("bq", "str"):
                return segments[0].text[1:-1]
            if any(s.kind != "word" for s in segments):
                raise self.fail("Quote the whole key in backticks, e.g. tags.`a.b`", start)
            return ".".join(s.text for s in segments)

        if parts[0].kind == "word" and head in _PREFIXES:
            prefix = _PREFIXES[head]
            key = key_of(rest)
            if not key:
                raise self.fail("A key cannot be empty", start)
            if prefix == "tags":
                for virtual, virtual_key in _VIRTUAL.items():
                    if key == virtual_key:
                        return virtual
            try:
                check_key(prefix, key)
            except BadFilter as exc:
                raise self.fail(str(exc).rstrip("."), start) from None
            return f"{prefix}.{key}"
        if parts[0].kind == "word" and head == "span":
            if rest and rest[0].kind == "word" and rest[0].text == "attributes":
                return f"span.attributes.{key_of(rest[1:])}"
            if len(rest) == 1 and rest[0].text in _SPAN_FIELDS:
                return f"span.{rest[0].text}"
            raise self.fail("Unknown span field: use span.name, span.type, span.status, "
                            "span.content or span.attributes.<key>", start)
        if parts[0].kind == "word" and head == "issue":
            if len(rest) == 1 and rest[0].text == "id":
                return "issue.id"
            raise self.fail("Unknown issue field: use issue.id", start)
        if parts[0].kind == "word" and head in _ATTRIBUTE_PREFIXES and rest:
            if len(rest) != 1 or rest[0].kind != "word":
                raise self.fail(f"Unknown attribute {self._span_text(rest)!r}", start)
            return self._attribute(rest[0])
        if len(parts) == 1 and parts[0].kind == "word":
            return self._attribute(parts[0])
        raise self.fail(f"Unknown field {self._span_text(parts)!r}: use tags.<key>, "
                        "metadata.<key>, feedback.<name>, span.<field> or an attribute such as "
                        "status or timestamp_ms", start)

    def _attribute(self, tok: _Tok) -> str:
        name = _ATTRIBUTE_ALIASES.get(tok.text, tok.text)
        spec = _BY_NAME.get(name)
        if spec is None or spec.keyed or spec.name in _VIRTUAL or "." in tok.text:
            hint = " (the state field is called status)" if tok.text == "state" else ""
            raise self.fail(f"Unknown field {tok.text!r}{hint}", tok)
        return name

    def _span_text(self, parts: list[_Tok]) -> str:
        return self.text[parts[0].pos:parts[-1].pos + len(parts[-1].text)]

    def operator(self) -> str:
        tok = self.take()
        if tok.kind == "op":
            if tok.text in ("=", "!=", "<", "<=", ">", ">="):
                return tok.text
            raise self.fail(f"Unknown operator {tok.text!r}: use =, !=, <, <=, >, >=, LIKE, "
                            "ILIKE, RLIKE, IN, NOT IN, IS NULL or IS NOT NULL", tok)
        word = self.word(tok)
        if word in ("LIKE", "ILIKE", "RLIKE", "IN"):
            return word
        if word == "NOT" and self.word() == "IN":
            self.take()
            return "NOT IN"
        if word == "IS":
            if self.word() == "NOT":
                self.take()
                if self.word() == "NULL":
                    self.take()
                    return "IS NOT NULL"
            elif self.word() == "NULL":
                self.take()
                return "IS NULL"
            raise self.fail("Expected IS NULL or IS NOT NULL", tok)
        raise self.fail(f"Expected an operator, found {_show(tok)}", tok)

    def value(self, spec: FieldSpec, op: str) -> Value:
        kind = spec.value_kind(op)
        if kind is ValueKind.NONE:
            return None
        if kind is ValueKind.LIST:
            return self.string_list()
        tok = self.take()
        if kind in (ValueKind.NUMBER, ValueKind.TIME):
            if tok.kind != "num":
                raise self.fail(f"{spec.label} {op} needs a number without quotes", tok)
            return _checked_number(_number(tok.text, spec.label), spec.label)
        if tok.kind == "str":
            return tok.text[1:-1]
        if tok.kind in ("num", "word"):
            raise self.fail(f"Put the value in quotes: '{tok.text}'", tok)
        raise self.fail(f"Expected a quoted value, found {_show(tok)}", tok)

    def string_list(self) -> tuple[str, ...]:
        opening = self.take()
        if opening.text != "(":
            raise self.fail("IN needs a list in parentheses: ('a', 'b')", opening)
        items: list[str] = []
        while True:
            tok = self.take(_LIST_TOKEN)
            if tok.kind != "str":
                raise self.fail("Expected a quoted value in the list", tok)
            items.append(_list_item(tok))
            sep = self.take(_LIST_TOKEN)
            if sep.text == ")":
                return tuple(items)
            if sep.text != ",":
                raise self.fail("Expected , or ) in the list", sep)


def _list_item(tok: _Tok) -> str:
    """A list item decoded as the server does (Python literal syntax)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "invalid escape sequence" stays literal
            value: str = ast.literal_eval(tok.text)  # a quoted string token: a str
            return value
    except (SyntaxError, ValueError):
        raise BadFilter(f"Invalid escape in the string at character {tok.pos + 1}.",
                        tok.pos) from None


def parse_field(text: str) -> str:
    """The canonical field of an identifier as written in a filter or an order_by key."""
    parser = _Parser(text)
    field = parser.identifier()
    if parser.tok.kind != "end":
        raise parser.fail(f"Unexpected {_show(parser.tok)} after the field name")
    return field


def parse(text: str) -> list[Clause]:
    """Clauses of a filter string, accepting the server's aliases (tag./tags., metadata./
    request_metadata., attributes./trace./bare, backticked or double-quoted keys, lowercase
    keywords, a trailing AND). Raises BadFilter with the 0-based `position` of the problem."""
    return _Parser(text).parse()

