"""The calls a Databricks workspace needs where it differs from an open-source MLflow server;
`RestClient` uses these for workspaces of kind "databricks".

They follow what MLflow 3.17.2's own Databricks client does (`TracingClient.get_trace`,
`DatabricksTracingRestStore`, `DatabricksArtifactRepository`): there is no `/traces/get` and no
`batchGetInfos`. A trace's spans are where its `mlflow.trace.spansLocation` tag says: in the
tracking store (or archive), read through the v4 batchGet route; otherwise (the classic
default) in a `traces.json` artifact in cloud storage, downloaded from a signed URL that the
workspace hands out. The signed URL carries its own authorization, so the workspace's token
never goes to the storage host."""

from __future__ import annotations

import http.cookiejar
import json
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx

from traceviewer import __version__
from traceviewer.core import bounded, tls
from traceviewer.core.cancel import CancelToken
from traceviewer.core.errors import (
    AuthError,
    ConnectionFailed,
    NotFound,
    ServerError,
    Timeout,
    TraceViewerError,
)
from traceviewer.core.model import TraceInfo
from traceviewer.core.otlp import artifact_document

if TYPE_CHECKING:
    from traceviewer.core.client import RestClient

log = logging.getLogger(__name__)

SPANS_LOCATION_TAG = "mlflow.trace.spansLocation"
# Spans the tracking server itself serves (the SDK reads these through the store, not storage).
_IN_STORE = ("TRACKING_STORE", "ARCHIVE_REPO")
# MLflow 3.17.2 sends experiment traces to `{prefix}/{location}/batchGet` with its location
# argument unset, which its f-string spells `None`; the workspace accepts that path.
_BATCH_GET = "/api/4.0/mlflow/traces/None/batchGet"
_STORAGE_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Below this a batchGet answer may be empty (`{"traces": []}`): worth parsing to tell.
_SMALL_ANSWER = 64 * 1024


def trace_info_path(trace_id: str) -> str:
    return f"/api/3.0/mlflow/traces/{_seg(trace_id)}"


def tags_path(trace_id: str) -> str:
    """Trace tags: Databricks has them on /api/2.0 (the SDK always uses that route)."""
    return f"/api/2.0/mlflow/traces/{_seg(trace_id)}/tags"


def get_trace_raw(client: RestClient, trace_id: str, token: CancelToken | None,
                  wait_s: float) -> bytes:
    """The trace as JSON bytes for `otlp.parse_trace`, read where its spans are."""
    info = client._trace_info_json(trace_id, token)
    tags = info.get("tags") or {}
    if tags.get(SPANS_LOCATION_TAG) in _IN_STORE:
        return _batch_get(client, trace_id, token, wait_s)
    return artifact_document(info, download_spans(client, trace_id, token, wait_s))


def _batch_get(client: RestClient, trace_id: str, token: CancelToken | None,
               wait_s: float) -> bytes:
    what = f"fetching trace {trace_id}"
    resp = client._send("GET", _BATCH_GET, what, params={"trace_ids": [trace_id]},
                        wait_s=wait_s, limits=client.trace_limits, token=token)
    content = client._check(resp, what).content
    if len(content) < _SMALL_ANSWER:
        try:
            doc = json.loads(content)
        except ValueError:
            doc = None  # parse_trace names the problem
        if isinstance(doc, dict) and not doc.get("traces"):
            raise NotFound(f"{client.host} has no trace {trace_id} (it may have been deleted).")
    return content


def batch_get_trace_infos(client: RestClient, trace_ids: Sequence[str],
                          token: CancelToken | None) -> list[TraceInfo]:
    """Trace infos one by one (Databricks has no batchGetInfos); unknown ids are left out.
    Each info carries the trace's assessments, which is what the outbox looks for."""
    infos = []
    for trace_id in trace_ids:
        try:
            infos.append(TraceInfo.from_json(client._trace_info_json(trace_id, token)))
        except NotFound:
            continue
    return infos


def download_spans(client: RestClient, trace_id: str, token: CancelToken | None,
                   wait_s: float) -> bytes:
    """The `traces.json` artifact of the trace, from cloud storage through a signed URL. A
    refused URL (403: expired, or the clock moved on) is asked for again once."""
    what = f"fetching the spans of trace {trace_id}"
    for attempt in range(2):
        credential = client._json(
            "GET", f"/api/2.0/mlflow/traces/{_seg(trace_id)}/credentials-for-data-download",
            f"asking where the spans of trace {trace_id} are stored", token=token
        ).get("credential_info") or {}
        url = credential.get("signed_uri")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise ServerError(f"{client.host} gave no download link for the spans of trace "
                              f"{trace_id}: try again later.")
        headers = {str(h.get("name")): str(h.get("value", ""))
                   for h in credential.get("headers") or () if h.get("name")}
        resp = _storage_get(client, url, headers, what, token, wait_s)
        if resp.status_code == 403 and attempt == 0:
            log.info("The storage link for trace %s was refused (HTTP 403); asking for a new "
                     "one", trace_id)
            continue
        return _check_storage(resp, trace_id, urlsplit(url).netloc)
    raise AssertionError("unreachable: the second attempt returns or raises")


def _storage_get(client: RestClient, url: str, headers: dict[str, str], what: str,
                 token: CancelToken | None, wait_s: float) -> httpx.Response:
    """GET a signed URL with the storage client (no workspace credentials, no cookies),
    retrying transient failures with the client's retry policy, within the client's trace
    limits (size and total time, as `bounded.read_body` checks them)."""
    policy, storage, limits = client._retry, client._storage, client.trace_limits
    if storage is None:
        raise AssertionError("storage downloads are for Databricks clients only")
    timeout = httpx.Timeout(max(wait_s, client.timeout), connect=min(client.timeout, 10.0))
    netloc = urlsplit(url).netloc
    deadline = time.monotonic() + limits.total_s
    for attempt in range(policy.attempts):
        retry_after = None
        try:
            with bounded.within(deadline):
                resp = storage.send(storage.build_request("GET", url, headers=headers,
                                                          timeout=timeout), stream=True)
                try:
                    bounded.read_body(resp, limits, deadline, f"the trace storage ({netloc})",
                                      what, token=token)
                finally:
                    resp.close()
        except httpx.TimeoutException as exc:
            if bounded.past(deadline):
                raise bounded.too_slow(f"the trace storage ({netloc})", what, limits) from None
            error: TraceViewerError = Timeout(
                f"The trace storage ({netloc}) did not answer in time while {what} "
                f"({type(exc).__name__}): try again later.")
        except httpx.TransportError as exc:
            if (reason := tls.failure_reason(exc)) is not None:
                raise ConnectionFailed(
                    f"The TLS connection to the trace storage ({netloc}) failed while {what} "
                    f"({reason}): if it uses a private certificate authority, set its CA bundle "
                    "in the workspace settings (one trust store for the workspace and its "
                    "storage).") from None
            error = ConnectionFailed(f"Could not download from the trace storage ({netloc}) "
                                     f"while {what} ({type(exc).__name__}): check your network "
                                     "(the storage host may need to be reachable through a "
                                     "firewall or proxy).")
        else:
            if resp.status_code not in _STORAGE_RETRY_STATUSES:
                return resp
            error = ServerError(f"The trace storage ({netloc}) is busy or unavailable (HTTP "
                                f"{resp.status_code}) while {what}: try again later.",
                                resp.status_code)
            retry_after = _retry_after_s(resp)
        if attempt + 1 >= policy.attempts:
            raise error
        client._sleep(policy.delay(attempt, retry_after), token)
    raise AssertionError("unreachable: the last attempt raises or returns")


def _check_storage(resp: httpx.Response, trace_id: str, netloc: str) -> bytes:
    status = resp.status_code
    if status < 300:
        return resp.content
    if status == 404:
        raise NotFound(f"The spans of trace {trace_id} are missing from the trace storage "
                       f"({netloc}): the trace may still be running, or its data was removed.")
    if status == 403:
        raise AuthError(f"The trace storage ({netloc}) refused the download link for trace "
                        f"{trace_id} twice (HTTP 403): check that this computer's clock is "
                        "right, then try again.")
    raise ServerError(f"The trace storage ({netloc}) failed while fetching the spans of trace "
                      f"{trace_id} (HTTP {status}): try again later.", status)


def _retry_after_s(resp: httpx.Response) -> float | None:
    try:
        return max(0.0, float(resp.headers.get("Retry-After", "")))
    except ValueError:
        return None


def storage_client(verify: Any) -> httpx.Client:
    """The HTTP client for signed storage URLs: separate from the workspace's, so it has no
    Authorization header to leak, and it keeps no cookies. Its reads end by the deadline of
    the current `bounded.within` block."""
    return bounded.bound_reads(httpx.Client(
        headers={"User-Agent": f"traceviewer/{__version__}"},
        cookies=http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[])),
        verify=verify, follow_redirects=False,
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=4)))


def _seg(value: str) -> str:
    return quote(value, safe="")
