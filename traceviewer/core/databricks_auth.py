"""Signing in to a Databricks workspace: personal access tokens, OAuth U2M ("Sign in with
Databricks" in the system browser), OAuth M2M (a service principal's client credentials) and
`~/.databrickscfg` profiles, resolved by databricks-sdk's `Config` as the MLflow SDK does.

Access tokens live in memory only and are refreshed shortly before they expire, and once when the
server answers 401. Refresh tokens and client secrets are kept in the OS keyring
(`core.keychain`) and nowhere else: databricks-sdk's own browser flow caches tokens in a plaintext
file (~/.config/databricks-sdk-py/oauth/), so the U2M and M2M token exchanges are made here with
httpx, against the OIDC endpoints the SDK discovers from the host's metadata. Profiles that
delegate to the `databricks` or `az` command use the SDK's providers for them (which write
nothing themselves). Every secret is registered with `redact` as soon as it is read."""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import logging
import math
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from traceviewer.core import keychain, tls
from traceviewer.core.cancel import CancelToken
from traceviewer.core.errors import (
    AuthError,
    ConfigError,
    ConnectionFailed,
    KeyringUnavailable,
    Timeout,
    TraceViewerError,
)
from traceviewer.core.redact import redact, register_secret

# databricks-sdk takes ~2 s to import: loaded when a Databricks workspace is first used, not
# when the app starts.
if TYPE_CHECKING:
    from databricks.sdk.config import Config
    from databricks.sdk.credentials_provider import CredentialsProvider, CredentialsStrategy

if TYPE_CHECKING:
    from traceviewer.core.client import RestClient

log = logging.getLogger(__name__)

# How a Databricks workspace signs in (Workspace.auth); "token" is the older name of "pat".
AUTH_KINDS = ("pat", "oauth-u2m", "oauth-m2m", "profile")
AUTH_LABELS = {"pat": "personal access token", "token": "personal access token",
               "oauth-u2m": "OAuth user sign-in (U2M)",
               "oauth-m2m": "OAuth service principal (M2M)", "profile": "databrickscfg profile"}
# databricks-sdk's public OAuth client and scopes for the browser sign-in (external-browser).
U2M_CLIENT_ID = "databricks-cli"
U2M_SCOPES = "all-apis offline_access"
M2M_SCOPES = "all-apis"
SIGN_IN_TIMEOUT_S = 300.0
SCIM_ME = "/api/2.0/preview/scim/v2/Me"
_HTTP_TIMEOUT_S = 30.0
# The SDK probes the host's metadata when a Config is made; keep that short when it is down.
_SDK_TIMEOUT_S = 10
# SDK auth types that run a command, and the command.
_DELEGATES = {"databricks-cli": "databricks", "azure-cli": "az"}
# SDK auth types made here (the others go to the SDK's providers).
_OWN_KINDS = {"pat": "pat", "oauth-m2m": "oauth-m2m", "external-browser": "oauth-u2m"}


def auth_label(kind: str) -> str:
    """A readable name for an auth kind ours or the SDK's: 'OAuth user sign-in (U2M)'."""
    if kind in _DELEGATES:
        return f"{kind} (the `{_DELEGATES[kind]}` command)"
    return AUTH_LABELS.get(kind, kind)


# -- resolving configuration through databricks-sdk ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Resolved:
    """What databricks-sdk's `Config` resolved: the host and how to sign in there. `auth` is
    pat, oauth-m2m, oauth-u2m (the SDK's external-browser) or another SDK auth type (such as
    databricks-cli or azure-cli) that the SDK's own provider handles."""

    host: str
    auth: str
    token: str | None = field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    profile: str | None = None
    discovery_url: str | None = None
    config: Config | None = field(default=None, repr=False, compare=False)


@functools.cache
def _capture_class() -> type[CredentialsStrategy]:
    from databricks.sdk.credentials_provider import CredentialsStrategy

    class _Capture(CredentialsStrategy):
        """Stands in for the SDK's credential chain while a Config resolves: it notes the auth
        type the environment or profile asked for and signs nothing (the SDK's external-browser
        provider would write its plaintext token cache)."""

        requested: str | None = None

        def auth_type(self) -> str:
            return "traceviewer"

        def __call__(self, cfg: Config) -> CredentialsProvider:
            self.requested = cfg.auth_type
            return dict

    return _Capture


def _capture() -> Any:
    """A fresh `_Capture` strategy (its `requested` is read after a Config resolved)."""
    return _capture_class()()


def _sdk_config(strategy: CredentialsStrategy | None, **kwargs: Any) -> Config:
    from databricks.sdk.config import Config

    values = {k: v for k, v in kwargs.items() if v is not None}
    try:
        return Config(credentials_strategy=strategy, retry_timeout_seconds=_SDK_TIMEOUT_S,
                      http_timeout_seconds=_SDK_TIMEOUT_S, **values)
    except ValueError as exc:
        raise ConfigError(f"The Databricks configuration cannot be used: {redact(str(exc))}"
                          ) from None


def resolve(*, host: str | None = None, profile: str | None = None,
            auth_type: str | None = None) -> Resolved:
    """The Databricks host and sign-in that databricks-sdk's `Config` resolves from these
    arguments, the environment (DATABRICKS_HOST, DATABRICKS_TOKEN, DATABRICKS_CLIENT_ID/_SECRET,
    DATABRICKS_CONFIG_PROFILE, DATABRICKS_AUTH_TYPE) and `~/.databrickscfg`. ConfigError when it
    names no host or no way to sign in."""
    capture = _capture()
    cfg = _sdk_config(capture, host=host, profile=profile, auth_type=auth_type)
    register_secret(cfg.token)
    register_secret(cfg.client_secret)
    register_secret(cfg.password)
    if not cfg.host:
        raise ConfigError("No Databricks host is configured: set DATABRICKS_HOST (or "
                          "DATABRICKS_CONFIG_PROFILE naming a ~/.databrickscfg profile with a "
                          "host).")
    requested = capture.requested
    if requested:
        kind = _OWN_KINDS.get(requested, requested)
    elif cfg.token:
        kind = "pat"
    elif cfg.client_id and cfg.client_secret:
        kind = "oauth-m2m"
    else:
        where = f"profile '{cfg.profile}'" if cfg.profile else "the environment"
        raise ConfigError(f"{where.capitalize()} names the Databricks host {cfg.host} but no "
                          "way to sign in: set DATABRICKS_TOKEN, or DATABRICKS_CLIENT_ID and "
                          "DATABRICKS_CLIENT_SECRET, or use a profile with an auth_type.")
    return Resolved(host=cfg.host.rstrip("/"), auth=kind, token=cfg.token,
                    client_id=cfg.client_id, client_secret=cfg.client_secret,
                    profile=cfg.profile, discovery_url=cfg.discovery_url, config=cfg)


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The workspace's OAuth endpoints."""

    authorize: str
    token: str


def discover_endpoints(host: str, discovery_url: str | None = None) -> Endpoints:
    """The OAuth endpoints of `host`, as databricks-sdk discovers them (host metadata, then the
    OIDC discovery document)."""
    cfg = _sdk_config(_capture(), host=host, discovery_url=discovery_url,
                      auth_type="oauth-m2m")
    try:
        found = cfg.databricks_oidc_endpoints
    except Exception as exc:  # the SDK raises its own and requests' errors here
        raise ConnectionFailed(f"Could not read the OAuth endpoints of {host} "
                               f"({redact(str(exc)) or type(exc).__name__}): check the host URL "
                               "and your network.") from None
    if found is None:
        raise ConfigError(f"{host} does not publish OAuth endpoints.")
    return Endpoints(found.authorization_endpoint, found.token_endpoint)


# -- access tokens -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessToken:
    """An access token and when it stops working (time.monotonic(); inf for none)."""

    value: str = field(repr=False)
    expires_at: float = math.inf
    refresh_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        register_secret(self.value)
        register_secret(self.refresh_token)


def _token_request(endpoint: str, form: dict[str, str], verify: bool | str, what: str,
                   basic: tuple[str, str] | None = None) -> AccessToken:
    """POST a token request (RFC 6749) and read the answer; typed errors, no secret in them."""
    try:
        # The one trust store (core.tls): a corporate CA trusted for the API is for sign-in too.
        resp = httpx.post(endpoint, data=form, timeout=_HTTP_TIMEOUT_S,
                          verify=tls.verify(verify),
                          auth=basic, follow_redirects=False,
                          headers={"Accept": "application/json"})
    except httpx.TimeoutException:
        raise Timeout(f"The sign-in server {endpoint} did not answer in time while {what}: try "
                      "again.") from None
    except httpx.TransportError as exc:
        raise ConnectionFailed(f"Could not reach the sign-in server {endpoint} while {what} "
                               f"({redact(str(exc)) or type(exc).__name__}).") from None
    try:
        data = resp.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        data = {}
    if resp.status_code != 200 or not data.get("access_token"):
        error = str(data.get("error") or f"HTTP {resp.status_code}")
        detail = redact(str(data.get("error_description") or ""))[:300]
        raise AuthError(f"The sign-in server refused {what} ({error}"
                        + (f": {detail}" if detail else "") + ").")
    access = str(data["access_token"])
    register_secret(access)
    refresh = data.get("refresh_token")
    register_secret(refresh if isinstance(refresh, str) else None)
    try:
        lifetime = float(data.get("expires_in", 3600))
    except (TypeError, ValueError):
        lifetime = 3600.0
    return AccessToken(access, time.monotonic() + lifetime,
                       refresh if isinstance(refresh, str) else None)


class TokenSource:
    """Where a workspace's access tokens come from."""

    kind = "pat"
    refreshable = False

    def fetch(self) -> AccessToken:
        raise NotImplementedError

    def headers(self, token: AccessToken) -> dict[str, str]:
        return {"Authorization": f"Bearer {token.value}"}


class StaticToken(TokenSource):
    """A personal access token: it does not expire by itself."""

    def __init__(self, token: str):
        register_secret(token)
        self._token = AccessToken(token)

    def fetch(self) -> AccessToken:
        return self._token


class ClientCredentials(TokenSource):
    """OAuth M2M: a service principal's client id and secret for an access token."""

    kind = "oauth-m2m"
    refreshable = True

    def __init__(self, endpoints: Callable[[], Endpoints], client_id: str, client_secret: str,
                 verify: bool | str = True):
        register_secret(client_secret)
        self._endpoints, self._verify = endpoints, verify
        self.client_id, self._secret = client_id, client_secret

    def fetch(self) -> AccessToken:
        form = {"grant_type": "client_credentials", "scope": M2M_SCOPES}
        return _token_request(self._endpoints().token, form, self._verify,
                              f"the client credentials of {self.client_id}",
                              basic=(self.client_id, self._secret))


class RefreshToken(TokenSource):
    """OAuth U2M after the browser sign-in: the refresh token (in the keyring) for an access
    token. The server may rotate the refresh token; the new one goes back to the keyring."""

    kind = "oauth-u2m"
    refreshable = True

    def __init__(self, endpoints: Callable[[], Endpoints], load: Callable[[], str | None],
                 store: Callable[[str], None], *, client_id: str = U2M_CLIENT_ID,
                 verify: bool | str = True, login_hint: str = ""):
        self._endpoints, self._load, self._store = endpoints, load, store
        self._client_id, self._verify, self._hint = client_id, verify, login_hint
        self._current: str | None = None

    def fetch(self) -> AccessToken:
        refresh = self._current or self._load()
        if not refresh:
            raise AuthError(f"Not signed in to Databricks{self._hint and ' ' + self._hint}: "
                            "sign in first (`traceviewer workspace login NAME` or \"Sign in "
                            "with Databricks\" in the workspace manager).")
        try:
            token = self._refresh(refresh)
        except AuthError:
            # Another process (the GUI and a CLI command) may have rotated it meanwhile.
            stored = self._load()
            if not stored or stored == refresh:
                raise AuthError(f"The Databricks sign-in{self._hint and ' ' + self._hint} has "
                                "expired or was revoked: sign in again (`traceviewer workspace "
                                "login NAME` or \"Sign in with Databricks\").") from None
            token = self._refresh(stored)
        if token.refresh_token and token.refresh_token != refresh:
            self._current = token.refresh_token
            try:
                self._store(token.refresh_token)
            except KeyringUnavailable as exc:
                # This session goes on with the new token in memory; the next one signs in again.
                log.warning("Could not keep the renewed Databricks sign-in: %s", exc)
        return token

    def _refresh(self, refresh: str) -> AccessToken:
        register_secret(refresh)
        form = {"grant_type": "refresh_token", "refresh_token": refresh,
                "client_id": self._client_id}
        return _token_request(self._endpoints().token, form, self._verify,
                              "renewing the Databricks sign-in")


class SdkProvider(TokenSource):
    """A profile whose auth type the SDK's own provider handles (databricks-cli runs
    `databricks auth token`, azure-cli runs `az account get-access-token`, and others); the
    provider caches and refreshes its tokens in memory."""

    refreshable = False

    def __init__(self, resolved: Resolved):
        self.kind = resolved.auth
        command = _DELEGATES.get(resolved.auth)
        if command and shutil.which(command) is None:
            raise ConfigError(f"The Databricks profile '{resolved.profile or resolved.host}' signs "
                              f"in with the `{command}` command, which is not installed (or not "
                              f"on PATH): install it and sign in with it, or use another auth "
                              f"type.")
        strategy = None  # the SDK's default chain, restricted by auth_type
        try:
            cfg = _sdk_config(strategy, host=resolved.host, profile=resolved.profile,
                              auth_type=resolved.auth)
        except ConfigError as exc:
            raise AuthError(f"Signing in with {auth_label(resolved.auth)} failed: {exc}") from None
        self._cfg = cfg
        self._lock = threading.Lock()

    def fetch(self) -> AccessToken:
        return AccessToken("sdk", 0.0)  # headers() asks the SDK each time

    def headers(self, token: AccessToken) -> dict[str, str]:
        with self._lock:
            try:
                found: dict[str, str] = dict(self._cfg.authenticate())
            except Exception as exc:  # the SDK's providers raise their own errors
                raise AuthError(f"Signing in with {auth_label(self.kind)} failed: "
                                f"{redact(str(exc))}") from None
        for value in found.values():
            register_secret(value.partition(" ")[2] or value)
        return found


class DatabricksAuth:
    """Headers for each request to a Databricks workspace: the access token of `source`,
    renewed when less than a fifth of its life (at most a minute) is left, or after a 401.

    Thread-safe: one renewal at a time; other threads wait for it and use its token."""

    def __init__(self, source: TokenSource, host: str, label: str | None = None):
        self.source = source
        self.host = host
        self._label = label or auth_label(source.kind)
        self._lock = threading.Lock()
        self._token: AccessToken | None = None
        self._margin = 0.0

    @property
    def kind(self) -> str:
        return self.source.kind

    def __repr__(self) -> str:
        return f"DatabricksAuth({self.host!r}, kind={self.kind!r})"

    def headers(self) -> dict[str, str]:
        with self._lock:
            token = self._token
            if token is None or time.monotonic() >= token.expires_at - self._margin:
                token = self._renew()
            return self.source.headers(token)

    def access_token(self) -> str:
        """The current access token (renewed when needed), e.g. for MLflow's own client."""
        return self.headers().get("Authorization", "").partition(" ")[2]

    def invalidate(self) -> bool:
        with self._lock:
            self._token = None
        return self.source.refreshable

    def describe(self, host: str) -> str:
        return f"the {self._label} for {host}"

    def _renew(self) -> AccessToken:
        started = time.monotonic()
        token = self.source.fetch()
        life = token.expires_at - started
        self._margin = min(60.0, life / 5) if math.isfinite(life) else 0.0
        self._token = token
        return token


# -- the browser sign-in (U2M) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignIn:
    """The result of a browser sign-in: the first access token and the refresh token."""

    access: AccessToken
    refresh_token: str = field(repr=False)


_DONE_PAGE = (b"<!doctype html><title>Trace Viewer</title><p>Signed in to Databricks. You can "
              b"close this window and return to Trace Viewer.</p>")
_FAILED_PAGE = (b"<!doctype html><title>Trace Viewer</title><p>The sign-in did not complete. "
                b"Return to Trace Viewer and try again.</p>")


class _Redirect(http.server.HTTPServer):
    """The loopback server the browser is sent back to with the authorization code."""

    result: dict[str, str] | None = None


class _RedirectHandler(http.server.BaseHTTPRequestHandler):
    server: _Redirect

    def do_GET(self) -> None:
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        if "code" not in query and "error" not in query:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.server.result = query
        page = _DONE_PAGE if "code" in query else _FAILED_PAGE
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the request line holds the authorization code."""


def _open(open_browser: Callable[[str], bool], url: str) -> None:
    try:
        opened = open_browser(url)
    except Exception as exc:  # webbrowser raises its own errors for a broken $BROWSER
        log.warning("The browser could not be started for the Databricks sign-in: %s", exc)
        return
    if not opened:
        log.info("No browser could be opened for the Databricks sign-in")


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.decode().rstrip("=")


def sign_in_browser(host: str, *, endpoints: Endpoints | None = None, verify: bool | str = True,
                    on_url: Callable[[str], None] | None = None,
                    open_browser: Callable[[str], bool] | None = None,
                    token: CancelToken | None = None,
                    timeout_s: float = SIGN_IN_TIMEOUT_S) -> SignIn:
    """OAuth U2M: open the workspace's sign-in page in the system browser (`webbrowser`, so
    $BROWSER is honoured) and wait for its redirect to a loopback port; PKCE S256, client id
    databricks-cli, scopes `all-apis offline_access`. `on_url` gets the sign-in URL too, for
    when no browser opens. Cancelled through `token`; Timeout after `timeout_s`."""
    if open_browser is None:
        import webbrowser  # here: only a sign-in opens the browser

        open_browser = webbrowser.open
    endpoints = endpoints or discover_endpoints(host)
    verifier, challenge = _pkce()
    state = secrets.token_urlsafe(16)
    server = _Redirect(("127.0.0.1", 0), _RedirectHandler)
    server.timeout = 0.2
    try:
        redirect_uri = f"http://localhost:{server.server_address[1]}"
        url = endpoints.authorize + "?" + urlencode({
            "response_type": "code", "client_id": U2M_CLIENT_ID, "redirect_uri": redirect_uri,
            "scope": U2M_SCOPES, "state": state, "code_challenge": challenge,
            "code_challenge_method": "S256"})
        if on_url is not None:
            on_url(url)
        # On a thread: a $BROWSER command may wait for its browser, which needs this server.
        threading.Thread(target=_open, args=(open_browser, url), name="sign-in-browser",
                         daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while server.result is None:
            if token is not None:
                token.check()
            if time.monotonic() > deadline:
                raise Timeout(f"The Databricks sign-in did not finish within {timeout_s:.0f} s: "
                              "try again, and complete it in the browser.")
            server.handle_request()
        result = server.result
    finally:
        server.server_close()
    if result.get("state") != state:
        raise AuthError("The Databricks sign-in answered for another request (state mismatch): "
                        "try again.")
    if "code" not in result:
        reason = redact(result.get("error_description") or result.get("error") or "no code")
        raise AuthError(f"Databricks refused the sign-in ({reason[:300]}).")
    register_secret(result["code"])
    access = _token_request(endpoints.token, {
        "grant_type": "authorization_code", "code": result["code"], "code_verifier": verifier,
        "redirect_uri": redirect_uri, "client_id": U2M_CLIENT_ID}, verify,
        "the sign-in's authorization code")
    if not access.refresh_token:
        raise AuthError("Databricks signed you in without a refresh token (scope offline_access "
                        "was not granted): the sign-in would end within the hour.")
    return SignIn(access, access.refresh_token)


# -- auth for a workspace or for the environment -------------------------------------------------


def _endpoints_once(host: str, discovery_url: str | None = None) -> Callable[[], Endpoints]:
    found: list[Endpoints] = []
    lock = threading.Lock()

    def get() -> Endpoints:
        with lock:
            if not found:
                found.append(discover_endpoints(host, discovery_url))
            return found[0]

    return get


def workspace_auth(name: str, host: str, auth: str, *, secret: str | None = None,
                   profile: str | None = None, client_id: str | None = None,
                   verify: bool | str = True) -> DatabricksAuth:
    """The sign-in of saved Databricks workspace `name`: `secret` is the PAT or client secret
    (else read from the keyring); U2M reads its refresh token from the keyring and keeps the
    renewed one there. Reads the keyring: call it off the GUI thread."""
    hint = f"to workspace '{name}'"
    if auth in ("pat", "token"):
        secret = secret if secret is not None else keychain.get_secret(name)
        if not secret:
            raise AuthError(f"No token is stored for workspace '{name}': enter it in the "
                            "workspace manager, or run `traceviewer workspace add "
                            f"{name} --host {host} --auth pat --token-stdin --replace`.")
        return DatabricksAuth(StaticToken(secret), host)
    if auth == "oauth-m2m":
        secret = secret if secret is not None else keychain.get_secret(name)
        if not secret or not client_id:
            raise AuthError(f"Workspace '{name}' signs in as a service principal but has no "
                            "client id or secret stored: add them again with `traceviewer "
                            f"workspace add {name} --auth oauth-m2m --client-id ID "
                            "--client-secret-stdin --replace`.")
        return DatabricksAuth(ClientCredentials(_endpoints_once(host), client_id, secret,
                                                verify), host)
    if auth == "oauth-u2m":
        return DatabricksAuth(_u2m_source(name, host, verify, hint), host)
    if auth == "profile":
        resolved = resolve(host=host, profile=profile)
        if resolved.auth == "oauth-u2m":
            source: TokenSource = _u2m_source(name, resolved.host, verify, hint,
                                              resolved.discovery_url)
        else:
            source = source_for(resolved, verify)
        return DatabricksAuth(source, host, f"profile '{profile}' ({auth_label(resolved.auth)})")
    raise ConfigError(f"Unknown Databricks auth method '{auth}': use "
                      f"{', '.join(AUTH_KINDS)}.")


def _u2m_source(name: str, host: str, verify: bool | str, hint: str,
                discovery_url: str | None = None) -> RefreshToken:
    return RefreshToken(_endpoints_once(host, discovery_url), lambda: keychain.get_secret(name),
                        lambda value: keychain.set_secret(name, value), verify=verify,
                        login_hint=hint)


def source_for(resolved: Resolved, verify: bool | str = True) -> TokenSource:
    """The token source for what the SDK resolved (from the environment or a profile), with
    nothing stored: U2M needs a saved workspace that holds the sign-in."""
    if resolved.auth == "pat" and resolved.token:
        return StaticToken(resolved.token)
    if resolved.auth == "oauth-m2m" and resolved.client_id and resolved.client_secret:
        return ClientCredentials(_endpoints_once(resolved.host, resolved.discovery_url),
                                 resolved.client_id, resolved.client_secret, verify)
    if resolved.auth == "oauth-u2m":
        raise AuthError(f"{resolved.host} is configured for the browser sign-in "
                        "(external-browser): save it as a workspace and sign in once, with "
                        "`traceviewer workspace import-databrickscfg` and `traceviewer workspace "
                        "login NAME`.")
    if resolved.auth in ("pat", "oauth-m2m"):
        raise ConfigError(f"The {auth_label(resolved.auth)} for {resolved.host} is incomplete.")
    return SdkProvider(resolved)


def env_auth(host: str | None = None, env: Mapping[str, str] | None = None,
             verify: bool | str = True) -> tuple[str, DatabricksAuth]:
    """(host, auth) for the environment as the MLflow SDK reads it with
    MLFLOW_TRACKING_URI=databricks[://PROFILE]: `host` (or DATABRICKS_HOST or the profile's)
    and DATABRICKS_TOKEN, DATABRICKS_CLIENT_ID/_SECRET or DATABRICKS_CONFIG_PROFILE."""
    env = os.environ if env is None else env
    profile = None
    uri = env.get("MLFLOW_TRACKING_URI", "")
    if uri.startswith("databricks://"):
        profile = uri.partition("://")[2].split(":")[0] or None
    resolved = resolve(host=host, profile=profile)
    return resolved.host, DatabricksAuth(source_for(resolved, verify), resolved.host)


def configured_for(host: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether the environment's Databricks configuration (DATABRICKS_HOST, or the profile of
    MLFLOW_TRACKING_URI=databricks[://PROFILE] or DATABRICKS_CONFIG_PROFILE) is for `host`."""
    env = os.environ if env is None else env
    wanted = host.rstrip("/")
    named = (env.get("DATABRICKS_HOST") or "").strip().rstrip("/")
    if named and (named if "://" in named else f"https://{named}") == wanted:
        return True
    if not (env.get("MLFLOW_TRACKING_URI", "").startswith("databricks")
            or env.get("DATABRICKS_CONFIG_PROFILE")):
        return False
    try:
        return env_auth(env=env)[0] == wanted
    except TraceViewerError:
        return False


def current_user(client: RestClient, token: CancelToken | None = None) -> str | None:
    """Who `client` is signed in as (SCIM `Me` userName: the e-mail of a user, the application
    id of a service principal); the default reviewer id of a Databricks workspace."""
    data = client._json("GET", SCIM_ME, "reading the signed-in user", token=token)
    name = data.get("userName")
    return str(name) if name else None

