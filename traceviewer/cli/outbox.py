"""`traceviewer outbox status|flush|retry|discard`: the labels waiting to be sent.

Every label is stored in the local outbox before it is sent; these commands show what waits,
send everything pending for every workspace and host, and settle the items kept back (refused
by the server, or not saved: an answer that is not an MLflow server's)."""

from __future__ import annotations

import argparse
import json
from datetime import datetime

from traceviewer.cli.common import open_outbox, output_to_pipe, table_line
from traceviewer.core.outbox import Item
from traceviewer.core.terminal import printable

# (header, width) of the item table; the last column takes the rest of the line.
_TABLE = (("ID", 5), ("STATE", 7), ("OP", 6), ("TRACE ID", 35), ("NAME", 22), ("TARGET", 30),
          ("LAST ERROR", 0))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `outbox` and its subcommands."""
    parser = subparsers.add_parser("outbox", help="labels waiting to be sent",
                                   description="Labels are stored in a local outbox before they "
                                               "are sent; see and send what waits.")
    sub = parser.add_subparsers(dest="outbox_command", metavar="SUBCOMMAND", required=True)
    status = sub.add_parser("status", help="pending labels and those refused or not saved, "
                                           "with the last error")
    status.add_argument("--format", choices=("table", "json"), default="table")
    status.set_defaults(func=_status)
    flush = sub.add_parser("flush", help="send everything pending, for every workspace and host")
    flush.set_defaults(func=_flush)
    retry = sub.add_parser("retry", help="send an item refused or not saved (parked) again at "
                                         "the next flush")
    retry.add_argument("item_id", type=int, metavar="ID")
    retry.set_defaults(func=_retry)
    discard = sub.add_parser("discard", help="give up on an unsent item")
    discard.add_argument("item_id", type=int, metavar="ID")
    discard.set_defaults(func=_discard)


def _item_json(item: Item) -> dict:
    return {"id": item.item_id, "state": item.state, "op": item.op, "trace_id": item.trace_id,
            "name": item.name, "workspace": item.target.workspace, "host": item.target.host,
            "attempts": item.attempts, "last_error": item.last_error,
            "created": datetime.fromtimestamp(item.created).astimezone().isoformat()}


def _status(args: argparse.Namespace) -> int:
    outbox = open_outbox()
    status, items = outbox.status(), outbox.items()
    with output_to_pipe():
        if args.format == "json":
            print(json.dumps({"pending": status.pending, "parked": status.parked,
                              "last_error": status.last_error,
                              "items": [_item_json(i) for i in items]}, indent=2,
                             ensure_ascii=False))
            return 0
        print(f"{status.pending} pending, {status.parked} refused or not saved (parked)")
        if status.last_error:
            print(f"Last error: {printable(status.last_error)}")
        if items:
            widths = [w for _, w in _TABLE]
            print(table_line([h for h, _ in _TABLE], widths))
            for i in items:
                print(table_line([str(i.item_id), i.state, i.op, i.trace_id, i.name,
                                  str(i.target), i.last_error], widths))
    return 0


def _flush(args: argparse.Namespace) -> int:
    outbox = open_outbox()
    for target, report in outbox.flush().items():
        line = f"{target}: {report.sent} sent"
        if report.parked:
            line += f", {report.parked} refused or not saved"
        if report.failed:
            line += ", not reachable"
        if report.last_error:
            line += f" ({report.last_error})"
        print(printable(line))
    status = outbox.status()
    if status.pending or status.parked:
        print(f"Still waiting: {status.pending} pending, {status.parked} refused or not saved "
              "(`traceviewer outbox status`).")
        return 1
    print("Nothing left to send.")
    return 0


def _retry(args: argparse.Namespace) -> int:
    item = open_outbox().retry(args.item_id)
    print(f"Item {item.item_id} will be sent by the next `traceviewer outbox flush` "
          "or app start.")
    return 0


def _discard(args: argparse.Namespace) -> int:
    item = open_outbox().discard(args.item_id)
    print(printable(f"Discarded item {item.item_id} ({item.op} on {item.trace_id})."))
    return 0
