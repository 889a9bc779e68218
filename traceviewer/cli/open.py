"""`traceviewer open FILE`: show a trace saved as JSON in the detail view, without a server."""

from __future__ import annotations

import argparse
from pathlib import Path

from traceviewer.core.errors import UsageError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "open", help="open a trace JSON file in the detail view",
        description="Open a trace saved as JSON (MLflow's Trace.to_json format, a traces.json "
                    "artifact or a REST get-trace response) in the trace detail view.")
    parser.add_argument("file", metavar="FILE", help="the trace JSON file")
    # SUPPRESS: do not clobber the top-level --screenshot when given before the command.
    parser.add_argument("--screenshot", metavar="PATH", default=argparse.SUPPRESS,
                        help="render the view offscreen once loaded, save it as PNG and exit")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"No trace file at {path}: give the path of a trace JSON file.")
    from traceviewer.ui.app import run_standalone

    return run_standalone(str(path), getattr(args, "screenshot", None))
