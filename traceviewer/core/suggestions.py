"""Values seen in an experiment, for the filter builder's suggestions: users, sessions, trace
names, tag and metadata values, assessment names and values, counted over the traces loaded so
far and a background sample, most frequent first."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Sequence

from traceviewer.core.cancel import CancelToken
from traceviewer.core.model import SESSION_KEY, USER_KEY, TraceInfo
from traceviewer.core.search import TraceSearcher, iter_traces

SAMPLE_SIZE = 500  # traces read in the background for suggestions
_MAX_VALUE_LENGTH = 200  # longer values (previews pasted into tags) are not worth suggesting
_ASSESSMENT_PREFIXES = ("feedback", "expectation")


class ValueCounts:
    """Counts of the values each filter field took in the traces seen (thread-safe: a
    background sample and the GUI's loaded pages both add to it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, Counter[str]] = {}
        self._keys: dict[str, Counter[str]] = {}
        self._seen: set[str] = set()

    def add(self, infos: Iterable[TraceInfo]) -> None:
        """Count these traces' values (a trace already counted is skipped)."""
        with self._lock:
            for info in infos:
                if info.trace_id in self._seen:
                    continue
                self._seen.add(info.trace_id)
                self._count(info)

    def _value(self, field: str, value: object) -> None:
        text = value if isinstance(value, str) else None
        if isinstance(value, bool):
            text = str(value).lower()
        elif isinstance(value, int | float):
            text = str(value)
        if text and len(text) <= _MAX_VALUE_LENGTH:
            self._values.setdefault(field, Counter())[text] += 1

    def _count(self, info: TraceInfo) -> None:
        self._value("user", info.user)
        self._value("session", info.session)
        self._value("name", info.name)
        for prefix, mapping in (("tags", info.tags), ("metadata", info.metadata)):
            keys = self._keys.setdefault(prefix, Counter())
            for key, value in mapping.items():
                if key in (SESSION_KEY, USER_KEY):
                    continue
                keys[key] += 1
                self._value(f"{prefix}.{key}", value)
        for assessment in info.assessments:
            prefix = assessment.kind if assessment.kind in _ASSESSMENT_PREFIXES else "feedback"
            self._keys.setdefault(prefix, Counter())[assessment.name] += 1
            self._value(f"{prefix}.{assessment.name}", assessment.value)

    @property
    def traces(self) -> int:
        """How many traces were counted."""
        with self._lock:
            return len(self._seen)

    def values(self, field: str, typed: str = "", limit: int = 50) -> list[str]:
        """Values of `field` (a canonical filter field: user, session, name, tags.<k>, …)
        containing `typed` (any case), most frequent first, ties alphabetical."""
        with self._lock:
            counts = self._values.get(field)
            return _top(counts, typed, limit) if counts else []

    def keys(self, prefix: str, typed: str = "", limit: int = 50) -> list[str]:
        """Keys seen under `prefix` (tags, metadata, feedback, expectation), most used first."""
        with self._lock:
            counts = self._keys.get(prefix)
            return _top(counts, typed, limit) if counts else []


def _top(counts: Counter[str], typed: str, limit: int) -> list[str]:
    needle = typed.casefold()
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [v for v, _ in ranked if needle in v.casefold()][:limit]


def sample(client: TraceSearcher, experiment_ids: Sequence[str], counts: ValueCounts,
           token: CancelToken | None = None, size: int = SAMPLE_SIZE) -> ValueCounts:
    """Add the newest `size` traces of the experiments to `counts` (page by page, so a
    cancelled sample keeps what it read) and return it."""
    for page in iter_traces(client, experiment_ids, token=token, limit=size,
                            page_size=min(size, 500)):
        counts.add(page)
    return counts
