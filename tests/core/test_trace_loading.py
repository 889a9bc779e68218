"""core.trace_loading against the test server: the first load downloads (reporting bytes
received of the server's total) and is to be cached, the next comes from the cache; a download
started early (`prefetch`) is taken over rather than repeated, and a cached trace is read ahead
from the cache instead (saying so); a cache entry that cannot be read is downloaded; what was
fetched ahead for another trace is let go by the first load."""

from __future__ import annotations

import errno
import threading

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


def sdk_span_ids(sdk, trace_id):
    return sorted(s.span_id for s in sdk.get_trace(trace_id).data.spans)


def cached(client, trace_id, cache):
    """`cache` with the trace downloaded from the server in it."""
    loaded = trace_loading.from_server(client, trace_id, cache, False, CancelToken())
    trace_loading.store(cache, loaded.cache_as, [loaded.layout.trace], CancelToken())
    return cache


def read_ahead(mlflow_server, trace_id, cache):
    """Start reading `trace_id` ahead from `cache` (as the command line does) and wait until
    that read is over."""
    trace_loading.prefetch(lambda: RestClient(mlflow_server.url), trace_id, cache).join(30)
    ahead = trace_loading._read_ahead[(mlflow_server.url, trace_id)]
    assert ahead._done.wait(30)
    return ahead


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


def test_a_damaged_cache_entry_read_ahead_is_downloaded_instead(client, sdk, big1k, tmp_path,
                                                                 mlflow_server):
    cache = cached(client, big1k, TraceCache(tmp_path))
    path = cache._path(client.host, big1k)
    path.write_bytes(path.read_bytes()[:-40])  # cut short, as a crash mid-write would
    read_ahead(mlflow_server, big1k, cache)
    loaded = trace_loading.from_server(client, big1k, cache, True, CancelToken())
    assert loaded.cached_at is None and loaded.cache_as == (client.host, big1k)
    assert span_ids(loaded.layout.trace) == sdk_span_ids(sdk, big1k)


def test_a_cache_read_that_fails_is_downloaded_instead(client, sdk, big1k, tmp_path,
                                                       mlflow_server, monkeypatch):
    cache = cached(client, big1k, TraceCache(tmp_path))

    def unreadable(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(cache, "get", unreadable)
    assert isinstance(read_ahead(mlflow_server, big1k, cache)._error, OSError)
    loaded = trace_loading.from_server(client, big1k, cache, True, CancelToken())
    assert loaded.cached_at is None and loaded.cache_as == (client.host, big1k)
    assert span_ids(loaded.layout.trace) == sdk_span_ids(sdk, big1k)


def test_waiting_for_a_read_ahead_says_it_reads_the_cache(client, big1k, tmp_path,
                                                          mlflow_server, monkeypatch):
    cache = cached(client, big1k, TraceCache(tmp_path))
    get, release = cache.get, threading.Event()

    def slow_get(*args, **kwargs):
        release.wait(30)
        return get(*args, **kwargs)

    monkeypatch.setattr(cache, "get", slow_get)
    trace_loading.prefetch(lambda: RestClient(mlflow_server.url), big1k, cache).join(30)
    said = []

    def progress(text):
        said.append(text)
        # The read goes on for a few rounds of progress reports before it ends.
        threading.Timer(5 * trace_loading.PROGRESS_EVERY_S, release.set).start()

    loaded = trace_loading.from_server(client, big1k, cache, True, CancelToken(progress))
    assert loaded.cached_at is not None
    assert said == ["Reading the trace from the cache…"]


def test_the_first_load_lets_go_of_what_was_fetched_ahead_for_another_trace(
        client, big1k, prod_infos, tmp_path, mlflow_server):
    other, full = prod_infos[0].trace_id, cached(client, big1k, TraceCache(tmp_path / "full"))
    trace_loading.prefetch(lambda: RestClient(mlflow_server.url), big1k,
                           TraceCache(tmp_path / "empty")).join(30)
    read_ahead(mlflow_server, big1k, full)
    assert (client.host, big1k) in trace_loading._prefetched
    trace_loading.from_server(client, other, TraceCache(tmp_path / "other"), True, CancelToken())
    assert trace_loading._prefetched == {} and trace_loading._read_ahead == {}
