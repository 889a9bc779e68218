"""Statistics of an experiment's traces: counts, errors, latency, tokens and assessments, grouped by
a dimension and bucketed in time, for the Overview tab and `traceviewer stats`.

Two paths give the same numbers on the same data:

- **metrics**: MLflow's trace metrics endpoint (`POST /api/3.0/mlflow/traces/metrics`), which
  aggregates in the server's database. It groups natively only by trace name and state, and
  filters only by equality on tags, metadata and state; so each group value is its own query
  (filtered `trace.tag.KEY = value`), the values found from the newest search page(s) of the
  range. Traces whose value that sample missed are one remainder group (`group` None) whose
  counts, errors, tokens and assessment counts are exact (the total minus the groups) but which
  has no percentiles. MLflow's metrics have no assessment source (no filter or dimension on
  it), so `human_count` comes from one complementary search at the end: only the traces that
  hold one of the assessment names found (`feedback.NAME IS NOT NULL`, and the same for
  expectations, merged and de-duplicated), whose HUMAN assessments are counted client-side.
- **search**: client-side, streaming from trace search pages (newest first), for servers
  without the endpoint (Databricks) or filters it cannot express. Partial results are reported
  after every page, the search is paced by the host's request budget (`core.pacing`), and the
  work is cancellable through its `CancelToken`.

A filter with OR (`StatsQuery.or_groups`, as `core.filter_groups` parses it) always takes the
search path: `core.search.iter_traces` runs one query per AND group and merges them, each trace
counted once. The metrics path refuses it: one metrics query per AND group cannot be added up
where groups overlap (a trace in two would count twice, and percentiles do not add at all),
and the endpoint has no trace ids to de-duplicate by.

Percentiles, both paths: linear interpolation between closest ranks, PERCENTILE_CONT's
definition (`x[floor(i)] + (i - floor(i)) * (x[floor(i)+1] - x[floor(i)])` with
`i = p/100 * (n - 1)` over the sorted latencies), which MLflow's SQLite and PostgreSQL stores
compute; on MySQL MLflow emulates it with PERCENT_RANK, which may differ by at most the gap
between two neighbouring latencies. Latency is the trace's execution duration in ms.

Time buckets start at `floor(request_time_ms / size) * size` (UTC), as MLflow's. The time range
is inclusive at both ends, as the metrics endpoint reads `start_time_ms`/`end_time_ms`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from traceviewer.core import filter_groups, filters, paths, search, storage
from traceviewer.core.bigjson import gc_paused
from traceviewer.core.cancel import CancelToken
from traceviewer.core.client import RestClient
from traceviewer.core.errors import ConfigError, NotFound, Unsupported, UsageError
from traceviewer.core.filters import Clause
from traceviewer.core.model import SESSION_KEY, TRACE_NAME_TAG, USER_KEY, TraceInfo

BUCKETS = {"1m": 60_000, "1h": 3_600_000, "1d": 86_400_000}
BUCKET_CHOICES = ("auto", *BUCKETS, "none")
GROUP_KINDS = ("tag", "metadata", "user", "session", "state", "name")
PERCENTILES = (50, 90, 95, 99)
ERROR_STATE = "ERROR"
HUMAN = "HUMAN"
# How many traces the metrics path reads to learn a tag's or metadata key's values.
VALUE_SAMPLE = 1000
METRICS_PATH = "metrics"
# How often the search path reports its partial result.
PARTIAL_EVERY_S = 0.25
SEARCH_PATH = "search"


# -- what to compute -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class GroupBy:
    """A dimension: `tag:KEY`, `metadata:KEY`, `user`, `session`, `state` or `name`."""

    kind: str
    key: str | None = None

    @classmethod
    def parse(cls, text: str) -> GroupBy:
        """From the command line's `--group-by` form (UsageError when it is none of them)."""
        kind, sep, key = text.strip().partition(":")
        if kind in ("tag", "metadata"):
            if not sep or not key:
                raise UsageError(f"--group-by {kind} needs a key: {kind}:KEY, e.g. tag:environment")
            return cls(kind, key)
        if kind in GROUP_KINDS and not sep:
            return cls(kind)
        raise UsageError(f"Cannot group by {text!r}: use tag:KEY, metadata:KEY, user, session, "
                         "state or name.")

    @property
    def text(self) -> str:
        return f"{self.kind}:{self.key}" if self.key is not None else self.kind

    @property
    def label(self) -> str:
        return self.key if self.key is not None else self.kind

    def value_of(self, info: TraceInfo) -> str | None:
        """The trace's value of this dimension (None when it has none)."""
        if self.kind == "tag":
            return info.tags.get(self.key or "")
        if self.kind == "metadata":
            return info.metadata.get(self.key or "")
        if self.kind == "user":
            return info.user
        if self.kind == "session":
            return info.session
        if self.kind == "state":
            return info.state
        return info.name

    def clause(self, value: str) -> Clause:
        """The filter clause that selects the traces with `value` (drill-down)."""
        if self.kind == "tag":
            return Clause(f"tags.{self.key}", "=", value)
        if self.kind == "metadata":
            return Clause(f"metadata.{self.key}", "=", value)
        if self.kind in ("user", "session"):
            return Clause(self.kind, "=", value)
        if self.kind == "state":
            return Clause("status", "=", value)
        return Clause("name", "=", value)

    def metrics_filters(self, value: str) -> list[list[str]]:
        """The metrics endpoint's filters selecting `value`, as alternatives (user and session
        live in the tags or the metadata)."""
        quoted = _metrics_value(value)
        if self.kind == "tag":
            return [[f"trace.tag.{_metrics_key(self.key or '')} = {quoted}"]]
        if self.kind == "metadata":
            return [[f"trace.metadata.{_metrics_key(self.key or '')} = {quoted}"]]
        if self.kind in ("user", "session"):
            key = _metrics_key(USER_KEY if self.kind == "user" else SESSION_KEY)
            return [[f"trace.tag.{key} = {quoted}"], [f"trace.metadata.{key} = {quoted}"]]
        if self.kind == "state":
            return [[f"trace.status = {quoted}"]]
        return [[f"trace.tag.{_metrics_key(TRACE_NAME_TAG)} = {quoted}"]]


@dataclass(frozen=True, slots=True)
class StatsQuery:
    """An experiment, a time range (`since`: a preset such as 24h, an ISO time or epoch ms; None
    for all time), a filter (`clauses`, OR-ed with the AND groups `or_groups`, as the AppModel's
    Query), a dimension and a bucket size (auto, 1m, 1h, 1d or none)."""

    experiment_id: str
    clauses: tuple[Clause, ...] = ()
    since: str | None = "24h"
    until: str | None = None
    group_by: GroupBy | None = None
    bucket: str = "auto"
    or_groups: tuple[tuple[Clause, ...], ...] = ()

    def __post_init__(self) -> None:
        if self.bucket not in BUCKET_CHOICES:
            raise UsageError(f"Unknown bucket {self.bucket!r}: use {', '.join(BUCKET_CHOICES)}.")

    @classmethod
    def of_groups(cls, experiment_id: str, groups: Sequence[Sequence[Clause]],
                  since: str | None = "24h", until: str | None = None,
                  group_by: GroupBy | None = None, bucket: str = "auto") -> StatsQuery:
        """A query whose filter is `groups` (AND groups joined by OR; [] for every trace)."""
        first, *rest = [tuple(g) for g in groups] or [()]
        if not first or any(not g for g in rest):
            first, rest = (), []  # an empty group matches every trace
        return cls(experiment_id, first, since, until, group_by, bucket, tuple(rest))

    @property
    def groups(self) -> list[list[Clause]]:
        """Every AND group of the filter ([] for every trace)."""
        return filter_groups.joined(self.clauses, self.or_groups)

    @property
    def filter_text(self) -> str:
        return filter_groups.build(self.groups)

    def resolve(self, now_ms: int | None = None) -> Window:
        """The range in epoch ms and the bucket size (None: no buckets)."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        start = filters.resolve_time(self.since, now) if self.since else None
        end = filters.resolve_time(self.until, now) if self.until else now
        if start is not None and start > end:
            raise UsageError("The time range ends before it starts (--since is after --until).")
        return Window(start, end, self._bucket_ms(start, end))

    def _bucket_ms(self, start: int | None, end: int) -> int | None:
        if self.bucket == "none":
            return None
        if self.bucket != "auto":
            return BUCKETS[self.bucket]
        span = end - (start if start is not None else end - 30 * BUCKETS["1d"])
        if span <= 3 * BUCKETS["1h"]:
            return BUCKETS["1m"]
        if span <= 3 * BUCKETS["1d"]:
            return BUCKETS["1h"]
        return BUCKETS["1d"]

    def server_filters(self, window: Window, *extra: Clause) -> list[str]:
        """The AND-only search filters whose union is the query's traces in the window (every
        OR group, each with the `extra` clauses); BadFilter when they are too many to run."""
        within = [Clause("timestamp_ms", "<=", window.end_ms), *extra]
        if window.start_ms is not None:
            within.insert(0, Clause("timestamp_ms", ">=", window.start_ms))
        return filter_groups.checked_server_filters([g + within for g in self.groups or [[]]])

    def key(self, host: str) -> str:
        """A stable key of the query on `host` (the cache's file name)."""
        text = json.dumps([host, self.experiment_id, self.filter_text,
                           self.since, self.until, self.group_by.text if self.group_by else None,
                           self.bucket])
        return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Window:
    start_ms: int | None
    end_ms: int
    bucket_ms: int | None


# -- results -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Latency:
    """Latency in ms by PERCENTILE_CONT (see the module docstring); None without traces."""

    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    mean: float | None = None


@dataclass(frozen=True, slots=True)
class AssessmentStats:
    """One assessment name's valid assessments: `count` (all values, errors too), booleans as
    `passed`/`failed`, numbers' `mean`, other values' `categories`; `human_count` those from
    a HUMAN source (None where the path cannot tell)."""

    count: int = 0
    passed: int = 0
    failed: int = 0
    mean: float | None = None
    numbers: int = 0
    categories: dict[str, int] = field(default_factory=dict)
    human_count: int | None = 0

    @property
    def pass_rate(self) -> float | None:
        judged = self.passed + self.failed
        return self.passed / judged if judged else None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"count": self.count}
        if self.passed or self.failed:
            out["pass_rate"] = self.pass_rate
            out["passed"] = self.passed
        elif self.numbers:
            out["mean"] = self.mean
        elif self.categories:
            out["categories"] = dict(sorted(self.categories.items()))
        out["human_count"] = self.human_count
        return out


@dataclass(frozen=True, slots=True)
class Cell:
    """The numbers of one group in one bucket (`bucket_start` None: the whole range)."""

    group: str | None
    bucket_start: int | None
    traces: int = 0
    errors: int = 0
    latency: Latency = Latency()
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    assessments: dict[str, AssessmentStats] = field(default_factory=dict)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.traces if self.traces else None

    def to_json(self) -> dict[str, Any]:
        """The command line's JSON object (see `traceviewer stats --help`)."""
        out: dict[str, Any] = {"group": self.group}
        if self.bucket_start is not None:
            out["bucket_start"] = iso_ms(self.bucket_start)
        lat = self.latency
        out.update({
            "traces": self.traces, "errors": self.errors,
            "latency_ms": {"p50": lat.p50, "p90": lat.p90, "p99": lat.p99, "mean": lat.mean},
            "tokens": {"input": self.input_tokens, "output": self.output_tokens,
                       "total": self.total_tokens},
            "assessments": {name: a.to_json() for name, a in sorted(self.assessments.items())},
        })
        return out


@dataclass(frozen=True, slots=True)
class StatsResult:
    """What is known so far: `cells` per group and bucket, `totals` per group over the range;
    `read` traces read by the search path (None on the metrics path), `estimated_total` its
    guess of the range's traces; `complete` False while pages are still coming."""

    query: StatsQuery
    window: Window
    path: str
    cells: tuple[Cell, ...]
    totals: tuple[Cell, ...]
    complete: bool
    read: int | None = None
    estimated_total: int | None = None
    computed_at_ms: int = 0
    from_cache: bool = False

    @property
    def groups(self) -> list[str | None]:
        """The group values, most traces first."""
        return [c.group for c in sorted(self.totals, key=lambda c: (-c.traces, str(c.group)))]

    @property
    def empty(self) -> bool:
        return not any(c.traces for c in self.totals)

    def rows(self) -> list[Cell]:
        """The cells the command line prints: per bucket, or the totals for bucket none."""
        return list(self.cells if self.window.bucket_ms is not None else self.totals)

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "query": _query_json(self.query), "window": [
            self.window.start_ms, self.window.end_ms, self.window.bucket_ms], "path": self.path,
            "cells": [_cell_json(c) for c in self.cells],
            "totals": [_cell_json(c) for c in self.totals], "complete": self.complete,
            "read": self.read, "estimated_total": self.estimated_total,
            "computed_at_ms": self.computed_at_ms}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StatsResult:
        if d.get("version") != 1:
            raise ValueError("unknown statistics cache version")
        start, end, bucket = d["window"]
        return cls(query=_query_from_json(d["query"]), window=Window(start, end, bucket),
                   path=str(d["path"]), cells=tuple(_cell_from_json(c) for c in d["cells"]),
                   totals=tuple(_cell_from_json(c) for c in d["totals"]),
                   complete=bool(d["complete"]), read=d.get("read"),
                   estimated_total=d.get("estimated_total"),
                   computed_at_ms=int(d.get("computed_at_ms") or 0), from_cache=True)


def iso_ms(ms: int) -> str:
    """Epoch ms as ISO 8601 UTC (`2026-11-25T13:00:00Z`)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """PERCENTILE_CONT of ascending `sorted_values` at `p` (0-100); None for no values."""
    n = len(sorted_values)
    if not n:
        return None
    index = p / 100 * (n - 1)
    lower = int(index)
    upper = min(lower + 1, n - 1)
    return sorted_values[lower] + (index - lower) * (sorted_values[upper] - sorted_values[lower])


def latency_of(values: Iterable[float]) -> Latency:
    """The latency statistics of `values` (ms)."""
    ordered = sorted(values)
    if not ordered:
        return Latency()
    p50, p90, p95, p99 = (percentile(ordered, p) for p in PERCENTILES)
    return Latency(p50, p90, p95, p99, math.fsum(ordered) / len(ordered))


# -- the search path (client-side) ---------------------------------------------------------------

@dataclass(slots=True)
class _AssessmentAcc:
    count: int = 0
    passed: int = 0
    failed: int = 0
    total: float = 0.0
    numbers: int = 0
    categories: dict[str, int] = field(default_factory=dict)
    human: int = 0

    def add(self, value: Any, human: bool) -> None:
        self.count += 1
        self.human += human
        if isinstance(value, bool):
            if value:
                self.passed += 1
            else:
                self.failed += 1
        elif isinstance(value, int | float):
            self.total += value
            self.numbers += 1
        elif value is not None:
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            self.categories[text] = self.categories.get(text, 0) + 1

    def freeze(self) -> AssessmentStats:
        return AssessmentStats(self.count, self.passed, self.failed,
                               self.total / self.numbers if self.numbers else None, self.numbers,
                               dict(self.categories), self.human)


@dataclass(slots=True)
class _Acc:
    traces: int = 0
    errors: int = 0
    durations: list[float] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    assessments: dict[str, _AssessmentAcc] = field(default_factory=dict)

    def add(self, info: TraceInfo) -> None:
        self.traces += 1
        self.errors += info.state == ERROR_STATE
        if info.duration_ms is not None:
            self.durations.append(float(info.duration_ms))
        usage = info.token_usage or {}
        self.input_tokens += _int(usage.get("input_tokens"))
        self.output_tokens += _int(usage.get("output_tokens"))
        self.total_tokens += _int(usage.get("total_tokens"))
        for a in info.assessments:
            if not a.valid:
                continue  # overridden: MLflow's metrics count only the valid ones too
            acc = self.assessments.get(a.name)
            if acc is None:
                acc = self.assessments[a.name] = _AssessmentAcc()
            acc.add(a.value, a.source_type == HUMAN)

    def freeze(self, group: str | None, bucket: int | None) -> Cell:
        return Cell(group, bucket, self.traces, self.errors, latency_of(self.durations),
                    self.input_tokens, self.output_tokens, self.total_tokens,
                    {name: acc.freeze() for name, acc in self.assessments.items()})


class Aggregation:
    """Client-side statistics, fed trace pages one by one."""

    def __init__(self, query: StatsQuery, window: Window):
        self.query = query
        self.window = window
        self.read = 0
        self.oldest_ms: int | None = None
        self._cells: dict[tuple[str | None, int | None], _Acc] = {}
        self._totals: dict[str | None, _Acc] = {}

    def add(self, infos: Iterable[TraceInfo]) -> None:
        group_by, bucket = self.query.group_by, self.window.bucket_ms
        for info in infos:
            group = group_by.value_of(info) if group_by is not None else None
            self._totals.setdefault(group, _Acc()).add(info)
            if bucket is not None:
                start = info.request_time_ms // bucket * bucket
                self._cells.setdefault((group, start), _Acc()).add(info)
            self.read += 1
            if self.oldest_ms is None or info.request_time_ms < self.oldest_ms:
                self.oldest_ms = info.request_time_ms

    def estimate(self) -> int | None:
        """The range's traces, guessed from how far back the newest-first pages reached."""
        start, oldest = self.window.start_ms, self.oldest_ms
        if start is None or oldest is None or oldest <= start or self.read == 0:
            return None
        covered = self.window.end_ms - oldest
        return max(self.read, round(self.read * (self.window.end_ms - start) / max(covered, 1)))

    def result(self, complete: bool) -> StatsResult:
        cells = tuple(acc.freeze(g, b) for (g, b), acc in sorted(
            self._cells.items(), key=lambda kv: (kv[0][1] or 0, str(kv[0][0]))))
        totals = tuple(acc.freeze(g, None) for g, acc in sorted(
            self._totals.items(), key=lambda kv: str(kv[0])))
        return StatsResult(self.query, self.window, SEARCH_PATH, cells, totals, complete,
                           self.read, self.read if complete else self.estimate(),
                           int(time.time() * 1000))


def from_search(client: search.TraceSearcher, query: StatsQuery, window: Window,
                token: CancelToken | None = None,
                on_partial: Callable[[StatsResult], None] | None = None,
                page_size: int = search.MAX_PAGE_SIZE) -> StatsResult:
    """The statistics aggregated client-side from search pages, newest first; `on_partial`
    gets the result so far after the first page, then at most every PARTIAL_EVERY_S (a
    result sorts every cell's latencies: not worth doing for every page of a big range)."""
    agg = Aggregation(query, window)
    reported = -math.inf
    # The pages' trace infos are acyclic and freed page by page, yet their numbers set off full
    # collections of the whole heap (50-80 ms holding the GIL: a GUI stall) every few pages;
    # so no collection during the whole read (see gc_paused: what it costs, and when).
    with gc_paused():
        for page in search.iter_traces(client, [query.experiment_id],
                                       query.server_filters(window), page_size=page_size,
                                       token=token):
            agg.add(page)
            if on_partial is not None and time.monotonic() - reported >= PARTIAL_EVERY_S:
                reported = time.monotonic()
                on_partial(agg.result(complete=False))
    return agg.result(complete=True)


# -- the metrics path (server-side) --------------------------------------------------------------

METRICS_ROUTE = "/api/3.0/mlflow/traces/metrics"


def query_trace_metrics(client: RestClient, body: dict[str, Any],
                        token: CancelToken | None = None) -> dict[str, Any]:
    """One page of MLflow's trace metrics (the body of `QueryTraceMetrics`, as `rest_store.py`'s
    `query_trace_metrics` sends it): `{"data_points": [{"dimensions", "values"}],
    "next_page_token"}`. Servers without it raise Unsupported (Databricks) or NotFound."""
    return client._json("POST", METRICS_ROUTE, "reading trace metrics", body=body, read=True,
                        token=token)


def metrics_filters(clauses: Sequence[Clause]) -> list[str] | None:
    """The query's filter in the metrics endpoint's terms (equality on tags, metadata, state and
    trace name), or None when it has anything else."""
    out = []
    for c in clauses:
        if c.op != "=" or not isinstance(c.value, str):
            return None
        spec, key = filters.split_field(c.field)
        value = _metrics_value(c.value)
        if spec.name == "tags" and key:
            out.append(f"trace.tag.{_metrics_key(key)} = {value}")
        elif spec.name == "metadata" and key:
            out.append(f"trace.metadata.{_metrics_key(key)} = {value}")
        elif spec.name == "status":
            out.append(f"trace.status = {value}")
        elif spec.name == "name":
            out.append(f"trace.tag.{_metrics_key(TRACE_NAME_TAG)} = {value}")
        else:
            return None
    return out


def _metrics_key(key: str) -> str:
    return key if filters._PLAIN_KEY.match(key) else f"`{key}`"


def _metrics_value(value: str) -> str:
    return filters.quote_value(value)


class _Metrics:
    """The metrics queries of one window: one set per group value's filters."""

    def __init__(self, client: RestClient, query: StatsQuery, window: Window,
                 base: list[str], token: CancelToken | None):
        self.client, self.query, self.window, self.base, self.token = (client, query, window,
                                                                      base, token)

    def points(self, view: str, metric: str, aggregations: list[dict[str, Any]],
               dimensions: Sequence[str], extra: Sequence[str], bucketed: bool
               ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"experiment_ids": [self.query.experiment_id], "view_type": view,
                                "metric_name": metric, "aggregations": aggregations,
                                "max_results": 1000}
        if dimensions:
            body["dimensions"] = list(dimensions)
        if self.base or extra:
            body["filters"] = [*self.base, *extra]
        body["start_time_ms"] = self.window.start_ms if self.window.start_ms is not None else 0
        body["end_time_ms"] = self.window.end_ms
        if bucketed and self.window.bucket_ms is not None:
            body["time_interval_seconds"] = self.window.bucket_ms // 1000
        out: list[dict[str, Any]] = []
        while True:
            if self.token is not None:
                self.token.check()
            data = query_trace_metrics(self.client, body, token=self.token)
            out.extend(p for p in data.get("data_points") or () if isinstance(p, dict))
            page = data.get("next_page_token")
            if not page:
                return out
            body["page_token"] = page

    def cells(self, group: str | None, alternatives: list[list[str]], bucketed: bool
              ) -> dict[int | None, Cell]:
        """The group's cells per bucket (key None when not bucketed), summing alternatives."""
        parts = [self._cells(group, extra, bucketed) for extra in alternatives]
        merged: dict[int | None, Cell] = {}
        for part in parts:
            for bucket, cell in part.items():
                merged[bucket] = _merge(merged[bucket], cell) if bucket in merged else cell
        return merged

    def _cells(self, group: str | None, extra: list[str], bucketed: bool
               ) -> dict[int | None, Cell]:
        def bucket_of(p: dict[str, Any]) -> int | None:
            value = (p.get("dimensions") or {}).get("time_bucket")
            return _bucket_ms(value) if bucketed and value is not None else None

        acc: dict[int | None, dict[str, Any]] = {}

        def slot(p: dict[str, Any]) -> dict[str, Any]:
            return acc.setdefault(bucket_of(p), {"traces": 0, "errors": 0, "lat": Latency(),
                                                 "tokens": {}, "counts": {}, "means": {}})

        for p in self.points("TRACES", "trace_count", [_agg("COUNT")], ["trace_status"], extra,
                             bucketed):
            s, n = slot(p), _int(_value(p, "COUNT"))
            s["traces"] += n
            if (p.get("dimensions") or {}).get("trace_status") == ERROR_STATE:
                s["errors"] += n
        lat_aggs = [_agg("AVG"), *(_agg("PERCENTILE", q) for q in PERCENTILES)]
        for p in self.points("TRACES", "latency", lat_aggs, [], extra, bucketed):
            p50, p90, p95, p99 = (_value(p, f"P{float(q)}") for q in PERCENTILES)
            slot(p)["lat"] = Latency(p50, p90, p95, p99, _value(p, "AVG"))
        for metric in ("input_tokens", "output_tokens", "total_tokens"):
            for p in self.points("TRACES", metric, [_agg("SUM")], [], extra, bucketed):
                slot(p)["tokens"][metric] = _int(_value(p, "SUM"))
        for p in self.points("ASSESSMENTS", "assessment_count", [_agg("COUNT")],
                             ["assessment_name", "assessment_value"], extra, bucketed):
            dims = p.get("dimensions") or {}
            counts = slot(p)["counts"].setdefault(str(dims.get("assessment_name")), {})
            value = dims.get("assessment_value")
            counts[value] = counts.get(value, 0) + _int(_value(p, "COUNT"))
        for p in self.points("ASSESSMENTS", "assessment_value", [_agg("AVG")],
                             ["assessment_name"], extra, bucketed):
            name = str((p.get("dimensions") or {}).get("assessment_name"))
            slot(p)["means"][name] = _value(p, "AVG")
        out: dict[int | None, Cell] = {}
        for bucket, s in acc.items():
            if not s["traces"]:
                continue
            out[bucket] = Cell(group, bucket, s["traces"], s["errors"], s["lat"],
                               s["tokens"].get("input_tokens", 0),
                               s["tokens"].get("output_tokens", 0),
                               s["tokens"].get("total_tokens", 0),
                               {name: _assessment_from_counts(counts, s["means"].get(name))
                                for name, counts in s["counts"].items()})
        return out


def _assessment_from_counts(counts: dict[Any, int], mean: float | None) -> AssessmentStats:
    """An assessment's statistics from its count per stored value (JSON text)."""
    passed = failed = numbers = 0
    categories: dict[str, int] = {}
    for raw, n in counts.items():
        try:
            value = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            value = raw
        if value is True:
            passed += n
        elif value is False:
            failed += n
        elif isinstance(value, int | float):
            numbers += n
        elif value is not None:
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            categories[text] = categories.get(text, 0) + n
    return AssessmentStats(sum(counts.values()), passed, failed, mean if numbers else None,
                           numbers, categories, None)


def _merge(a: Cell, b: Cell) -> Cell:
    """Two disjoint parts of one group (its value in tags, and in metadata). Percentiles merge
    exactly only when one part is empty; otherwise the larger part's are kept."""
    big = a if a.traces >= b.traces else b
    lat = big.latency
    if a.traces and b.traces:
        mean = None
        if a.latency.mean is not None and b.latency.mean is not None:
            mean = (a.latency.mean * a.traces + b.latency.mean * b.traces) / (a.traces + b.traces)
        lat = replace(big.latency, mean=mean)
    return replace(a, traces=a.traces + b.traces, errors=a.errors + b.errors, latency=lat,
                   input_tokens=a.input_tokens + b.input_tokens,
                   output_tokens=a.output_tokens + b.output_tokens,
                   total_tokens=a.total_tokens + b.total_tokens,
                   assessments=_merge_assessments(a.assessments, b.assessments))


def _merge_assessments(a: dict[str, AssessmentStats], b: dict[str, AssessmentStats],
                       sign: int = 1) -> dict[str, AssessmentStats]:
    out = dict(a)
    for name, s in b.items():
        if name not in out:
            out[name] = s if sign > 0 else AssessmentStats()
            if sign > 0:
                continue
        t = out[name]
        cats = dict(t.categories)
        for k, n in s.categories.items():
            cats[k] = cats.get(k, 0) + sign * n
        numbers = t.numbers + sign * s.numbers
        mean = None
        if numbers > 0 and t.mean is not None:
            mean = (t.mean * t.numbers + sign * (s.mean or 0.0) * s.numbers) / numbers
        out[name] = AssessmentStats(t.count + sign * s.count, t.passed + sign * s.passed,
                                    t.failed + sign * s.failed, mean, numbers,
                                    {k: n for k, n in cats.items() if n > 0}, None)
    return {k: v for k, v in out.items() if v.count > 0}


def _remainder(total: Cell, parts: Iterable[Cell]) -> Cell | None:
    """What the total has that the groups do not (exact counts, no percentiles)."""
    rest = replace(total, group=None, latency=Latency())
    lat_sum = (total.latency.mean or 0.0) * total.traces
    for p in parts:
        rest = replace(rest, traces=rest.traces - p.traces, errors=rest.errors - p.errors,
                       input_tokens=rest.input_tokens - p.input_tokens,
                       output_tokens=rest.output_tokens - p.output_tokens,
                       total_tokens=rest.total_tokens - p.total_tokens,
                       assessments=_merge_assessments(rest.assessments, p.assessments, -1))
        lat_sum -= (p.latency.mean or 0.0) * p.traces
    if rest.traces <= 0:
        return None
    return replace(rest, latency=Latency(mean=lat_sum / rest.traces))


def group_values(client: search.TraceSearcher, query: StatsQuery, window: Window,
                 token: CancelToken | None = None, sample: int = VALUE_SAMPLE) -> list[str]:
    """The dimension's values among the newest `sample` traces of the range."""
    assert query.group_by is not None
    seen: dict[str, None] = {}
    for page in search.iter_traces(client, [query.experiment_id], query.server_filters(window),
                                   token=token, limit=sample):
        for info in page:
            value = query.group_by.value_of(info)
            if value is not None:
                seen.setdefault(value, None)
    return list(seen)


def from_metrics(client: Any, query: StatsQuery, window: Window,
                 token: CancelToken | None = None,
                 on_partial: Callable[[StatsResult], None] | None = None) -> StatsResult:
    """The statistics from the server's metrics endpoint (Unsupported/NotFound if it has none,
    UsageError if the filter is beyond it)."""
    if query.or_groups:
        raise UsageError("The metrics endpoint has no OR: a filter with OR is aggregated from "
                         "search pages (--via search).")
    base = metrics_filters(query.clauses)
    if base is None:
        raise UsageError("The metrics endpoint filters only by equality on tags, metadata, "
                         "state and trace name.")
    m = _Metrics(client, query, window, base, token)
    bucketed = window.bucket_ms is not None
    overall = m.cells(None, [[]], False).get(None)
    if query.group_by is None:
        totals = [overall] if overall else []
        cells = list(m.cells(None, [[]], True).values()) if bucketed else []
        return _with_human_counts(client, query, window, cells, totals, None, token)
    values = group_values(client, query, window, token)
    totals, cells = [], []
    for value in values:
        alternatives = query.group_by.metrics_filters(value)
        total = m.cells(value, alternatives, False).get(None)
        if total is None:
            continue
        totals.append(total)
        if bucketed:
            cells.extend(m.cells(value, alternatives, True).values())
        if on_partial is not None:
            on_partial(_metrics_result(query, window, cells, totals, False))
    rest = _remainder(overall, totals) if overall else None
    if rest is not None:
        totals.append(rest)  # traces whose value the sample missed, or with no value
    return _with_human_counts(client, query, window, cells, totals, set(values), token)


def _with_human_counts(client: search.TraceSearcher, query: StatsQuery, window: Window,
                       cells: list[Cell], totals: list[Cell], values: set[str] | None,
                       token: CancelToken | None) -> StatsResult:
    """The complete metrics result, each assessment's `human_count` filled in."""
    humans = human_counts(client, query, window, {n for c in totals for n in c.assessments},
                          values, token)

    def filled(cell: Cell) -> Cell:
        counts = humans.get((cell.group, cell.bucket_start), {})
        return replace(cell, assessments={name: replace(a, human_count=counts.get(name, 0))
                                          for name, a in cell.assessments.items()})

    return _metrics_result(query, window, [filled(c) for c in cells],
                           [filled(c) for c in totals], True)


def human_counts(client: search.TraceSearcher, query: StatsQuery, window: Window,
                 names: Iterable[str], values: set[str] | None = None,
                 token: CancelToken | None = None
                 ) -> dict[tuple[str | None, int | None], dict[str, int]]:
    """The valid HUMAN assessments per (group, bucket start) and name, with (group, None) the
    range's: counted client-side over only the traces holding one of `names` (a search for
    `feedback.NAME IS NOT NULL` or `expectation.NAME IS NOT NULL`), as MLflow's metrics have
    no assessment source. A group value outside `values` counts as the remainder (None)."""
    named = set(names)
    wanted = [query.server_filters(window, Clause(f"{kind}.{name}", "IS NOT NULL"))
              for name in sorted(named) for kind in ("feedback", "expectation")]
    out: dict[tuple[str | None, int | None], dict[str, int]] = {}
    if not wanted:
        return out
    group_by, bucket = query.group_by, window.bucket_ms
    searches = [f for w in wanted for f in w]
    if len(searches) > filter_groups.MAX_QUERIES:  # too many names: every trace of the range
        searches = query.server_filters(window)
    pages = search.iter_traces(client, [query.experiment_id], searches,
                               page_size=search.MAX_PAGE_SIZE, token=token)
    with gc_paused():  # as in from_search
        for info in (info for page in pages for info in page):
            group = group_by.value_of(info) if group_by is not None else None
            if values is not None and group not in values:
                group = None
            keys: list[tuple[str | None, int | None]] = [(group, None)]
            if bucket is not None:
                keys.append((group, info.request_time_ms // bucket * bucket))
            for a in info.assessments:
                if a.valid and a.source_type == HUMAN and a.name in named:
                    for key in keys:
                        counts = out.setdefault(key, {})
                        counts[a.name] = counts.get(a.name, 0) + 1
    return out



def _metrics_result(query: StatsQuery, window: Window, cells: list[Cell], totals: list[Cell],
                    complete: bool) -> StatsResult:
    return StatsResult(query, window, METRICS_PATH,
                       tuple(sorted(cells, key=lambda c: (c.bucket_start or 0, str(c.group)))),
                       tuple(totals), complete, computed_at_ms=int(time.time() * 1000))


def metrics_possible(client: Any, query: StatsQuery) -> bool:
    """Whether the metrics path can answer: not Databricks, and a filter it can express (no
    OR: see the module docstring)."""
    return (not getattr(client, "databricks", False) and not query.or_groups
            and metrics_filters(query.clauses) is not None)


def compute(client: Any, query: StatsQuery, token: CancelToken | None = None,
            on_partial: Callable[[StatsResult], None] | None = None, path: str | None = None,
            now_ms: int | None = None, cache: StatsCache | None = None) -> StatsResult:
    """The statistics of `query` through `path` (None: the metrics endpoint where the server has
    it and the filter fits it, else client-side search), stored in `cache` when complete."""
    window = query.resolve(now_ms)
    if path is None:
        path = METRICS_PATH if metrics_possible(client, query) else SEARCH_PATH
    result: StatsResult | None = None
    if path == METRICS_PATH:
        try:
            result = from_metrics(client, query, window, token, on_partial)
        except (Unsupported, NotFound):
            result = None  # an older server or a proxy without it: aggregate client-side
    if result is None:
        result = from_search(client, query, window, token, on_partial)
    if cache is not None:
        cache.put(getattr(client, "host", ""), result)
    return result


# -- cache ---------------------------------------------------------------------------------------

class StatsCache:
    """The last complete result of each query, one small JSON file per query under the cache
    dir: a revisit shows it at once (and offline) while it is computed again."""

    def __init__(self, directory: Path | None = None):
        self.directory = directory or paths.cache_dir() / "stats"

    def _file(self, host: str, query: StatsQuery) -> storage.JsonFile[StatsResult | None]:
        return storage.JsonFile(self.directory / f"{query.key(host)}.json", _parse_cached,
                                lambda: None, what="cached statistics", regenerable=True,
                                dump=lambda r: r.to_json() if r is not None else None)

    def get(self, host: str, query: StatsQuery) -> StatsResult | None:
        try:
            return self._file(host, query).read()
        except ConfigError:
            return None

    def put(self, host: str, result: StatsResult) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # A cache that cannot be written only costs the next visit's wait.
        with contextlib.suppress(ConfigError, OSError):
            self._file(host, result.query).write(result)


def _parse_cached(data: Any) -> StatsResult | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError("not a statistics object")
    return StatsResult.from_json(data)


# -- CSV and JSON shapes -------------------------------------------------------------------------

CSV_HEADER = ("group", "bucket_start", "traces", "errors", "error_rate", "p50_ms", "p90_ms",
              "p95_ms", "p99_ms", "mean_ms", "input_tokens", "output_tokens", "total_tokens")


def csv_rows(cells: Sequence[Cell]) -> Iterator[list[Any]]:
    """Header and one row per cell, with one pass-rate/mean column per assessment name."""
    names = sorted({n for c in cells for n in c.assessments})
    yield [*CSV_HEADER, *(f"{n}" for n in names)]
    for c in cells:
        lat = c.latency
        row: list[Any] = [c.group if c.group is not None else "",
                          iso_ms(c.bucket_start) if c.bucket_start is not None else "",
                          c.traces, c.errors, _num(c.error_rate), _num(lat.p50), _num(lat.p90),
                          _num(lat.p95), _num(lat.p99), _num(lat.mean), c.input_tokens,
                          c.output_tokens, c.total_tokens]
        for n in names:
            a = c.assessments.get(n)
            row.append("" if a is None else _num(a.pass_rate if a.pass_rate is not None
                                                  else a.mean))
        yield row


def _bucket_ms(value: Any) -> int:
    """A metrics time bucket (MLflow sends ISO 8601 with an offset; epoch ms also read)."""
    if isinstance(value, int | float):
        return int(value)
    text = str(value)
    try:
        return int(float(text))
    except ValueError:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return round(moment.timestamp() * 1000)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def _agg(kind: str, p: float | None = None) -> dict[str, Any]:
    return {"aggregation_type": kind} if p is None else {
        "aggregation_type": kind, "percentile_value": float(p)}


def _value(point: dict[str, Any], key: str) -> float | None:
    value = (point.get("values") or {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int | float) and math.isfinite(value):
        return int(value)
    return 0


def _query_json(q: StatsQuery) -> dict[str, Any]:
    return {"experiment_id": q.experiment_id, "filter": q.filter_text,
            "since": q.since, "until": q.until,
            "group_by": q.group_by.text if q.group_by else None, "bucket": q.bucket}


def _query_from_json(d: dict[str, Any]) -> StatsQuery:
    return StatsQuery.of_groups(str(d["experiment_id"]),
                                filter_groups.parse(d.get("filter") or ""),
                                d.get("since"), d.get("until"),
                                GroupBy.parse(d["group_by"]) if d.get("group_by") else None,
                                str(d.get("bucket") or "auto"))


def _cell_json(c: Cell) -> dict[str, Any]:
    lat = c.latency
    return {"g": c.group, "b": c.bucket_start, "n": c.traces, "e": c.errors,
            "l": [lat.p50, lat.p90, lat.p95, lat.p99, lat.mean],
            "t": [c.input_tokens, c.output_tokens, c.total_tokens],
            "a": {k: [a.count, a.passed, a.failed, a.mean, a.numbers, a.categories, a.human_count]
                  for k, a in c.assessments.items()}}


def _cell_from_json(d: dict[str, Any]) -> Cell:
    tokens_in, tokens_out, tokens_total = (int(n) for n in d["t"])
    assessments = {k: AssessmentStats(int(v[0]), int(v[1]), int(v[2]), v[3], int(v[4]),
                                      dict(v[5]), v[6]) for k, v in d["a"].items()}
    return Cell(d["g"], d["b"], int(d["n"]), int(d["e"]), Latency(*d["l"]), tokens_in,
                tokens_out, tokens_total, assessments)


# -- what the Overview shows -------------------------------------------------------------------

def drill_down(result: StatsResult, group: str | None, bucket_ms: int | None
               ) -> list[list[Clause]] | None:
    """The filter (AND groups joined by OR) of exactly the traces of `group` (None: all
    groups) in the bucket starting at `bucket_ms` (None: the whole range), within the query's
    filter: every OR group of it gets the group value and the time range. None for the
    traces without a value of the group (or that the sample of values missed)."""
    extra: list[Clause] = []
    group_by = result.query.group_by
    if group_by is not None:
        if group is None:
            return None
        extra.append(group_by.clause(group))
    w = result.window
    start, end = w.start_ms, w.end_ms
    if bucket_ms is not None and w.bucket_ms is not None:
        start = bucket_ms if w.start_ms is None else max(bucket_ms, w.start_ms)
        end = min(bucket_ms + w.bucket_ms - 1, w.end_ms)
    if start is not None:
        extra.append(Clause("timestamp_ms", ">=", start))
    extra.append(Clause("timestamp_ms", "<=", end))
    # A second click on the same bucket adds nothing.
    return [list(dict.fromkeys(g + extra)) for g in result.query.groups or [[]]]


def rounded_estimate(estimate: int) -> int:
    """A guess to two significant digits (43,308 reads ~43,000): no more than it knows."""
    return round(estimate, 2 - len(str(estimate))) if estimate >= 100 else estimate


# The steps of a chart's range: each of these × 10ⁿ.
NICE_STEPS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


def nice_ceiling(value: float) -> float:
    """The smallest NICE_STEPS × 10ⁿ at or above `value` (1 for nothing above 0)."""
    if value <= 0:
        return 1.0
    unit = 10.0 ** math.floor(math.log10(value))
    return next(m * unit for m in NICE_STEPS if value <= m * unit * (1 + 1e-12))


def time_axis(result: StatsResult) -> tuple[float, float]:
    """A chart's time axis in seconds, half a bucket beyond the first and the last: back from the
    range's end by a nice_ceiling count of buckets covering the data, never before the
    range."""
    size, w = result.window.bucket_ms or 1, result.window
    last = w.end_ms // size * size
    start = None if w.start_ms is None else w.start_ms // size * size
    oldest = min((c.bucket_start for c in result.cells if c.bucket_start is not None),
                 default=last if start is None else start)  # no data: the whole range
    first = last - round(nice_ceiling((last - oldest) / size + 1) - 1) * size
    if start is not None:
        first = max(first, start)
    return (first - size / 2) / 1000, (last + size / 2) / 1000
