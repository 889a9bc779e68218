"""Databricks workspaces on the command line, through the workspace stand-in in front of the
test server: PAT, OAuth M2M and U2M (`workspace login` with $BROWSER set to a script), searches
equal to the MLflow SDK's, tokens renewed over a long session with no secret in any file or log,
the seed's environment without --workspace, and every databrickscfg profile type imported."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import keyring
import pytest
from mlflow.entities import Trace as MlflowTrace

from tests.cli.test_traces import SESSION_META, SESSION_TAG, USER_META, USER_TAG, sdk_union
from tests.cli.test_workspace import cleanup, cli, log_to_this_test  # noqa: F401 (fixtures)
from tests.conftest import BIG_EXPERIMENT, PROD_EXPERIMENT, experiment_id
from tests.keyringtools import files_containing, unique_name
from traceviewer.core import databricks_routes, keychain, paths
from traceviewer.core.workspaces import WorkspaceStore
from traceviewer.demo.databricks import DatabricksStandIn

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
def test_search_by_user_session_and_client_request_id_equals_the_sdk(
        cli, cleanup, databricks_standin, sdk, prod, prod_infos, tmp_path, auth):  # noqa: F811
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
    request = next(i.client_request_id for i in prod_infos if i.client_request_id)
    by_request = search_ids(cli, name, "--client-request-id", request)
    assert by_request == [t.info.trace_id for t in sdk.search_traces(
        locations=[prod], filter_string=f"client_request_id = '{request}'", max_results=500,
        include_spans=False)]
    assert by_request


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


def hold_first_download(monkeypatch, at_least_s: float) -> list[str]:
    """The first spans download waits, as a slow client's would, until its signed URL has
    expired (the URL's own X-Amz-Date and X-Amz-Expires say when) and `at_least_s` passed
    (so the access token expires mid-command too); returns the URLs held."""
    real_get = databricks_routes._storage_get
    held: list[str] = []

    def get(client, url, headers, what, token, wait_s):
        if not held:
            held.append(url)
            query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
            signed = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
                tzinfo=UTC).timestamp()
            expired_in = signed + int(query["X-Amz-Expires"]) - time.time() + 0.5
            time.sleep(max(expired_in, at_least_s))
        return real_get(client, url, headers, what, token, wait_s)

    monkeypatch.setattr(databricks_routes, "_storage_get", get)
    return held


@pytest.mark.keyring
@pytest.mark.parametrize("auth", ["oauth-u2m", "oauth-m2m"])
def test_searches_opens_and_labels_over_30_s_renew_tokens_and_urls_with_no_secret_left(
        cli, cleanup, mlflow_server, sdk, prod, prod_infos, isolated_dirs, tmp_path,  # noqa: F811
        caplog, monkeypatch, auth):
    """Access tokens living 5 s and signed URLs 2 s: searches, opens (`trace show`) and labels
    (`feedback add`) keep working for 30 s, one open outliving its URL and its token; an
    expired signed URL is renewed, the storage server never sees an Authorization header, and
    no token or secret is left in a file, a log line or an error text."""
    log_to_this_test()
    caplog.set_level(logging.DEBUG)
    held = hold_first_download(monkeypatch, at_least_s=5.5)  # > the access token's life
    standin = DatabricksStandIn(mlflow_server.url, token_lifetime=5, url_lifetime=2).start()
    try:
        name = add_workspace(cli, standin, auth, tmp_path, cleanup)
        chat = [i.trace_id for i in prod_infos if i.state == "OK"][:3]
        label = unique_name("soak")
        issued: set[str] = set()
        outputs: list[str] = []
        done = Counter()
        end = time.monotonic() + 30  # six lifetimes of a 5 s access token
        while time.monotonic() < end:
            step = ("search", "open", "label")[sum(done.values()) % 3]
            if step == "search":
                argv = ("traces", "search", "--workspace", name, "--experiment",
                        PROD_EXPERIMENT, "--max", "5", "--format", "json")
            elif step == "open":
                argv = ("trace", "show", chat[done["open"] % 3], "--workspace", name,
                        "--format", "json")
            else:
                argv = ("feedback", "add", chat[done["label"] % 3], "--workspace", name,
                        "--name", label, "--value", str(done["label"]))
            code, out, err = cli(*argv)
            assert code == 0, (step, err)
            outputs += [out, err]
            done[step] += 1
            with standin._lock:  # what the stand-in issued so far (access and refresh tokens)
                issued |= set(standin._access) | set(standin._refresh)
            time.sleep(0.5)  # time passing is the behaviour: tokens expire meanwhile
        stats = standin.stats()
        assert min(done.values()) >= 5, done
        assert stats["tokens_issued"] >= 5  # renewed along the way, silently
        # The held download outlived its URL and its access token, and still loaded: a fresh
        # URL was asked for (with a renewed token); the token never went to the storage host.
        assert held and stats["storage_expired_url"] >= 1
        assert stats["credentials"] > stats["storage_downloads"] >= done["open"]
        assert stats.get("storage_authorization_header", 0) == 0
        # Every label arrived, from the signed-in identity.
        user = standin.credentials.user if auth == "oauth-u2m" else standin.credentials.client_id
        got = [a for t in chat for a in sdk.get_trace(t).info.assessments if a.name == label]
        assert len(got) == done["label"]
        assert {(a.source.source_type, a.source.source_id) for a in got} == {("HUMAN", user)}
        # A dead refresh token's error names no secret either.
        keychain.set_secret(name, "dbx-refresh-revoked-0123456789")
        code, out, err = cli("traces", "search", "--workspace", name, "--experiment",
                             PROD_EXPERIMENT, "--max", "5")
        outputs += [out, err]
        if auth == "oauth-u2m":
            assert code != 0 and "sign in again" in err
        with standin._lock:
            issued |= set(standin._access) | set(standin._refresh)
    finally:
        standin.stop()
    secrets = [s for s in issued if s.startswith(("dbx-oauth-", "dbx-refresh-"))]
    secrets += [standin.credentials.client_secret, "dbx-refresh-revoked-0123456789"]
    assert len(secrets) >= 7
    for handler in logging.getLogger().handlers:
        handler.flush()
    log_text = (paths.log_dir() / "traceviewer.log").read_text() + caplog.text
    for secret in secrets:
        assert files_containing(isolated_dirs, secret) == [], secret
        assert secret not in log_text
        assert not any(secret in text for text in outputs)
    assert not (Path.home() / ".config" / "databricks-sdk-py").exists()


def test_trace_show_of_the_10000_span_trace_equals_the_sdks_spans(
        cli, databricks_standin, sdk, monkeypatch):  # noqa: F811
    big = sdk.search_traces(locations=[experiment_id(sdk, BIG_EXPERIMENT)],
                            filter_string="attributes.client_request_id = 'big-10000'",
                            include_spans=False)[0].info.trace_id
    seed_environment(monkeypatch, databricks_standin)
    before = databricks_standin.stats()
    code, out, err = cli("trace", "show", big, "--format", "json")
    assert code == 0, err
    ours = MlflowTrace.from_json(out).data.spans
    theirs = sdk.get_trace(big).data.spans
    assert len(ours) == 10_000
    assert sorted((s.span_id, s.parent_id, s.name) for s in ours) == \
        sorted((s.span_id, s.parent_id, s.name) for s in theirs)
    after = databricks_standin.stats()
    assert after["storage_downloads"] == before.get("storage_downloads", 0) + 1  # signed URL
    assert after.get("storage_authorization_header", 0) == before.get(
        "storage_authorization_header", 0)


def request_id(prod_infos, n: int = 0) -> str:
    """The client request id of the n-th production trace that has one."""
    return [i.client_request_id for i in prod_infos if i.client_request_id][n]


def sdk_trace_id(sdk, prod: str, client_request_id: str) -> str:
    (found,) = sdk.search_traces(locations=[prod], include_spans=False,
                                 filter_string=f"client_request_id = '{client_request_id}'")
    return found.info.trace_id


def seed_environment(monkeypatch, standin) -> None:
    """The seed's environment: MLFLOW_TRACKING_URI=databricks with a host and a PAT."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "databricks")
    monkeypatch.setenv("DATABRICKS_HOST", standin.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", standin.credentials.pat)


@pytest.mark.keyring
@pytest.mark.parametrize("auth", ["pat", "oauth-u2m"])
def test_feedback_by_client_request_id_is_human_from_the_signed_in_user(
        cli, cleanup, databricks_standin, sdk, prod, prod_infos, tmp_path,  # noqa: F811
        monkeypatch, auth):
    req = request_id(prod_infos, 1 if auth == "pat" else 2)
    name = unique_name("label")
    if auth == "pat":
        seed_environment(monkeypatch, databricks_standin)  # no workspace: the seed's env
        where: tuple[str, ...] = ()
    else:
        ws = add_workspace(cli, databricks_standin, auth, tmp_path, cleanup)
        store = WorkspaceStore()
        store.upsert(dataclasses.replace(store.get(ws), reviewer=None))  # asked anew
        where = ("--workspace", ws)
    code, out, err = cli("feedback", "add", "--client-request-id", req, "--experiment",
                         PROD_EXPERIMENT, "--name", name, "--value", "false", *where)
    assert code == 0, err
    trace_id = sdk_trace_id(sdk, prod, req)
    assert out.startswith(f"Saved {name} = no on {trace_id}")
    # Read back by the MLflow SDK from the server behind the workspace.
    (label,) = [a for a in sdk.get_trace(trace_id).info.assessments if a.name == name]
    assert (label.source.source_type, label.source.source_id, label.value) == (
        "HUMAN", databricks_standin.credentials.user, False)


def test_outbox_flush_sends_a_bare_databricks_host_with_the_environments_sign_in(
        cli, databricks_standin, sdk, prod, prod_infos, monkeypatch):  # noqa: F811
    from traceviewer.core.outbox import Outbox, Target, open_target_client
    from traceviewer.core.review import assessment_body

    seed_environment(monkeypatch, databricks_standin)
    target = Target("", databricks_standin.url)
    with open_target_client(target) as client:
        assert (client.kind, client.auth.kind) == ("databricks", "pat")
    trace_id = sdk_trace_id(sdk, prod, request_id(prod_infos, 3))
    name = unique_name("queued")
    Outbox().add_create(target, trace_id, assessment_body(name, True, "queued@example.com"))
    code, out, err = cli("outbox", "flush")
    assert code == 0, out + err
    (label,) = [a for a in sdk.get_trace(trace_id).info.assessments if a.name == name]
    assert (label.source.source_type, label.value) == ("HUMAN", True)


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
