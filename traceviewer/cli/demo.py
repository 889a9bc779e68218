"""`traceviewer demo`: a local seeded `mlflow server` and the GUI (or just the server) on it.

The server runs as a child process (SQLite store in the data dir) and is seeded once by
`python -m traceviewer.demo.seed` in its own process, so the app itself never imports mlflow.
A marker file records a finished seeding; later runs reuse the data, `--reset` starts over.
`--databricks` puts the Databricks workspace stand-in (`demo.databricks`) in front of it."""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import httpx

from traceviewer.core import paths
from traceviewer.core.errors import KeyringUnavailable, TraceViewerError, UsageError
from traceviewer.core.redact import redact
from traceviewer.core.workspaces import Workspace, WorkspaceStore, sign_in
from traceviewer.demo.databricks import DatabricksStandIn
from traceviewer.demo.server import MlflowServer

WORKSPACE = "demo"
DATABRICKS_WORKSPACE = "demo-databricks"
EXPERIMENT = "/Shared/production-genai-app"
SEEDED_MARKER = "seeded"
# What --reset deletes: only what the demo itself put in the data dir.
_DEMO_FILES = ("mlflow.db", "artifacts", "server.log", SEEDED_MARKER)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `demo` command."""
    parser = subparsers.add_parser(
        "demo", help="start a local seeded MLflow server and open the GUI on it",
        description="Start a local `mlflow server` (SQLite store) seeded with production-like "
                    "traces, register it as the workspace 'demo' and open the GUI on it. The "
                    "server stops when the GUI closes. Needs the demo extra (mlflow).")
    parser.add_argument("--no-gui", action="store_true",
                        help="only serve: print 'MLflow server: URL' once it is healthy and "
                             "seeded, then serve until interrupted (SIGINT/SIGTERM)")
    parser.add_argument("--port", type=int, metavar="N",
                        help="loopback port for the server (default: a free one)")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="where the server keeps its data (default: 'demo' in the user "
                             "data dir)")
    parser.add_argument("--databricks", action="store_true",
                        help="also serve a Databricks workspace stand-in in front of the server "
                             "(OAuth and PAT sign-in, spans through signed storage URLs), register "
                             "it as the workspace 'demo-databricks' (OAuth U2M, signed in as "
                             "TV_DBX_USER) and open that one; with --no-gui it prints "
                             "'Databricks workspace: URL' too. Credentials come from TV_DBX_PAT, "
                             "TV_DBX_CLIENT_ID, TV_DBX_CLIENT_SECRET and TV_DBX_USER (demo "
                             "defaults when unset)")
    parser.add_argument("--reset", action="store_true",
                        help="delete the demo data in the data dir and seed again (fresh "
                             "timestamps over the last seven days)")
    parser.set_defaults(func=run)


class _Stop(Exception):
    """SIGTERM arrived: shut down like on Ctrl+C."""


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop


def _check_port(port: int) -> None:
    if not 0 < port < 65536:
        raise UsageError(f"--port {port} is not a port number (1-65535).")
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise UsageError(f"Port {port} is in use: choose another --port or leave it out "
                             "to use a free one.") from None


def _reset(data_dir: Path) -> None:
    for name in _DEMO_FILES:
        path = data_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _seed(server: MlflowServer, data_dir: Path) -> None:
    """Seed the server in a child process (its progress lines go to our stderr)."""
    print(f"Seeding the demo server at {server.url} (once; later runs reuse the data)...",
          file=sys.stderr, flush=True)
    result = subprocess.run([sys.executable, "-m", "traceviewer.demo.seed",
                             "--tracking-uri", server.url], stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise TraceViewerError(f"Seeding the demo server failed (exit code {result.returncode}); "
                               f"see the messages above and {data_dir / 'server.log'}.")
    (data_dir / SEEDED_MARKER).touch()


def _follow_sign_in(url: str) -> bool:
    """The stand-in's sign-in page approves at once: follow it and its redirect back to the
    loopback port, as a browser would (`traceviewer workspace login demo-databricks` shows the
    real browser flow)."""
    try:
        httpx.get(url, follow_redirects=True, timeout=30.0)
    except httpx.HTTPError:
        return False
    return True


def _register_databricks(standin: DatabricksStandIn, *, session_only_fallback: bool) -> None:
    """Register `demo-databricks` (OAuth U2M on the stand-in) and sign it in: the refresh
    token goes to the keyring, or without one (GUI runs only) to this process's memory."""
    store = WorkspaceStore()
    ws = Workspace(name=DATABRICKS_WORKSPACE, host=standin.url, kind="databricks",
                   auth="oauth-u2m", default_experiment=EXPERIMENT)
    store.save(ws, replace=True)
    try:
        try:
            user = sign_in(ws, open_browser=_follow_sign_in)
        except KeyringUnavailable:
            if not session_only_fallback:
                raise
            user = sign_in(ws, open_browser=_follow_sign_in, session_only=True)
    except TraceViewerError as exc:
        print(f"traceviewer: warning: the demo could not sign in to '{DATABRICKS_WORKSPACE}' "
              f"({redact(str(exc))}); sign in with `traceviewer workspace login "
              f"{DATABRICKS_WORKSPACE}`.", file=sys.stderr, flush=True)
        return
    if user:
        store.upsert(replace(ws, reviewer=user))
    print(f"Databricks workspace stand-in at {standin.url}: workspace '{DATABRICKS_WORKSPACE}' "
          f"signed in as {user} (OAuth U2M).", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Start, seed (once), register and then serve or open the GUI; stop the server at the end."""
    data_dir = Path(args.data_dir).expanduser() if args.data_dir else paths.data_dir() / "demo"
    if args.port is not None:
        _check_port(args.port)
    if args.reset:
        _reset(data_dir)
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    server = MlflowServer(data_dir, port=args.port)
    standin: DatabricksStandIn | None = None
    try:
        server.start()
        if not (data_dir / SEEDED_MARKER).exists():
            _seed(server, data_dir)
        WorkspaceStore().upsert(Workspace(name=WORKSPACE, host=server.url,
                                          default_experiment=EXPERIMENT))
        if args.databricks:
            standin = DatabricksStandIn(server.url).start()
            _register_databricks(standin, session_only_fallback=not args.no_gui)
        if args.no_gui:
            print(f"MLflow server: {server.url}", flush=True)
            if standin is not None:
                print(f"Databricks workspace: {standin.url}", flush=True)
            try:
                code = server.wait()
            except (_Stop, KeyboardInterrupt):
                return 0  # the normal way to stop serving
            raise TraceViewerError(f"mlflow server stopped unexpectedly (exit code {code}); "
                                   f"see {data_dir / 'server.log'}.")
        from traceviewer.ui.app import run_gui

        args.workspace = DATABRICKS_WORKSPACE if standin is not None else WORKSPACE
        return run_gui(args)
    except _Stop:
        return 128 + signal.SIGTERM
    finally:
        if standin is not None:
            standin.stop()
        server.stop()
        signal.signal(signal.SIGTERM, previous)
