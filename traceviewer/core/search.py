"""Search beyond one page: traces with de-duplication and a client-side OR, and experiments.

The server pages with offset tokens, which shift when new traces arrive (a trace can come back
on the next page), and it has no OR. `iter_traces` runs one paged query per AND-only filter,
merges the streams in the query's order and yields each trace once."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from traceviewer.core import filters as flt
from traceviewer.core.cancel import CancelToken
from traceviewer.core.errors import BadFilter
from traceviewer.core.model import Experiment, TraceInfo

DEFAULT_ORDER = ("timestamp_ms DESC",)
PAGE_SIZE = 100
MAX_PAGE_SIZE = 500  # the server's limit for trace search


class TraceSearcher(Protocol):
    """What trace search needs from `RestClient`."""

    def search_traces(self, experiment_ids: Sequence[str], filter: str | None = None,
                      order_by: str | Sequence[str] | None = None, max_results: int = 100,
                      page_token: str | None = None, token: CancelToken | None = None
                      ) -> tuple[list[TraceInfo], str | None]: ...


# Canonical order_by field -> the TraceInfo value the server sorts by.
_SORT_VALUES: dict[str, Callable[[TraceInfo], Any]] = {
    "timestamp_ms": lambda t: t.request_time_ms,
    "execution_time_ms": lambda t: t.duration_ms,
    "end_time_ms": lambda t: t.request_time_ms + (t.duration_ms or 0),
    "status": lambda t: t.state,
    "name": lambda t: t.name,
    "request_id": lambda t: t.trace_id,
    "run_id": lambda t: t.metadata.get("mlflow.sourceRun"),
    "session": lambda t: t.session,
    "user": lambda t: t.user,
}


class _Desc:
    """Reverses the order of a sort value (strings included) for a descending key."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return bool(other.value < self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value

    __hash__ = None  # type: ignore[assignment]


def _sort_value(field: str) -> Callable[[TraceInfo], Any]:
    getter = _SORT_VALUES.get(field)
    if getter is not None:
        return getter
    spec, key = flt.split_field(field)
    if key is not None and spec.name == "tags":
        return lambda t: t.tags.get(key)
    if key is not None and spec.name == "metadata":
        return lambda t: t.metadata.get(key)
    raise BadFilter(f"Cannot order traces by {field!r}: use timestamp_ms, execution_time_ms, "
                    "status, name, request_id, run_id, tags.<key> or metadata.<key>.")


def sort_key(order_by: Sequence[str]) -> Callable[[TraceInfo], tuple[Any, ...]]:
    """A key putting traces in the server's order for `order_by` (plus its tie-breakers:
    timestamp_ms DESC, request_id ASC; NULLs first ascending, last descending, as SQLite)."""
    parts: list[tuple[str, bool]] = []
    for text in order_by:
        words = text.split()
        descending = len(words) > 1 and words[-1].upper() == "DESC"
        if len(words) > 1 and words[-1].upper() in ("ASC", "DESC"):
            words = words[:-1]
        parts.append((flt.parse_field(" ".join(words)), descending))
    fields = {f for f, _ in parts}
    if "timestamp_ms" not in fields:
        parts.append(("timestamp_ms", True))
    if "request_id" not in fields:
        parts.append(("request_id", False))
    getters = [(_sort_value(f), desc) for f, desc in parts]

    def key(info: TraceInfo) -> tuple[Any, ...]:
        values = []
        for get, desc in getters:
            value = get(info)
            item = (value is not None, value if value is not None else 0)
            values.append(_Desc(item) if desc else item)
        return tuple(values)

    return key


def _stream(client: TraceSearcher, experiment_ids: Sequence[str], filter_text: str,
            order_by: Sequence[str], page_size: int,
            token: CancelToken | None) -> Iterator[TraceInfo]:
    """Every trace of one AND-only query, page by page."""
    page_token = None
    while True:
        if token is not None:
            token.check()
        infos, page_token = client.search_traces(
            experiment_ids, filter=filter_text or None, order_by=list(order_by),
            max_results=page_size, page_token=page_token, token=token)
        yield from infos
        if not page_token or not infos:
            return


def iter_traces(client: TraceSearcher, experiment_ids: Sequence[str],
                filters: Sequence[str] = ("",), order_by: Sequence[str] | None = None,
                page_size: int = PAGE_SIZE, token: CancelToken | None = None,
                limit: int | None = None) -> Iterator[list[TraceInfo]]:
    """Pages of the traces matching ANY of `filters` (each an AND-only server filter string),
    in `order_by` order (newest first by default), each trace once, at most `limit` in all.
    Checks `token` before every request and reports the running count as progress."""
    order = tuple(order_by or DEFAULT_ORDER)
    queries = list(dict.fromkeys(filters)) or [""]
    size = max(1, min(page_size, MAX_PAGE_SIZE, limit or MAX_PAGE_SIZE))
    streams = [_stream(client, experiment_ids, q, order, size, token) for q in queries]
    merged = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=sort_key(order))
    seen: set[str] = set()
    page: list[TraceInfo] = []
    for info in merged:
        if info.trace_id in seen:
            continue
        seen.add(info.trace_id)
        page.append(info)
        if len(page) == size or len(seen) == limit:
            yield page
            if token is not None:
                token.progress(len(seen))
            page = []
            if len(seen) == limit:
                return
    if page:
        yield page
        if token is not None:
            token.progress(len(seen))


def search_all(client: TraceSearcher, experiment_ids: Sequence[str],
               filters: Sequence[str] = ("",), order_by: Sequence[str] | None = None,
               page_size: int = PAGE_SIZE, token: CancelToken | None = None,
               limit: int | None = None) -> list[TraceInfo]:
    """All traces `iter_traces` yields, as one list."""
    return [info for page in iter_traces(client, experiment_ids, filters, order_by, page_size,
                                         token, limit) for info in page]


def find_by_client_request_id(client: TraceSearcher, experiment_ids: Sequence[str],
                              client_request_id: str,
                              token: CancelToken | None = None) -> list[TraceInfo]:
    """The traces an app recorded under this client request id (newest first)."""
    text = flt.build([flt.client_request_id(client_request_id)])
    return search_all(client, experiment_ids, [text], token=token)


class ExperimentSearcher(Protocol):
    """What experiment search needs from `RestClient`."""

    def search_experiments(self, filter: str | None = None, max_results: int = 100,
                           page_token: str | None = None, token: CancelToken | None = None
                           ) -> tuple[list[Experiment], str | None]: ...


class WorkspaceSearcher(TraceSearcher, ExperimentSearcher, Protocol):
    """What a search across every experiment of a workspace needs."""


# Experiments per trace search when a lookup spans a whole workspace (one query each).
EXPERIMENTS_PER_QUERY = 100


def find_by_client_request_id_everywhere(client: WorkspaceSearcher, client_request_id: str,
                                         token: CancelToken | None = None
                                         ) -> tuple[list[TraceInfo], list[Experiment]]:
    """The traces recorded under this client request id in any active experiment of the
    workspace (newest first), and the experiments that were searched."""
    experiments = [e for page in iter_experiments(client, token=token) for e in page]
    found: list[TraceInfo] = []
    for start in range(0, len(experiments), EXPERIMENTS_PER_QUERY):
        ids = [e.experiment_id for e in experiments[start:start + EXPERIMENTS_PER_QUERY]]
        found.extend(find_by_client_request_id(client, ids, client_request_id, token))
    found.sort(key=lambda t: (-t.request_time_ms, t.trace_id))
    return found, experiments


def experiment_name_filter(text: str) -> str | None:
    """The server-side filter for experiment names containing `text`, ignoring case (None for
    blank text). `%` and `_` in `text` act as wildcards: the server has no escape for them."""
    text = text.strip()
    if not text:
        return None
    return f"name ILIKE {flt.quote_value('%' + text + '%')}"


def iter_experiments(client: ExperimentSearcher, name_contains: str = "",
                     page_size: int = 100,
                     token: CancelToken | None = None) -> Iterator[list[Experiment]]:
    """Pages of the active experiments whose name contains `name_contains` (any case)."""
    text = experiment_name_filter(name_contains)
    page_token = None
    while True:
        if token is not None:
            token.check()
        experiments, page_token = client.search_experiments(
            filter=text, max_results=page_size, page_token=page_token, token=token)
        if experiments:
            yield experiments
        if not page_token or not experiments:
            return
