"""`traceviewer traces search`: find traces by filter or by the convenience flags.

The flags become clauses of `core.filters` (so quoting is done in one place) and are ANDed with
each `--filter`; a filter may hold OR and parentheses (`core.filter_groups`), and repeated
`--filter`s are alternatives too: `core.search` runs each AND-only query and merges them.
`--session`/`--user` match the tags and the metadata."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator

from traceviewer.cli.common import add_server_args, client_from_args, output_to_pipe, table_line
from traceviewer.core import export, filter_groups, fmt, search
from traceviewer.core import filters as flt
from traceviewer.core.errors import UsageError
from traceviewer.core.model import TraceInfo

FORMATS = ("table", "json", "jsonl", "csv")
DEFAULT_MAX = 100
_HEADERS = ("TIME", "TRACE ID", "STATE", "DURATION", "SESSION", "USER", "NAME")
_WIDTHS = (19, 35, 11, 11, 22, 18, 0)  # the last column takes the rest of the line


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `traces` and its subcommands."""
    parser = subparsers.add_parser("traces", help="search traces",
                                   description="Search the traces of an experiment.")
    sub = parser.add_subparsers(dest="traces_command", metavar="SUBCOMMAND", required=True)
    s = sub.add_parser(
        "search", help="search traces by filter, session, user, tag, state or time",
        description="Search traces. The options are ANDed; repeat --filter for alternatives "
                    "(OR). --session and --user match the tags and the trace metadata.",
        epilog="Filter example: tags.`mlflow.trace.session` = 'session-1' AND "
               "execution_time_ms > 1000. OR: (status = 'ERROR' AND tags.env = 'prod') OR "
               "tags.`mlflow.trace.user` IN ('a', 'b'). Values holding ' go in double quotes: "
               "tags.customer = \"O'Brien\".")
    add_server_args(s)
    s.add_argument("--experiment", required=True, metavar="NAME_OR_ID",
                   help="experiment name or id")
    s.add_argument("--filter", action="append", default=[], metavar="TEXT",
                   help="MLflow filter string; OR, parentheses and IN over tags/users/"
                        "sessions are run as merged queries; repeat for OR")
    s.add_argument("--session", metavar="S", help="traces of this session")
    s.add_argument("--user", metavar="U", help="traces of this user")
    s.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE",
                   help="traces whose tag KEY equals VALUE (repeatable)")
    s.add_argument("--status", metavar="STATE", help="OK, ERROR or IN_PROGRESS")
    s.add_argument("--since", metavar="WHEN",
                   help="requested at or after: 1h, 24h, 7d, an ISO date/time or epoch ms")
    s.add_argument("--client-request-id", metavar="ID", help="the app's request id")
    s.add_argument("--order-by", action="append", metavar="TEXT",
                   help="e.g. 'timestamp_ms DESC' (default) or 'execution_time_ms DESC'; "
                        "repeatable")
    s.add_argument("--max", type=int, default=DEFAULT_MAX, metavar="N",
                   help=f"at most N traces (default {DEFAULT_MAX}; 0 = all)")
    s.add_argument("--page-size", type=int, default=search.PAGE_SIZE, metavar="N",
                   help=f"traces per request, 1-{search.MAX_PAGE_SIZE} "
                        f"(default {search.PAGE_SIZE})")
    s.add_argument("--format", choices=FORMATS, default="table", help="output format")
    s.set_defaults(func=_search)


def _flag_clauses(args: argparse.Namespace) -> list[flt.Clause]:
    clauses = []
    if args.session is not None:
        clauses.append(flt.session(args.session))
    if args.user is not None:
        clauses.append(flt.user(args.user))
    for item in args.tag:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--tag needs KEY=VALUE, got {item!r}.")
        clauses.append(flt.tag(key, value))
    if args.status is not None:
        clauses.append(flt.status(args.status))
    if args.since is not None:
        clauses.append(flt.since(args.since))
    if args.client_request_id is not None:
        clauses.append(flt.client_request_id(args.client_request_id))
    return clauses


def server_filters(args: argparse.Namespace) -> list[str]:
    """The AND-only filter strings whose union the command asks for."""
    flags = _flag_clauses(args)
    groups: list[list[flt.Clause]] = []
    for text in args.filter or [""]:
        groups += [g + flags for g in filter_groups.parse(text)] or [flags]
    return filter_groups.checked_server_filters(groups)


def _search(args: argparse.Namespace) -> int:
    if args.max < 0:
        raise UsageError("--max must be 0 (all) or more.")
    if not 1 <= args.page_size <= search.MAX_PAGE_SIZE:
        raise UsageError(f"--page-size must be between 1 and {search.MAX_PAGE_SIZE}.")
    filters = server_filters(args)
    if args.order_by and len(filters) > 1:
        search.sort_key(args.order_by)  # merging needs an order it knows: fail early if not
    with client_from_args(args) as client:
        experiment = client.resolve_experiment(args.experiment)
        pages = search.iter_traces(client, [experiment.experiment_id], filters,
                                   order_by=args.order_by, page_size=args.page_size,
                                   limit=args.max or None)
        with output_to_pipe():
            _write(pages, args.format)
    return 0


def _write(pages: Iterator[list[TraceInfo]], format: str) -> None:
    out = sys.stdout
    if format in export.FORMATS:
        export.write_rows(pages, out, format)
    elif format == "json":
        rows = [export.trace_row(info) for page in pages for info in page]
        out.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    else:
        _write_table(pages)


def _write_table(pages: Iterator[list[TraceInfo]]) -> None:
    print(table_line(_HEADERS, _WIDTHS))
    count = 0
    for page in pages:
        for info in page:
            cells = (fmt.timestamp_ms(info.request_time_ms), info.trace_id, info.state,
                     fmt.duration_ms(info.duration_ms), info.session, info.user, info.name)
            print(table_line(cells, _WIDTHS))
        count += len(page)
    if count == 0:
        print("No traces match.", file=sys.stderr)
