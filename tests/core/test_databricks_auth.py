"""Databricks sign-in (core.databricks_auth) against the workspace stand-in: OAuth M2M and U2M
access tokens renewed before they expire and after a 401, one renewal for many threads, the
browser sign-in with PKCE through $BROWSER, and the environment resolved by databricks-sdk."""

from __future__ import annotations

import threading
import time
import webbrowser

import pytest

from traceviewer.core import databricks_auth as dbx
from traceviewer.core.client import RestClient
from traceviewer.core.errors import AuthError, ConfigError


def browser_script(tmp_path, monkeypatch) -> None:
    """$BROWSER as a script that follows the sign-in URL (the stand-in approves at once) and
    the redirect back to the loopback port, as a browser would."""
    script = tmp_path / "browser.sh"
    script.write_text('#!/bin/sh\nexec curl -s -L -o /dev/null "$1"\n')
    script.chmod(0o755)
    monkeypatch.setenv("BROWSER", str(script))
    monkeypatch.setattr(webbrowser, "_tryorder", None)  # re-read $BROWSER
    monkeypatch.setattr(webbrowser, "_browsers", {})


def m2m(standin) -> dbx.DatabricksAuth:
    c = standin.credentials
    endpoints = dbx.discover_endpoints(standin.url)
    return dbx.DatabricksAuth(
        dbx.ClientCredentials(lambda: endpoints, c.client_id, c.client_secret), standin.url)


def delta(standin, before: dict[str, int], name: str) -> int:
    return standin.stats().get(name, 0) - before.get(name, 0)


def test_endpoints_come_from_the_hosts_metadata(databricks_standin):
    endpoints = dbx.discover_endpoints(databricks_standin.url)
    assert endpoints.token == f"{databricks_standin.url}/oidc/v1/token"
    assert endpoints.authorize == f"{databricks_standin.url}/oidc/v1/authorize"


def test_m2m_token_is_renewed_before_it_expires(databricks_standin):
    auth = m2m(databricks_standin)
    before = databricks_standin.stats()
    with RestClient(databricks_standin.url, auth, kind="databricks") as client:
        end = time.monotonic() + 7  # longer than the 5 s token life
        while time.monotonic() < end:
            assert dbx.current_user(client) == databricks_standin.credentials.client_id
            time.sleep(0.5)  # time passing is the behaviour here
    assert delta(databricks_standin, before, "tokens_issued") >= 2
    assert delta(databricks_standin, before, "expired_token") == 0


class _StaleFirst(dbx.TokenSource):
    """Hands out a token the server has never seen (as a revoked one), then real ones."""

    kind = "oauth-m2m"
    refreshable = True

    def __init__(self, real: dbx.TokenSource):
        self.real, self.calls = real, 0

    def fetch(self) -> dbx.AccessToken:
        self.calls += 1
        if self.calls == 1:
            return dbx.AccessToken("dbx-oauth-revoked", time.monotonic() + 3600)
        return self.real.fetch()


def test_a_401_renews_the_token_and_sends_once_more(databricks_standin):
    source = _StaleFirst(m2m(databricks_standin).source)
    before = databricks_standin.stats()
    with RestClient(databricks_standin.url, dbx.DatabricksAuth(source, databricks_standin.url),
                    kind="databricks") as client:
        assert dbx.current_user(client) == databricks_standin.credentials.client_id
    assert source.calls == 2
    assert delta(databricks_standin, before, "unauthenticated") == 1


def test_a_pat_rejected_is_not_sent_again(databricks_standin):
    before = databricks_standin.stats()
    auth = dbx.DatabricksAuth(dbx.StaticToken("dapi-not-the-pat"), databricks_standin.url)
    with RestClient(databricks_standin.url, auth, kind="databricks") as client, \
            pytest.raises(AuthError, match=r"personal access token .* was rejected") as caught:
        dbx.current_user(client)
    assert delta(databricks_standin, before, "unauthenticated") == 1
    assert "dapi-not-the-pat" not in str(caught.value)


def test_threads_share_one_renewal(databricks_standin):
    auth = m2m(databricks_standin)
    before = databricks_standin.stats()
    start = threading.Barrier(8)
    seen: list[str] = []

    def work() -> None:
        start.wait()
        seen.append(auth.headers()["Authorization"])

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 1
    assert delta(databricks_standin, before, "tokens_issued") == 1


def test_browser_sign_in_then_rotated_refresh_tokens(databricks_standin, tmp_path, monkeypatch):
    browser_script(tmp_path, monkeypatch)
    shown: list[str] = []
    signed = dbx.sign_in_browser(databricks_standin.url, on_url=shown.append)
    assert "code_challenge_method=S256" in shown[0]
    assert "client_id=databricks-cli" in shown[0]
    assert "scope=all-apis+offline_access" in shown[0]
    stored = {"refresh": signed.refresh_token}
    endpoints = dbx.discover_endpoints(databricks_standin.url)
    source = dbx.RefreshToken(lambda: endpoints, lambda: stored["refresh"],
                              lambda value: stored.__setitem__("refresh", value))
    with RestClient(databricks_standin.url, dbx.DatabricksAuth(source, databricks_standin.url),
                    kind="databricks") as client:
        assert dbx.current_user(client) == databricks_standin.credentials.user
    # The stand-in rotates refresh tokens: the new one was kept, the used one is dead.
    assert stored["refresh"] != signed.refresh_token
    dead = dbx.RefreshToken(lambda: endpoints, lambda: signed.refresh_token, lambda _: None)
    with pytest.raises(AuthError, match="sign in again") as caught:
        dead.fetch()
    assert signed.refresh_token not in str(caught.value)


def test_environment_is_resolved_by_databricks_sdk(databricks_standin, monkeypatch):
    c = databricks_standin.credentials
    for var in ("DATABRICKS_TOKEN", "DATABRICKS_CONFIG_PROFILE", "DATABRICKS_AUTH_TYPE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DATABRICKS_HOST", databricks_standin.url)
    monkeypatch.setenv("DATABRICKS_CLIENT_ID", c.client_id)
    monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", c.client_secret)
    host, auth = dbx.env_auth()
    assert (host, auth.kind) == (databricks_standin.url, "oauth-m2m")
    with RestClient(host, auth, kind="databricks") as client:
        assert dbx.current_user(client) == c.client_id


def test_a_profile_delegating_to_a_missing_command_says_so(databricks_standin, monkeypatch,
                                                           tmp_path):
    cfg = tmp_path / "databrickscfg"
    cfg.write_text(f"[cli]\nhost = {databricks_standin.url}\nauth_type = databricks-cli\n")
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(cfg))
    monkeypatch.setenv("PATH", str(tmp_path))  # no `databricks` command
    with pytest.raises(ConfigError, match="`databricks` command, which is not installed"):
        dbx.workspace_auth("cli", databricks_standin.url, "profile", profile="cli")
