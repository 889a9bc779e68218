"""Sessions and users of a trace search, for the sessions and users views.

`Aggregator` folds pages of `TraceInfo` into per-session and per-user summaries as they stream
in; `Turn` is one trace read as a conversation turn (what the user asked, what the app answered)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from traceviewer.core import filters as flt
from traceviewer.core.export import feedback_summary
from traceviewer.core.model import TraceInfo


@dataclass
class SessionSummary:
    """One session so far: its traces, errors and time span (epoch ms)."""

    session: str
    user: str | None = None
    traces: int = 0
    errors: int = 0
    first_ms: int = 0
    last_ms: int = 0
    first_request: str = ""  # the readable request of its oldest trace, to recognise it by


@dataclass
class UserSummary:
    """One user so far: traces, distinct sessions, errors, last request time (epoch ms)."""

    user: str
    traces: int = 0
    errors: int = 0
    last_seen_ms: int = 0
    sessions: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Update:
    """What one page changed: copies of the touched summaries (new ones in first-seen order)
    and the running counts. Copies, so the aggregating thread can go on meanwhile."""

    traces: int
    without_session: int
    without_user: int
    sessions: tuple[SessionSummary, ...]
    users: tuple[UserSummary, ...]


class Aggregator:
    """Accumulates sessions and users from pages of traces as they stream in.

    Dicts keep first-seen order, so when traces stream newest first (the search default) a
    session or user first seen later is never newer than one already listed."""

    def __init__(self) -> None:
        self.by_session: dict[str, SessionSummary] = {}
        self.by_user: dict[str, UserSummary] = {}
        self.traces = 0
        self.without_session = 0
        self.without_user = 0

    def add(self, infos: Iterable[TraceInfo]) -> Update:
        """Fold a page in; returns what it changed."""
        sessions: dict[str, SessionSummary] = {}
        users: dict[str, UserSummary] = {}
        for info in infos:
            self.traces += 1
            error = info.state == "ERROR"
            t = info.request_time_ms
            if info.session:
                s = self.by_session.get(info.session)
                if s is None:
                    s = self.by_session[info.session] = SessionSummary(
                        info.session, info.user, first_ms=t, last_ms=t)
                s.traces += 1
                s.errors += error
                if t <= s.first_ms:
                    s.first_request = readable(info.request_preview)
                s.first_ms, s.last_ms = min(s.first_ms, t), max(s.last_ms, t)
                s.user = s.user or info.user
                sessions[s.session] = s
            else:
                self.without_session += 1
            if info.user:
                u = self.by_user.setdefault(info.user, UserSummary(info.user))
                u.traces += 1
                u.errors += error
                u.last_seen_ms = max(u.last_seen_ms, t)
                if info.session:
                    u.sessions.add(info.session)
                users[u.user] = u
            else:
                self.without_user += 1
        return Update(self.traces, self.without_session, self.without_user,
                      tuple(replace(s) for s in sessions.values()),
                      tuple(replace(u, sessions=set(u.sessions)) for u in users.values()))


def readable(preview: str | None) -> str:
    """The words of a request or response preview: a JSON string, the one string field of an
    object (`{"message": "…"}`), or the last chat message's content; else the preview as is
    (a preview cut at the server's limit is no longer JSON)."""
    if not preview:
        return ""
    try:
        value = json.loads(preview)
    except (ValueError, RecursionError):
        return preview
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        messages = value.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[-1], dict) \
                and isinstance(content := messages[-1].get("content"), str):
            return content
        if len(value) == 1 and isinstance(text := next(iter(value.values())), str):
            return text
    return preview


@dataclass(frozen=True, slots=True)
class Turn:
    """One trace of a conversation, as the sessions view reads it."""

    trace_id: str
    time_ms: int
    request: str
    response: str
    state: str
    duration_ms: int | None
    feedback: str

    @classmethod
    def from_info(cls, info: TraceInfo) -> Turn:
        return cls(info.trace_id, info.request_time_ms, readable(info.request_preview),
                   readable(info.response_preview), info.state, info.duration_ms,
                   feedback_summary(info))


def narrow(filters: Sequence[str], clause: flt.Clause) -> list[str]:
    """AND-only filter strings matching any of `filters` AND `clause` (a session or user
    clause expands to its tags and metadata forms)."""
    return list(dict.fromkeys(
        " AND ".join(part for part in (base, alt) if part)
        for base in (filters or [""]) for alt in flt.alternatives([clause])))
