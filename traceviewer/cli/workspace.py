"""`traceviewer workspace ...`: add, list, remove, test and import workspaces.

Secrets come only from stdin (or a hidden prompt on a terminal) or the environment, never from a
flag value, which would end up in the shell history and the process list."""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from traceviewer.core import conntest
from traceviewer.core.cancel import CancelToken
from traceviewer.core.errors import KeyringUnavailable, UsageError
from traceviewer.core.imports import Imported, from_databrickscfg, from_environment
from traceviewer.core.redact import register_secret
from traceviewer.core.terminal import printable
from traceviewer.core.workspaces import KINDS, Workspace, WorkspaceStore, guess_kind

_NO_KEYRING_HINT = ("Without a keyring, pass the secret for one command in the environment "
                    "(MLFLOW_TRACKING_TOKEN, DATABRICKS_TOKEN or MLFLOW_TRACKING_USERNAME/"
                    "PASSWORD) together with --host URL.")
_MARKS = {conntest.OK: "ok", conntest.WARNING: "warn", conntest.FAILED: "FAIL",
          conntest.SKIPPED: "skip"}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `workspace` and its subcommands."""
    parser = subparsers.add_parser("workspace", help="manage workspaces (servers and credentials)",
                                   description="Manage the MLflow servers and Databricks "
                                               "workspaces Trace Viewer connects to.")
    sub = parser.add_subparsers(dest="workspace_command", metavar="SUBCOMMAND", required=True)

    add = sub.add_parser("add", help="add a workspace",
                         description="Add a workspace. The token or password is read from "
                                     "stdin and stored in the OS keyring only.")
    add.add_argument("name")
    add.add_argument("--host", required=True, metavar="URL",
                     help="server URL, e.g. http://127.0.0.1:5000 or https://adb-1.azuredatabricks"
                          ".net")
    add.add_argument("--kind", choices=KINDS,
                     help="server kind (default: guessed from the host)")
    secret = add.add_mutually_exclusive_group()
    secret.add_argument("--token-stdin", action="store_true",
                        help="read a token from stdin (Bearer auth; required for Databricks)")
    secret.add_argument("--username", metavar="U",
                        help="basic auth user; the password comes from --password-stdin")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the basic-auth password from stdin")
    add.add_argument("--experiment", metavar="NAME_OR_ID", help="default experiment")
    add.add_argument("--reviewer", metavar="ID",
                     help="your id as the source of human feedback, e.g. an e-mail")
    add.add_argument("--ca-bundle", metavar="PATH",
                     help="PEM file of the CA that signed the server's certificate")
    add.add_argument("--no-verify-tls", action="store_true",
                     help="do not verify the server's TLS certificate (unsafe)")
    add.add_argument("--replace", action="store_true", help="replace a workspace of that name")
    add.set_defaults(func=_add)

    listing = sub.add_parser("list", help="list workspaces (never shows secrets)")
    listing.add_argument("--format", choices=("table", "json"), default="table")
    listing.set_defaults(func=_list)

    remove = sub.add_parser("remove", help="remove a workspace and its keyring entry")
    remove.add_argument("name")
    remove.set_defaults(func=_remove)

    test = sub.add_parser("test", help="check the connection step by step",
                          description="Check that the host is reachable, TLS is valid, the "
                                      "credentials are accepted, the default experiment exists "
                                      "and traces arrived in the last 24 hours.")
    test.add_argument("name")
    test.set_defaults(func=_test)

    env = sub.add_parser("import-env", help="add the workspace the MLflow environment variables "
                                            "describe",
                         description="Import MLFLOW_TRACKING_URI (http(s) URL or databricks), "
                                     "DATABRICKS_HOST/TOKEN, MLFLOW_TRACKING_TOKEN/USERNAME/"
                                     "PASSWORD and MLFLOW_EXPERIMENT_NAME.")
    env.add_argument("name", nargs="?", help="workspace name (default: derived from the host)")
    env.add_argument("--replace", action="store_true", help="replace a workspace of that name")
    env.set_defaults(func=_import_env)

    cfg = sub.add_parser("import-databrickscfg",
                         help="add the token profiles of ~/.databrickscfg")
    cfg.add_argument("--profile", metavar="P", help="only this profile")
    cfg.add_argument("--replace", action="store_true", help="replace workspaces of those names")
    cfg.set_defaults(func=_import_databrickscfg)


def _read_secret(what: str) -> str:
    """A secret from stdin: a hidden prompt on a terminal, else the first line of the pipe."""
    if sys.stdin.isatty():
        secret = getpass.getpass(f"{what}: ")
    else:
        secret = sys.stdin.readline().rstrip("\r\n")
    register_secret(secret)
    if not secret:
        raise UsageError(f"No {what.lower()} on stdin: pipe it in, e.g. "
                         f"`printf %s \"$TOKEN\" | traceviewer workspace add ...`.")
    return secret


def _save(store: WorkspaceStore, ws: Workspace, secret: str | None, replace: bool) -> None:
    try:
        store.save(ws, secret, replace=replace)
    except KeyringUnavailable as exc:
        raise KeyringUnavailable(f"{exc} Nothing was saved. {_NO_KEYRING_HINT}") from None


def _add(args: argparse.Namespace) -> int:
    if args.password_stdin and not args.username:
        raise UsageError("--password-stdin needs --username.")
    if args.username and not args.password_stdin:
        raise UsageError("Basic auth needs the password on stdin: add --password-stdin.")
    auth = "token" if args.token_stdin else "basic" if args.username else "none"
    ws = Workspace(name=args.name, host=args.host, kind=args.kind or guess_kind(args.host),
                   auth=auth, username=args.username, default_experiment=args.experiment,
                   ca_bundle=args.ca_bundle, verify_tls=not args.no_verify_tls,
                   reviewer=args.reviewer)
    store = WorkspaceStore()
    if not args.replace and any(w.name == ws.name for w in store.list()):
        # Checked before reading stdin so nobody types a token for nothing.
        raise UsageError(f"A workspace named '{ws.name}' already exists: pass --replace to "
                         "replace it, or choose another name.")
    secret = _read_secret("Token" if auth == "token" else "Password") if ws.needs_secret else None
    _save(store, ws, secret, args.replace)
    where = " (secret in the OS keyring)" if secret else ""
    print(f"Saved workspace '{ws.name}' ({ws.kind}, {ws.host}){where}. "
          f"Check it with: traceviewer workspace test {ws.name}")
    return 0


def _list(args: argparse.Namespace) -> int:
    workspaces = WorkspaceStore().list()
    if args.format == "json":
        print(json.dumps([w.to_json() for w in workspaces], indent=2))
        return 0
    if not workspaces:
        print("No workspaces yet: add one with `traceviewer workspace add NAME --host URL` or "
              "`traceviewer workspace import-env`.")
        return 0
    rows = [("NAME", "KIND", "HOST", "AUTH", "EXPERIMENT", "REVIEWER")]
    rows += [(w.name, w.kind, w.host, w.auth + (f" ({w.username})" if w.username else ""),
              w.default_experiment or "-", w.reviewer or "-") for w in workspaces]
    rows = [tuple(printable(cell) for cell in row) for row in rows]  # imported names and hosts
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip())
    return 0


def _remove(args: argparse.Namespace) -> int:
    WorkspaceStore().remove(args.name)
    print(f"Removed workspace '{args.name}'.")
    return 0


def _print_step(step: conntest.Step) -> None:
    print(f"[{_MARKS[step.status]:>4}] {step.title:<28} {printable(step.detail)}", flush=True)


def _test(args: argparse.Namespace) -> int:
    ws = WorkspaceStore().get(args.name)
    print(f"Testing workspace '{ws.name}' ({ws.host})", flush=True)
    steps = conntest.run(ws, token=CancelToken(_print_step))
    if conntest.passed(steps):
        print("Connection OK.")
        return 0
    print("Connection test failed: see the FAIL lines above.")
    return 1


def _import(store: WorkspaceStore, found: Imported, replace: bool) -> None:
    _save(store, found.workspace, found.secret, replace)
    ws = found.workspace
    print(f"Imported workspace '{ws.name}' ({ws.kind}, {ws.host}, auth {ws.auth}) from "
          f"{found.source}.")


def _import_env(args: argparse.Namespace) -> int:
    _import(WorkspaceStore(), from_environment(name=args.name), args.replace)
    return 0


def _import_databrickscfg(args: argparse.Namespace) -> int:
    store = WorkspaceStore()
    imported, skipped = from_databrickscfg(profile=args.profile)
    for profile in skipped:
        print(f"Skipped profile [{profile.profile}]: {profile.reason}.")
    for found in imported:
        _import(store, found, args.replace)
    if not imported:
        print("No profile with a host and a token was found.")
        return 1
    return 0
