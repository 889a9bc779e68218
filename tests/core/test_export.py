"""core.export: CSV and JSONL files of a whole search equal what the MLflow SDK reads from the
server, and the file appears only complete (a cancelled or failed export leaves nothing)."""

from __future__ import annotations

import csv
import json

import pytest

from traceviewer.core import export, search
from traceviewer.core.cancel import CancelToken
from traceviewer.core.errors import Cancelled, UsageError
from traceviewer.core.model import parse_rfc3339_ms


def expected_row(info) -> dict:
    """What a row must hold for one SDK TraceInfo (as JSON types)."""
    return {
        "trace_id": info.trace_id,
        "client_request_id": info.client_request_id,
        "request_time_ms": info.request_time,
        "execution_duration_ms": info.execution_duration,
        "state": info.state.value,
        "name": info.tags.get("mlflow.traceName"),
        "session": info.tags.get("mlflow.trace.session") or
        info.trace_metadata.get("mlflow.trace.session"),
        "user": info.tags.get("mlflow.trace.user") or info.trace_metadata.get("mlflow.trace.user"),
        "tags": info.tags,
        "request_preview": info.request_preview,
        "response_preview": info.response_preview,
    }


def comparable(row: dict) -> dict:
    out = {k: row[k] for k in export.COLUMNS if k not in ("request_time", "feedback")}
    out["request_time_ms"] = parse_rfc3339_ms(row["request_time"])
    return out


def pages(client, prod, page_size=13):
    return search.iter_traces(client, [prod], page_size=page_size)


def test_jsonl_export_equals_the_servers_traces(client, prod, prod_infos, tmp_path):
    path = tmp_path / "traces.jsonl"
    assert export.export(pages(client, prod), path) == len(prod_infos)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [comparable(r) for r in rows] == [expected_row(i) for i in prod_infos]


def test_csv_export_equals_the_servers_traces(client, prod, prod_infos, tmp_path):
    path = tmp_path / "traces.csv"
    export.export(pages(client, prod), path)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == export.COLUMNS
        rows = list(reader)
    expected = [expected_row(i) for i in prod_infos]
    assert [r["trace_id"] for r in rows] == [e["trace_id"] for e in expected]
    for row, want in zip(rows, expected, strict=True):
        assert json.loads(row["tags"]) == want["tags"]
        assert parse_rfc3339_ms(row["request_time"]) == want["request_time_ms"]
        assert (row["state"], row["session"], row["user"]) == \
            (want["state"], want["session"] or "", want["user"] or "")
        assert row["response_preview"] == (want["response_preview"] or "")


def test_feedback_column_summarises_the_valid_feedback(client, prod, prod_infos, tmp_path):
    path = tmp_path / "traces.jsonl"
    export.export(pages(client, prod), path)
    rows = {r["trace_id"]: r for r in map(json.loads, path.read_text().splitlines())}
    with_feedback = [i for i in prod_infos if any(a.valid is not False and a.feedback
                                                 for a in i.assessments)]
    assert with_feedback
    for info in with_feedback:
        for a in info.assessments:
            value = a.feedback.value
            text = value if isinstance(value, str) else json.dumps(value)
            assert f"{a.name}={text}" in rows[info.trace_id]["feedback"]


def test_cancelled_export_leaves_the_old_file_and_no_partial_file(client, prod, tmp_path):
    path = tmp_path / "traces.csv"
    path.write_text("the previous export\n")
    token = CancelToken(lambda count: token.cancel() if count >= 20 else None)
    with pytest.raises(Cancelled):
        export.export(pages(client, prod, page_size=10), path, token=token)
    assert path.read_text() == "the previous export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["traces.csv"]


def test_export_format_comes_from_the_suffix_or_the_choice(tmp_path):
    with pytest.raises(UsageError, match=r"name it \.csv or \.jsonl"):
        export.export([], tmp_path / "traces.txt")
    assert export.export([], tmp_path / "traces.txt", fmt="jsonl") == 0
    assert (tmp_path / "traces.txt").read_text() == ""


def test_export_into_a_missing_folder_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="Cannot write to"):
        export.export([], tmp_path / "missing" / "traces.csv")
