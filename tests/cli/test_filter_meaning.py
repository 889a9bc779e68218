"""Filters mean what they say on the real server: keys MLflow's parser rewrites (tags.name is
the trace name, whatever the quoting) are refused with a clear message instead of matching
other traces; fractional times keep their fraction; absurd numbers are a clear error."""

from __future__ import annotations

import json
import time
import uuid

import mlflow
import pytest

from traceviewer.cli import main
from traceviewer.core import filters as flt
from traceviewer.core.errors import BadFilter


@pytest.fixture(scope="module")
def named(mlflow_server, sdk):
    """(experiment id, trace named alpha with tag name=beta, trace named beta)."""
    exp_id = sdk.create_experiment(f"filter-meaning-{uuid.uuid4().hex[:8]}")
    ids = []
    for name in ("alpha", "beta"):
        span = mlflow.start_span_no_context(name, experiment_id=exp_id)
        span.end()
        ids.append(span.trace_id)
        time.sleep(0.01)  # distinct request times
    mlflow.flush_trace_async_logging()
    sdk.set_trace_tag(ids[0], "name", "beta")
    return exp_id, ids[0], ids[1]


def sdk_ids(sdk, exp_id: str, text: str) -> list[str]:
    return [t.info.trace_id for t in sdk.search_traces(locations=[exp_id], filter_string=text,
                                                       max_results=500, include_spans=False)]


def search(capsys, url: str, exp_id: str, *flags: str) -> tuple[int, list[str], str]:
    code = main(["traces", "search", "--host", url, "--experiment", exp_id, "--max", "0",
                 "--format", "json", *flags])
    out, err = capsys.readouterr()
    return code, [r["trace_id"] for r in json.loads(out)] if code == 0 else [], err


@pytest.mark.parametrize("spelling", ["tags.name", "tags.`name`", 'tags."name"'])
def test_the_server_reads_a_tag_named_name_as_the_trace_name(sdk, named, spelling):
    exp_id, _, named_beta = named
    # Why the app must refuse it: every spelling finds the trace *named* beta, not the tagged one.
    assert sdk_ids(sdk, exp_id, f"{spelling} = 'beta'") == [named_beta]


@pytest.mark.parametrize("flags", [("--tag", "name=beta"), ("--tag", "Name=beta"),
                                   ("--filter", "tags.`name` = 'beta'"),
                                   ("--filter", "metadata.timestamp = '1'"),
                                   ("--filter", "tags.text = 'x'")])
def test_keys_the_server_rewrites_are_refused_with_a_clear_message(capsys, mlflow_server,
                                                                  named, flags):
    exp_id, _, _ = named
    code, ids, err = search(capsys, mlflow_server.url, exp_id, *flags)
    assert code == 2 and ids == []
    assert err.startswith("traceviewer: MLflow reads ") and "cannot be searched" in err
    assert "Traceback" not in err


def test_a_tag_whose_key_only_looks_similar_still_works(capsys, mlflow_server, sdk, named):
    exp_id, tagged, _ = named
    sdk.set_trace_tag(tagged, "names", "gamma")
    expected = sdk_ids(sdk, exp_id, "tags.names = 'gamma'")
    assert expected == [tagged]
    assert search(capsys, mlflow_server.url, exp_id, "--tag", "names=gamma")[1] == expected


@pytest.mark.parametrize("op", [">=", "<"])  # where cutting T.5 to T changes the answer
def test_fractional_times_keep_their_value(capsys, mlflow_server, sdk, named, op):
    exp_id, tagged, _ = named
    at = sdk.get_trace(tagged).info.timestamp_ms
    text = f"timestamp_ms {op} {at}.5"
    expected = sdk_ids(sdk, exp_id, text)
    assert expected != sdk_ids(sdk, exp_id, f"timestamp_ms {op} {at}")  # the fraction counts
    assert flt.alternatives(flt.parse(text)) == [text]
    assert search(capsys, mlflow_server.url, exp_id, "--filter", text)[1] == expected


@pytest.mark.parametrize("flags", [("--filter", "timestamp_ms < " + "9" * 4301),
                                   ("--filter", "execution_time_ms > " + "9" * 4301),
                                   ("--since", "9" * 4301)])
def test_a_4301_digit_number_is_a_clear_error(capsys, mlflow_server, named, flags):
    exp_id, _, _ = named
    code, _, err = search(capsys, mlflow_server.url, exp_id, *flags)
    assert code == 2 and "too large" in err and "Traceback" not in err
    assert len(err) < 300


def test_an_infinite_time_from_a_form_is_a_clear_error():
    with pytest.raises(BadFilter, match="finite"):
        flt.build([flt.Clause("timestamp_ms", ">", float("inf"))])
