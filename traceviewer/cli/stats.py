"""`traceviewer stats`: trace counts, errors, latency percentiles, tokens and assessments of an
experiment, grouped and bucketed (core.stats: the server's metrics endpoint, or client-side
aggregation of search pages where it has none)."""

from __future__ import annotations

import argparse
import csv
import json
import sys

from traceviewer.cli.common import add_server_args, client_from_args, output_to_pipe, table_line
from traceviewer.core import filter_groups, fmt, stats
from traceviewer.core.stats import Cell, GroupBy, StatsQuery

_HEADERS = ("GROUP", "BUCKET", "TRACES", "ERRORS", "P50", "P90", "P99", "MEAN", "TOKENS",
            "ASSESSMENTS")
_WIDTHS = (28, 20, 7, 12, 9, 9, 9, 9, 9, 0)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `stats`."""
    p = subparsers.add_parser(
        "stats", help="statistics of an experiment's traces",
        description="Trace count, errors, latency (p50/p90/p99 and mean, PERCENTILE_CONT: linear "
                    "interpolation between closest ranks), tokens and assessments of an "
                    "experiment's traces in a time range, optionally grouped and bucketed in "
                    "time. Uses the server's trace metrics endpoint where it has one, else "
                    "aggregates search pages.")
    add_server_args(p)
    p.add_argument("--experiment", required=True, metavar="NAME_OR_ID",
                   help="experiment name or id")
    p.add_argument("--filter", metavar="TEXT",
                   help="an MLflow trace filter string; OR and parentheses are merged "
                        "client-side (such a filter is aggregated from search pages)")
    p.add_argument("--since", metavar="1h|24h|7d|ISO",
                   help="start of the range: that long ago, an ISO time or epoch ms "
                        "(default: all time)")
    p.add_argument("--until", metavar="ISO", help="end of the range (default now)")
    p.add_argument("--group-by", metavar="KEY",
                   help="tag:KEY, metadata:KEY, user, session, state or name")
    p.add_argument("--bucket", choices=stats.BUCKET_CHOICES, default="auto",
                   help="time bucket size (auto: minute, hour or day by the range's length)")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--via", choices=("auto", stats.METRICS_PATH, stats.SEARCH_PATH),
                   default="auto",
                   help="metrics: the server's metrics endpoint; search: client-side from "
                        "search pages (default: metrics where the server and filter allow: "
                        "equality on tags, metadata, state and name, no OR)")
    p.set_defaults(func=_stats)


def _stats(args: argparse.Namespace) -> int:
    groups = filter_groups.parse(args.filter) if args.filter else []
    group = GroupBy.parse(args.group_by) if args.group_by else None
    since = None if args.since in (None, "", "all") else args.since
    with client_from_args(args) as client:
        experiment = client.resolve_experiment(args.experiment)
        query = StatsQuery.of_groups(experiment.experiment_id, groups, since, args.until, group,
                                     args.bucket)
        result = stats.compute(client, query, path=None if args.via == "auto" else args.via,
                               cache=stats.StatsCache())
        with output_to_pipe():
            _write(result.rows(), args.format)
    return 0


def _write(rows: list[Cell], format: str) -> None:
    if format == "json":
        print(json.dumps([c.to_json() for c in rows], indent=2, ensure_ascii=False))
        return
    if format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerows(stats.csv_rows(rows))
        return
    print(table_line(_HEADERS, _WIDTHS))
    for c in rows:
        lat = c.latency
        rate = c.error_rate
        errors = f"{c.errors} ({rate:.0%})" if rate is not None else str(c.errors)
        print(table_line((
            c.group if c.group is not None else "(none)",
            stats.iso_ms(c.bucket_start) if c.bucket_start is not None else "all",
            str(c.traces), errors, fmt.duration_ms(lat.p50), fmt.duration_ms(lat.p90),
            fmt.duration_ms(lat.p99), fmt.duration_ms(lat.mean), str(c.total_tokens),
            _assessments(c)), _WIDTHS))
    if not rows:
        print("No traces in this range.", file=sys.stderr)


def _assessments(c: Cell) -> str:
    parts = []
    for name, a in sorted(c.assessments.items()):
        if a.pass_rate is not None:
            parts.append(f"{name} {a.pass_rate:.0%} of {a.passed + a.failed}")
        elif a.mean is not None:
            parts.append(f"{name} mean {a.mean:.3g}")
        else:
            parts.append(f"{name} {a.count}")
    return ", ".join(parts)
