"""The MLflow REST client: one pooled httpx.Client per workspace, typed errors, bounded retries.

Safe to share between threads (httpx.Client is; nothing else here mutates). Every failure leaves
as a `TraceViewerError` subclass whose message says what to do and holds no secret. Idempotent
reads retry on connection errors and on 429/502/503/504 (honouring Retry-After), bounded in tries
and in total time; writes are sent exactly once, because a lost answer does not mean the write
did not happen (the review outbox decides about those)."""

from __future__ import annotations

import email.utils
import logging
import random
import ssl
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from traceviewer import __version__
from traceviewer.core import bounded, databricks_routes, pacing, tls
from traceviewer.core.auth import Auth, Authenticator
from traceviewer.core.bounded import Progress, ResponseLimits
from traceviewer.core.cancel import CancelToken
from traceviewer.core.errors import (
    AuthError,
    BadFilter,
    Cancelled,
    ConfigError,
    ConnectionFailed,
    NotFound,
    ServerError,
    Timeout,
    TraceViewerError,
    Unsupported,
)
from traceviewer.core.model import Assessment, Experiment, Trace, TraceInfo
from traceviewer.core.otlp import artifact_document, parse_trace
from traceviewer.core.redact import redact

log = logging.getLogger(__name__)

_RETRY_STATUSES = frozenset({429, 502, 503, 504})
# The open-source server answers /traces/get with this 500 when the spans live in the
# `traces.json` artifact (older traces, or spansLocation ARTIFACT_REPO).
_SPANS_IN_ARTIFACT = "not stored in tracking store"
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
# A server assembles a 100,000-span trace for minutes before it sends the first byte.
TRACE_WAIT_S = 600.0
CLIENT_KINDS = ("mlflow", "databricks")
# Requests paced by the host's budget (core.pacing): Databricks rate-limits trace search.
_PACED_PATHS = frozenset({"/api/3.0/mlflow/traces/search"})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long an idempotent read is retried."""

    attempts: int = 5
    total_s: float = 60.0
    base_delay_s: float = 0.5
    max_delay_s: float = 10.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before try `attempt + 1`: the server's Retry-After, else exponential
        backoff with jitter (so many clients do not retry in lockstep)."""
        if retry_after is not None:
            return retry_after
        backoff = min(self.max_delay_s, self.base_delay_s * 2.0 ** attempt)
        return backoff * (0.5 + random.random() / 2)


class RestClient:
    """Talks to one MLflow tracking server; see the module docstring for the guarantees."""

    def __init__(self, host: str, auth: Authenticator | None = None, verify: bool | str = True,
                 timeout: float = 30.0, retry: RetryPolicy | None = None,
                 kind: str = "mlflow", limits: ResponseLimits = bounded.LISTS,
                 trace_limits: ResponseLimits = bounded.TRACES):
        if kind not in CLIENT_KINDS:
            raise ConfigError(f"Unknown server kind '{kind}': use mlflow or databricks.")
        self.host = normalize_host(host)
        # Asked for headers on every request: Databricks OAuth tokens expire and are renewed.
        self.auth: Authenticator = auth or Auth()
        self.timeout = timeout
        self.kind = kind
        # "databricks": the workspace's own routes for spans, tags and trace infos
        # (core.databricks_routes) and its trace search rate.
        self.databricks = kind == "databricks"
        self._retry = retry or RetryPolicy()
        # Size and total time of one call: lists and JSON answers, and a trace's spans.
        self.limits, self.trace_limits = limits, trace_limits
        self._budget = pacing.budget_for(
            self.host, pacing.DATABRICKS_SEARCH if self.databricks else None)
        # One trust store (core.tls) for the server and the storage: the OS's plus the CA bundle.
        trust = _ssl_verify(verify, self.host)
        # Signed storage URLs get their own client: never the workspace's credentials.
        self._storage = databricks_routes.storage_client(trust) if self.databricks else None
        url = httpx.URL(self.host)
        if self.auth.kind != "none" and url.scheme == "http" and url.host not in _LOOPBACK:
            log.warning("Credentials for %s are sent over plain http: use https", self.host)
        self._http = bounded.bound_reads(httpx.Client(
            base_url=self.host,
            headers={"User-Agent": f"traceviewer/{__version__}"},
            verify=trust,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
            follow_redirects=False,
        ))

    def __repr__(self) -> str:
        return f"RestClient({self.host!r}, auth={self.auth.kind!r}, kind={self.kind!r})"

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()
        if self._storage is not None:
            self._storage.close()

    # -- server -----------------------------------------------------------------------------

    def health(self) -> None:
        """Raise unless the server answers its health check (public even with basic auth)."""
        self._call("GET", "/health", "checking the server's health")

    def version(self) -> str:
        """The server's MLflow version; needs valid credentials on servers with auth."""
        return self._call("GET", "/version", "reading the server version").text.strip()

    # -- experiments ------------------------------------------------------------------------

    def search_experiments(self, filter: str | None = None, max_results: int = 100,
                           page_token: str | None = None, token: CancelToken | None = None
                           ) -> tuple[list[Experiment], str | None]:
        """One page of active experiments matching an MLflow experiment filter string."""
        # The server rejects a missing max_results (it reads it as 0).
        body: dict[str, Any] = {"max_results": max_results}
        if filter:
            body["filter"] = filter
        if page_token:
            body["page_token"] = page_token
        what = "searching experiments"
        data = self._json("POST", "/api/2.0/mlflow/experiments/search", what,
                          body=body, read=True, search=True, token=token)
        with _mlflow_answer(self.host, what):
            experiments = [Experiment.from_json(e) for e in data.get("experiments", [])]
            return experiments, _page_token(data)

    def get_experiment(self, experiment_id: str) -> Experiment:
        """The experiment with this id (NotFound if there is none)."""
        what = f"reading experiment {experiment_id}"
        data = self._json("GET", "/api/2.0/mlflow/experiments/get", what,
                          params={"experiment_id": experiment_id})
        with _mlflow_answer(self.host, what):
            return Experiment.from_json(data["experiment"])

    def get_experiment_by_name(self, name: str) -> Experiment:
        """The experiment with this exact name (NotFound if there is none)."""
        what = f"reading experiment {name!r}"
        data = self._json("GET", "/api/2.0/mlflow/experiments/get-by-name", what,
                          params={"experiment_name": name})
        with _mlflow_answer(self.host, what):
            return Experiment.from_json(data["experiment"])

    def resolve_experiment(self, name_or_id: str) -> Experiment:
        """The experiment with this id or, failing that, this name."""
        if name_or_id.isdigit():
            try:
                return self.get_experiment(name_or_id)
            except NotFound:
                pass  # a name made of digits
        try:
            return self.get_experiment_by_name(name_or_id)
        except NotFound:
            raise NotFound(f"{self.host} has no experiment named or numbered {name_or_id!r}: "
                           "check the name (names are case-sensitive) or use its id.") from None

    # -- traces -----------------------------------------------------------------------------

    def search_traces(self, experiment_ids: Sequence[str], filter: str | None = None,
                      order_by: str | Sequence[str] | None = None, max_results: int = 100,
                      page_token: str | None = None, token: CancelToken | None = None
                      ) -> tuple[list[TraceInfo], str | None]:
        """One page of trace infos. An unknown experiment gives an empty page, as the server
        does (it answers `{}`). `token` also cancels a retry's back-off wait."""
        body: dict[str, Any] = {
            "locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": e}}
                          for e in experiment_ids],
            "max_results": max_results,
        }
        if filter:
            body["filter"] = filter
        if order_by:
            body["order_by"] = [order_by] if isinstance(order_by, str) else list(order_by)
        if page_token:
            body["page_token"] = page_token
        what = "searching traces"
        data = self._json("POST", "/api/3.0/mlflow/traces/search", what,
                          body=body, read=True, search=True, token=token)
        with _mlflow_answer(self.host, what):
            infos = [TraceInfo.from_json(t) for t in data.get("traces", [])]
            return infos, _page_token(data)

    def get_trace_raw(self, trace_id: str, token: CancelToken | None = None,
                      progress: Progress | None = None) -> bytes | bytearray:
        """The trace as JSON bytes for `otlp.parse_trace`: the REST get response, or, when the
        spans are stored as an artifact, a `Trace.to_json()`-format document. At most
        `trace_limits.max_bytes` (ResponseTooLarge), within `trace_limits.total_s`
        (DeadlineExceeded). `progress(received, expected)` follows the REST response's body."""
        if self.databricks:
            return databricks_routes.get_trace_raw(self, trace_id, token, TRACE_WAIT_S)
        what = f"fetching trace {trace_id}"
        # allow_partial: an in-progress trace comes back with the spans exported so far instead
        # of a 404 after the server's own ~3 s of waiting.
        resp = self._send("GET", "/api/3.0/mlflow/traces/get", what,
                          params={"trace_id": trace_id, "allow_partial": "true"},
                          wait_s=TRACE_WAIT_S, limits=self.trace_limits, token=token,
                          progress=progress)
        if resp.status_code == 500 and _SPANS_IN_ARTIFACT in resp.text:
            return self._trace_from_artifact(trace_id, token)
        return self._check(resp, what).content

    def get_trace(self, trace_id: str, token: CancelToken | None = None) -> Trace:
        """The trace with all its spans (CorruptTrace if the server's JSON cannot be read)."""
        return parse_trace(self.get_trace_raw(trace_id, token), token)

    def get_trace_info(self, trace_id: str, token: CancelToken | None = None) -> TraceInfo:
        """The trace's info without spans."""
        info = self._trace_info_json(trace_id, token)
        with _mlflow_answer(self.host, f"reading trace {trace_id}"):
            return TraceInfo.from_json(info)

    def batch_get_trace_infos(self, trace_ids: Sequence[str],
                              token: CancelToken | None = None) -> list[TraceInfo]:
        """Trace infos for these ids; unknown ids are left out."""
        if not trace_ids:
            return []
        if self.databricks:
            return databricks_routes.batch_get_trace_infos(self, trace_ids, token)
        what = f"reading {len(trace_ids)} trace infos"
        data = self._json("POST", "/api/3.0/mlflow/traces/batchGetInfos", what,
                          body={"trace_ids": list(trace_ids)}, read=True, token=token)
        with _mlflow_answer(self.host, what):
            return [TraceInfo.from_json(t) for t in data.get("trace_infos", [])]

    def _trace_info_json(self, trace_id: str,
                         token: CancelToken | None = None) -> dict[str, Any]:
        what = f"reading trace {trace_id}"
        data = self._json("GET", databricks_routes.trace_info_path(trace_id), what, token=token)
        with _mlflow_answer(self.host, what):
            info = data["trace"]["trace_info"]
            if not isinstance(info, dict):
                raise TypeError("trace_info is not an object")
            return info

    def _trace_from_artifact(self, trace_id: str, token: CancelToken | None) -> bytes:
        info = self._trace_info_json(trace_id, token)
        spans = self._call("GET", "/ajax-api/2.0/mlflow/get-trace-artifact",
                           f"fetching the spans of trace {trace_id}",
                           params={"request_id": trace_id}, limits=self.trace_limits,
                           token=token).content
        return artifact_document(info, spans)

    # -- assessments and tags (writes: sent once, never retried) ------------------------------

    def create_assessment(self, trace_id: str, body: dict[str, Any]) -> Assessment:
        """Create an assessment; `body` is the assessment object of the REST call (name, source,
        feedback or expectation, rationale, metadata, overrides)."""
        what = f"saving an assessment on trace {trace_id}"
        data = self._json("POST", f"/api/3.0/mlflow/traces/{_seg(trace_id)}/assessments", what,
                          body={"assessment": {**body, "trace_id": trace_id}})
        with _mlflow_answer(self.host, what):
            return Assessment.from_json(data["assessment"])

    def get_assessment(self, trace_id: str, assessment_id: str) -> Assessment:
        """One assessment of a trace."""
        what = f"reading assessment {assessment_id}"
        data = self._json("GET", _assessment_path(trace_id, assessment_id), what)
        with _mlflow_answer(self.host, what):
            return Assessment.from_json(data["assessment"])

    def update_assessment(self, trace_id: str, assessment_id: str,
                          fields: dict[str, Any]) -> Assessment:
        """Change the given fields (assessment_name, feedback, expectation, rationale,
        metadata) of an assessment; the update mask is made from the keys."""
        body = {"assessment": {"assessment_id": assessment_id, "trace_id": trace_id, **fields},
                "update_mask": ",".join(fields)}
        what = f"updating assessment {assessment_id}"
        data = self._json("PATCH", _assessment_path(trace_id, assessment_id), what, body=body)
        with _mlflow_answer(self.host, what):
            return Assessment.from_json(data["assessment"])

    def delete_assessment(self, trace_id: str, assessment_id: str) -> None:
        """Delete an assessment (no error if it is already gone, as the server does)."""
        self._call("DELETE", _assessment_path(trace_id, assessment_id),
                   f"deleting assessment {assessment_id}")

    def set_trace_tag(self, trace_id: str, key: str, value: str) -> None:
        """Set (or overwrite) a tag on a trace (NotFound if there is no such trace)."""
        try:
            self._call("PATCH", self._tags_path(trace_id),
                       f"tagging trace {trace_id}", body={"key": key, "value": value})
        except ServerError as exc:
            # An unknown trace gives a 400 with the database's foreign-key message, whose wording
            # depends on the backend: ask whether the trace exists instead of parsing it.
            if exc.status == 400:
                self.get_trace_info(trace_id)
            raise

    def delete_trace_tag(self, trace_id: str, key: str) -> None:
        """Remove a tag from a trace (NotFound if the trace has no such tag)."""
        # The server reads the key from a JSON body, even on DELETE.
        self._call("DELETE", self._tags_path(trace_id),
                   f"removing tag {key!r} from trace {trace_id}", body={"key": key})

    def _tags_path(self, trace_id: str) -> str:
        if self.databricks:
            return databricks_routes.tags_path(trace_id)
        return f"/api/3.0/mlflow/traces/{_seg(trace_id)}/tags"

    # -- HTTP layer -------------------------------------------------------------------------

    def _json(self, method: str, path: str, what: str, *, params: dict[str, Any] | None = None,
              body: dict[str, Any] | None = None, read: bool | None = None, search: bool = False,
              token: CancelToken | None = None) -> dict[str, Any]:
        resp = self._call(method, path, what, params=params, body=body, read=read, search=search,
                          token=token)
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            if "html" in resp.headers.get("content-type", "").lower():
                # Trying again would get the same page (a sign-in page or proxy in between).
                raise ServerError(f"{self.host} sent a web page, not an MLflow answer, while "
                                  f"{what}: check that the host URL points at an MLflow "
                                  "tracking server (a sign-in page or a proxy may be in the "
                                  "way).", resp.status_code)
            raise ServerError(f"{self.host} sent an unreadable answer while {what} (not a JSON "
                              "object; the response may have been cut off): try again.",
                              resp.status_code)
        return data

    def _call(self, method: str, path: str, what: str, *, params: dict[str, Any] | None = None,
              body: dict[str, Any] | None = None, read: bool | None = None,
              search: bool = False, limits: ResponseLimits | None = None,
              token: CancelToken | None = None) -> httpx.Response:
        resp = self._send(method, path, what, params=params, body=body, read=read,
                          limits=limits, token=token)
        return self._check(resp, what, search=search)

    def _send(self, method: str, path: str, what: str, *, params: dict[str, Any] | None = None,
              body: dict[str, Any] | None = None, read: bool | None = None,
              wait_s: float | None = None, limits: ResponseLimits | None = None,
              token: CancelToken | None = None, progress: Progress | None = None
              ) -> httpx.Response:
        """Send a request, retrying reads (GET, or POST searches marked read=True) on transient
        failures. Returns the final response, whatever its status, with its body read. `wait_s`:
        how long the server may think before answering, when longer than the client's timeout.
        `limits` (default `self.limits`): the most its body may hold (ResponseTooLarge) and the
        total time of the whole call, retries included (DeadlineExceeded), checked on every
        socket read and body chunk. `token` (and closing the client) ends a back-off wait or a
        download at once with `Cancelled`; `progress(received, expected)` follows the body."""
        if self._http.is_closed:
            # The workspace was switched or closed: work still holding this client just ends.
            raise Cancelled(f"the connection to {self.host} was closed")
        if read is None:
            read = method == "GET"
        timeout = self._http.timeout if wait_s is None else httpx.Timeout(
            max(wait_s, self.timeout), connect=self._http.timeout.connect)
        attempts = self._retry.attempts if read else 1
        limits = limits or self.limits
        call_deadline = time.monotonic() + limits.total_s
        deadline = min(call_deadline, time.monotonic() + self._retry.total_s)
        paced = path in _PACED_PATHS
        for attempt in range(attempts):
            retry_after: float | None = None
            too_fast = False
            # The host's shared budget: paced searches wait for their turn, and every request
            # waits out a 429 that any thread of this process met.
            self._budget.acquire(search=paced, token=token, closed=lambda: self._http.is_closed)
            try:
                with bounded.within(call_deadline):
                    resp = self._authorized(method, path, params, body, timeout, limits,
                                            call_deadline, what, token, progress)
            except httpx.TransportError as exc:
                if isinstance(exc, httpx.TimeoutException) and bounded.past(call_deadline):
                    raise bounded.too_slow(self.host, what, limits) from None
                error, retryable = self._transport_error(exc, what, read, timeout.read)
            else:
                if resp.status_code not in _RETRY_STATUSES:
                    return resp
                retry_after = _retry_after(resp)
                too_fast = resp.status_code == 429
                error, retryable = self._busy_error(resp, what, attempt + 1, retry_after), True
            wait = self._retry.delay(attempt, retry_after)
            if too_fast:
                self._budget.pause(wait)  # every thread of this host waits, not just this one
            if not retryable or attempt + 1 >= attempts or time.monotonic() + wait > deadline:
                raise error
            log.info("Retrying %s %s in %.1f s (try %d of %d): %s", method, path, wait,
                     attempt + 2, attempts, error)
            self._sleep(wait, token)
        raise AssertionError("unreachable: the last attempt raises or returns")

    def _authorized(self, method: str, path: str, params: dict[str, Any] | None,
                    body: dict[str, Any] | None, timeout: httpx.Timeout,
                    limits: ResponseLimits, deadline: float, what: str,
                    token: CancelToken | None, progress: Progress | None) -> httpx.Response:
        """One exchange with the auth's current headers; on a 401 whose credentials can be
        renewed (an expired OAuth token), renewed headers once more. A 401 means the request was
        not carried out, so resending is safe for writes too. The body is streamed through
        `bounded.read_body` (the one place a body is read: size, deadline, progress)."""
        resp = self._open(method, path, params, body, timeout)
        if resp.status_code == 401 and self.auth.invalidate():
            resp.close()
            resp = self._open(method, path, params, body, timeout)
        try:
            bounded.read_body(resp, limits, deadline, self.host, what, token=token,
                              progress=progress)
        finally:
            resp.close()
        return resp

    def _open(self, method: str, path: str, params: dict[str, Any] | None,
              body: dict[str, Any] | None, timeout: httpx.Timeout) -> httpx.Response:
        request = self._http.build_request(method, path, params=params, json=body,
                                           timeout=timeout, headers=self.auth.headers())
        return self._http.send(request, stream=True)

    def _sleep(self, seconds: float, token: CancelToken | None) -> None:
        """Wait before a retry; a cancelled token or a closed client ends the wait at once."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if token is not None:
                token.sleep(min(left, 0.1))
            else:
                time.sleep(min(left, 0.1))
            if self._http.is_closed:
                raise Cancelled(f"the connection to {self.host} was closed")

    def _transport_error(self, exc: httpx.TransportError, what: str, read: bool,
                         read_timeout: float | None) -> tuple[TraceViewerError, bool]:
        """The typed error for a failed exchange, and whether a read may retry it."""
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            return Timeout(f"Could not connect to {self.host} within {self.timeout:g} s while "
                           f"{what}: check the host and your network."), True
        if isinstance(exc, httpx.TimeoutException):
            # The server took the request but did not answer: retrying would multiply the wait.
            return Timeout(f"{self.host} did not answer within {read_timeout:g} s while {what}: "
                           "the server may be overloaded; try again later."), False
        if _is_tls_failure(exc):
            return ConnectionFailed(
                f"The TLS connection to {self.host} failed while {what} "
                f"({tls.failure_reason(exc)}): "
                "if the server uses a private certificate authority, set its CA bundle in the "
                "workspace settings."), False
        if isinstance(exc, httpx.ConnectError):
            return ConnectionFailed(f"Could not connect to {self.host} while {what} "
                                    f"({redact(str(exc)) or type(exc).__name__}): check the host "
                                    "URL and that the server is running."), True
        advice = ("try again." if read else
                  "the change may or may not have been saved; check before trying again.")
        return ConnectionFailed(f"The connection to {self.host} was lost while {what} "
                                f"({type(exc).__name__}): {advice}"), True

    def _busy_error(self, resp: httpx.Response, what: str, tries: int,
                    retry_after: float | None) -> ServerError:
        when = "later" if retry_after is None else f"in {retry_after:.0f} s, as the server asks"
        return ServerError(f"{self.host} is busy or unavailable (HTTP {resp.status_code}) while "
                           f"{what}, after {tries} tr{'y' if tries == 1 else 'ies'}: try again "
                           f"{when}.", resp.status_code)

    def _check(self, resp: httpx.Response, what: str, *, search: bool = False) -> httpx.Response:
        """Return a successful response; raise the typed error for any other."""
        status = resp.status_code
        if status < 300:
            return resp
        if status < 400:
            # Redirects are never followed, so credentials go nowhere but the configured host.
            target = redact(resp.headers.get("location", "")) or "an unnamed place"
            raise ServerError(
                f"{self.host} redirected the request for {what} to {target} (HTTP {status}); "
                "Trace Viewer does not follow redirects, so nothing (no credentials) was sent "
                "there: if the server has moved, put its new URL in the workspace settings.",
                status)
        code, message = _error_fields(resp)
        if status == 401:
            if self.auth.kind == "none":
                raise AuthError(f"{self.host} requires authentication (HTTP 401): add a token or "
                                "a username and password to the workspace settings.")
            raise AuthError(f"{self.auth.describe(self.host)} was rejected (HTTP 401): check it "
                            "in the workspace settings, or create a new one.")
        if status == 403:
            raise AuthError(f"{self.auth.describe(self.host)} lacks permission for {what} "
                            "(HTTP 403): ask the server's administrator for access.")
        if code is None and status in (404, 405):
            raise ServerError(f"{self.host} does not offer the call for {what} (HTTP {status}): "
                              "check that the host URL points at an MLflow 3 tracking server.",
                              status)
        if code == "ENDPOINT_NOT_FOUND":
            # Databricks' answer for a route it lacks: the trace or experiment may well exist.
            raise Unsupported(f"{self.host}: this server does not support {what} (HTTP "
                              f"{status} ENDPOINT_NOT_FOUND); check that the workspace kind "
                              "(mlflow or databricks) in its settings is right.", status)
        if status == 404:
            raise NotFound(f"Not found while {what}: {message}")
        if search and status == 400 and code == "INVALID_PARAMETER_VALUE":
            raise BadFilter(message)
        detail = f"HTTP {status}" + (f" {code}" if code else "")
        # First line only: some errors carry SQL statements and tracebacks after it.
        summary = message.strip().splitlines()[0][:300] if message.strip() else message
        raise ServerError(f"{self.host} failed while {what} ({detail}): {summary}", status)


@contextmanager
def _mlflow_answer(host: str, what: str) -> Iterator[None]:
    """Model objects made from a JSON answer: one of another shape than an MLflow server's
    (a proxy, another service) is a ServerError naming the host, not a KeyError or
    AttributeError from deep in the parsing."""
    try:
        yield
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        detail = redact(f"{type(exc).__name__}: {exc}")[:200]
        # A success status (only those reach parsing): not worth retrying on its own.
        raise ServerError(f"{host} answered with JSON that is not an MLflow server's while "
                          f"{what} ({detail}): check that the host URL points at an MLflow "
                          "tracking server.", 200) from None


def _page_token(data: dict[str, Any]) -> str | None:
    token = data.get("next_page_token") or None
    if token is not None and not isinstance(token, str):
        raise TypeError("next_page_token is not a string")
    return token


def normalize_host(host: str) -> str:
    """`host` as a base URL without trailing slash (https:// when it names no scheme).

    The one check of a server URL, for workspaces and for --host: ConfigError unless it is
    http(s)://host[:port] with no credentials in it."""
    text = host.strip().rstrip("/")
    if text and "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    try:
        url: httpx.URL | None = httpx.URL(text)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except (httpx.InvalidURL, ValueError):
        url = None
    if url is None or parts.scheme not in ("http", "https") or not parts.hostname or not url.host:
        raise ConfigError(f"'{host}' is not a server URL: use http(s)://host[:port], "
                          "e.g. http://127.0.0.1:5000 or https://adb-123.azuredatabricks.net")
    if parts.username or parts.password or url.userinfo:
        raise ConfigError("Put credentials in the token or password field (or the environment), "
                          "not in the URL.")
    return text


def _ssl_verify(verify: bool | str, host: str) -> bool | ssl.SSLContext:
    if verify is False:
        log.warning("TLS certificate verification is OFF for %s (explicitly requested)", host)
        return False
    return tls.verify(verify)


def _is_tls_failure(exc: BaseException) -> bool:
    return tls.failure_reason(exc) is not None


def _retry_after(resp: httpx.Response) -> float | None:
    """Retry-After as seconds (it may be a number or an HTTP date); None if absent or bad."""
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_fields(resp: httpx.Response) -> tuple[str | None, str]:
    """(error_code, message) of an MLflow JSON error; (None, a short note) for anything else,
    such as the HTML pages of unknown routes."""
    try:
        data = resp.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and ("error_code" in data or "message" in data):
        return data.get("error_code"), redact(str(data.get("message", "")))
    if resp.headers.get("content-type", "").startswith("text/plain") and resp.text.strip():
        return None, redact(resp.text.strip()[:300])
    return None, "the server gave no details"


def _seg(value: str) -> str:
    """A path segment, quoted: ids come from user input and untrusted trace data."""
    return quote(value, safe="")


def _assessment_path(trace_id: str, assessment_id: str) -> str:
    return f"/api/3.0/mlflow/traces/{_seg(trace_id)}/assessments/{_seg(assessment_id)}"
