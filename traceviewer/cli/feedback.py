"""`traceviewer feedback add|list`: human labels (MLflow assessments, source type HUMAN).

`add` stores the label in the durable outbox first and then sends it, so a label given while the
server is unreachable is kept and sent by `traceviewer outbox flush` or the next app start."""

from __future__ import annotations

import argparse
import json
import os
import sys

from traceviewer.cli.common import (
    add_server_args,
    client_from_args,
    open_outbox,
    output_to_pipe,
    table_line,
)
from traceviewer.core import fmt, search
from traceviewer.core.client import RestClient
from traceviewer.core.databricks_auth import current_user
from traceviewer.core.errors import NotFound, UsageError
from traceviewer.core.model import Assessment
from traceviewer.core.outbox import Target
from traceviewer.core.review import assessment_body, format_value, parse_value
from traceviewer.core.terminal import printable
from traceviewer.core.workspaces import Workspace, WorkspaceStore, guess_kind

# (header, width) of `feedback list`; the last column takes the rest of the line.
# `feedback add` exit status when the label was only queued, so scripts can tell it from sent.
EXIT_QUEUED = 3
_ADD_EXIT_STATUS = (f"Exit status: 0 saved on the server; {EXIT_QUEUED} queued (the server could "
                    "not be reached: the label is kept in the outbox and sent later); 1 refused "
                    "by the server, answered with something that is not an MLflow answer, or "
                    "not recorded; 2 wrong usage.")

_TABLE = (("NAME", 22), ("KIND", 11), ("VALUE", 12), ("SOURCE", 28), ("TIME", 19),
          ("ASSESSMENT ID", 34), ("RATIONALE", 0))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `feedback` and its subcommands."""
    parser = subparsers.add_parser("feedback", help="add and list human feedback on traces",
                                   description="Human feedback (MLflow assessments with source "
                                               "type HUMAN) on traces.")
    sub = parser.add_subparsers(dest="feedback_command", metavar="SUBCOMMAND", required=True)

    add = sub.add_parser(
        "add", help="label a trace",
        description="Label a trace, given by id or by the client request id the app recorded. "
                    "The label is stored locally first: if the server cannot be reached it is "
                    "queued and sent by `traceviewer outbox flush` or the next app start.",
        epilog=_ADD_EXIT_STATUS)
    add_server_args(add)
    add.add_argument("trace_id", nargs="?", metavar="TRACE_ID", help="the trace (tr-...)")
    add.add_argument("--client-request-id", metavar="ID",
                     help="find the trace by the app's request id (needs --experiment)")
    add.add_argument("--experiment", metavar="NAME_OR_ID",
                     help="where to look for --client-request-id")
    add.add_argument("--name", required=True, metavar="N", help="label name, e.g. "
                                                                "response_is_correct")
    add.add_argument("--value", required=True, metavar="V",
                     help="true/false are booleans, numbers are numbers, anything else text")
    add.add_argument("--rationale", metavar="R", help="why (a comment)")
    add.add_argument("--source-id", metavar="ID",
                     help="the reviewer (default: the workspace's reviewer identity; on "
                          "Databricks the signed-in user)")
    add.set_defaults(func=_add)

    listing = sub.add_parser("list", help="show a trace's assessments")
    add_server_args(listing)
    listing.add_argument("trace_id", metavar="TRACE_ID")
    listing.add_argument("--format", choices=("table", "json"), default="table")
    listing.set_defaults(func=_list)


def _resolve_trace(client: RestClient, args: argparse.Namespace) -> str:
    if args.trace_id and args.client_request_id:
        raise UsageError("Give either TRACE_ID or --client-request-id, not both.")
    if args.trace_id:
        return args.trace_id
    if not args.client_request_id:
        raise UsageError("Which trace? Give TRACE_ID or --client-request-id ID --experiment E.")
    if not args.experiment:
        raise UsageError("--client-request-id needs --experiment (the experiment to search).")
    experiment = client.resolve_experiment(args.experiment)
    found = search.find_by_client_request_id(client, [experiment.experiment_id],
                                             args.client_request_id)
    if not found:
        raise NotFound(f"No trace in {experiment.name} has client request id "
                       f"{args.client_request_id!r}.")
    if len(found) > 1:
        print(printable(f"{len(found)} traces have client request id "
                        f"{args.client_request_id!r}; labelling the newest, {found[0].trace_id}."),
              file=sys.stderr)
    return found[0].trace_id


_WHO = ("Who is labelling? Pass --source-id ID, or set the workspace's reviewer "
        "(`traceviewer workspace add NAME ... --reviewer ID --replace`).")


def _databricks(args: argparse.Namespace, workspace: Workspace | None) -> bool:
    """Whether the command talks to a Databricks workspace (whose signed-in user it can ask)."""
    if workspace is not None:
        return workspace.kind == "databricks"
    if args.host:
        return (args.kind or guess_kind(args.host)) == "databricks"
    return os.environ.get("MLFLOW_TRACKING_URI", "").startswith("databricks")


def _source_id(args: argparse.Namespace, workspace: Workspace | None,
               client: RestClient) -> str:
    """Who is labelling: --source-id, else the workspace's reviewer, else on Databricks the
    signed-in user (the seed's source_id)."""
    source_id = args.source_id or (workspace.reviewer if workspace else None)
    if not source_id and client.databricks:
        source_id = current_user(client)
    if not source_id:
        raise UsageError(_WHO)
    return source_id


def _add(args: argparse.Namespace) -> int:
    workspace = WorkspaceStore().get(args.workspace) if getattr(args, "workspace", None) else None
    if not (args.source_id or (workspace and workspace.reviewer) or _databricks(args, workspace)):
        raise UsageError(_WHO)  # said before anything is sent
    outbox = open_outbox()
    with client_from_args(args) as client:
        source_id = _source_id(args, workspace, client)
        body = assessment_body(args.name, parse_value(args.value), source_id,
                               rationale=args.rationale)
        trace_id = _resolve_trace(client, args)
        target = Target(workspace.name if workspace else "", client.host)
        item = outbox.add_create(target, trace_id, body)
        outbox.send(client, target, force=True)
    item = outbox.get(item.item_id)
    label = printable(f"{args.name} = {format_value(body['feedback']['value'])} on {trace_id}")
    reason = printable(item.last_error or "")
    if item.state == "sent":
        print(f"Saved {label} (assessment {item.assessment_id}).")
        return 0
    if item.state == "pending":
        print(f"Queued {label}: {reason or 'waiting for earlier labels'}\n"
              "It will be sent by `traceviewer outbox flush` or the next app start.",
              file=sys.stderr)
        return EXIT_QUEUED
    # Parked: refused by the server, or an answer that cannot be trusted (not an MLflow
    # server's): not sent again on its own.
    print(f"{label} was not saved: {reason}\nIt is kept as outbox item {item.item_id}: "
          f"`traceviewer outbox retry {item.item_id}` or "
          f"`traceviewer outbox discard {item.item_id}`.", file=sys.stderr)
    return 1


def source_text(a: Assessment) -> str:
    """`HUMAN:alice@example.com` (type and id of who or what made the assessment)."""
    return f"{a.source_type}:{a.source_id}" if a.source_id else a.source_type


def _list(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        info = client.get_trace_info(args.trace_id)
    assessments = sorted(info.assessments, key=lambda a: (a.create_time_ms or 0, a.name))
    with output_to_pipe():
        if args.format == "json":
            print(json.dumps([a.to_json() for a in assessments], indent=2, ensure_ascii=False))
        else:
            widths = [w for _, w in _TABLE]
            print(table_line([h for h, _ in _TABLE], widths))
            for a in assessments:
                value = a.error if a.error else format_value(a.value)
                kind = a.kind if a.valid else f"{a.kind}*"
                print(table_line([a.name, kind, value, source_text(a),
                                  fmt.timestamp_ms(a.create_time_ms), a.assessment_id,
                                  a.rationale], widths))
            if any(not a.valid for a in assessments):
                print("* overridden by a later assessment", file=sys.stderr)
            if not assessments:
                print(f"Trace {printable(info.trace_id)} has no assessments.", file=sys.stderr)
    pending = open_outbox().items(trace_id=info.trace_id)
    if pending:
        print(f"{len(pending)} change(s) to this trace wait in the outbox "
              "(`traceviewer outbox status`).", file=sys.stderr)
    return 0
