"""The trace compare view on real seeded traces (pytest-qt, offscreen): two rows selected in the
trace table and Ctrl+D show the merged tree whose rows carry the SDK's span names path by path;
a trace against itself is all same; a span added, one removed and one failing are the only
differences; n / p step through them; the text diff shows a changed input; a missing trace is a
banner with a retry, which goes through the workspace's current client; a comparison can be
cancelled; markup in a span name shows literally in the tooltip."""

from __future__ import annotations

from dataclasses import replace

import pytest
from PySide6.QtCore import QItemSelection, QItemSelectionModel, QModelIndex, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from tests.cli.test_trace_diff import _sdk_paths, same_flow  # noqa: F401 (a fixture)
from tests.conftest import BIG_EXPERIMENT, PROD_EXPERIMENT
from tests.core.test_trace_compare import edited
from tests.ui.test_main_window import connected_window
from tests.ui.waiting import background_work_ended
from traceviewer.core.app_model import AppModel
from traceviewer.core.cache import TraceCache
from traceviewer.core.client import RestClient, RetryPolicy
from traceviewer.core.model import INPUTS_KEY, Trace
from traceviewer.core.trace_compare import prepare
from traceviewer.core.trace_diff import Status, diff
from traceviewer.core.workspaces import Workspace
from traceviewer.ui.trace.compare_view import NAME, STATUS, CompareView, CompareWithDialog

WAIT_MS = 60_000


@pytest.fixture
def view(qtbot, tmp_path):
    v = CompareView(cache=TraceCache(tmp_path / "cache"))
    qtbot.addWidget(v)
    v.resize(1400, 800)
    v.show()
    qtbot.waitExposed(v)
    return v


def compare_and_wait(qtbot, view, client, a_id, b_id):
    with qtbot.waitSignal(view.compared_shown, timeout=WAIT_MS) as shown:
        view.compare(client, a_id, b_id)
    return shown.args[0]


def rows(view):
    """(pair number, names from the top row down to it, status text) of every row, in order."""
    model, out = view.model, []

    def walk(parent, names):
        for r in range(model.rowCount(parent)):
            index = model.index(r, NAME, parent)
            path = [*names, model.data(index)]
            out.append((model.pair(index), path, model.data(index.siblingAtColumn(STATUS))))
            walk(index, path)

    walk(QModelIndex(), [])
    return out


def test_two_selected_rows_and_ctrl_d_show_the_sdks_names_path_by_path(qtbot, mlflow_server,
                                                                        sdk, same_flow):  # noqa: F811
    w = connected_window(qtbot, Workspace("local", mlflow_server.url), PROD_EXPERIMENT)
    w.show()
    qtbot.waitExposed(w)
    browser = w.browser
    qtbot.waitUntil(lambda: browser.model.complete and not browser.model.loading,
                    timeout=WAIT_MS)
    ids = [t.trace_id for t in browser.model.rows]
    table = browser.table
    assert not browser.compare_button.isEnabled()
    selection = QItemSelection()
    for trace_id in same_flow:
        index = browser.model.index(ids.index(trace_id), 0)
        selection.select(index, index)
    table.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect
                                  | QItemSelectionModel.SelectionFlag.Rows)
    assert browser.compare_button.isEnabled()
    table.setFocus()
    with qtbot.waitSignal(w.compare_view.compared_shown, timeout=WAIT_MS) as shown:
        qtbot.keyClick(table, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert w.tabs.currentWidget() is w.compare_view
    result = shown.args[0].diff
    times = {t.trace_id: t.request_time_ms for t in browser.model.rows}
    older, newer = sorted(same_flow, key=times.get)
    assert (result.a.info.trace_id, result.b.info.trace_id) == (older, newer)
    paths_a, paths_b = _sdk_paths(sdk, older), _sdk_paths(sdk, newer)
    shown_rows = rows(w.compare_view)
    assert len(shown_rows) == len(paths_a) == len(paths_b)
    for pair_number, names, _status in shown_rows:
        pair = result.pairs[pair_number]
        assert names == paths_a[result.a.spans[pair.a].span_id]
        assert names == paths_b[result.b.spans[pair.b].span_id]


def test_a_trace_compared_with_itself_shows_every_row_same(qtbot, view, client, sdk,
                                                           prod_infos):
    trace_id = prod_infos[0].trace_id
    compare_and_wait(qtbot, view, client, trace_id, trace_id)
    spans = sdk.get_trace(trace_id).data.spans
    shown_rows = rows(view)
    assert len(shown_rows) == len(spans)
    assert {status for _, _, status in shown_rows} == {"same"}
    assert f"{len(spans)} spans same" in view.counts.text() or \
        f"{len(spans)} span same" in view.counts.text()
    assert trace_id in view.summary.text()
    view.only_differences.setChecked(True)
    assert rows(view) == []


def test_added_removed_and_failing_spans_are_the_only_differences(qtbot, view, client,
                                                                 prod_infos):
    a = client.get_trace(prod_infos[0].trace_id)
    b, changes = edited(a)
    with qtbot.waitSignal(view.compared_shown):
        view.show_compared(prepare(diff(a, b)))
    result = view.compared.diff

    def span_id(pair_number):
        pair = result.pairs[pair_number]
        return (result.span(pair, "a") or result.span(pair, "b")).span_id

    expected = {span: {"only_a": "only in A", "only_b": "only in B",
                       "changed": "changed (status)"}[status.value]
                for span, status in changes.items()}
    assert {span_id(p): s for p, _, s in rows(view) if s != "same"} == expected
    view.only_differences.setChecked(True)
    assert {span_id(p) for p, _, s in rows(view) if s != "same"} == set(changes)


def test_n_and_p_move_the_selection_through_the_differences(qtbot, view, client, prod_infos):
    a = client.get_trace(prod_infos[0].trace_id)
    b, changes = edited(a)
    with qtbot.waitSignal(view.compared_shown):
        view.show_compared(prepare(diff(a, b)))
    in_order = [p for p, _, s in rows(view) if s != "same"]
    assert len(in_order) == len(changes)
    assert view.current_pair() == in_order[0]  # the first difference is selected on open
    view.tree.setFocus()
    qtbot.keyClick(view.tree, Qt.Key.Key_N)
    assert view.current_pair() == in_order[1]
    qtbot.keyClick(view.tree, Qt.Key.Key_F8)
    assert view.current_pair() == in_order[2]
    qtbot.keyClick(view.tree, Qt.Key.Key_N)
    assert view.current_pair() == in_order[0]
    qtbot.keyClick(view.tree, Qt.Key.Key_P)
    assert view.current_pair() == in_order[2]


def test_the_text_diff_pane_shows_a_changed_input(qtbot, view, client, sdk, prod_infos):
    trace_id = prod_infos[0].trace_id
    a = client.get_trace(trace_id)
    child = a.first_child[0]
    sdk_inputs = next(s.inputs for s in sdk.get_trace(trace_id).data.spans
                      if s.span_id == a.spans[child].span_id)
    assert sdk_inputs
    spans = [replace(s, attributes={**s.attributes, INPUTS_KEY: "a question never asked"})
             if i == child else s for i, s in enumerate(a.spans)]
    with qtbot.waitSignal(view.compared_shown):
        view.show_compared(prepare(diff(a, Trace.build(a.info, spans))))
    pair = view.compared.diff.pairs[view.current_pair()]
    assert pair.a == child and pair.changes == ("inputs",)
    qtbot.waitUntil(lambda: "+a question never asked" in view.text_diff.toPlainText())
    text = view.text_diff.toPlainText()
    assert text.startswith("--- A inputs\n+++ B inputs")
    removed = [line[1:] for line in text.splitlines() if line.startswith("-")
               and not line.startswith("---")]
    first = sdk_inputs if isinstance(sdk_inputs, str) else next(iter(sdk_inputs))
    assert any(str(first)[:20] in line for line in removed), text


def test_a_missing_trace_is_a_banner_with_a_retry(qtbot, view, client, prod_infos):
    with qtbot.waitSignal(view.compare_failed, timeout=WAIT_MS):
        view.compare(client, prod_infos[0].trace_id, "tr-0000000000000000000000000000dead")
    assert view.banner.isVisible() and view.banner.retry_button.isVisible()
    text = view.banner.label.text()
    assert "tr-0000000000000000000000000000dead" in text
    assert "Check that both trace IDs belong to this workspace." in text
    assert not view.progress.isVisible()


def test_retry_after_a_workspace_switch_compares_through_the_new_client(qtbot, tmp_path,
                                                                        mlflow_server, sdk,
                                                                        prod_infos):
    app_model = AppModel()
    view = CompareView(cache=TraceCache(tmp_path / "cache"), app_model=app_model)
    qtbot.addWidget(view)
    unreachable = RestClient("http://127.0.0.1:9", retry=RetryPolicy(attempts=1))
    app_model.set_client(unreachable)
    a_id, b_id = prod_infos[1].trace_id, prod_infos[0].trace_id
    with qtbot.waitSignal(view.compare_failed, timeout=WAIT_MS):
        view.compare(unreachable, a_id, b_id)
    app_model.set_client(RestClient(mlflow_server.url))  # closes the unreachable one
    with qtbot.waitSignal(view.compared_shown, timeout=WAIT_MS) as shown:
        view.banner.retry_button.click()
    result = shown.args[0].diff
    assert ({result.b.spans[p.b].span_id for p in result.pairs if p.b >= 0}
            == {s.span_id for s in sdk.get_trace(b_id).data.spans})
    assert view.banner.isHidden()
    app_model.set_client(None)


def test_html_in_a_span_name_shows_literally_in_the_tooltip(view, client, prod_infos):
    trace = client.get_trace(prod_infos[0].trace_id)
    named = Trace.build(trace.info, [replace(s, name="<b>x</b>") if i == 1 else s
                                     for i, s in enumerate(trace.spans)])
    view.show_compared(prepare(diff(named, named)))
    (row,) = [p for p, names, _ in rows(view) if names[-1] == "<b>x</b>"]
    tip = view.model.data(view.model.index_of(row, NAME), Qt.ItemDataRole.ToolTipRole)
    assert "<b>" not in tip and "&lt;b&gt;x&lt;/b&gt;" in tip


def test_cancelling_a_comparison_shows_nothing_of_it(qtbot, view, client, prod_infos):
    shown = []
    view.compared_shown.connect(shown.append)
    view.compare(client, prod_infos[0].trace_id, prod_infos[1].trace_id)
    assert view.progress.isVisible()
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert not view.progress.isVisible()
    background_work_ended(qtbot)
    assert shown == [] and view.compared is None


def test_a_10000_span_trace_against_itself_is_compared_in_the_background(qtbot, view, client,
                                                                        sdk):
    big = sdk.get_experiment_by_name(BIG_EXPERIMENT).experiment_id
    trace_id = next(t.info.trace_id for t in sdk.search_traces(locations=[big],
                                                               include_spans=False)
                    if t.info.client_request_id == "big-10000")
    compared = compare_and_wait(qtbot, view, client, trace_id, trace_id)
    count = len(sdk.get_trace(trace_id).data.spans)
    assert count >= 10_000
    assert len(compared.diff.pairs) == count
    assert compared.summary.counts[Status.SAME] == count
    assert view.model.rowCount() == len(compared.tree.roots)
    view.only_differences.setChecked(True)
    assert view.model.rowCount() == 0


def test_the_context_menu_copies_a_rows_span_ids(qtbot, view, client, sdk, prod_infos):
    a = client.get_trace(prod_infos[0].trace_id)
    b, changes = edited(a)
    with qtbot.waitSignal(view.compared_shown):
        view.show_compared(prepare(diff(a, b)))
    added = next(span for span, status in changes.items() if status is Status.ONLY_B)
    row = next(p for p, names, _ in rows(view) if names[-1] == "retry_after_failure")
    menu = view.tree.context_menu(view.model.index_of(row))
    copy_a, copy_b = (next(x for x in menu.actions() if x.text() == f"Copy span ID in {side}")
                      for side in "AB")
    assert not copy_a.isEnabled()
    copy_b.trigger()
    assert QGuiApplication.clipboard().text() == added
    first = view.model.index(0, 0)
    root_id = sdk.get_trace(a.info.trace_id).data.spans[0].span_id
    next(x for x in view.tree.context_menu(first).actions()
         if x.text() == "Copy span ID in A").trigger()
    assert QGuiApplication.clipboard().text() == root_id


def test_compare_with_in_the_trace_tab_compares_the_open_trace_with_the_one_picked(
        qtbot, mlflow_server, prod_infos):
    w = connected_window(qtbot, Workspace("local", mlflow_server.url), PROD_EXPERIMENT)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.browser.model.complete and not w.browser.model.loading,
                    timeout=WAIT_MS)
    a_id, b_id = prod_infos[0].trace_id, prod_infos[3].trace_id
    with qtbot.waitSignal(w.trace_view.trace_shown, timeout=WAIT_MS):
        w.open_trace(a_id)
    picked = []

    def pick() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, CompareWithDialog)
        ids = [t.trace_id for t in w.browser.model.rows if t.trace_id != a_id]
        dialog.list.setCurrentIndex(dialog.list.model().index(ids.index(b_id), 0))
        picked.append(dialog.chosen_id())
        dialog.accept()

    QTimer.singleShot(0, pick)
    with qtbot.waitSignal(w.compare_view.compared_shown, timeout=WAIT_MS) as shown:
        w.trace_view.compare_action.trigger()
    assert picked == [b_id]
    result = shown.args[0].diff
    assert (result.a.info.trace_id, result.b.info.trace_id) == (a_id, b_id)
    assert w.tabs.currentWidget() is w.compare_view
