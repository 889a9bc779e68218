"""RestClient on a Databricks workspace: the stand-in (traceviewer.demo.databricks) in front of
the real seeded test server, read with a PAT, compared with what the MLflow SDK reads from the
server itself."""

from __future__ import annotations

import hashlib
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import BIG_EXPERIMENT, experiment_id
from tests.faultproxy import FaultProxy
from traceviewer.core import databricks_routes
from traceviewer.core import filters as flt
from traceviewer.core.aggregate import Aggregator, narrow
from traceviewer.core.auth import Auth
from traceviewer.core.client import RestClient
from traceviewer.core.errors import NotFound, Unsupported
from traceviewer.core.export import export
from traceviewer.core.outbox import SUBMISSION_KEY, Outbox, Target
from traceviewer.core.pacing import Budget, Rate
from traceviewer.core.review import assessment_body
from traceviewer.core.search import MAX_PAGE_SIZE, iter_traces
from traceviewer.demo.databricks import DatabricksStandIn
from traceviewer.demo.seed import _SpanWriter

REVIEWER = "reviewer@example.com"


def dbx_client(standin: DatabricksStandIn, url: str | None = None, **kwargs) -> RestClient:
    return RestClient(url or standin.url, Auth("token", token=standin.credentials.pat),
                      kind="databricks", **kwargs)


@pytest.fixture
def dbx(databricks_standin):
    with dbx_client(databricks_standin) as client:
        yield client


@pytest.fixture(scope="module")
def big_id(sdk) -> str:
    return sdk.search_traces(locations=[experiment_id(sdk, BIG_EXPERIMENT)],
                             filter_string="attributes.client_request_id = 'big-10000'",
                             include_spans=False)[0].info.trace_id


@pytest.fixture(scope="module")
def chat_id(prod_infos) -> str:
    return next(i.trace_id for i in prod_infos if i.state == "OK")


def assert_same_spans(ours, theirs) -> None:
    assert len(ours.spans) == len(theirs)
    assert [(s.span_id, s.parent_id, s.name) for s in ours.spans] == \
        [(s.span_id, s.parent_id, s.name) for s in theirs]
    assert [dict(s.attributes) for s in ours.spans] == [s.attributes for s in theirs]


def _sorted_sdk_spans(sdk, trace_id: str, ours) -> list:
    """The SDK's spans in our order (tree pre-order), matched by span id."""
    by_id = {s.span_id: s for s in sdk.get_trace(trace_id).data.spans}
    return [by_id[s.span_id] for s in ours.spans if s.span_id in by_id]


# -- spans: signed URLs, batchGet ------------------------------------------------------------


def test_chat_trace_loads_from_storage_and_equals_the_sdks(dbx, databricks_standin, sdk,
                                                           chat_id):
    before = databricks_standin.stats()
    trace = dbx.get_trace(chat_id)
    after = databricks_standin.stats()

    assert trace.info.trace_id == chat_id
    assert_same_spans(trace, _sorted_sdk_spans(sdk, chat_id, trace))
    assert after.get("credentials", 0) - before.get("credentials", 0) == 1
    assert after.get("storage_downloads", 0) - before.get("storage_downloads", 0) == 1
    # The workspace token never went to the storage host (the stand-in is shared: tests of
    # its own refusals send one on purpose); no route was guessed at.
    assert after.get("storage_authorization_header", 0) == before.get(
        "storage_authorization_header", 0)
    assert after.get("unknown_route", 0) == before.get("unknown_route", 0)


def test_10000_span_trace_loads_from_storage_and_equals_the_sdks(dbx, databricks_standin, sdk,
                                                                 big_id):
    refused = databricks_standin.stats().get("storage_authorization_header", 0)
    trace = dbx.get_trace(big_id)
    assert len(trace.spans) == 10_000
    assert_same_spans(trace, _sorted_sdk_spans(sdk, big_id, trace))
    assert databricks_standin.stats().get("storage_authorization_header", 0) == refused


def test_expired_signed_url_is_renewed_once_and_the_trace_loads(mlflow_server, sdk, chat_id,
                                                                monkeypatch):
    real_get = databricks_routes._storage_get
    seen: list[str] = []

    def get_when_expired(client, url, headers, what, token, wait_s):
        if not seen:  # the first URL: hold it until the storage refuses it
            seen.append(url)
            deadline = time.monotonic() + 15
            while httpx.get(url, headers=headers).status_code != 403:
                assert time.monotonic() < deadline, "the signed URL never expired"
                time.sleep(0.2)
        return real_get(client, url, headers, what, token, wait_s)

    monkeypatch.setattr(databricks_routes, "_storage_get", get_when_expired)
    with DatabricksStandIn(mlflow_server.url, url_lifetime=1) as standin, \
            dbx_client(standin) as client:
        trace = client.get_trace(chat_id)
        stats = standin.stats()

    assert_same_spans(trace, _sorted_sdk_spans(sdk, chat_id, trace))
    assert stats["credentials"] == 2  # the expired URL, then a fresh one
    assert stats["storage_expired_url"] >= 2  # our poll, then the client's own try
    assert stats["storage_downloads"] >= 1
    assert stats.get("storage_authorization_header", 0) == 0


def test_storage_client_sends_no_authorization_and_keeps_no_cookies(dbx):
    storage = dbx._storage
    assert storage is not None and "authorization" not in storage.headers
    storage.cookies.extract_cookies(httpx.Response(
        200, headers={"Set-Cookie": "session=abc; Path=/"},
        request=httpx.Request("GET", "http://127.0.0.1/x")))
    assert len(storage.cookies) == 0


@pytest.fixture(scope="module")
def store_standin(mlflow_server):
    """A workspace whose traces all keep their spans in the tracking store."""
    with DatabricksStandIn(mlflow_server.url, tracking_store_share=1.0) as standin:
        yield standin


def test_tracking_store_trace_loads_through_v4_batch_get(store_standin, sdk, chat_id, big_id):
    with dbx_client(store_standin) as client:
        chat = client.get_trace(chat_id)
        big = client.get_trace(big_id)
    stats = store_standin.stats()

    assert_same_spans(chat, _sorted_sdk_spans(sdk, chat_id, chat))
    assert len(big.spans) == 10_000
    assert [(s.span_id, s.parent_id) for s in big.spans] == \
        [(s.span_id, s.parent_id) for s in _sorted_sdk_spans(sdk, big_id, big)]
    assert stats["batch_get"] == 2
    assert stats.get("credentials", 0) == 0 and stats.get("storage_downloads", 0) == 0


def test_unknown_trace_is_not_found(dbx):
    with pytest.raises(NotFound):
        dbx.get_trace("tr-" + "0" * 32)


# -- tags, outbox, unsupported routes --------------------------------------------------------


def test_tags_set_through_the_workspace_land_as_the_sdk_reads_them(dbx, sdk, chat_id):
    key, value = f"tv-dbx-{uuid.uuid4().hex[:8]}", "O'Brien"
    dbx.set_trace_tag(chat_id, key, value)
    assert sdk.get_trace(chat_id).info.tags[key] == value
    dbx.delete_trace_tag(chat_id, key)
    assert key not in sdk.get_trace(chat_id).info.tags


def test_outbox_retry_after_a_lost_answer_finds_the_write_without_batch_get_infos(
        databricks_standin, sdk, prod_infos):
    trace_id = prod_infos[3].trace_id
    name = f"label-{uuid.uuid4().hex[:10]}"
    unknown_before = databricks_standin.stats().get("unknown_route", 0)
    with FaultProxy(databricks_standin.url) as proxy, \
            dbx_client(databricks_standin, proxy.url) as client:
        outbox, target = Outbox(), Target("", proxy.url)
        outbox.add_create(target, trace_id, assessment_body(name, True, REVIEWER))
        proxy.inject("drop_after", match="/assessments")
        assert outbox.send(client, target).failed == 1  # saved, but the answer was lost

        assert outbox.send(client, target, force=True).sent == 1
        assert proxy.forwarded_count("/assessments") == 1  # found, not written again

    (label,) = [a for a in sdk.get_trace(trace_id).info.assessments if a.name == name]
    assert label.metadata[SUBMISSION_KEY]
    assert outbox.items() == []
    assert databricks_standin.stats().get("unknown_route", 0) == unknown_before


def test_route_the_workspace_lacks_says_it_is_not_supported(databricks_standin, chat_id):
    # An mlflow-kind client asks for /traces/get and batchGetInfos, which Databricks lacks.
    with RestClient(databricks_standin.url,
                    Auth("token", token=databricks_standin.credentials.pat)) as client:
        for call in (lambda: client.get_trace(chat_id),
                     lambda: client.batch_get_trace_infos([chat_id])):
            with pytest.raises(Unsupported) as caught:
                call()
            assert "this server does not support" in str(caught.value)
            assert "not found" not in str(caught.value).lower()
            assert not isinstance(caught.value, NotFound)


# -- pacing ------------------------------------------------------------------------------------


MANY = 2_100


def _small_trace(i: int, now_ns: int) -> list:
    """One small trace (root and one child) as an app exporting over OTLP sends it: session and
    user as tags on every other trace, as metadata (session.id, user.id) on the rest."""
    from mlflow.entities import Span

    trace_id = "tr-" + hashlib.md5(f"pacing-{i}".encode()).hexdigest()
    writer = _SpanWriter(trace_id, random.Random(i))
    session, user = f"pacing-session-{i % 150:03d}", f"pacing-user-{i % 17}"
    if i % 2:
        context = {"session.id": session, "user.id": user}
    else:
        context = {"mlflow.traceTag.mlflow.trace.session": session,
                   "mlflow.traceTag.mlflow.trace.user": user}
    start = now_ns - (MANY - i) * 1_000_000_000
    root = writer.add("handle_chat", "CHAIN", None, start, start + 50_000_000,
                      {"message": f"question {i}"}, f"answer {i}",
                      attributes={"mlflow.traceTag.mlflow.traceName": "handle_chat", **context})
    writer.add("chat_completion", "CHAT_MODEL", root, start + 1_000_000, start + 40_000_000,
               {"messages": [{"role": "user", "content": f"question {i}"}]}, None)
    return [Span.from_dict(s) for s in writer.spans]


@pytest.fixture(scope="module")
def many(mlflow_server, sdk) -> str:
    """An experiment of 2,100 small traces, logged over OTLP in a few big requests."""
    from mlflow.tracing.client import TracingClient

    exp_id = sdk.create_experiment(f"pacing-{uuid.uuid4().hex[:8]}")
    tracing, now_ns = TracingClient(mlflow_server.url), time.time_ns()
    batches = [range(i, min(i + 300, MANY)) for i in range(0, MANY, 300)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda b: tracing.log_spans(
            exp_id, [s for i in b for s in _small_trace(i, now_ns)]), batches))
    return exp_id


def test_summaries_and_an_export_of_2000_traces_stay_within_the_workspace_rate(
        mlflow_server, many, tmp_path, capsys):
    """The sessions and users summaries, the sessions' own traces (client-side OR: the tags and
    the metadata form) and an export, all at once: every request within the rate, no 429."""
    with DatabricksStandIn(mlflow_server.url) as standin, dbx_client(standin) as client:
        def summary() -> Aggregator:
            agg = Aggregator()
            for page in iter_traces(client, [many], page_size=MAX_PAGE_SIZE):
                agg.add(page)
            return agg

        def session_traces(session: str) -> int:
            return sum(len(p) for p in iter_traces(
                client, [many], narrow([""], flt.session(session)), page_size=50))

        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=6) as pool:
            exported = pool.submit(export, iter_traces(client, [many], page_size=100,
                                                       limit=2_000),
                                   tmp_path / "traces.jsonl", "jsonl")
            sessions_view, users_view = pool.submit(summary), pool.submit(summary)
            agg = sessions_view.result()
            users_view.result()
            sessions = sorted(agg.by_session)[:40]
            counts = list(pool.map(session_traces, sessions))
            assert exported.result() == 2_000
        seconds = time.monotonic() - start
        stats = standin.stats()

    assert len(agg.by_session) > 40 and agg.by_user
    assert counts == [agg.by_session[s].traces for s in sessions]
    assert len((tmp_path / "traces.jsonl").read_text().splitlines()) == 2_000
    with capsys.disabled():
        print(f"\n  pacing: {stats['searches']} searches in {seconds:.1f} s, "
              f"{stats.get('rate_limited', 0)} answered 429")
    assert stats.get("rate_limited", 0) == 0
    assert stats["searches"] / seconds <= 25


def test_429s_met_by_unpaced_threads_pause_them_all_and_every_search_succeeds(mlflow_server,
                                                                              many):
    """A client that does not know the rate (kind mlflow) meets 429s; their Retry-After pauses
    every thread of the host, and the searches all succeed on retry. A low workspace rate, so
    that a slow machine still runs out of it."""
    with DatabricksStandIn(mlflow_server.url, search_rate=10) as standin, \
            RestClient(standin.url, Auth("token", token=standin.credentials.pat)) as client:
        def search(_: int) -> int:
            return len(client.search_traces([many], max_results=1)[0])

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(search, range(40)))
        stats = standin.stats()

    assert results == [1] * 40
    assert stats["rate_limited"] > 0
    assert client._budget.pauses >= 1


def test_budget_pause_holds_back_every_thread():
    budget = Budget(Rate(per_s=1000, burst=1000))
    budget.pause(0.3)
    started = time.monotonic()
    waits: list[float] = []

    def go() -> None:
        budget.acquire(search=False)
        waits.append(time.monotonic() - started)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert min(waits) >= 0.25


def test_budget_paces_searches_at_its_rate_across_threads():
    budget = Budget(Rate(per_s=50, burst=5))
    times: list[float] = []
    lock = threading.Lock()

    def go() -> None:
        for _ in range(10):
            budget.acquire(search=True)
            with lock:
                times.append(time.monotonic())

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 40 searches: 5 at once, then 35 at 50/s.
    assert max(times) - min(times) >= 35 / 50 - 0.05


def test_clients_of_one_host_share_one_budget(databricks_standin):
    with dbx_client(databricks_standin) as a, dbx_client(databricks_standin) as b:
        assert a._budget is b._budget
        assert a._budget.search_rate is not None
