"""The on-disk trace cache: round trip (a real big trace included), per-server keys,
least-recently-used eviction under the size cap, corrupt and old-format entries, cancelling a
write, and trace ids that must not pick a path."""

from __future__ import annotations

import json
import os
import time

import pytest

from traceviewer.core import paths
from traceviewer.core.cache import TraceCache
from traceviewer.core.cancel import CancelToken
from traceviewer.core.errors import Cancelled
from traceviewer.core.otlp import parse_trace

HOST = "http://127.0.0.1:5000"


def _raw(trace_id: str, pad: int = 0) -> bytes:
    """A REST `traces/get` response with one root span (padded inputs make it bigger)."""
    span = {"trace_id": "AAAAAAAAAAAAAAAAAAAAAA==", "span_id": "AAAAAAAAAAE=", "name": "root",
            "start_time_unix_nano": 1_795_611_751_000_000_000,
            "end_time_unix_nano": 1_795_611_752_000_000_000,
            "attributes": [{"key": "mlflow.spanInputs",
                            "value": {"string_value": "x" * pad}}],
            "status": {"code": "STATUS_CODE_OK"}}
    info = {"trace_id": trace_id, "request_time": "2026-11-25T13:02:27.771Z",
            "execution_duration": "1s", "state": "OK",
            "trace_location": {"type": "MLFLOW_EXPERIMENT",
                               "mlflow_experiment": {"experiment_id": "1"}}}
    return json.dumps({"trace": {"trace_info": info, "spans": [span]}}).encode()


def _trace(trace_id: str, pad: int = 0):
    return parse_trace(_raw(trace_id, pad))


def _entry_size(directory, pad: int) -> int:
    """The size of one cache entry of `_trace(..., pad)`."""
    probe = TraceCache(directory)
    probe.put(HOST, "tr-probe", _trace("tr-probe", pad))
    return probe._path(HOST, "tr-probe").stat().st_size


def _age(cache: TraceCache, trace_id: str, seconds_ago: float, host: str = HOST) -> None:
    path = cache._path(host, trace_id)
    then = time.time() - seconds_ago
    os.utime(path, (then, then))


def test_put_then_get_returns_the_trace_and_when_it_was_cached(tmp_path):
    cache = TraceCache(tmp_path)
    before = time.time()
    assert not cache.has(HOST, "tr-1")
    cache.put(HOST, "tr-1", _trace("tr-1"))
    assert cache.has(HOST, "tr-1")
    hit = cache.get(HOST, "tr-1")
    assert hit is not None
    assert hit.trace.info.trace_id == "tr-1"
    assert [s.name for s in hit.trace.spans] == ["root"]
    assert before <= hit.cached_at <= time.time()


def test_entries_are_per_server_and_ignore_a_trailing_slash(tmp_path):
    cache = TraceCache(tmp_path)
    cache.put(HOST + "/", "tr-1", _trace("tr-1"))
    assert cache.get(HOST, "tr-1") is not None
    assert cache.get("http://other:5000", "tr-1") is None


def test_least_recently_read_entry_is_evicted_first(tmp_path):
    one = _entry_size(tmp_path / "probe", pad=1000) + 20  # ids may be longer than the probe's
    cache = TraceCache(tmp_path / "cache", max_bytes=2 * one + 10)
    cache.put(HOST, "tr-a", _trace("tr-a", pad=1000))
    cache.put(HOST, "tr-b", _trace("tr-b", pad=1000))
    _age(cache, "tr-a", 20)
    _age(cache, "tr-b", 10)
    assert cache.get(HOST, "tr-a") is not None  # reading a makes b the least recently used
    cache.put(HOST, "tr-c", _trace("tr-c", pad=1000))
    assert cache.get(HOST, "tr-b") is None
    assert cache.get(HOST, "tr-a") is not None
    assert cache.get(HOST, "tr-c") is not None


def test_total_size_stays_under_the_cap(tmp_path):
    cap = 20_000
    cache = TraceCache(tmp_path, max_bytes=cap)
    for i in range(30):
        cache.put(HOST, f"tr-{i}", _trace(f"tr-{i}", pad=3000))
    assert sum(p.stat().st_size for p in tmp_path.glob("*.json")) <= cap
    assert cache.get(HOST, "tr-29") is not None  # the newest survives


def test_trace_bigger_than_the_cap_is_not_stored(tmp_path):
    cache = TraceCache(tmp_path, max_bytes=1000)
    cache.put(HOST, "tr-big", _trace("tr-big", pad=5000))
    assert cache.get(HOST, "tr-big") is None
    assert list(tmp_path.iterdir()) == []


def test_corrupt_entry_is_a_miss_and_is_removed(tmp_path):
    cache = TraceCache(tmp_path)
    cache.put(HOST, "tr-1", _trace("tr-1"))
    path = cache._path(HOST, "tr-1")
    path.write_bytes(path.read_bytes()[:-40])  # cut short, as a crash mid-write would
    assert cache.get(HOST, "tr-1") is None
    assert not path.exists()


def test_trace_id_cannot_pick_a_path_outside_the_cache(tmp_path):
    cache = TraceCache(tmp_path / "cache")
    evil = "../../escaped"
    cache.put(HOST, evil, _trace(evil))
    assert cache.get(HOST, evil) is not None
    assert [p.parent for p in (tmp_path / "cache").iterdir()] == [tmp_path / "cache"]
    assert not (tmp_path / "escaped.json").exists()


def test_default_location_is_the_user_cache_dir(isolated_dirs):
    cache = TraceCache()
    assert cache.directory == paths.cache_dir() / "traces"
    assert str(cache.directory).startswith(os.environ["XDG_CACHE_HOME"])


def _everything(trace) -> list:
    """Every field of every span, attributes decoded, and the tree links."""
    return [(s.span_id, s.parent_id, s.name, s.span_type, s.start_ns, s.end_ns, s.status,
             s.status_message, s.orphan, dict(s.attributes), s.events, trace.parent[i],
             trace.depth[i]) for i, s in enumerate(trace.spans)]


def test_a_big_trace_from_the_server_reads_back_from_the_cache_unchanged(
        tmp_path, client, sdk):
    big = sdk.get_experiment_by_name("big-traces").experiment_id
    (info,) = sdk.search_traces(locations=[big], include_spans=False,
                                filter_string="attributes.client_request_id = 'big-1000'")
    trace = client.get_trace(info.info.trace_id)
    assert any(s.events for s in trace.spans)  # exceptions, with their stack traces
    cache = TraceCache(tmp_path)
    cache.put(HOST, trace.info.trace_id, trace)
    hit = cache.get(HOST, trace.info.trace_id)
    assert hit.trace.info.to_json() == trace.info.to_json()
    assert _everything(hit.trace) == _everything(trace)
    assert len(hit.trace.spans) == 1000


def test_entry_of_an_older_format_is_a_miss_and_is_removed(tmp_path):
    cache = TraceCache(tmp_path)
    path = cache._path(HOST, "tr-1")
    # The first format: the server's response behind a header without "format".
    path.write_bytes(json.dumps({"cached_at": time.time(), "trace_id": "tr-1"}).encode()
                     + b"\n" + _raw("tr-1"))
    assert cache.get(HOST, "tr-1") is None
    assert not path.exists()


def test_cancelled_write_leaves_no_entry_and_no_temporary_file(tmp_path):
    cache = TraceCache(tmp_path)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        cache.put(HOST, "tr-1", _trace("tr-1"), token)
    assert list(tmp_path.iterdir()) == []
