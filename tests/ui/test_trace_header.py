"""The trace header against the real server: duplicate span ids are said, not hidden, and
bidi or control characters in names, ids and tags are shown as visible markers (as the CLI
shows them), in the header, the span tree and the trace table."""

from __future__ import annotations

import json
import os
import time

import httpx
import pytest
from PySide6.QtCore import Qt

from tests.conftest import PROD_EXPERIMENT, experiment_id
from traceviewer.core.app_model import AppModel
from traceviewer.core.workspaces import Workspace, WorkspaceMemory
from traceviewer.ui.browse.browser import TraceBrowser
from traceviewer.ui.browse.trace_table import COLUMN_NAMES
from traceviewer.ui.trace.span_tree import NAME
from traceviewer.ui.trace.trace_view import TraceView

WAIT_MS = 60_000
RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "report<RLO>gpj.exe" reads as "reportexe.jpg"


@pytest.fixture
def view(qtbot):
    v = TraceView()
    qtbot.addWidget(v)
    v.resize(1400, 800)
    v.show()
    return v


def open_file_and_wait(qtbot, view, path):
    with qtbot.waitSignal(view.trace_shown, timeout=WAIT_MS) as shown:
        view.open_file(path)
    return shown.args[0]


def test_duplicate_span_ids_show_a_chip_saying_how_many_were_merged(qtbot, view, sdk,
                                                                   tmp_path):
    prod = experiment_id(sdk, PROD_EXPERIMENT)
    (found,) = sdk.search_traces(locations=[prod], max_results=1)
    doc = json.loads(sdk.get_trace(found.info.trace_id).to_json())
    spans = doc["data"]["spans"]
    assert len(spans) >= 2
    doc["data"]["spans"] = [*spans, spans[-1]]  # the last span exported twice
    path = tmp_path / "twice.json"
    path.write_text(json.dumps(doc))
    trace = open_file_and_wait(qtbot, view, path)
    assert len(trace.spans) == len(spans)
    chip = view.header.duplicates
    assert chip.isVisible()
    assert chip.text() == "1 duplicate span merged"
    assert "span id another span already had" in chip.toolTip()


def test_a_trace_without_duplicate_span_ids_shows_no_duplicates_chip(qtbot, view, sdk,
                                                                    tmp_path):
    prod = experiment_id(sdk, PROD_EXPERIMENT)
    (found,) = sdk.search_traces(locations=[prod], max_results=1)
    path = tmp_path / "once.json"
    path.write_text(sdk.get_trace(found.info.trace_id).to_json())
    open_file_and_wait(qtbot, view, path)
    assert not view.header.duplicates.isVisible()


@pytest.fixture
def bidi_trace(mlflow_server, sdk):
    """A finished one-span trace whose span name and one tag hold a RIGHT-TO-LEFT OVERRIDE
    (exported over OTLP, as any app could), in an experiment of its own."""
    exp_id = sdk.create_experiment(f"bidi-{os.urandom(4).hex()}")
    trace_hex, now = os.urandom(16).hex(), time.time_ns()
    span = {"traceId": trace_hex, "spanId": os.urandom(8).hex(), "name": f"report{RLO}gpj.exe",
            "kind": 1, "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 5_000_000),
            "status": {"code": 1}}
    body = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": [span]}]}]}
    httpx.post(f"{mlflow_server.url}/v1/traces", json=body,
               headers={"x-mlflow-experiment-id": exp_id}).raise_for_status()
    trace_id = "tr-" + trace_hex
    sdk.set_trace_tag(trace_id, "note", f"ok{RLO}evil")
    return exp_id, trace_id


def marked(text: str) -> str:
    return text.replace(RLO, "<U+202E>")


def test_bidi_override_in_span_name_and_tag_shows_as_a_marker(qtbot, view, client, sdk,
                                                               bidi_trace):
    _exp_id, trace_id = bidi_trace
    expected = sdk.get_trace(trace_id)
    span_name = expected.data.spans[0].name
    assert RLO in span_name
    with qtbot.waitSignal(view.trace_shown, timeout=WAIT_MS):
        view.open_trace(client, trace_id)
    header = view.header
    title = expected.info.tags.get("mlflow.traceName") or span_name
    assert header.title.text() == marked(title)
    assert header.tags.text() == "Tags: " + marked(f"note={expected.info.tags['note']}")
    assert view.model.index(0, NAME).data() == marked(span_name)
    shown = [label.text() for label in (header.title, header.tags, header.trace_id)]
    assert not any(RLO in text for text in shown)


def test_bidi_override_in_a_tag_shows_as_a_marker_in_the_trace_table(qtbot, client, sdk,
                                                                    bidi_trace):
    exp_id, _trace_id = bidi_trace
    browser = TraceBrowser(AppModel(memory=WorkspaceMemory()))
    qtbot.addWidget(browser)
    model = browser.app_model
    model.set_workspace(Workspace("ws", client.host))
    model.set_client(client)
    model.set_experiment(client.get_experiment(exp_id))
    qtbot.waitUntil(lambda: browser.model.complete and not browser.model.loading
                    and bool(browser.model.rows), timeout=WAIT_MS)
    (info,) = sdk.search_traces(locations=[exp_id], include_spans=False)
    assert [t.trace_id for t in browser.model.rows] == [info.info.trace_id]
    cells = [browser.model.index(0, c).data(Qt.ItemDataRole.DisplayRole)
             for c in range(len(COLUMN_NAMES))]
    tags = cells[COLUMN_NAMES.index("Tags")]
    assert marked(f"note={info.info.tags['note']}") in tags
    assert not any(RLO in (cell or "") for cell in cells)
    browser.model.reset(None)
