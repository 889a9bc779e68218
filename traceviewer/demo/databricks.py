"""A local stand-in for a Databricks workspace, in front of a real `mlflow server`.

    python -m traceviewer.demo.databricks --backend-url URL [--port N] [--token-lifetime S]
        [--url-lifetime S] [--tracking-store-share F]

It answers what MLflow 3.17.2's Databricks client (`MLFLOW_TRACKING_URI=databricks`) and
databricks-sdk call, and nothing else: PAT and OAuth (U2M with PKCE, M2M) sign-in, the
workspace's trace, assessment, tag and experiment routes (forwarded to the backend), trace spans
through signed URLs on a second local "cloud storage" server, Databricks' JSON errors and its
search rate limit. It counts what it refused, for tests (`stats()`, `GET /_standin/stats`).

Accepted credentials come from TV_DBX_PAT, TV_DBX_CLIENT_ID, TV_DBX_CLIENT_SECRET and
TV_DBX_USER (demo defaults when unset), never from flags. Needs only the stdlib and httpx; the
app never imports this module.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

ARTIFACT_REPO = "ARTIFACT_REPO"
TRACKING_STORE = "TRACKING_STORE"
SPANS_LOCATION_TAG = "mlflow.trace.spansLocation"
ARTIFACT_LOCATION_TAG = "mlflow.artifactLocation"
# databricks-sdk's built-in public OAuth client for U2M sign-in (external-browser auth).
PUBLIC_CLIENT_IDS = ("databricks-cli",)
WORKSPACE_ID = "1234567890123456"
ACCOUNT_ID = "tv-demo-account"
SEARCH_RATE = 25.0  # trace searches per second per workspace (Databricks' tracing FAQ)
MAX_BATCH_GET = 10  # trace ids per v4 batchGet (the SDK sends at most 10)
AUTH_CODE_LIFETIME = 300.0
_STORAGE_PREFIX = f"/dbstorage-tv-demo/ws-{WORKSPACE_ID}/mlflow-tracking"
_STORAGE_HEADER = "x-amz-expected-bucket-owner"
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_TRACE_ID = r"(?P<trace_id>tr-[0-9a-f]+)"


@dataclass(frozen=True)
class Credentials:
    """What the workspace accepts: one PAT and one user (the U2M sign-in), one service
    principal (M2M client id and secret)."""

    pat: str
    client_id: str
    client_secret: str
    user: str

    @classmethod
    def from_env(cls) -> Credentials:
        return cls(pat=os.environ.get("TV_DBX_PAT") or "dapi-tv-demo-pat",
                   client_id=os.environ.get("TV_DBX_CLIENT_ID") or "tv-demo-service-principal",
                   client_secret=os.environ.get("TV_DBX_CLIENT_SECRET") or "dose-tv-demo-secret",
                   user=os.environ.get("TV_DBX_USER") or "reviewer@example.com")


@dataclass(frozen=True)
class Principal:
    """A signed-in identity as SCIM `Me` shows it."""

    user_name: str
    display_name: str
    email: str | None

    @property
    def id(self) -> str:
        return str(int(hashlib.sha256(self.user_name.encode()).hexdigest()[:12], 16))

    def scim(self) -> dict:
        doc = {"id": self.id, "userName": self.user_name, "displayName": self.display_name,
               "active": True, "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}
        if self.email:
            doc["emails"] = [{"value": self.email, "type": "work", "primary": True}]
        return doc


def _user_principal(email: str) -> Principal:
    local = email.split("@", 1)[0]
    return Principal(email, " ".join(w.capitalize() for w in re.split(r"[._-]+", local) if w),
                     email)


@dataclass
class _Grant:
    principal: Principal
    client_id: str
    scope: str
    expires: float = math.inf  # time.monotonic()


class TokenBucket:
    """`rate` requests per second with bursts up to `capacity`."""

    def __init__(self, rate: float, capacity: float):
        self._rate, self._capacity = rate, capacity
        self._tokens, self._at = capacity, time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take one token: 0.0 if there was one, else the seconds until there is."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._capacity, self._tokens + (now - self._at) * self._rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self._rate


class _Reply(Exception):
    """A finished response, raised from deep inside a handler."""

    def __init__(self, status: int, body: dict | bytes, content_type: str = "application/json",
                 headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status, self.body, self.content_type = status, body, content_type
        self.headers = headers or {}


def _error(status: int, code: str, message: str, **headers: str) -> _Reply:
    return _Reply(status, {"error_code": code, "message": message}, headers=headers)


def _oauth_error(status: int, error: str, description: str) -> _Reply:
    return _Reply(status, {"error": error, "error_description": description})


def _s3_error(status: int, code: str, message: str) -> _Reply:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>").encode()
    return _Reply(status, body, "application/xml")


class _Handler(BaseHTTPRequestHandler):
    """Shared plumbing: read the request, dispatch to the owner's `route`, write the reply."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            self.server.owner.route(self, self.command, url.path, parse_qs(url.query), url.query,
                                    body)
        except _Reply as reply:
            self.reply(reply)
        except httpx.HTTPError:
            self.reply(_error(503, "TEMPORARILY_UNAVAILABLE", "The backend did not answer."))

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = do_HEAD = _handle

    def reply(self, reply: _Reply) -> None:
        body = reply.body
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: request lines can carry signed URLs."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, owner: DatabricksStandIn | _Storage):
        self.owner = owner
        super().__init__(("127.0.0.1", port), _Handler)


# (methods, path pattern, handler name). Everything here needs a valid token.
_API_ROUTES = [
    ("GET", r"/api/2\.0/preview/scim/v2/Me", "_me"),
    ("GET POST", r"/api/2\.0/mlflow/experiments/(search|get|get-by-name)", "_forward"),
    ("POST", r"/api/2\.0/mlflow/experiments/(create|update|delete|restore|set-experiment-tag|"
             r"delete-experiment-tag)", "_forward"),
    ("POST", r"/api/3\.0/mlflow/traces/search", "_search"),
    ("GET", rf"/api/3\.0/mlflow/traces/{_TRACE_ID}", "_trace_info"),
    ("POST", rf"/api/3\.0/mlflow/traces/{_TRACE_ID}/assessments", "_forward"),
    ("GET PATCH DELETE", rf"/api/3\.0/mlflow/traces/{_TRACE_ID}/assessments/[^/]+", "_forward"),
    ("PATCH DELETE", rf"/api/2\.0/mlflow/traces/{_TRACE_ID}/tags", "_forward"),
    ("GET", rf"/api/2\.0/mlflow/traces/{_TRACE_ID}/credentials-for-data-download",
     "_credentials"),
    ("GET", r"/api/4\.0/mlflow/traces/[^/]+/batchGet", "_batch_get"),
]
_PUBLIC_ROUTES = {
    ("GET", "/.well-known/databricks-config"): "_host_metadata",
    ("GET", "/oidc/.well-known/oauth-authorization-server"): "_oidc_discovery",
    ("GET", "/oidc/v1/authorize"): "_authorize",
    ("POST", "/oidc/v1/token"): "_token",
    ("GET", "/_standin/stats"): "_stats",  # test-only: the refusal counters
}


class DatabricksStandIn:
    """The workspace server and its storage server on free loopback ports (or `port`), serving
    on background threads; use as a context manager or call start()/stop().

    Trace spans are ARTIFACT_REPO (signed-URL download of traces.json) by default; a
    `tracking_store_share` (0..1) of traces, chosen by a hash of the trace id
    (`spans_location()`), is TRACKING_STORE, served by the v4 batchGet route instead. Trace
    searches beyond `search_rate` a second (bursts of as many) are answered 429."""

    def __init__(self, backend_url: str, *, port: int = 0, token_lifetime: float = 3600.0,
                 url_lifetime: float = 900.0, tracking_store_share: float = 0.0,
                 search_rate: float = SEARCH_RATE, credentials: Credentials | None = None):
        self.backend_url = backend_url.rstrip("/")
        self.credentials = credentials or Credentials.from_env()
        self.token_lifetime = token_lifetime
        self.url_lifetime = url_lifetime
        self.tracking_store_share = tracking_store_share
        self.user = _user_principal(self.credentials.user)
        self.service_principal = Principal(self.credentials.client_id,
                                           f"Service principal {self.credentials.client_id}",
                                           None)
        self._port = port
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._access: dict[str, _Grant] = {}
        self._refresh: dict[str, _Grant] = {}
        self._codes: dict[str, tuple[_Grant, str, str]] = {}  # code -> grant, redirect, challenge
        self._bucket = TokenBucket(search_rate, search_rate)
        self._signing_key = secrets.token_bytes(32)
        self._backend: httpx.Client | None = None
        self._servers: list[_Server] = []
        self.url = self.storage_url = ""

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> DatabricksStandIn:
        self._backend = httpx.Client(base_url=self.backend_url,
                                     timeout=httpx.Timeout(600.0, connect=10.0))
        workspace = _Server(self._port, self)
        storage = _Server(0, _Storage(self))
        self._servers = [workspace, storage]
        self.url = f"http://127.0.0.1:{workspace.server_address[1]}"
        self.storage_url = f"http://127.0.0.1:{storage.server_address[1]}"
        for server in self._servers:
            threading.Thread(target=server.serve_forever, name="databricks-standin",
                             daemon=True).start()
        return self

    def stop(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.shutdown()
            server.server_close()
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def __enter__(self) -> DatabricksStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- for tests -------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counters: refusals (`unauthenticated`, `expired_token`, `unknown_route`,
        `rate_limited`, `oauth_refused`, `storage_authorization_header`, `storage_bad_signature`,
        `storage_expired_url`) and what was served (`searches`, `credentials`,
        `storage_downloads`, `batch_get`, `tokens_issued`)."""
        with self._lock:
            return dict(self._counts)

    def count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def spans_location(self, trace_id: str) -> str:
        """Where this workspace says the trace's spans are: ARTIFACT_REPO or TRACKING_STORE."""
        share = int.from_bytes(hashlib.sha256(trace_id.encode()).digest()[:8]) / 2**64
        return TRACKING_STORE if share < self.tracking_store_share else ARTIFACT_REPO

    # -- dispatch --------------------------------------------------------------------------

    def route(self, req: _Handler, method: str, path: str, query: dict[str, list[str]],
              raw_query: str, body: bytes) -> None:
        public = _PUBLIC_ROUTES.get((method, path))
        if public:
            raise getattr(self, public)(query, body, req)
        principal = self._authenticate(req.headers.get("Authorization", ""))
        for methods, pattern, name in _API_ROUTES:
            match = re.fullmatch(pattern, path)
            if match and method in methods.split():
                reply = getattr(self, name)(method, path, raw_query, body, match, principal)
                reply.headers["x-databricks-org-id"] = WORKSPACE_ID
                raise reply
        self.count("unknown_route")
        raise _error(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")

    def _authenticate(self, header: str) -> Principal:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token:
            if hmac.compare_digest(token, self.credentials.pat):
                return self.user
            with self._lock:
                grant = self._access.get(token)
            if grant is not None and time.monotonic() < grant.expires:
                return grant.principal
            if grant is not None:
                self.count("expired_token")
        self.count("unauthenticated")
        raise _error(401, "UNAUTHENTICATED",
                     "Credential was not sent, has expired or is not valid for this API.")

    # -- workspace API -----------------------------------------------------------------------

    def _started_backend(self) -> httpx.Client:
        assert self._backend is not None, "the stand-in is not started"
        return self._backend

    def _call_backend(self, method: str, path: str, raw_query: str = "",
                      body: bytes = b"") -> httpx.Response:
        headers = {"Content-Type": "application/json"} if body else {}
        target = path + (f"?{raw_query}" if raw_query else "")
        return self._started_backend().request(method, target, content=body, headers=headers)

    @staticmethod
    def _as_reply(resp: httpx.Response, doc: dict | None = None) -> _Reply:
        if doc is None and not resp.headers.get("content-type", "").startswith(
                "application/json"):
            # The backend's own 404/405 pages are HTML; this workspace answers in JSON.
            return _error(resp.status_code, "INTERNAL_ERROR" if resp.status_code >= 500
                          else "BAD_REQUEST", resp.text[:200])
        return _Reply(resp.status_code, resp.content if doc is None else doc)

    def _forward(self, method, path, raw_query, body, match, principal) -> _Reply:
        return self._as_reply(self._call_backend(method, path, raw_query, body))

    def _me(self, method, path, raw_query, body, match, principal) -> _Reply:
        return _Reply(200, principal.scim())

    def _databricks_info(self, info: dict) -> dict:
        """The trace info as a classic Databricks experiment shows it."""
        exp = info.get("trace_location", {}).get("mlflow_experiment", {}).get("experiment_id")
        tags = info.setdefault("tags", {})
        tags[SPANS_LOCATION_TAG] = self.spans_location(info["trace_id"])
        tags[ARTIFACT_LOCATION_TAG] = (
            f"dbfs:/databricks/mlflow-tracking/{exp}/{info['trace_id']}/artifacts")
        return info

    def _search(self, method, path, raw_query, body, match, principal) -> _Reply:
        wait = self._bucket.take()
        if wait:
            self.count("rate_limited")
            return _error(429, "REQUEST_LIMIT_EXCEEDED",
                          "Trace search rate limit exceeded for this workspace.",
                          **{"Retry-After": str(max(1, math.ceil(wait)))})
        self.count("searches")
        resp = self._call_backend(method, path, raw_query, body)
        if resp.status_code != 200:
            return self._as_reply(resp)
        doc = resp.json()
        for info in doc.get("traces", []):
            self._databricks_info(info)
        return _Reply(200, doc)

    def _trace_info(self, method, path, raw_query, body, match, principal) -> _Reply:
        resp = self._call_backend("GET", path)
        if resp.status_code != 200:
            return self._as_reply(resp)
        doc = resp.json()
        self._databricks_info(doc["trace"]["trace_info"])
        return _Reply(200, doc)

    def _batch_get(self, method, path, raw_query, body, match, principal) -> _Reply:
        """v4 BatchGetTraces: full traces (OTLP JSON spans) of tracking-store traces. The SDK
        sends its experiment traces here with the location segment `None`; artifact-stored
        traces are not in this store and are left out, as unknown ids are."""
        trace_ids = parse_qs(raw_query).get("trace_ids", [])
        if not trace_ids or len(trace_ids) > MAX_BATCH_GET:
            return _error(400, "INVALID_PARAMETER_VALUE",
                          f"trace_ids must hold 1 to {MAX_BATCH_GET} ids.")
        self.count("batch_get")
        wanted = [t for t in trace_ids if self.spans_location(t) == TRACKING_STORE]
        if not wanted:
            return _Reply(200, {"traces": []})
        resp = self._call_backend("GET", "/api/3.0/mlflow/traces/batchGet",
                                  urlencode([("trace_ids", t) for t in wanted]))
        if resp.status_code != 200:
            return self._as_reply(resp)
        doc = resp.json()
        for trace in doc.get("traces", []):
            self._databricks_info(trace["trace_info"])
        return _Reply(200, {"traces": doc.get("traces", [])})

    def _credentials(self, method, path, raw_query, body, match, principal) -> _Reply:
        trace_id = match["trace_id"]
        resp = self._call_backend("GET", f"/api/3.0/mlflow/traces/{trace_id}")
        if resp.status_code != 200:
            return self._as_reply(resp)
        info = resp.json()["trace"]["trace_info"]
        exp = info["trace_location"]["mlflow_experiment"]["experiment_id"]
        self.count("credentials")
        return _Reply(200, {"credential_info": {
            "run_id": trace_id, "path": "traces.json", "type": "AWS_PRESIGNED_URL",
            "signed_uri": self.sign(f"{_STORAGE_PREFIX}/{exp}/{trace_id}/artifacts/traces.json"),
            "headers": [{"name": _STORAGE_HEADER, "value": ACCOUNT_ID}]}})

    def sign(self, path: str) -> str:
        """A presigned storage URL for `path`, valid for url_lifetime seconds."""
        date = datetime.now(UTC).strftime(_AMZ_DATE)
        expires = str(max(1, math.ceil(self.url_lifetime)))
        query = {"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Date": date,
                 "X-Amz-Expires": expires, "X-Amz-SignedHeaders": f"host;{_STORAGE_HEADER}",
                 "X-Amz-Signature": self.signature(path, date, expires, ACCOUNT_ID)}
        return f"{self.storage_url}{path}?{urlencode(query)}"

    def signature(self, path: str, date: str, expires: str, header_value: str) -> str:
        message = "\n".join(("GET", path, date, expires, header_value)).encode()
        return hmac.new(self._signing_key, message, hashlib.sha256).hexdigest()

    def backend_trace_artifact(self, trace_id: str) -> httpx.Response:
        return self._started_backend().get("/ajax-api/2.0/mlflow/get-trace-artifact",
                                           params={"request_id": trace_id})

    # -- host metadata and OAuth ---------------------------------------------------------------

    def _host_metadata(self, query, body, req) -> _Reply:
        return _Reply(200, {"oidc_endpoint": f"{self.url}/oidc", "workspace_id": WORKSPACE_ID,
                            "cloud": "aws"})

    def _oidc_discovery(self, query, body, req) -> _Reply:
        oidc = f"{self.url}/oidc"
        return _Reply(200, {
            "issuer": oidc, "authorization_endpoint": f"{oidc}/v1/authorize",
            "token_endpoint": f"{oidc}/v1/token", "jwks_uri": f"{oidc}/jwks.json",
            "response_types_supported": ["code"], "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code", "refresh_token",
                                      "client_credentials"],
            "scopes_supported": ["all-apis", "offline_access", "sql"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                      "client_secret_post", "none"]})

    def _stats(self, query, body, req) -> _Reply:
        return _Reply(200, self.stats())

    def _authorize(self, query, body, req) -> _Reply:
        """Approve at once for the configured user and redirect with code and state."""
        arg = {k: v[0] for k, v in query.items()}
        redirect = arg.get("redirect_uri", "")
        if arg.get("client_id") not in PUBLIC_CLIENT_IDS:
            self.count("oauth_refused")
            return _oauth_error(400, "invalid_client", "Unknown OAuth client.")
        if urlsplit(redirect).scheme != "http" or urlsplit(redirect).hostname not in (
                "localhost", "127.0.0.1"):
            self.count("oauth_refused")
            return _oauth_error(400, "invalid_request", "redirect_uri is not allowed.")
        back = {"state": arg["state"]} if "state" in arg else {}
        if (arg.get("response_type") != "code" or arg.get("code_challenge_method") != "S256"
                or not arg.get("code_challenge")):
            self.count("oauth_refused")
            back |= {"error": "invalid_request",
                     "error_description": "response_type=code and a PKCE S256 challenge are "
                                          "required."}
        else:
            code = secrets.token_urlsafe(24)
            grant = _Grant(self.user, arg["client_id"],
                           arg.get("scope") or "all-apis offline_access",
                           time.monotonic() + AUTH_CODE_LIFETIME)
            with self._lock:
                self._codes[code] = (grant, redirect, arg["code_challenge"])
            back = {"code": code} | back
        sep = "&" if urlsplit(redirect).query else "?"
        return _Reply(302, b"", "text/plain", {"Location": f"{redirect}{sep}{urlencode(back)}"})

    def _token(self, query, body, req) -> _Reply:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        scheme, _, basic = req.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, client_secret = base64.b64decode(basic).decode().partition(":")
            except ValueError:
                client_id = client_secret = None
        grant_type = form.get("grant_type")
        try:
            if grant_type == "client_credentials":
                grant = self._client_credentials(client_id, client_secret, form)
            elif grant_type == "authorization_code":
                grant = self._exchange_code(client_id, form)
            elif grant_type == "refresh_token":
                grant = self._use_refresh_token(client_id, form)
            else:
                raise _oauth_error(400, "unsupported_grant_type", "Unsupported grant_type.")
        except _Reply:
            self.count("oauth_refused")
            raise
        return _Reply(200, self._issue(grant, refresh=grant_type != "client_credentials"
                                       and "offline_access" in grant.scope.split()),
                      headers={"Cache-Control": "no-store"})

    def _client_credentials(self, client_id, client_secret, form) -> _Grant:
        if not (client_id == self.credentials.client_id and client_secret is not None
                and hmac.compare_digest(client_secret, self.credentials.client_secret)):
            raise _oauth_error(401, "invalid_client", "Client authentication failed.")
        return _Grant(self.service_principal, client_id, form.get("scope") or "all-apis")

    def _exchange_code(self, client_id, form) -> _Grant:
        with self._lock:  # single use, also when the exchange fails
            entry = self._codes.pop(form.get("code", ""), None)
        if entry is None or time.monotonic() > entry[0].expires:
            raise _oauth_error(400, "invalid_grant", "Authorization code is invalid or expired.")
        grant, redirect, challenge = entry
        verifier = form.get("code_verifier", "")
        computed = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        if client_id != grant.client_id or form.get("redirect_uri") != redirect:
            raise _oauth_error(400, "invalid_grant", "client_id or redirect_uri do not match.")
        if not verifier or not hmac.compare_digest(computed, challenge):
            raise _oauth_error(400, "invalid_grant", "PKCE verification failed.")
        return grant

    def _use_refresh_token(self, client_id, form) -> _Grant:
        with self._lock:  # rotated: each refresh token works once
            grant = self._refresh.pop(form.get("refresh_token", ""), None)
        if grant is None or client_id != grant.client_id:
            raise _oauth_error(400, "invalid_grant", "Refresh token is invalid.")
        return grant

    def _issue(self, grant: _Grant, *, refresh: bool) -> dict:
        access = "dbx-oauth-" + secrets.token_urlsafe(32)
        lifetime = self.token_lifetime
        doc = {"access_token": access, "token_type": "Bearer",
               "expires_in": max(1, math.ceil(lifetime)), "scope": grant.scope}
        with self._lock:
            self._access[access] = _Grant(grant.principal, grant.client_id, grant.scope,
                                          time.monotonic() + lifetime)
            if refresh:
                doc["refresh_token"] = refresh_token = "dbx-refresh-" + secrets.token_urlsafe(32)
                self._refresh[refresh_token] = _Grant(grant.principal, grant.client_id,
                                                             grant.scope)
            self._counts["tokens_issued"] += 1
        return doc


class _Storage:
    """The "cloud storage" server: presigned GETs of traces.json only, never with an
    Authorization header, until the URL expires."""

    def __init__(self, workspace: DatabricksStandIn):
        self.workspace = workspace

    def route(self, req: _Handler, method: str, path: str, query: dict[str, list[str]],
              raw_query: str, body: bytes) -> None:
        ws = self.workspace
        if "Authorization" in req.headers:
            ws.count("storage_authorization_header")
            raise _s3_error(403, "AccessDenied",
                            "Only one auth mechanism allowed: the presigned URL.")
        arg = {k: v[0] for k, v in query.items()}
        date, expires = arg.get("X-Amz-Date", ""), arg.get("X-Amz-Expires", "")
        expected = ws.signature(path, date, expires, req.headers.get(_STORAGE_HEADER, ""))
        if method not in ("GET", "HEAD") or not hmac.compare_digest(
                arg.get("X-Amz-Signature", ""), expected):
            ws.count("storage_bad_signature")
            raise _s3_error(403, "SignatureDoesNotMatch",
                            "The request signature we calculated does not match.")
        signed = datetime.strptime(date, _AMZ_DATE).replace(tzinfo=UTC).timestamp()
        if time.time() >= signed + int(expires):
            ws.count("storage_expired_url")
            raise _s3_error(403, "AccessDenied", "Request has expired")
        match = re.fullmatch(rf"{_STORAGE_PREFIX}/[^/]+/{_TRACE_ID}/artifacts/traces\.json",
                             path)
        if match is None or ws.spans_location(match["trace_id"]) != ARTIFACT_REPO:
            raise _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        resp = ws.backend_trace_artifact(match["trace_id"])
        if resp.status_code != 200:
            raise _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        ws.count("storage_downloads")
        raise _Reply(200, resp.content, "application/json")


def main(argv: list[str] | None = None) -> int:
    """Serve a stand-in workspace in front of --backend-url until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m traceviewer.demo.databricks",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend-url", required=True, metavar="URL",
                        help="the mlflow server to front")
    parser.add_argument("--port", type=int, default=0, metavar="N",
                        help="loopback port for the workspace (default: a free one)")
    parser.add_argument("--token-lifetime", type=float, default=3600.0, metavar="S",
                        help="OAuth access-token lifetime in seconds (default 3600)")
    parser.add_argument("--url-lifetime", type=float, default=900.0, metavar="S",
                        help="signed storage URL lifetime in seconds (default 900)")
    parser.add_argument("--tracking-store-share", type=float, default=0.0, metavar="F",
                        help="share of traces (0..1) whose spans are in the tracking store "
                             "rather than artifact storage (default 0)")
    args = parser.parse_args(argv)
    if not 0.0 <= args.tracking_store_share <= 1.0:
        parser.error("--tracking-store-share must be between 0 and 1")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with DatabricksStandIn(args.backend_url, port=args.port, token_lifetime=args.token_lifetime,
                           url_lifetime=args.url_lifetime,
                           tracking_store_share=args.tracking_store_share) as standin:
        print(f"Databricks workspace: {standin.url}", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
