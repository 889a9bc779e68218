"""The `traceviewer` command line: GUI flags at the top level, command groups as subcommands.

Each command group lives in its own module with `register(subparsers)`, imported only when the
command line is more than top-level flags (`parse_args`); a subcommand sets `func(args) -> int`.
Errors print one line to stderr: exit 1 for server, auth and network failures, 2 for usage and
bad filters. Control and bidi characters in a message are shown as escapes
(`core.terminal.printable`): messages quote server answers and trace data."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any, NoReturn

from traceviewer import __version__
from traceviewer.core.errors import TraceViewerError
from traceviewer.core.redact import redact, setup_logging
from traceviewer.core.terminal import printable

# Modules under traceviewer.cli, each adding its subcommands.
COMMAND_MODULES = ("demo", "workspace", "open", "experiments", "traces", "trace", "feedback",
                   "outbox", "stats")


def build_parser() -> argparse.ArgumentParser:
    parser = _top_level(argparse.ArgumentParser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"traceviewer.cli.{name}").register(sub)
    return parser


def _top_level(parser_class: type[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """The parser of the top-level flags (no subcommands yet)."""
    parser = parser_class(
        prog="traceviewer",
        description="Browse, inspect and review MLflow traces. Without a command, opens the GUI.")
    parser.add_argument("--version", action="version", version=f"traceviewer {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="check that this installation works (Qt, keyring, TLS, "
                             "resources), print each check and exit")
    gui = parser.add_argument_group("GUI options")
    gui.add_argument("--workspace", metavar="NAME", help="open this workspace")
    gui.add_argument("--experiment", metavar="NAME_OR_ID", help="open this experiment")
    gui.add_argument("--trace", metavar="TRACE_ID", help="open this trace")
    gui.add_argument("--filter", metavar="TEXT", help="open the trace table with this filter")
    gui.add_argument("--view", choices=("traces", "overview"), default="traces",
                     help="the tab to open: the trace table or the Overview (statistics)")
    gui.add_argument("--screenshot", metavar="PATH",
                     help="render the window offscreen once its data has loaded, save it as "
                          "PNG and exit")
    return parser


class _NotJustFlags(Exception):
    """The arguments are more than valid top-level flags: the whole parser must read them."""


class _FlagsOnlyParser(argparse.ArgumentParser):
    """The top-level flags alone (the same ones, so abbreviations resolve alike), raising
    `_NotJustFlags` where the whole parser would print something (help, the version, a usage
    error) or exit."""

    def error(self, message: str) -> NoReturn:
        raise _NotJustFlags(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise _NotJustFlags(message)

    def _print_message(self, message: str, file: Any = None) -> None:
        raise _NotJustFlags(message)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The parsed command line. A line of top-level flags alone (the GUI's, --self-test) is read
    without importing the command modules, which import most of the app and slowed the GUI's
    start; anything else goes through the whole parser, so help, errors and commands are
    exactly its own."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--" not in argv:
        try:
            args, rest = _top_level(_FlagsOnlyParser).parse_known_args(argv)
        except _NotJustFlags:
            pass
        else:
            if not rest:
                args.command = None
                return args
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    try:
        if args.self_test:
            from traceviewer import selftest

            return selftest.run()
        if args.command is None:
            if args.trace:  # the download overlaps starting Qt, the window and connecting
                from traceviewer.core.trace_loading import prefetch_from_workspace

                prefetch_from_workspace(args.trace, args.workspace)
            from traceviewer.ui.app import run_gui

            return run_gui(args)
        return args.func(args)
    except TraceViewerError as exc:
        # Messages quote server answers and trace data: never let them drive the terminal.
        print(f"traceviewer: {printable(redact(str(exc)))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
