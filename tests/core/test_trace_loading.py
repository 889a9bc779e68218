"""core.trace_loading against the test server: the first load downloads (reporting bytes
received of the server's total) and is to be cached, the next comes from the cache; a download
started early (`prefetch`) is taken over rather than repeated, and a cached trace is read ahead
from the cache instead."""

from __future__ import annotations

import httpx
import pytest

from traceviewer.core import trace_loading
from traceviewer.core.cache import TraceCache
from traceviewer.core.cancel import CancelToken
from traceviewer.core.client import RestClient

BIG = "big-traces"


@pytest.fixture(scope="module")
def big1k(mlflow_server, sdk):
    exp = sdk.get_experiment_by_name(BIG).experiment_id
    found = sdk.search_traces(locations=[exp], include_spans=False,
                              filter_string="attributes.client_request_id = 'big-1000'")
    return found[0].info.trace_id


def span_ids(trace):
    return sorted(s.span_id for s in trace.spans)


def test_first_load_downloads_with_progress_and_the_next_comes_from_the_cache(
        client, sdk, big1k, tmp_path, mlflow_server):
    size = len(httpx.get(f"{mlflow_server.url}/api/3.0/mlflow/traces/get",
                         params={"trace_id": big1k, "allow_partial": "true"}).content)
    cache, said = TraceCache(tmp_path), []
    loaded = trace_loading.from_server(client, big1k, cache, True, CancelToken(said.append))
    theirs = sorted(s.span_id for s in sdk.get_trace(big1k).data.spans)
    assert span_ids(loaded.layout.trace) == theirs
    assert loaded.cached_at is None and loaded.cache_as == (client.host, big1k)
    assert f"of {size / 1e6:.1f} MB" in said[-1] or any(f"of {size / 1e6:.1f} MB" in s
                                                        for s in said)

    trace_loading.store(cache, loaded.cache_as, [loaded.layout.trace], CancelToken())
    again = trace_loading.from_server(client, big1k, cache, True, CancelToken())
    assert again.cached_at is not None and again.cache_as is None
    assert span_ids(again.layout.trace) == theirs


def test_a_prefetched_download_is_taken_over_not_repeated(client, sdk, big1k, tmp_path,
                                                          mlflow_server, monkeypatch):
    cache = TraceCache(tmp_path)
    trace_loading.prefetch(lambda: RestClient(mlflow_server.url), big1k, cache).join(30)
    calls = []
    monkeypatch.setattr(client, "get_trace_raw", lambda *a, **k: calls.append(a))
    loaded = trace_loading.from_server(client, big1k, cache, True, CancelToken())
    assert calls == []
    assert span_ids(loaded.layout.trace) == sorted(s.span_id for s in
                                                   sdk.get_trace(big1k).data.spans)


def test_a_cached_trace_is_read_ahead_from_the_cache_not_downloaded(client, sdk, big1k, tmp_path,
                                                                   mlflow_server, monkeypatch):
    cache = TraceCache(tmp_path)
    loaded = trace_loading.from_server(client, big1k, cache, False, CancelToken())
    trace_loading.store(cache, loaded.cache_as, [loaded.layout.trace], CancelToken())
    opened = []

    def open_client():
        opened.append(RestClient(mlflow_server.url))
        return opened[-1]

    trace_loading.prefetch(open_client, big1k, cache).join(30)
    assert opened and opened[0]._http.is_closed
    assert (client.host, big1k) not in trace_loading._prefetched
    assert trace_loading._read_ahead[(client.host, big1k)]._done.wait(30)
    reads = []
    monkeypatch.setattr(client, "get_trace_raw", lambda *a, **k: reads.append(a))
    monkeypatch.setattr(cache, "get", lambda *a, **k: reads.append(a))
    again = trace_loading.from_server(client, big1k, cache, True, CancelToken())
    assert reads == []  # neither downloaded nor read again: the read-ahead is taken over
    assert again.cached_at is not None
    assert span_ids(again.layout.trace) == sorted(s.span_id for s in
                                                  sdk.get_trace(big1k).data.spans)
