"""What the server commands share: choosing the server (`--workspace NAME` or `--host URL`) and
opening a `RestClient` for it."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from traceviewer.core.auth import Auth
from traceviewer.core.client import RestClient
from traceviewer.core.errors import UsageError
from traceviewer.core.terminal import printable
from traceviewer.core.workspaces import WorkspaceStore, open_client


def add_server_args(parser: argparse.ArgumentParser) -> None:
    """Add the mutually exclusive `--workspace NAME` / `--host URL` options."""
    group = parser.add_mutually_exclusive_group()
    # SUPPRESS: do not clobber the top-level --workspace when it is given before the command.
    group.add_argument("--workspace", metavar="NAME", default=argparse.SUPPRESS,
                       help="a saved workspace (see `traceviewer workspace list`)")
    group.add_argument("--host", metavar="URL",
                       help="a server URL; credentials come from the environment as the MLflow "
                            "SDK reads them (MLFLOW_TRACKING_USERNAME/PASSWORD, "
                            "MLFLOW_TRACKING_TOKEN, DATABRICKS_TOKEN). Default: "
                            "MLFLOW_TRACKING_URI if it is an http(s) URL")


def client_from_args(args: argparse.Namespace) -> RestClient:
    """The client for the server `add_server_args` options chose."""
    workspace = getattr(args, "workspace", None)
    host = getattr(args, "host", None)
    if workspace and host:
        raise UsageError("Give either --workspace or --host, not both.")
    if workspace:
        return open_client(WorkspaceStore().get(workspace))
    if not host:
        uri = os.environ.get("MLFLOW_TRACKING_URI", "")
        if not uri.startswith(("http://", "https://")):
            raise UsageError("Which server? Give --workspace NAME or --host URL (or set "
                             "MLFLOW_TRACKING_URI to the server's http(s) URL).")
        host = uri
    return RestClient(host, Auth.from_env(host))


def table_line(cells: Sequence[str | None], widths: Sequence[int]) -> str:
    """One line of a fixed-width table (so rows can print as pages arrive): each cell on one
    line, cut to its width with '…', '-' when empty; a width of 0 takes the rest of the line.
    Cells are untrusted: control and bidi characters show as escapes (`printable`)."""
    out = []
    for text, width in zip(cells, widths, strict=True):
        text = printable(text or "-")
        if width and len(text) > width:
            text = text[:width - 1] + "…"
        out.append(text.ljust(width) if width else text)
    return "  ".join(out).rstrip()


@contextmanager
def output_to_pipe() -> Iterator[None]:
    """Stop quietly when the reader of stdout (e.g. `head`) has gone, as command-line tools do."""
    try:
        yield
    except BrokenPipeError:
        # Point stdout at /dev/null so that the final flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
