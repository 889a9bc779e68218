"""`traceviewer workspace ...`: add, list, remove, test and import workspaces.

Secrets come only from stdin (or a hidden prompt on a terminal) or the environment, never from a
flag value, which would end up in the shell history and the process list."""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import sys

from traceviewer.cli.common import tls_unverified, warn_if_unverified
from traceviewer.core import conntest, databricks_auth, keychain
from traceviewer.core.cancel import CancelToken
from traceviewer.core.errors import KeyringUnavailable, UsageError
from traceviewer.core.imports import Imported, from_databrickscfg, from_environment
from traceviewer.core.redact import register_secret
from traceviewer.core.terminal import printable
from traceviewer.core.workspaces import (
    KINDS,
    Workspace,
    WorkspaceStore,
    guess_kind,
    sign_in,
    signs_in_browser,
)

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
    add.add_argument("--auth", choices=("none", "token", "basic", *databricks_auth.AUTH_KINDS),
                     help="how to sign in (default: from the secret options; Databricks: pat "
                          "with --token-stdin, oauth-u2m signs in in the browser with "
                          "`workspace login`, oauth-m2m needs --client-id and "
                          "--client-secret-stdin, profile uses a ~/.databrickscfg profile)")
    add.add_argument("--profile", metavar="P", help="with --auth profile: the profile's name")
    add.add_argument("--client-id", metavar="ID",
                     help="with --auth oauth-m2m: the service principal's client id")
    secret = add.add_mutually_exclusive_group()
    secret.add_argument("--token-stdin", action="store_true",
                        help="read a token from stdin (Bearer auth; a Databricks PAT)")
    secret.add_argument("--client-secret-stdin", action="store_true",
                        help="read the OAuth client secret (--auth oauth-m2m) from stdin")
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

    login = sub.add_parser("login", help="sign in to a Databricks workspace in the browser",
                           description="Sign in to a Databricks workspace (auth oauth-u2m, or a "
                                       "profile using external-browser) in the system browser; "
                                       "the refresh token goes to the OS keyring.")
    login.add_argument("name")
    login.set_defaults(func=_login)

    logout = sub.add_parser("logout", help="forget a Databricks sign-in",
                            description="Drop the workspace's refresh token from the keyring.")
    logout.add_argument("name")
    logout.set_defaults(func=_logout)

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
                         help="add the profiles of ~/.databrickscfg (every auth type)")
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


def _add_auth(args: argparse.Namespace, kind: str) -> str:
    """The auth method the options describe, checked against the secret options given."""
    if args.password_stdin and not args.username:
        raise UsageError("--password-stdin needs --username.")
    if args.username and not args.password_stdin:
        raise UsageError("Basic auth needs the password on stdin: add --password-stdin.")
    auth = args.auth or ("token" if args.token_stdin else "basic" if args.username
                         else "oauth-m2m" if args.client_secret_stdin else "none")
    if auth in ("token", "pat") and not args.token_stdin:
        raise UsageError("A token is read from stdin: add --token-stdin.")
    if auth == "oauth-m2m" and not (args.client_id and args.client_secret_stdin):
        raise UsageError("--auth oauth-m2m needs --client-id ID and the secret on stdin "
                         "(--client-secret-stdin).")
    if auth in ("oauth-u2m", "profile") and (args.token_stdin or args.client_secret_stdin):
        raise UsageError(f"--auth {auth} reads no secret: it signs in "
                         + ("in the browser (`workspace login`)." if auth == "oauth-u2m"
                            else "with the profile."))
    if kind == "databricks" and auth == "none":
        raise UsageError("A Databricks workspace needs a way to sign in: --auth oauth-u2m, "
                         "pat (--token-stdin), oauth-m2m or profile.")
    return auth


def _add(args: argparse.Namespace) -> int:
    kind = args.kind or guess_kind(args.host)
    auth = _add_auth(args, kind)
    ws = Workspace(name=args.name, host=args.host, kind=kind,
                   auth=auth, username=args.username, default_experiment=args.experiment,
                   ca_bundle=args.ca_bundle, verify_tls=not args.no_verify_tls,
                   reviewer=args.reviewer, profile=args.profile, client_id=args.client_id)
    store = WorkspaceStore()
    if not args.replace and any(w.name == ws.name for w in store.list()):
        # Checked before reading stdin so nobody types a token for nothing.
        raise UsageError(f"A workspace named '{ws.name}' already exists: pass --replace to "
                         "replace it, or choose another name.")
    what = {"basic": "Password", "oauth-m2m": "Client secret"}.get(auth, "Token")
    secret = _read_secret(what) if ws.enters_secret else None
    _save(store, ws, secret, args.replace)
    where = " (secret in the OS keyring)" if secret else ""
    print(f"Saved workspace '{ws.name}' ({ws.kind}, {ws.host}){where}. "
          + (f"Sign in with: traceviewer workspace login {ws.name}" if auth == "oauth-u2m"
             else f"Check it with: traceviewer workspace test {ws.name}"))
    return 0


def _login(args: argparse.Namespace) -> int:
    store = WorkspaceStore()
    ws = store.get(args.name)
    if not signs_in_browser(ws):
        raise UsageError(f"Workspace '{ws.name}' does not sign in in the browser (auth "
                         f"{ws.auth}); `login` is for Databricks workspaces with auth oauth-u2m.")

    def show(url: str) -> None:
        print("Opening the Databricks sign-in page in your browser. If it does not open, visit:",
              flush=True)
        print(f"  {url}", flush=True)

    user = sign_in(ws, on_url=show, token=CancelToken())
    if user and not ws.reviewer:
        store.upsert(dataclasses.replace(ws, reviewer=user))
    print(f"Signed in to '{ws.name}' ({ws.host})" + (f" as {printable(user)}" if user else "")
          + "; the refresh token is in the OS keyring.")
    return 0


def _logout(args: argparse.Namespace) -> int:
    ws = WorkspaceStore().get(args.name)
    if not signs_in_browser(ws):
        raise UsageError(f"Workspace '{ws.name}' has no browser sign-in to forget (auth "
                         f"{ws.auth}); to drop its secret, remove the workspace.")
    keychain.delete_secret(ws.name)
    print(f"Signed out of '{ws.name}': its refresh token was removed from the keyring.")
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
    rows: list[tuple[str, ...]] = [("NAME", "KIND", "HOST", "AUTH", "TLS", "EXPERIMENT",
                                    "REVIEWER")]
    rows += [(w.name, w.kind, w.host, w.auth + (f" ({w.username})" if w.username else ""),
              _tls_text(w), w.default_experiment or "-", w.reviewer or "-")
             for w in workspaces]
    rows = [tuple(printable(cell) for cell in row) for row in rows]  # imported names and hosts
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip())
    return 0


def _tls_text(ws: Workspace) -> str:
    """How the workspace checks the server's certificate, for `workspace list`."""
    if tls_unverified(ws):
        return "NOT VERIFIED"
    return "CA bundle" if ws.ca_bundle else "verified"


def _remove(args: argparse.Namespace) -> int:
    WorkspaceStore().remove(args.name)
    print(f"Removed workspace '{args.name}'.")
    return 0


def _print_step(step: conntest.Step) -> None:
    print(f"[{_MARKS[step.status]:>4}] {step.title:<28} {printable(step.detail)}", flush=True)


def _test(args: argparse.Namespace) -> int:
    ws = WorkspaceStore().get(args.name)
    warn_if_unverified(ws)
    print(f"Testing workspace '{ws.name}' ({ws.host})", flush=True)
    steps = conntest.run(ws, token=CancelToken(_print_step))
    user = conntest.signed_in_user(steps)
    if user and not ws.reviewer:
        # The signed-in Databricks user is who the feedback is from (the seed's source_id).
        WorkspaceStore().upsert(dataclasses.replace(ws, reviewer=user))
        print(f"Reviewer id set to {printable(user)} (the signed-in user).")
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
