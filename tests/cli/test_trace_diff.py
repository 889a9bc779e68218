"""`traceviewer trace diff A B` against the real seeded server: a trace against itself is all
`same`; two traces of one conversation flow pair spans whose names (by the MLflow SDK) agree
path by path; a span added, one removed and one failing in B are exactly what is reported."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import pytest

from tests.cli.test_traces import run
from traceviewer.core import trace_diff
from traceviewer.core.model import Span, Trace


def _diff_json(capsys, url: str, a: str, b: str) -> dict:
    code, out, err = run(capsys, "trace", "diff", "--host", url, a, b, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def _sdk_paths(sdk, trace_id: str) -> dict[str, list[str]]:
    """span id -> the span names from the root down to it, by the SDK."""
    spans = {s.span_id: s for s in sdk.get_trace(trace_id).data.spans}

    def chain(span_id: str | None) -> list[str]:
        names = []
        while span_id in spans:
            names.append(spans[span_id].name)
            span_id = spans[span_id].parent_id
        return names[::-1]

    return {span_id: chain(span_id) for span_id in spans}


@pytest.fixture(scope="module")
def same_flow(sdk, prod_infos) -> tuple[str, str]:
    """Two OK chat traces whose spans carry the same names (one conversation flow)."""
    by_shape: dict[tuple, list[str]] = {}
    for info in prod_infos:
        if getattr(info.state, "value", info.state) != "OK":
            continue
        names = tuple(sorted(Counter(s.name for s in sdk.get_trace(info.trace_id).data.spans)
                             .items()))
        by_shape.setdefault(names, []).append(info.trace_id)
        ids = by_shape[names]
        if len(ids) == 2 and sum(n for _, n in names) >= 3:
            return ids[0], ids[1]
    pytest.fail("no two seeded traces share a flow")


def test_a_trace_diffed_with_itself_is_every_span_same(capsys, mlflow_server, sdk, prod_infos):
    trace_id = prod_infos[0].trace_id
    result = _diff_json(capsys, mlflow_server.url, trace_id, trace_id)
    spans = sdk.get_trace(trace_id).data.spans
    assert len(result["pairs"]) == len(spans)
    assert {p["status"] for p in result["pairs"]} == {"same"}
    assert {p["a_span_id"] for p in result["pairs"]} == {s.span_id for s in spans}
    assert all(p["a_span_id"] == p["b_span_id"] for p in result["pairs"])
    assert result["duration_delta_ms"] == 0


def test_two_traces_of_one_flow_pair_spans_with_the_sdks_names_path_by_path(
        capsys, mlflow_server, sdk, same_flow):
    a, b = same_flow
    result = _diff_json(capsys, mlflow_server.url, a, b)
    paths_a, paths_b = _sdk_paths(sdk, a), _sdk_paths(sdk, b)
    pairs = result["pairs"]
    assert {p["status"] for p in pairs} <= {"same", "changed"}
    assert {p["a_span_id"] for p in pairs} == set(paths_a)
    assert {p["b_span_id"] for p in pairs} == set(paths_b)
    for p in pairs:
        assert paths_a[p["a_span_id"]] == paths_b[p["b_span_id"]]
        assert [seg.split("[")[0] for seg in p["path"].split("/")] == paths_a[p["a_span_id"]]


def test_text_output_has_a_summary_and_one_line_per_span(capsys, mlflow_server, same_flow):
    a, b = same_flow
    code, out, err = run(capsys, "trace", "diff", "--host", mlflow_server.url, a, b)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"A {a}  B {b}"
    assert "same" in lines[1] and "duration" in lines[1]
    result = _diff_json(capsys, mlflow_server.url, a, b)
    assert len(lines) == 2 + len(result["pairs"])


def test_span_added_removed_and_failing_in_b_are_exactly_what_is_reported(client, prod_infos):
    a = client.get_trace(prod_infos[0].trace_id)
    assert len(a.spans) >= 3
    leaves = [i for i in range(len(a.spans)) if a.first_child[i] == -1 and a.parent[i] >= 0]
    removed, failing = leaves[-1], leaves[0]
    assert removed != failing
    spans: list[Span] = []
    for i, span in enumerate(a.spans):
        if i == removed:
            continue
        spans.append(replace(span, status="ERROR") if i == failing else span)
    root = a.spans[0]
    added = Span("ab" * 8, root.span_id, "retry_after_failure", "TOOL", root.end_ns - 10,
                 root.end_ns - 5, "OK")
    b = Trace.build(a.info, [*spans, added])
    result = trace_diff.diff(a, b)
    odd = {(p.status, p.a, p.b, p.changes) for p in result.pairs
           if p.status is not trace_diff.Status.SAME}
    added_index = next(i for i, s in enumerate(b.spans) if s.span_id == added.span_id)
    failing_in_b = next(i for i, s in enumerate(b.spans) if s.span_id == a.spans[failing].span_id)
    assert odd == {(trace_diff.Status.ONLY_A, removed, -1, ()),
                   (trace_diff.Status.ONLY_B, -1, added_index, ()),
                   (trace_diff.Status.CHANGED, failing, failing_in_b, ("status",))}
    assert "retry_after_failure" in {p.path.rsplit("/", 1)[-1] for p in result.pairs}
