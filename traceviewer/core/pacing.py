"""One request budget per workspace host, shared by every `RestClient` of that host in the
process: a token bucket that keeps trace and experiment searches under the server's rate, and a
pause that a 429's Retry-After sets for every thread at once.

Databricks limits trace search to about 25 requests per second per workspace (its tracing FAQ);
the budget paces searches a little below that, so many views searching at once (the table, the
sessions and users summaries, an export, the branches of a client-side OR) share the rate instead
of each meeting 429s. Open-source servers have no such limit: only the pause applies there."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from traceviewer.core.cancel import CancelToken

# Below Databricks' 25/s, so the server's own bucket (which may count a little differently)
# never runs dry; a small burst lets a view's first pages go out at once.
DATABRICKS_SEARCH_RATE = 20.0
DATABRICKS_SEARCH_BURST = 10.0
# A Retry-After beyond this is not waited for here: the retry policy gives up instead.
MAX_PAUSE_S = 120.0
_SLICE_S = 0.1


@dataclass(frozen=True, slots=True)
class Rate:
    """Requests per second with bursts up to `burst`."""

    per_s: float
    burst: float


DATABRICKS_SEARCH = Rate(DATABRICKS_SEARCH_RATE, DATABRICKS_SEARCH_BURST)


class Budget:
    """The request budget of one host. Thread-safe.

    `acquire()` before each request waits for the pause (after a 429) to end and, for a paced
    kind of request, for a token; `pause(seconds)` makes every thread's next request wait."""

    def __init__(self, search: Rate | None = None):
        self._lock = threading.Lock()
        self._search = search
        self._tokens = search.burst if search else 0.0
        self._at = time.monotonic()  # tokens are counted up to this time
        self._paused_until = 0.0
        self.waited_s = 0.0  # total time requests waited here (for figures and tests)
        self.pauses = 0

    @property
    def search_rate(self) -> Rate | None:
        return self._search

    def limit_search(self, rate: Rate) -> None:
        """Pace searches at `rate`, or keep the current rate when it is lower."""
        with self._lock:
            if self._search is None or rate.per_s < self._search.per_s:
                self._search = rate
                self._tokens = min(self._tokens, rate.burst)

    def acquire(self, *, search: bool, token: CancelToken | None = None,
                closed: Callable[[], bool] | None = None) -> None:
        """Wait until this request may go: after any pause and, for a search, once a token is
        free (reserved at once, so waiting threads go in turn). `token` cancels the wait
        (`Cancelled`); the wait also ends when `closed()` turns true (the caller then finds
        its client closed)."""
        with self._lock:
            now = time.monotonic()
            ready = self._paused_until
            if search and self._search is not None:
                ready = max(ready, self._reserve(now, self._search))
        waited = 0.0
        while (left := ready - time.monotonic()) > 0:
            _sleep(min(left, _SLICE_S), token)
            waited += min(left, _SLICE_S)
            if closed is not None and closed():
                return
            with self._lock:
                # A 429 met by another thread while this one waited: wait for its pause too.
                ready = max(ready, self._paused_until)
        if waited:
            with self._lock:
                self.waited_s += waited

    def _reserve(self, now: float, rate: Rate) -> float:
        """Take one search token (possibly into debt); the time it is actually there."""
        if now > self._at:
            self._tokens = min(rate.burst, self._tokens + (now - self._at) * rate.per_s)
            self._at = now
        self._tokens -= 1
        debt = max(0.0, -self._tokens)
        return self._at + debt / rate.per_s

    def pause(self, seconds: float) -> None:
        """The server asked to wait (429 + Retry-After): every request of this host waits
        `seconds` (at most MAX_PAUSE_S), and searches restart from an empty bucket."""
        seconds = min(max(0.0, seconds), MAX_PAUSE_S)
        with self._lock:
            until = time.monotonic() + seconds
            self.pauses += 1
            if until > self._paused_until:
                self._paused_until = until
            if self._search is not None and until > self._at:
                self._tokens = min(self._tokens, 0.0)
                self._at = until


_BUDGETS: dict[str, Budget] = {}
_BUDGETS_LOCK = threading.Lock()


def budget_for(host: str, search: Rate | None = None) -> Budget:
    """The process-wide budget of `host` (a normalized base URL), created on first use; a
    `search` rate limits it (the lowest rate asked for wins)."""
    with _BUDGETS_LOCK:
        budget = _BUDGETS.get(host)
        if budget is None:
            budget = _BUDGETS[host] = Budget(search)
            return budget
    if search is not None:
        budget.limit_search(search)
    return budget


def _sleep(seconds: float, token: CancelToken | None) -> None:
    if token is not None:
        token.sleep(seconds)
    else:
        time.sleep(seconds)
