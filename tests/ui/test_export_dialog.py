"""The export dialog against the real seeded server: the files hold exactly the server's result
in its order; cancelling or failing leaves no file."""

from __future__ import annotations

import csv
import json

from PySide6.QtCore import QThreadPool

from tests.conftest import PROD_EXPERIMENT, experiment_id
from traceviewer.core.client import RestClient, RetryPolicy
from traceviewer.core.model import SESSION_KEY, USER_KEY
from traceviewer.ui.browse.export_dialog import ExportDialog
from traceviewer.ui.common.tasks import TaskRunner

WAIT_MS = 60_000
FAST = RetryPolicy(attempts=2, total_s=5.0, base_delay_s=0.01, max_delay_s=0.05)
ORDER = ["timestamp_ms DESC"]


def dialog_for(qtbot, client, exp_id: str, filters: list[str]) -> ExportDialog:
    dialog = ExportDialog(None, TaskRunner(), client, [exp_id], filters, ORDER)
    qtbot.addWidget(dialog)
    return dialog


def run(qtbot, dialog: ExportDialog, path, fmt: str) -> None:
    dialog.format_box.setCurrentIndex(dialog.format_box.findData(fmt))
    dialog.path_edit.setText(str(path))
    dialog.export_button.click()
    qtbot.waitUntil(lambda: not dialog.running, timeout=WAIT_MS)


def sdk_rows(sdk, exp_id: str, filter_string: str | None) -> list[dict]:
    traces = sdk.search_traces(locations=[exp_id], filter_string=filter_string,
                               order_by=ORDER, max_results=500, include_spans=False)

    def ctx(info, key):
        return info.tags.get(key) or info.trace_metadata.get(key) or None

    return [{"trace_id": t.info.trace_id, "client_request_id": t.info.client_request_id,
             "state": t.info.state.value, "session": ctx(t.info, SESSION_KEY),
             "user": ctx(t.info, USER_KEY), "request_preview": t.info.request_preview,
             "response_preview": t.info.response_preview,
             "execution_duration_ms": t.info.execution_duration} for t in traces]


KEYS = ("trace_id", "client_request_id", "state", "session", "user", "request_preview",
        "response_preview", "execution_duration_ms")


def test_csv_export_equals_the_servers_result(qtbot, client, sdk, tmp_path):
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    dialog = dialog_for(qtbot, client, exp_id, [""])
    path = tmp_path / "all.csv"
    run(qtbot, dialog, path, "csv")
    assert "Exported" in dialog.status.text(), dialog.status.text()
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    want = sdk_rows(sdk, exp_id, None)
    assert len(rows) == len(want) > 50
    # CSV has no None: an absent value is an empty cell.
    assert [{k: r[k] for k in KEYS} for r in rows] == [
        {k: "" if w[k] is None else str(w[k]) for k in KEYS} for w in want]
    assert f"{len(want)} traces" in dialog.status.text()


def test_jsonl_export_of_a_filter_equals_the_servers_result(qtbot, client, sdk, tmp_path):
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    text = "attributes.status = 'ERROR'"
    dialog = dialog_for(qtbot, client, exp_id, [text])
    path = tmp_path / "errors.jsonl"
    run(qtbot, dialog, path, "jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    want = sdk_rows(sdk, exp_id, text)
    assert want
    assert [{k: r[k] for k in KEYS} for r in rows] == want


def test_format_choice_sets_the_file_suffix(qtbot, client, sdk, tmp_path):
    dialog = dialog_for(qtbot, client, experiment_id(sdk, PROD_EXPERIMENT), [""])
    dialog.path_edit.setText(str(tmp_path / "result.csv"))
    dialog.format_box.setCurrentIndex(dialog.format_box.findData("jsonl"))
    assert dialog.path_edit.text() == str(tmp_path / "result.jsonl")


def test_cancel_leaves_no_file(qtbot, sdk, fault_proxy, tmp_path):
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    with RestClient(fault_proxy.url, retry=FAST) as slow:
        fault_proxy.inject("delay", times=5, match="/traces/search", seconds=1.5)
        dialog = dialog_for(qtbot, slow, exp_id, [""])
        path = tmp_path / "cancelled.csv"
        dialog.format_box.setCurrentIndex(dialog.format_box.findData("csv"))
        dialog.path_edit.setText(str(path))
        dialog.export_button.click()
        qtbot.wait(300)
        assert dialog.running
        dialog.cancel_button.click()  # Cancel stops the export, the dialog stays
        assert not dialog.running
        assert dialog.status.text() == "Export cancelled; no file was written."
        assert QThreadPool.globalInstance().waitForDone(WAIT_MS)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_folder_fails_with_a_message_and_no_file(qtbot, client, sdk, tmp_path):
    dialog = dialog_for(qtbot, client, experiment_id(sdk, PROD_EXPERIMENT), [""])
    run(qtbot, dialog, tmp_path / "missing" / "x.csv", "csv")
    assert dialog.status.text().startswith("Export failed: Cannot write to")
    assert dialog.export_button.isEnabled()
    assert list(tmp_path.iterdir()) == []


def test_bad_filter_shows_the_servers_reason(qtbot, client, sdk, tmp_path):
    dialog = dialog_for(qtbot, client, experiment_id(sdk, PROD_EXPERIMENT), ["state = 'OK'"])
    run(qtbot, dialog, tmp_path / "x.csv", "csv")
    assert "Invalid attribute key 'state'" in dialog.status.text()
    assert list(tmp_path.iterdir()) == []
