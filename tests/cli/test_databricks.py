"""Databricks workspaces on the command line, through the workspace stand-in in front of the
test server: PAT, OAuth M2M and U2M (`workspace login` with $BROWSER set to a script), searches
equal to the MLflow SDK's, tokens renewed over a long session with no secret in any file or log,
the seed's environment without --workspace, and every databrickscfg profile type imported."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import keyring
import pytest

from tests.cli.test_traces import SESSION_META, SESSION_TAG, USER_META, USER_TAG, sdk_union
from tests.cli.test_workspace import cleanup, cli, log_to_this_test  # noqa: F401 (fixtures)
from tests.conftest import PROD_EXPERIMENT
from tests.keyringtools import files_containing, unique_name
from traceviewer.core import keychain, paths
from traceviewer.core.workspaces import WorkspaceStore

_SDK_ENV = ("DATABRICKS_TOKEN", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET",
            "DATABRICKS_CONFIG_PROFILE", "DATABRICKS_AUTH_TYPE", "DATABRICKS_CONFIG_FILE",
            "BROWSER")


@pytest.fixture(autouse=True)
def no_databricks_env(monkeypatch):
    for var in _SDK_ENV:
        monkeypatch.delenv(var, raising=False)


def browser_script(tmp_path: Path) -> str:
    """A $BROWSER that follows the sign-in URL and its redirect back to the loopback port."""
    script = tmp_path / "browser.sh"
    script.write_text('#!/bin/sh\nexec curl -s -L -o /dev/null "$1"\n')
    script.chmod(0o755)
    return str(script)


def add_workspace(cli, standin, auth: str, tmp_path: Path, cleanup) -> str:  # noqa: F811
    """A saved workspace on the stand-in signed in with `auth`; returns its name."""
    name = unique_name(auth)
    cleanup.append(name)
    c = standin.credentials
    base = ("workspace", "add", name, "--kind", "databricks", "--host", standin.url,
            "--auth", auth)
    if auth == "pat":
        code, _out, err = cli(*base, "--token-stdin", stdin=c.pat + "\n")
    elif auth == "oauth-m2m":
        code, _out, err = cli(*base, "--client-id", c.client_id, "--client-secret-stdin",
                             stdin=c.client_secret + "\n")
    else:
        code, _out, err = cli(*base)
        assert code == 0, err
        # The real entry point in its own process, with the browser script as $BROWSER.
        env = {**os.environ, "BROWSER": browser_script(tmp_path)}
        done = subprocess.run([sys.executable, "-m", "traceviewer", "workspace", "login", name],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert f"{standin.url}/oidc/v1/authorize?" in done.stdout
        assert f"as {c.user}" in done.stdout
    assert code == 0, err
    return name


def search_ids(cli, name: str, *flags: str) -> list[str]:  # noqa: F811
    code, out, err = cli("traces", "search", "--workspace", name, "--experiment",
                         PROD_EXPERIMENT, "--max", "0", "--format", "json", *flags)
    assert code == 0, err
    return [row["trace_id"] for row in json.loads(out)]


@pytest.mark.keyring
@pytest.mark.parametrize("auth", ["pat", "oauth-m2m", "oauth-u2m"])
def test_search_by_user_and_session_equals_the_sdk(cli, cleanup, databricks_standin,  # noqa: F811
                                                   sdk, prod, prod_infos, tmp_path, auth):
    name = add_workspace(cli, databricks_standin, auth, tmp_path, cleanup)
    user = next(i.tags["mlflow.trace.user"] for i in prod_infos if "mlflow.trace.user" in i.tags)
    session = next(i.tags["mlflow.trace.session"] for i in prod_infos
                   if "mlflow.trace.session" in i.tags)
    by_user = search_ids(cli, name, "--user", user)
    by_session = search_ids(cli, name, "--session", session)
    assert by_user and by_session
    assert by_user == sdk_union(sdk, prod, f"{USER_TAG} = '{user}'", f"{USER_META} = '{user}'")
    assert by_session == sdk_union(sdk, prod, f"{SESSION_TAG} = '{session}'",
                                   f"{SESSION_META} = '{session}'")


@pytest.mark.keyring
@pytest.mark.parametrize("auth", ["pat", "oauth-m2m"])
def test_connection_test_names_auth_and_user_who_becomes_the_reviewer(
        cli, cleanup, databricks_standin, tmp_path, auth):  # noqa: F811
    name = add_workspace(cli, databricks_standin, auth, tmp_path, cleanup)
    code, out, err = cli("workspace", "test", name)
    assert code == 0, out + err
    c = databricks_standin.credentials
    who = c.user if auth == "pat" else c.client_id
    label = "personal access token" if auth == "pat" else "OAuth service principal (M2M)"
    assert f"signed in as {who} with the {label}" in out
    assert WorkspaceStore().get(name).reviewer == who


@pytest.mark.keyring
@pytest.mark.parametrize("auth", ["oauth-u2m", "oauth-m2m"])
def test_tokens_renewed_over_30_s_and_no_secret_in_files_or_logs(
        cli, cleanup, databricks_standin, sdk, prod, isolated_dirs, tmp_path, caplog,  # noqa: F811
        auth):
    log_to_this_test()
    caplog.set_level(logging.DEBUG)
    name = add_workspace(cli, databricks_standin, auth, tmp_path, cleanup)
    standin = databricks_standin
    before = standin.stats()
    issued: set[str] = set()
    outputs: list[str] = []
    end = time.monotonic() + 30  # six lifetimes of a 5 s access token
    searches = 0
    while time.monotonic() < end:
        code, out, err = cli("traces", "search", "--workspace", name, "--experiment",
                             PROD_EXPERIMENT, "--max", "5", "--format", "json")
        assert code == 0, err
        outputs += [out, err]
        searches += 1
        with standin._lock:  # what the stand-in issued so far (access and refresh tokens)
            issued |= set(standin._access) | set(standin._refresh)
        time.sleep(1)  # time passing is the behaviour: tokens expire meanwhile
    assert searches >= 20
    assert standin.stats().get("tokens_issued", 0) - before.get("tokens_issued", 0) >= 5
    # A dead refresh token's error names no secret either.
    keychain.set_secret(name, "dbx-refresh-revoked-0123456789")
    code, out, err = cli("traces", "search", "--workspace", name, "--experiment",
                         PROD_EXPERIMENT, "--max", "5")
    outputs += [out, err]
    if auth == "oauth-u2m":
        assert code != 0 and "sign in again" in err
    secrets = [s for s in issued if s.startswith(("dbx-oauth-", "dbx-refresh-"))]
    secrets += [standin.credentials.client_secret, "dbx-refresh-revoked-0123456789"]
    for handler in logging.getLogger().handlers:
        handler.flush()
    log_text = (paths.log_dir() / "traceviewer.log").read_text() + caplog.text
    for secret in secrets:
        assert files_containing(isolated_dirs, secret) == [], secret
        assert secret not in log_text
        assert not any(secret in text for text in outputs)
    assert not (Path.home() / ".config" / "databricks-sdk-py").exists()


def experiment_names(sdk) -> list[str]:
    return sorted(e.name for e in sdk.search_experiments(max_results=1000))


@pytest.mark.parametrize("how", ["token", "client-credentials", "profile"])
def test_seed_environment_works_without_workspace_or_host(cli, databricks_standin,  # noqa: F811
                                                          sdk, monkeypatch, how):
    c = databricks_standin.credentials
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "databricks")
    if how == "profile":
        (Path.home() / ".databrickscfg").write_text(
            f"[seed]\nhost = {databricks_standin.url}\nclient_id = {c.client_id}\n"
            f"client_secret = {c.client_secret}\n")
        monkeypatch.setenv("DATABRICKS_CONFIG_PROFILE", "seed")
    else:
        monkeypatch.setenv("DATABRICKS_HOST", databricks_standin.url)
        if how == "token":
            monkeypatch.setenv("DATABRICKS_TOKEN", c.pat)
        else:
            monkeypatch.setenv("DATABRICKS_CLIENT_ID", c.client_id)
            monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", c.client_secret)
    code, out, err = cli("experiments", "list", "--format", "json")
    assert code == 0, err
    assert sorted(e["name"] for e in json.loads(out)) == experiment_names(sdk)


def test_host_with_kind_databricks_signs_in_from_the_environment(cli, databricks_standin,  # noqa: F811
                                                                 sdk, monkeypatch):
    monkeypatch.setenv("DATABRICKS_TOKEN", databricks_standin.credentials.pat)
    code, out, err = cli("experiments", "list", "--host", databricks_standin.url, "--kind",
                         "databricks", "--format", "json")
    assert code == 0, err
    assert sorted(e["name"] for e in json.loads(out)) == experiment_names(sdk)


@pytest.mark.keyring
def test_import_databrickscfg_imports_every_profile_type(cli, cleanup, isolated_dirs):  # noqa: F811
    names = {kind: unique_name(kind) for kind in ("pat", "m2m", "u2m", "cli")}
    cleanup.extend(names.values())
    token, secret = "dapi" + "0a" * 16, "dose" + "1b" * 16
    cfg = Path.home() / ".databrickscfg"
    cfg.write_text(
        f"[{names['pat']}]\nhost = https://dbc-1.cloud.databricks.com\ntoken = {token}\n"
        f"[{names['m2m']}]\nhost = https://dbc-2.cloud.databricks.com\nauth_type = oauth-m2m\n"
        f"client_id = sp-1\nclient_secret = {secret}\n"
        f"[{names['u2m']}]\nhost = https://dbc-3.cloud.databricks.com\n"
        "auth_type = external-browser\n"
        f"[{names['cli']}]\nhost = https://dbc-4.cloud.databricks.com\n"
        "auth_type = databricks-cli\n")
    code, _out, err = cli("workspace", "import-databrickscfg")
    assert code == 0, err
    store = WorkspaceStore()
    got = {kind: store.get(name) for kind, name in names.items()}
    assert {kind: ws.auth for kind, ws in got.items()} == {
        "pat": "token", "m2m": "oauth-m2m", "u2m": "oauth-u2m", "cli": "profile"}
    assert (got["m2m"].client_id, got["cli"].profile) == ("sp-1", names["cli"])
    assert keyring.get_password(keychain.SERVICE, names["pat"]) == token
    assert keyring.get_password(keychain.SERVICE, names["m2m"]) == secret
    assert keyring.get_password(keychain.SERVICE, names["u2m"]) is None
    assert files_containing(isolated_dirs, secret) == [cfg]
