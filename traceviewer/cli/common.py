"""What the server commands share: choosing the server (`--workspace NAME` or `--host URL`) and
opening a `RestClient` for it; opening the outbox."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from traceviewer.core.auth import Auth
from traceviewer.core.client import RestClient, normalize_host
from traceviewer.core.databricks_auth import env_auth
from traceviewer.core.errors import UsageError
from traceviewer.core.outbox import Outbox
from traceviewer.core.terminal import printable
from traceviewer.core.workspaces import (
    KINDS,
    Workspace,
    WorkspaceStore,
    guess_kind,
    open_client,
)


def add_server_args(parser: argparse.ArgumentParser) -> None:
    """Add the mutually exclusive `--workspace NAME` / `--host URL` options."""
    group = parser.add_mutually_exclusive_group()
    # SUPPRESS: do not clobber the top-level --workspace when it is given before the command.
    group.add_argument("--workspace", metavar="NAME", default=argparse.SUPPRESS,
                       help="a saved workspace (see `traceviewer workspace list`)")
    group.add_argument("--host", metavar="URL",
                       help="a server URL; credentials come from the environment as the MLflow "
                            "SDK reads them (MLFLOW_TRACKING_USERNAME/PASSWORD, "
                            "MLFLOW_TRACKING_TOKEN; for Databricks DATABRICKS_TOKEN, "
                            "DATABRICKS_CLIENT_ID/_SECRET or DATABRICKS_CONFIG_PROFILE). "
                            "Default: MLFLOW_TRACKING_URI if it is an http(s) URL, or "
                            "DATABRICKS_HOST if it is 'databricks'")
    parser.add_argument("--kind", choices=KINDS, default=None,
                        help="with --host: the kind of server (default: databricks for "
                             "Databricks workspace URLs, else mlflow)")


def tls_unverified(ws: Workspace) -> bool:
    """The workspace turns TLS certificate verification off (no CA bundle either)."""
    return not ws.verify_tls and not ws.ca_bundle


def warn_if_unverified(ws: Workspace) -> None:
    """One warning line on stderr for each command that talks to such a workspace."""
    if tls_unverified(ws):
        print(printable(
            f"traceviewer: warning: TLS certificate verification is OFF for workspace "
            f"'{ws.name}' ({ws.host}): anyone on the network path can read or change what is "
            "sent, credentials included. Give it a CA bundle, or turn verification back on."),
            file=sys.stderr)


def client_from_args(args: argparse.Namespace) -> RestClient:
    """The client for the server `add_server_args` options chose."""
    workspace = getattr(args, "workspace", None)
    host = getattr(args, "host", None)
    if workspace and host:
        raise UsageError("Give either --workspace or --host, not both.")
    if workspace:
        if getattr(args, "kind", None):
            raise UsageError("--kind goes with --host; a workspace has its kind in its settings.")
        ws = WorkspaceStore().get(workspace)
        warn_if_unverified(ws)
        return open_client(ws)
    if not host:
        uri = os.environ.get("MLFLOW_TRACKING_URI", "")
        if uri.startswith("databricks"):
            # As the MLflow SDK: DATABRICKS_HOST with DATABRICKS_TOKEN, DATABRICKS_CLIENT_ID/
            # _SECRET or DATABRICKS_CONFIG_PROFILE (or databricks://PROFILE), via databricks-sdk.
            return _databricks_client(None)
        if not uri.startswith(("http://", "https://")):
            raise UsageError("Which server? Give --workspace NAME or --host URL (or set "
                             "MLFLOW_TRACKING_URI to the server's http(s) URL, or to "
                             "'databricks' with DATABRICKS_HOST and DATABRICKS_TOKEN).")
        host = uri
    kind = getattr(args, "kind", None) or guess_kind(host)
    if kind == "databricks":
        return _databricks_client(host)
    return RestClient(host, Auth.from_env(host), kind=kind)


def _databricks_client(host: str | None) -> RestClient:
    """A Databricks workspace signed in from the environment or ~/.databrickscfg."""
    found_host, auth = env_auth(normalize_host(host) if host else None)
    return RestClient(found_host, auth, kind="databricks")


def open_outbox() -> Outbox:
    """The outbox; when it was damaged and moved aside, says so on stderr (naming where it was
    moved) before the command goes on with the new one."""
    outbox = Outbox()
    if outbox.set_aside:
        print(f"traceviewer: {printable(outbox.set_aside)}", file=sys.stderr)
    return outbox


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
