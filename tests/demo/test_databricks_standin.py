"""The Databricks workspace stand-in's contract: MLflow's own Databricks client and
databricks-sdk work through it, and it refuses what a workspace and its cloud storage refuse."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.conftest import BIG_EXPERIMENT, PROD_EXPERIMENT, experiment_id
from traceviewer.demo.databricks import ARTIFACT_REPO, TRACKING_STORE, DatabricksStandIn

# Run by the MLflow SDK with MLFLOW_TRACKING_URI=databricks. The first part is the seed
# document's "verify trace collection" snippet; mlflow 3.17.2's search_traces has no
# `experiment_names`, so the name is resolved to its id first (the only change).
SDK_SCRIPT = r"""
import json, os, sys
import mlflow
from mlflow.client import MlflowClient
from mlflow.entities import AssessmentSource

mlflow.set_tracking_uri("databricks")
client = MlflowClient()
experiments = client.search_experiments()
print(f"Connected to MLflow. Found {len(experiments)} experiments.")
name = os.getenv("MLFLOW_EXPERIMENT_NAME", "/Shared/production-genai-app")
traces = mlflow.search_traces(
    experiment_ids=[client.get_experiment_by_name(name).experiment_id],
    max_results=5
)
print(f"Found {len(traces)} recent traces.")

job = json.loads(sys.argv[1])
out = {"searches": {}, "traces": {}}
for f in job["filters"]:
    found = client.search_traces(locations=[job["prod"]], filter_string=f, max_results=100)
    out["searches"][f] = [[t.info.trace_id, len(t.data.spans)] for t in found]
for trace_id in job["get"]:
    trace = client.get_trace(trace_id)
    out["traces"][trace_id] = {
        "spans_location": trace.info.tags.get("mlflow.trace.spansLocation"),
        "spans": [s.to_dict() for s in trace.data.spans]}
feedback = mlflow.log_feedback(
    trace_id=job["feedback_trace"], name="response_is_correct", value=False,
    source=AssessmentSource(source_type="HUMAN", source_id=job["reviewer"]),
    rationale="checked through the workspace")
out["feedback"] = feedback.assessment_id
print(json.dumps(out))
"""


def run_sdk(standin: DatabricksStandIn, job: dict) -> tuple[list[str], dict]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABRICKS_", "MLFLOW_"))}
    env |= {"MLFLOW_TRACKING_URI": "databricks", "DATABRICKS_HOST": standin.url,
            "DATABRICKS_TOKEN": standin.credentials.pat}
    proc = subprocess.run([sys.executable, "-c", SDK_SCRIPT, json.dumps(job)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    *lines, result = proc.stdout.splitlines()
    return lines, json.loads(result)


@pytest.fixture(scope="module")
def tracking_store_standin(mlflow_server):
    """A workspace whose traces all keep their spans in the tracking store."""
    with DatabricksStandIn(mlflow_server.url, tracking_store_share=1.0) as standin:
        yield standin


def _most_common(infos, key: str) -> str:
    return Counter(i.tags[key] for i in infos if key in i.tags).most_common(1)[0][0]


@pytest.mark.parametrize("spans_location", [ARTIFACT_REPO, TRACKING_STORE])
def test_mlflow_databricks_client_works_through_the_standin(
        spans_location, request, sdk, prod, prod_infos):
    standin = request.getfixturevalue(
        "databricks_standin" if spans_location == ARTIFACT_REPO else "tracking_store_standin")
    user = _most_common(prod_infos, "mlflow.trace.user")
    session = _most_common(prod_infos, "mlflow.trace.session")
    filters = [f"tags.`mlflow.trace.user` = '{user}'",
               f"tags.`mlflow.trace.session` = '{session}'"]
    chat = prod_infos[0].trace_id
    big = sdk.search_traces(locations=[experiment_id(sdk, BIG_EXPERIMENT)],
                            filter_string="attributes.client_request_id = 'big-10000'",
                            include_spans=False)[0].info.trace_id
    reviewer = standin.user.user_name
    job = {"prod": prod, "filters": filters, "get": [chat, big], "feedback_trace": chat,
           "reviewer": reviewer}

    lines, out = run_sdk(standin, job)

    assert lines == [f"Connected to MLflow. Found {len(sdk.search_experiments())} experiments.",
                     "Found 5 recent traces."]
    for f in filters:
        expected = sdk.search_traces(locations=[prod], filter_string=f, max_results=100)
        assert out["searches"][f] == [[t.info.trace_id, len(t.data.spans)] for t in expected]
        assert expected
    for trace_id in (chat, big):
        got = out["traces"][trace_id]
        assert got["spans_location"] == spans_location
        assert got["spans"] == [s.to_dict() for s in sdk.get_trace(trace_id).data.spans]
    assert len(out["traces"][big]["spans"]) == 10_000
    [feedback] = [a for a in sdk.get_trace(chat).info.assessments
                  if a.assessment_id == out["feedback"]]
    assert (feedback.source.source_type, feedback.source.source_id) == ("HUMAN", reviewer)
    assert feedback.value is False


def _api(standin: DatabricksStandIn, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=standin.url, headers=headers, timeout=60)


def test_requests_without_a_valid_token_get_401(databricks_standin):
    before = databricks_standin.stats().get("unauthenticated", 0)
    for token in (None, "dapi-not-a-token"):
        with _api(databricks_standin, token) as api:
            resp = api.get("/api/2.0/mlflow/experiments/get-by-name",
                           params={"experiment_name": PROD_EXPERIMENT})
        assert resp.status_code == 401
        assert resp.json()["error_code"] == "UNAUTHENTICATED"
    assert databricks_standin.stats()["unauthenticated"] == before + 2


def test_routes_databricks_lacks_answer_endpoint_not_found(databricks_standin, prod_infos):
    trace_id = prod_infos[0].trace_id
    before = databricks_standin.stats().get("unknown_route", 0)
    with _api(databricks_standin, databricks_standin.credentials.pat) as api:
        answers = [api.get("/api/3.0/mlflow/traces/get", params={"trace_id": trace_id}),
                   api.post("/api/3.0/mlflow/traces/batchGetInfos", json={"trace_ids": [trace_id]}),
                   api.post("/api/4.0/mlflow/traces/search-long-running", json={}),
                   api.post("/api/3.0/mlflow/traces/metrics", json={}),
                   api.get("/no/such/route")]
    for resp in answers:
        assert resp.status_code == 404
        assert resp.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    assert databricks_standin.stats()["unknown_route"] == before + len(answers)


def _signed_url(standin: DatabricksStandIn, trace_id: str) -> tuple[str, dict[str, str]]:
    with _api(standin, standin.credentials.pat) as api:
        resp = api.get(f"/api/2.0/mlflow/traces/{trace_id}/credentials-for-data-download")
    resp.raise_for_status()
    cred = resp.json()["credential_info"]
    assert cred["type"] == "AWS_PRESIGNED_URL"
    assert cred["signed_uri"].startswith(standin.storage_url)
    return cred["signed_uri"], {h["name"]: h["value"] for h in cred["headers"]}


def test_storage_serves_the_trace_artifact_only_to_a_valid_signed_url(
        databricks_standin, sdk, prod_infos):
    trace_id = prod_infos[0].trace_id
    url, headers = _signed_url(databricks_standin, trace_id)
    before = databricks_standin.stats()

    ok = httpx.get(url, headers=headers)
    with_token = httpx.get(url, headers=headers | {
        "Authorization": f"Bearer {databricks_standin.credentials.pat}"})
    query = parse_qs(urlsplit(url).query)
    longer = url.replace(f"X-Amz-Expires={query['X-Amz-Expires'][0]}", "X-Amz-Expires=999999")
    forged = httpx.get(longer, headers=headers)
    without_headers = httpx.get(url)

    assert ok.status_code == 200
    assert len(ok.json()["spans"]) == len(sdk.get_trace(trace_id).data.spans)
    assert [r.status_code for r in (with_token, forged, without_headers)] == [403, 403, 403]
    after = databricks_standin.stats()
    assert after["storage_authorization_header"] == before.get(
        "storage_authorization_header", 0) + 1
    assert after["storage_bad_signature"] == before.get("storage_bad_signature", 0) + 2


def test_signed_urls_expire(mlflow_server, prod_infos):
    with DatabricksStandIn(mlflow_server.url, url_lifetime=2) as standin:
        url, headers = _signed_url(standin, prod_infos[0].trace_id)
        deadline = time.monotonic() + 15
        while (resp := httpx.get(url, headers=headers)).status_code == 200:
            assert time.monotonic() < deadline, "the signed URL never expired"
            time.sleep(0.2)
        assert resp.status_code == 403
        assert b"expired" in resp.content
        assert standin.stats()["storage_expired_url"] == 1


def test_quick_searches_beyond_the_workspace_rate_get_429_with_retry_after(
        mlflow_server, prod):
    body = {"locations": [{"type": "MLFLOW_EXPERIMENT",
                           "mlflow_experiment": {"experiment_id": prod}}], "max_results": 1}
    # A low rate, so that a slow machine answering the 30 searches over seconds still runs out.
    with DatabricksStandIn(mlflow_server.url, search_rate=2) as standin, \
            _api(standin, standin.credentials.pat) as api, ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(lambda _: api.post("/api/3.0/mlflow/traces/search", json=body),
                                range(30)))
        limited = [r for r in answers if r.status_code == 429]
        assert limited
        assert {r.status_code for r in answers} == {200, 429}
        assert all(int(r.headers["Retry-After"]) >= 1 for r in limited)
        assert {r.json()["error_code"] for r in limited} == {"REQUEST_LIMIT_EXCEEDED"}
        assert standin.stats()["rate_limited"] == len(limited)


def test_oauth_m2m_through_databricks_sdk(databricks_standin):
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.core import Config

    creds = databricks_standin.credentials
    config = Config(host=databricks_standin.url, client_id=creds.client_id,
                    client_secret=creds.client_secret, auth_type="oauth-m2m")
    me = WorkspaceClient(config=config).current_user.me()
    # A service principal signs in as itself: its user name is its application (client) id.
    assert me.user_name == creds.client_id


def test_oauth_m2m_client_secret_in_form_fields(databricks_standin):
    creds = databricks_standin.credentials
    token = httpx.post(f"{databricks_standin.url}/oidc/v1/token", data={
        "grant_type": "client_credentials", "scope": "all-apis", "client_id": creds.client_id,
        "client_secret": creds.client_secret}).json()["access_token"]
    wrong = httpx.post(f"{databricks_standin.url}/oidc/v1/token", data={
        "grant_type": "client_credentials", "client_id": creds.client_id,
        "client_secret": "wrong"})
    with _api(databricks_standin, token) as api:
        assert api.get("/api/2.0/preview/scim/v2/Me").json()["userName"] == creds.client_id
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"


REDIRECT = "http://localhost:8020"


def _authorize(standin: DatabricksStandIn) -> tuple[str, str]:
    """Run the authorize step with a fresh PKCE S256 pair: (code, verifier)."""
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    state = secrets.token_urlsafe(16)
    discovery = httpx.get(f"{standin.url}/oidc/.well-known/oauth-authorization-server").json()
    resp = httpx.get(discovery["authorization_endpoint"] + "?" + urlencode({
        "response_type": "code", "client_id": "databricks-cli", "redirect_uri": REDIRECT,
        "scope": "all-apis offline_access", "state": state, "code_challenge": challenge,
        "code_challenge_method": "S256"}))
    assert resp.status_code == 302
    location = urlsplit(resp.headers["Location"])
    assert f"{location.scheme}://{location.netloc}" == REDIRECT
    back = parse_qs(location.query)
    assert back["state"] == [state]
    return back["code"][0], verifier


def _token(standin: DatabricksStandIn, **form: str) -> httpx.Response:
    return httpx.post(f"{standin.url}/oidc/v1/token", data={"client_id": "databricks-cli", **form})


def test_oauth_u2m_with_pkce_and_refresh_tokens(mlflow_server):
    with DatabricksStandIn(mlflow_server.url, token_lifetime=1) as standin:
        code, _ = _authorize(standin)
        wrong = _token(standin, grant_type="authorization_code", code=code,
                       code_verifier=secrets.token_urlsafe(32), redirect_uri=REDIRECT)
        assert wrong.status_code == 400
        assert wrong.json()["error"] == "invalid_grant"

        code, verifier = _authorize(standin)
        tokens = _token(standin, grant_type="authorization_code", code=code,
                        code_verifier=verifier, redirect_uri=REDIRECT).json()
        assert tokens["expires_in"] == 1
        with _api(standin, tokens["access_token"]) as api:
            me = api.get("/api/2.0/preview/scim/v2/Me").json()
            assert me["userName"] == standin.credentials.user
            assert me["emails"][0]["value"] == standin.credentials.user
            deadline = time.monotonic() + 15
            while (resp := api.get("/api/2.0/preview/scim/v2/Me")).status_code == 200:
                assert time.monotonic() < deadline, "the access token never expired"
                time.sleep(0.2)
        assert resp.status_code == 401
        assert resp.json()["error_code"] == "UNAUTHENTICATED"
        assert standin.stats()["expired_token"] >= 1

        refreshed = _token(standin, grant_type="refresh_token",
                           refresh_token=tokens["refresh_token"]).json()
        with _api(standin, refreshed["access_token"]) as api:
            assert api.get("/api/2.0/preview/scim/v2/Me").status_code == 200
        # Refresh tokens rotate: the old one no longer works, the new one does.
        reused = _token(standin, grant_type="refresh_token",
                        refresh_token=tokens["refresh_token"])
        assert reused.status_code == 400
        assert _token(standin, grant_type="refresh_token",
                      refresh_token=refreshed["refresh_token"]).status_code == 200


def test_command_line_prints_the_workspace_url_once_ready(mlflow_server):
    proc = subprocess.Popen([sys.executable, "-m", "traceviewer.demo.databricks",
                             "--backend-url", mlflow_server.url], stdout=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("Databricks workspace: http://127.0.0.1:")
        url = line.split(": ", 1)[1].strip()
        metadata = httpx.get(f"{url}/.well-known/databricks-config").json()
        assert metadata["oidc_endpoint"] == f"{url}/oidc"
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0
