"""`traceviewer experiments list`: the server's active experiments, optionally by name."""

from __future__ import annotations

import argparse
import json
import sys

from traceviewer.cli.common import add_server_args, client_from_args, output_to_pipe, table_line
from traceviewer.core import fmt, search
from traceviewer.core.model import Experiment

_HEADERS = ("ID", "LAST UPDATE", "CREATED", "NAME")
_WIDTHS = (20, 19, 19, 0)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `experiments` and its subcommands."""
    parser = subparsers.add_parser("experiments", help="list experiments",
                                   description="List the experiments of a server.")
    sub = parser.add_subparsers(dest="experiments_command", metavar="SUBCOMMAND", required=True)
    listing = sub.add_parser("list", help="list active experiments",
                             description="List the active experiments, optionally only those "
                                         "whose name contains a text (ignoring case).")
    add_server_args(listing)
    listing.add_argument("--filter", metavar="NAME_SUBSTRING",
                         help="only experiments whose name contains this (any case)")
    listing.add_argument("--format", choices=("table", "json"), default="table")
    listing.set_defaults(func=_list)


def _row(e: Experiment) -> dict:
    """One experiment as a JSON object (times in epoch ms)."""
    return {"experiment_id": e.experiment_id, "name": e.name,
            "lifecycle_stage": e.lifecycle_stage, "creation_time": e.creation_time_ms,
            "last_update_time": e.last_update_time_ms, "tags": dict(e.tags)}


def _list(args: argparse.Namespace) -> int:
    with client_from_args(args) as client, output_to_pipe():
        pages = search.iter_experiments(client, args.filter or "")
        if args.format == "json":
            rows = [_row(e) for page in pages for e in page]
            print(json.dumps(rows, indent=2, ensure_ascii=False))
            return 0
        print(table_line(_HEADERS, _WIDTHS))
        count = 0
        for page in pages:
            for e in page:
                print(table_line((e.experiment_id, fmt.timestamp_ms(e.last_update_time_ms),
                                  fmt.timestamp_ms(e.creation_time_ms), e.name), _WIDTHS))
            count += len(page)
        if count == 0:
            print("No experiments match." if args.filter else "No experiments.",
                  file=sys.stderr)
    return 0
