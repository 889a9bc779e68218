"""RestClient against the real `mlflow server`: every call compared with what the MLflow SDK
sees, and the fault proxy in front of it for retries, lost connections and cut-off bodies."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import logging
import os
import ssl
import threading
import time
import uuid
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow.exceptions import MlflowException

from tests.conftest import BASIC_AUTH_ADMIN
from tests.faultproxy import FaultProxy
from traceviewer.core.auth import Auth
from traceviewer.core.client import RestClient, RetryPolicy
from traceviewer.core.errors import (
    AuthError,
    BadFilter,
    ConnectionFailed,
    CorruptTrace,
    NotFound,
    ServerError,
    Timeout,
)
from traceviewer.demo.server import free_port

# Short waits so retry tests stay quick; the counts are what the tests pin.
FAST = RetryPolicy(attempts=4, total_s=20.0, base_delay_s=0.01, max_delay_s=0.05)
N_TRACES = 5


def _make_traces(exp_id: str) -> list[str]:
    ids = []
    for i in range(N_TRACES):
        root = mlflow.start_span_no_context(
            "handle_chat", span_type="CHAIN", experiment_id=exp_id, inputs={"message": f"m{i}"},
            tags={"mlflow.trace.session": f"session-{i % 2}", "customer": "O'Brien"})
        for name in ("retrieve", "lookup_balance"):
            child = mlflow.start_span_no_context(name, span_type="TOOL", parent_span=root,
                                                 inputs={"i": i})
            grandchild = mlflow.start_span_no_context("inner", parent_span=child)
            grandchild.end()
            child.end(outputs={"ok": True})
        root.end(outputs=f"answer {i}")
        ids.append(root.trace_id)
        time.sleep(0.01)  # distinct request times, so time order is well defined
    mlflow.flush_trace_async_logging()
    return ids


def _artifact_trace(url: str, sdk, exp_id: str, source_id: str) -> str:
    """A trace whose spans live in the `traces.json` artifact, as older MLflow clients stored
    them: start it over REST (no spansLocation tag), then write the artifact where the server
    says it lives."""
    trace_id = "tr-" + uuid.uuid4().hex
    info = {"trace_id": trace_id,
            "trace_location": {"type": "MLFLOW_EXPERIMENT",
                               "mlflow_experiment": {"experiment_id": exp_id}},
            "request_time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "execution_duration": "0.005s", "state": "OK",
            "tags": {"mlflow.traceName": "artifact_trace"}}
    resp = httpx.post(f"{url}/api/3.0/mlflow/traces", json={"trace": {"trace_info": info}})
    resp.raise_for_status()
    location = Path(resp.json()["trace"]["trace_info"]["tags"]["mlflow.artifactLocation"])
    location.mkdir(parents=True, exist_ok=True)
    data = sdk.get_trace(source_id).data.to_dict()
    (location / "traces.json").write_text(json.dumps(data))
    return trace_id


def _in_progress_trace(url: str, exp_id: str) -> tuple[str, str]:
    """A running request as the server sees it: one finished child exported over OTLP, its root
    not there yet."""
    trace_hex, now = os.urandom(16).hex(), time.time_ns()
    span = {"traceId": trace_hex, "spanId": os.urandom(8).hex(),
            "parentSpanId": os.urandom(8).hex(), "name": "finished_child", "kind": 1,
            "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 1000),
            "status": {"code": 1}}
    body = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": [span]}]}]}
    resp = httpx.post(f"{url}/v1/traces", json=body, headers={"x-mlflow-experiment-id": exp_id})
    resp.raise_for_status()
    return "tr-" + trace_hex, span["spanId"]


@pytest.fixture(scope="module")
def data(mlflow_server, sdk):
    """An experiment of our own on the shared server: normal traces, one stored as an artifact
    and one in progress."""
    exp_name = f"client-tests-{uuid.uuid4().hex[:8]}"
    exp_id = sdk.create_experiment(exp_name)
    ids = _make_traces(exp_id)
    artifact_id = _artifact_trace(mlflow_server.url, sdk, exp_id, ids[0])
    running_id, _ = _in_progress_trace(mlflow_server.url, exp_id)
    return {"exp_id": exp_id, "exp_name": exp_name, "ids": ids, "artifact_id": artifact_id,
            "running_id": running_id}


@pytest.fixture
def client(mlflow_server):
    with RestClient(mlflow_server.url, retry=FAST) as c:
        yield c


@pytest.fixture
def proxied(fault_proxy):
    with RestClient(fault_proxy.url, retry=FAST) as c:
        yield c


def _sdk_ids(sdk, exp_id: str, filter_string: str | None = None) -> list[str]:
    return [t.info.trace_id for t in sdk.search_traces(
        locations=[exp_id], filter_string=filter_string, max_results=500,
        include_spans=False)]


def _all_pages(client: RestClient, exp_id: str, **kwargs) -> list[str]:
    ids, token = [], None
    while True:
        page, token = client.search_traces([exp_id], page_token=token, **kwargs)
        ids += [t.trace_id for t in page]
        if token is None:
            return ids


# -- reads against the real server -------------------------------------------------------------

def test_version_is_the_servers_mlflow_version(client):
    client.health()
    assert client.version() == mlflow.__version__


def test_search_experiments_pages_through_what_the_sdk_lists(client, sdk, data):
    names, token = [], None
    while True:
        page, token = client.search_experiments(max_results=1, page_token=token)
        assert len(page) <= 1
        names += [e.name for e in page]
        if token is None:
            break
    assert sorted(names) == sorted(e.name for e in sdk.search_experiments(max_results=1000))
    assert data["exp_name"] in names


def test_search_experiments_filter_is_passed_to_the_server(client, data):
    found, _ = client.search_experiments(filter=f"name = '{data['exp_name']}'")
    assert [e.experiment_id for e in found] == [data["exp_id"]]


def test_experiment_resolves_by_id_and_by_name(client, data):
    assert client.get_experiment(data["exp_id"]).name == data["exp_name"]
    assert client.get_experiment_by_name(data["exp_name"]).experiment_id == data["exp_id"]
    assert client.resolve_experiment(data["exp_id"]).name == data["exp_name"]
    assert client.resolve_experiment(data["exp_name"]).experiment_id == data["exp_id"]


def test_unknown_experiment_is_not_found_with_its_name(client):
    with pytest.raises(NotFound, match="no-such-experiment"):
        client.resolve_experiment("no-such-experiment")
    with pytest.raises(NotFound):
        client.get_experiment("987654")


def test_search_traces_pages_return_every_trace_once_in_sdk_order(client, sdk, data):
    ids = _all_pages(client, data["exp_id"], max_results=2)
    assert ids == _sdk_ids(sdk, data["exp_id"])
    assert len(ids) == len(set(ids)) == N_TRACES + 2


def test_search_traces_filter_and_order_match_the_sdk(client, sdk, data):
    flt = "tags.`mlflow.trace.session` = 'session-1'"
    ids = _all_pages(client, data["exp_id"], filter=flt, order_by="timestamp_ms ASC")
    assert ids == list(reversed(_sdk_ids(sdk, data["exp_id"], flt)))
    assert len(ids) == 2


def test_search_traces_value_with_a_quote_matches(client, data):
    page, _ = client.search_traces([data["exp_id"]], filter='tags.customer = "O\'Brien"')
    assert sorted(t.trace_id for t in page) == sorted(data["ids"])


def test_unknown_experiment_in_trace_search_is_an_empty_page(client):
    assert client.search_traces(["987654"]) == ([], None)


def test_bad_filter_carries_the_servers_reason_verbatim(client, mlflow_server, data):
    bad = "attributes.status === 'OK'"
    raw = httpx.post(f"{mlflow_server.url}/api/3.0/mlflow/traces/search", json={
        "locations": [{"type": "MLFLOW_EXPERIMENT",
                       "mlflow_experiment": {"experiment_id": data["exp_id"]}}],
        "filter": bad, "max_results": 10})
    assert raw.status_code == 400
    with pytest.raises(BadFilter) as caught:
        client.search_traces([data["exp_id"]], filter=bad)
    assert str(caught.value) == raw.json()["message"]


def test_server_failure_on_search_is_a_server_error(client, data):
    # The server answers this documented-looking order_by with a 500.
    with pytest.raises(ServerError) as caught:
        client.search_traces([data["exp_id"]], order_by="end_time_ms DESC")
    assert caught.value.status == 500


def test_trace_spans_and_parent_links_equal_the_sdks(client, sdk, data):
    trace_id = data["ids"][1]
    ours = client.get_trace(trace_id)
    theirs = sdk.get_trace(trace_id).data.spans
    assert {s.span_id: s.parent_id for s in ours.spans} == {s.span_id: s.parent_id
                                                            for s in theirs}
    assert ours.info.trace_id == trace_id
    assert ours.info.session == "session-1"


def test_artifact_stored_trace_is_read_from_the_artifact(client, sdk, data, mlflow_server):
    resp = httpx.get(f"{mlflow_server.url}/api/3.0/mlflow/traces/get",
                     params={"trace_id": data["artifact_id"]})
    assert resp.status_code == 500  # what the server really does for these
    trace = client.get_trace(data["artifact_id"])
    source = sdk.get_trace(data["ids"][0]).data.spans
    assert trace.info.trace_id == data["artifact_id"]
    assert trace.info.name == "artifact_trace"
    assert [(s.span_id, s.parent_id, s.name) for s in trace.spans] == \
        [(s.span_id, s.parent_id, s.name) for s in source]


def test_in_progress_trace_keeps_its_orphan_children(client, data):
    trace = client.get_trace(data["running_id"])
    assert trace.info.state == "IN_PROGRESS"
    assert trace.in_progress
    assert [(s.name, s.orphan) for s in trace.spans] == [("finished_child", True)]


def test_unknown_trace_is_not_found(client):
    with pytest.raises(NotFound, match="tr-0000"):
        client.get_trace("tr-0000")


def test_batch_get_trace_infos_leaves_out_unknown_ids(client, data):
    wanted = data["ids"][:3]
    infos = client.batch_get_trace_infos([*wanted, "tr-0000"])
    assert sorted(i.trace_id for i in infos) == sorted(wanted)
    assert client.batch_get_trace_infos([]) == []


def test_host_that_is_not_mlflow_gives_an_actionable_error(mlflow_server):
    # Every route under this prefix is the server's HTML 404 page.
    with RestClient(f"{mlflow_server.url}/not-mlflow", retry=FAST) as c, \
            pytest.raises(ServerError, match="MLflow 3 tracking server") as caught:
        c.search_traces(["1"])
    assert "<" not in str(caught.value)


def test_refused_connection_is_connection_failed():
    with RestClient(f"http://127.0.0.1:{free_port()}", retry=FAST) as c, \
            pytest.raises(ConnectionFailed, match="Could not connect"):
        c.version()


def test_one_client_serves_many_threads(client, data):
    expected = _all_pages(client, data["exp_id"])
    results, errors = [], []

    def work():
        try:
            for _ in range(3):
                results.append(_all_pages(client, data["exp_id"], max_results=3))
                client.get_trace(data["ids"][0])
        except Exception as exc:  # collected so the main thread reports it
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == [expected] * 24


# -- writes ------------------------------------------------------------------------------------

FEEDBACK = {"assessment_name": "response_is_correct",
            "source": {"source_type": "HUMAN", "source_id": "alice@example.com"},
            "feedback": {"value": False}, "rationale": "wrong", "metadata": {"k": "v"}}


def test_assessment_create_get_update_delete_as_the_sdk_sees_it(client, sdk, data):
    trace_id = data["ids"][2]
    created = client.create_assessment(trace_id, FEEDBACK)
    assert (created.name, created.value, created.rationale) == ("response_is_correct", False,
                                                                "wrong")
    assert mlflow.get_assessment(trace_id, created.assessment_id).feedback.value is False
    assert client.get_assessment(trace_id, created.assessment_id) == created

    updated = client.update_assessment(trace_id, created.assessment_id,
                                       {"feedback": {"value": True}, "rationale": "fixed"})
    assert (updated.value, updated.rationale) == (True, "fixed")
    seen = mlflow.get_assessment(trace_id, created.assessment_id)
    assert (seen.feedback.value, seen.rationale) == (True, "fixed")

    client.delete_assessment(trace_id, created.assessment_id)
    with pytest.raises(MlflowException):
        mlflow.get_assessment(trace_id, created.assessment_id)
    with pytest.raises(NotFound):
        client.get_assessment(trace_id, created.assessment_id)


def test_assessment_on_unknown_trace_is_not_found(client):
    with pytest.raises(NotFound):
        client.create_assessment("tr-0000", FEEDBACK)


def test_trace_tag_set_and_delete_as_the_sdk_sees_it(client, sdk, data):
    trace_id = data["ids"][3]
    client.set_trace_tag(trace_id, "reviewed", "yes")
    assert sdk.get_trace(trace_id).info.tags["reviewed"] == "yes"
    client.delete_trace_tag(trace_id, "reviewed")
    assert "reviewed" not in sdk.get_trace(trace_id).info.tags
    with pytest.raises(NotFound):
        client.delete_trace_tag(trace_id, "reviewed")


def test_tag_on_unknown_trace_is_not_found(client):
    with pytest.raises(NotFound, match="tr-0000"):
        client.set_trace_tag("tr-0000", "k", "v")


# -- faults injected by the proxy --------------------------------------------------------------

@pytest.mark.parametrize("status", [429, 503])
def test_busy_server_with_retry_after_succeeds_after_retry(proxied, fault_proxy, data, status):
    fault_proxy.inject("status", status=status, retry_after=0.05, times=2)
    page, _ = proxied.search_traces([data["exp_id"]])
    assert len(page) == N_TRACES + 2
    assert fault_proxy.received_count("/traces/search") == 3
    assert fault_proxy.forwarded_count("/traces/search") == 1


def test_retries_are_bounded_in_count(proxied, fault_proxy):
    fault_proxy.inject("status", status=503, retry_after=0, times=100)
    with pytest.raises(ServerError, match="busy") as caught:
        proxied.version()
    assert caught.value.status == 503
    assert fault_proxy.received_count("/version") == FAST.attempts


def test_retry_after_beyond_the_time_budget_fails_at_once(proxied, fault_proxy):
    fault_proxy.inject("status", status=429, retry_after=3600)
    with pytest.raises(ServerError, match="3600 s"):
        proxied.version()
    assert fault_proxy.received_count("/version") == 1


def test_dropped_connection_on_a_read_is_retried(proxied, fault_proxy, data):
    fault_proxy.inject("drop_before", match="/traces/get")
    fault_proxy.inject("drop_after", match="/traces/get")
    trace = proxied.get_trace(data["ids"][0])
    assert len(trace.spans) == 5
    assert fault_proxy.received_count("/traces/get") == 3


def test_read_that_keeps_losing_its_connection_is_connection_failed(proxied, fault_proxy):
    fault_proxy.inject("drop_before", times=100)
    with pytest.raises(ConnectionFailed, match="try again"):
        proxied.version()
    assert fault_proxy.received_count() == FAST.attempts


def test_write_with_a_lost_answer_is_not_retried(proxied, fault_proxy, sdk, data):
    trace_id = data["ids"][4]
    before = len(sdk.get_trace(trace_id).info.assessments)
    fault_proxy.inject("drop_after", match="/assessments")
    with pytest.raises(ConnectionFailed, match="may or may not have been saved"):
        proxied.create_assessment(trace_id, FEEDBACK)
    assert fault_proxy.received_count("/assessments") == 1
    # The server did act: exactly one new assessment, not one per try.
    assert len(sdk.get_trace(trace_id).info.assessments) == before + 1


@pytest.mark.parametrize("fault", [{"kind": "drop_before"},
                                   {"kind": "status", "status": 503, "retry_after": 0}])
def test_failed_write_is_sent_once(proxied, fault_proxy, data, fault):
    fault_proxy.inject(match="/tags", **fault)
    with pytest.raises((ConnectionFailed, ServerError)):
        proxied.set_trace_tag(data["ids"][4], "k", "v")
    assert fault_proxy.received_count("/tags") == 1


def test_truncated_trace_body_is_corrupt_trace(proxied, fault_proxy, data):
    fault_proxy.inject("truncate", match="/traces/get")
    with pytest.raises(CorruptTrace):
        proxied.get_trace(data["ids"][0])


def test_truncated_search_body_is_a_server_error(proxied, fault_proxy, data):
    fault_proxy.inject("truncate", match="/traces/search")
    with pytest.raises(ServerError, match="cut off"):
        proxied.search_traces([data["exp_id"]])


def test_body_cut_mid_transfer_is_retried(proxied, fault_proxy, data):
    fault_proxy.inject("truncate", match="/traces/get", keep_length=True)
    assert len(proxied.get_trace(data["ids"][0]).spans) == 5
    assert fault_proxy.received_count("/traces/get") == 2


def test_server_down_then_up(proxied, fault_proxy):
    fault_proxy.down()
    with pytest.raises(ConnectionFailed, match="Could not connect"):
        proxied.version()
    fault_proxy.up()
    assert proxied.version() == mlflow.__version__


def test_slow_answer_is_a_timeout_and_not_retried(fault_proxy):
    fault_proxy.inject("delay", seconds=2.0)
    with RestClient(fault_proxy.url, timeout=0.5, retry=FAST) as c, \
            pytest.raises(Timeout, match="did not answer"):
        c.version()
    assert fault_proxy.received_count("/version") == 1


# -- TLS ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "traceviewer test CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


@pytest.fixture
def tls_proxy(mlflow_server, tls_files):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    with FaultProxy(mlflow_server.url, tls=context) as proxy:
        yield proxy


def test_unknown_certificate_fails_with_tls_advice_and_no_retry(tls_proxy):
    with RestClient(tls_proxy.url, retry=FAST) as c, \
            pytest.raises(ConnectionFailed, match="CA bundle"):
        c.version()
    assert tls_proxy.received_count() == 0


def test_workspace_ca_bundle_makes_the_certificate_trusted(tls_proxy, tls_files):
    with RestClient(tls_proxy.url, verify=str(tls_files[0])) as c:
        assert c.version() == mlflow.__version__


def test_verification_off_works_and_is_logged(tls_proxy, caplog):
    with caplog.at_level(logging.WARNING, logger="traceviewer.core.client"), \
            RestClient(tls_proxy.url, verify=False) as c:
        assert c.version() == mlflow.__version__
    assert "verification is OFF" in caplog.text


# -- basic auth (a real `mlflow server --app-name basic-auth`) ---------------------------------

@pytest.fixture(scope="module")
def locked_out(basic_auth_server):
    """(experiment id, username, password) of a user the admin denied that experiment (3.17
    grants DENY per resource; NO_PERMISSIONS is refused there)."""
    admin = httpx.BasicAuth(*BASIC_AUTH_ADMIN)
    url, user, password = basic_auth_server.url, f"u{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    httpx.post(f"{url}/api/2.0/mlflow/users/create", auth=admin,
               json={"username": user, "password": password}).raise_for_status()
    exp_id = httpx.post(f"{url}/api/2.0/mlflow/experiments/create", auth=admin,
                        json={"name": f"private-{user}"}).json()["experiment_id"]
    # MLflow 3.17 grants per-resource permissions through this v3 route.
    resp = httpx.post(f"{url}/api/3.0/mlflow/users/permissions/grant", auth=admin,
                      json={"username": user, "resource_type": "experiment",
                            "resource_id": exp_id, "permission": "DENY"})
    assert resp.status_code == 200, resp.text
    return exp_id, user, password


def _basic_value(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_auth_credentials_are_accepted(basic_auth_server):
    admin = Auth("basic", username=BASIC_AUTH_ADMIN[0], password=BASIC_AUTH_ADMIN[1])
    with RestClient(basic_auth_server.url, admin) as c:
        assert c.version() == mlflow.__version__
        assert "Default" in [e.name for e in c.search_experiments()[0]]


def test_missing_credentials_are_an_auth_error_saying_what_to_add(basic_auth_server):
    with RestClient(basic_auth_server.url, retry=FAST) as c, \
            pytest.raises(AuthError, match=r"requires authentication \(HTTP 401\)"):
        c.search_experiments()


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_rejected_credentials_are_an_auth_error_without_the_secret(basic_auth_server, caplog,
                                                                    kind):
    secret = f"wrong-{uuid.uuid4().hex}"
    auth = (Auth("basic", username=BASIC_AUTH_ADMIN[0], password=secret) if kind == "basic"
            else Auth("token", token=secret))
    with caplog.at_level(logging.DEBUG), RestClient(basic_auth_server.url, auth,
                                                    retry=FAST) as c, \
            pytest.raises(AuthError, match=r"was rejected \(HTTP 401\)") as caught:
        c.get_experiment_by_name("Default")
    shown = f"{caught.value} {caught.value!r} {c!r} {auth!r} {caplog.text}"
    for leaked in (secret, _basic_value(BASIC_AUTH_ADMIN[0], secret)):
        assert leaked not in shown


def test_forbidden_experiment_is_an_auth_error_about_permission(basic_auth_server, locked_out):
    exp_id, user, password = locked_out
    with RestClient(basic_auth_server.url, Auth("basic", username=user, password=password),
                    retry=FAST) as c:
        assert c.version() == mlflow.__version__  # the credentials themselves are fine
        with pytest.raises(AuthError, match=r"lacks permission .* \(HTTP 403\)") as caught:
            c.get_experiment(exp_id)
    assert password not in str(caught.value)
