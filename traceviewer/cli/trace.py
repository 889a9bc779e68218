"""`traceviewer trace show TRACE_ID`: one trace with all its spans, as JSON or as a tree;
`traceviewer trace diff A B`: two traces aligned span by span (`core.trace_diff`)."""

from __future__ import annotations

import argparse
import json
import sys

from traceviewer.cli.common import add_server_args, client_from_args, output_to_pipe
from traceviewer.core import fmt, trace_diff
from traceviewer.core.model import Trace
from traceviewer.core.otlp import dump_trace
from traceviewer.core.terminal import printable


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `trace` and its subcommands."""
    parser = subparsers.add_parser("trace", help="show one trace",
                                   description="Show one trace with its spans.")
    sub = parser.add_subparsers(dest="trace_command", metavar="SUBCOMMAND", required=True)
    show = sub.add_parser(
        "show", help="print a trace as a span tree or as JSON",
        description="Print a trace. `tree` shows one span a line, indented under its parent "
                    "(name, type, status, duration, span id); `json` writes MLflow's "
                    "Trace.to_json() format, which `traceviewer open FILE` reads back.")
    add_server_args(show)
    show.add_argument("trace_id", metavar="TRACE_ID", help="the trace id, e.g. tr-7fea94db…")
    show.add_argument("--format", choices=("tree", "json"), default="tree")
    show.set_defaults(func=_show)
    diff = sub.add_parser(
        "diff", help="compare two traces span by span",
        description="Align the spans of two traces by their path in the tree (names and span "
                    "types along the parent chain; repeated steps by position) and say, per "
                    "span, same, changed (status, inputs, outputs, attributes), only in A or "
                    "only in B, with duration and token deltas (B minus A).")
    add_server_args(diff)
    diff.add_argument("trace_a", metavar="A", help="the first trace id")
    diff.add_argument("trace_b", metavar="B", help="the second trace id")
    diff.add_argument("--format", choices=("text", "json"), default="text")
    diff.set_defaults(func=_diff)


def _tree_lines(trace: Trace) -> list[str]:
    """The trace as text: a summary line (span count, partial, running, duplicate span ids
    merged), then one line per span in tree order, indented two
    spaces per level and ending with the span id. Names, ids and messages come from the trace:
    control and bidi characters in them show as escapes (`printable`)."""
    info = trace.info
    notes = [f"{len(trace.spans):,} spans"]
    if trace.partial:
        notes.append(f"partial: {info.num_spans:,} expected")
    if trace.in_progress:
        notes.append("in progress")
    if trace.duplicates:
        notes.append(f"{trace.duplicates:,} duplicate span id{'s' if trace.duplicates > 1 else ''}"
                     " merged")
    summary = [info.trace_id, info.name or "(unnamed)", info.state,
               fmt.duration_ms(info.duration_ms), ", ".join(notes)]
    lines = ["  ".join(printable(s) for s in summary if s)]
    for i, span in enumerate(trace.spans):
        duration = ("running" if span.duration_ns is None
                    else fmt.duration_ms(span.duration_ns / 1e6))
        orphan = f"  (orphan; parent {span.parent_id or '-'})" if span.orphan else ""
        text = (f"{span.name or '(unnamed)'}  {span.span_type}  {span.status}  {duration}"
                f"{orphan}  {span.span_id}")
        lines.append(f"{'  ' * trace.depth[i]}{printable(text)}")
    return lines


def _show(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        trace = client.get_trace(args.trace_id)
    with output_to_pipe():
        if args.format == "json":
            sys.stdout.buffer.write(dump_trace(trace) + b"\n")
            sys.stdout.flush()
        else:
            sys.stdout.write("\n".join(_tree_lines(trace)) + "\n")
    return 0


_MARKS = {trace_diff.Status.SAME: " ", trace_diff.Status.CHANGED: "~",
          trace_diff.Status.ONLY_A: "-", trace_diff.Status.ONLY_B: "+"}


def _diff_lines(result: trace_diff.TraceDiff) -> list[str]:
    """A summary line, then one line per aligned span: a mark (' ' same, '~' changed, '-' only
    in A, '+' only in B), the span name indented by depth, what changed and the deltas."""
    counts = result.counts()
    summary = ", ".join(f"{fmt.plural(counts[s], 'span')} {s.value}" for s in trace_diff.Status)
    totals = [f"duration {fmt.signed_duration_ms(result.duration_delta_ms)}"]
    if result.token_delta is not None:
        totals.append(f"tokens {result.token_delta:+,}")
    lines = [printable(f"A {result.a.info.trace_id}  B {result.b.info.trace_id}"),
             f"{summary}; {', '.join(totals)}"]
    for pair in result.pairs:
        name = pair.path.rsplit("/", 1)[-1]
        notes = [pair.status.value]
        if pair.changes:
            notes.append("(" + ", ".join(pair.changes) + ")")
        if pair.duration_delta_ms is not None:
            notes.append(fmt.signed_duration_ms(pair.duration_delta_ms))
        if pair.token_delta:
            notes.append(f"tokens {pair.token_delta:+,}")
        lines.append(f"{_MARKS[pair.status]} {'  ' * pair.depth}{printable(name)}  "
                     + "  ".join(notes))
    return lines


def _diff(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        a = client.get_trace(args.trace_a)
        b = a if args.trace_b == args.trace_a else client.get_trace(args.trace_b)
    result = trace_diff.diff(a, b)
    with output_to_pipe():
        if args.format == "json":
            sys.stdout.write(json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n")
        else:
            sys.stdout.write("\n".join(_diff_lines(result)) + "\n")
    return 0
