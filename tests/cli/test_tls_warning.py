"""A workspace with TLS certificate verification turned off is never silent: every command that
uses it warns on stderr, and `workspace list` shows it."""

from __future__ import annotations

from traceviewer.cli import main
from traceviewer.core.workspaces import Workspace, WorkspaceStore

WARNING = "warning: TLS certificate verification is OFF for workspace 'lax'"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _save(mlflow_server) -> None:
    store = WorkspaceStore()
    store.save(Workspace(name="lax", host=mlflow_server.url, kind="mlflow", verify_tls=False))
    store.save(Workspace(name="strict", host=mlflow_server.url, kind="mlflow"))


def test_each_command_on_an_unverified_workspace_warns_on_stderr(capsys, mlflow_server, sdk):
    _save(mlflow_server)
    expected = {e.name for e in sdk.search_experiments()}
    code, out, err = run(capsys, "experiments", "list", "--workspace", "lax")
    assert code == 0 and all(name in out for name in expected)  # it still works
    assert err.count(WARNING) == 1 and "credentials" in err
    code, _, err = run(capsys, "traces", "search", "--workspace", "lax", "--experiment",
                       "/Shared/production-genai-app", "--max", "1")
    assert code == 0 and err.count(WARNING) == 1
    code, _, err = run(capsys, "experiments", "list", "--workspace", "strict")
    assert code == 0 and "TLS" not in err


def test_workspace_list_shows_which_workspaces_do_not_verify_tls(capsys, mlflow_server):
    _save(mlflow_server)
    code, out, _ = run(capsys, "workspace", "list")
    assert code == 0
    header, *rows = out.splitlines()
    assert "TLS" in header.split()
    (lax,) = [r for r in rows if r.startswith("lax ")]
    (strict,) = [r for r in rows if r.startswith("strict ")]
    assert "NOT VERIFIED" in lax and "NOT VERIFIED" not in strict and "verified" in strict
