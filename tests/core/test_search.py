"""core.search against the real server: paging returns every trace once (also while new traces
arrive and shift the offset tokens), the client-side OR is the union in the server's order,
limits, cancelling, and experiment search, each compared with what the MLflow SDK returns."""

from __future__ import annotations

import time
import uuid

import mlflow
import pytest

from tests.conftest import BIG_EXPERIMENT, experiment_id
from traceviewer.core import search
from traceviewer.core.cancel import CancelToken
from traceviewer.core.errors import BadFilter, Cancelled


def sdk_ids(sdk, exp_ids: list[str], filter_string: str | None = None,
            order_by: list[str] | None = None) -> list[str]:
    return [t.info.trace_id for t in sdk.search_traces(
        locations=exp_ids, filter_string=filter_string, order_by=order_by, max_results=500,
        include_spans=False)]


def ids(pages) -> list[str]:
    return [t.trace_id for page in pages for t in page]


def log_traces(exp_id: str, n: int, name: str = "job") -> list[str]:
    out = []
    for i in range(n):
        span = mlflow.start_span_no_context(name, experiment_id=exp_id, inputs={"i": i})
        span.end(outputs=i)
        out.append(span.trace_id)
        time.sleep(0.01)  # distinct request times
    mlflow.flush_trace_async_logging()
    return out


def test_small_pages_return_every_trace_once_in_the_sdks_order(client, sdk, prod):
    expected = sdk_ids(sdk, [prod])
    assert len(expected) >= 60
    assert [t.trace_id for t in search.search_all(client, [prod], page_size=7)] == expected
    assert ids(search.iter_traces(client, [prod], page_size=500)) == expected


def test_traces_arriving_while_paging_are_returned_once(client, sdk):
    exp_id = sdk.create_experiment(f"search-shift-{uuid.uuid4().hex[:8]}")
    first = log_traces(exp_id, 6)
    pages = search.iter_traces(client, [exp_id], page_size=2)
    seen = list(next(pages))
    raw_first, token = client.search_traces([exp_id], max_results=2)
    log_traces(exp_id, 3)  # newer: they push the older traces to later offsets
    raw_second, _ = client.search_traces([exp_id], max_results=2, page_token=token)
    # What the server does: the next offset page repeats traces already seen...
    assert {t.trace_id for t in raw_second} & {t.trace_id for t in raw_first}
    # ...and the iterator still yields each trace once, every original one included.
    seen += [t for page in pages for t in page]
    got = [t.trace_id for t in seen]
    assert len(got) == len(set(got))
    assert set(first) <= set(got)


@pytest.mark.parametrize("order_by", [None, ["execution_time_ms DESC"], ["timestamp_ms ASC"],
                                      ["status", "execution_time_ms ASC"],
                                      ["tags.`mlflow.trace.user` DESC"]])
def test_or_of_filters_is_the_union_in_the_servers_order(client, sdk, prod, order_by):
    filters = ["status = 'ERROR'", "tags.region = 'eu-west-1'", "execution_time_ms > 4000"]
    union = set().union(*(sdk_ids(sdk, [prod], f) for f in filters))
    assert len(union) > max(len(sdk_ids(sdk, [prod], f)) for f in filters)  # a real union
    expected = [t for t in sdk_ids(sdk, [prod], order_by=order_by) if t in union]
    got = ids(search.iter_traces(client, [prod], filters, order_by=order_by, page_size=4))
    assert got == expected


def test_limit_returns_the_first_traces_only(client, sdk, prod):
    expected = sdk_ids(sdk, [prod])[:5]
    pages = list(search.iter_traces(client, [prod], limit=5))
    assert ids(pages) == expected
    assert [len(p) for p in pages] == [5]  # one request of 5, not a default-sized page


def test_search_spans_several_experiments(client, sdk, prod):
    big = experiment_id(sdk, BIG_EXPERIMENT)
    got = search.search_all(client, [prod, big], page_size=50)
    assert [t.trace_id for t in got] == sdk_ids(sdk, [prod, big])


def test_cancelling_stops_before_the_next_request(client, prod):
    token = CancelToken(lambda count: token.cancel())
    pages = search.iter_traces(client, [prod], page_size=5, token=token)
    assert len(next(pages)) == 5
    with pytest.raises(Cancelled):
        next(pages)


def test_progress_reports_the_running_count(client, prod):
    counts: list[int] = []
    search.search_all(client, [prod], page_size=25, token=CancelToken(counts.append), limit=60)
    assert counts == [25, 50, 60]


def test_find_by_client_request_id_finds_the_apps_trace(client, sdk, prod):
    (wanted,) = sdk.search_traces(locations=[prod], max_results=1, include_spans=False)
    found = search.find_by_client_request_id(client, [prod], wanted.info.client_request_id)
    assert [t.trace_id for t in found] == [wanted.info.trace_id]


def test_an_order_the_merge_cannot_reproduce_is_refused():
    with pytest.raises(BadFilter, match="Cannot order traces by"):
        search.sort_key(["span.name DESC"])


def test_experiments_by_name_substring_ignore_case(client, sdk):
    made = {sdk.create_experiment(f"Search-Exp-{uuid.uuid4().hex[:6]}-{i}") for i in range(3)}
    listed = [e for page in search.iter_experiments(client, "search-exp-", page_size=2)
              for e in page]
    assert {e.experiment_id for e in listed} == made
    everything = {e.experiment_id for page in search.iter_experiments(client, page_size=3)
                  for e in page}
    assert everything == {e.experiment_id for e in sdk.search_experiments(max_results=1000)}
