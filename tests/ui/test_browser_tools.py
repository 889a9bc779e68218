"""The trace browser's tools against the real seeded server (pytest-qt, offscreen): saved
filters (save, list, apply, delete, per workspace), recent filters, sorting by a server-sorted
column header, and auto-refresh through its own timer. The rows expected come from the SDK."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QDeadlineTimer, QTimer
from PySide6.QtWidgets import QApplication, QInputDialog, QMenu

from tests.conftest import PROD_EXPERIMENT
from tests.ui.columns import click_header
from tests.ui.test_browse import WAIT_MS, load_all, sdk_ids, set_source
from traceviewer.core.app_model import AppModel
from traceviewer.core.client import RestClient
from traceviewer.core.workspaces import WorkspaceMemory
from traceviewer.ui.browse import browser as browser_module
from traceviewer.ui.browse.browser import TraceBrowser

ERRORS = "status = 'ERROR'"
OK = "status = 'OK'"


def new_browser(qtbot) -> TraceBrowser:
    widget = TraceBrowser(AppModel(memory=WorkspaceMemory()))
    qtbot.addWidget(widget)
    widget.resize(1200, 700)
    widget.show()
    return widget


@pytest.fixture
def browser(qtbot):
    widget = new_browser(qtbot)
    yield widget
    widget.model.reset(None)  # no fetch may outlive the test's client
    widget.app_model.set_client(None)  # closes it


def entries(menu: QMenu) -> dict[str, object]:
    """The menu as the user sees it when it opens: entry text -> action (separators left out)."""
    menu.aboutToShow.emit()
    return {a.text(): a for a in menu.actions() if not a.isSeparator()}


def answer_next_input_dialog(text: str, timeout_ms: int = 10_000) -> None:
    """Type `text` into the next modal input dialog and press OK (the dialog runs its own event
    loop, so the answer is queued before it opens). It stops looking once it answered or after
    `timeout_ms`, so a dialog that never opens leaves nothing polling into later tests."""
    deadline = QDeadlineTimer(timeout_ms)

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, QInputDialog):
            dialog.setTextValue(text)
            dialog.accept()
        elif not deadline.hasExpired():
            QTimer.singleShot(20, answer)

    QTimer.singleShot(0, answer)


def show_prod(browser: TraceBrowser, url: str, workspace: str, filter_text: str = "") -> None:
    """Switch the browser to `workspace` (its own client: a switch closes the previous one) on
    the production experiment, with `filter_text` applied."""
    client = RestClient(url)
    set_source(browser, client, workspace, client.get_experiment_by_name(PROD_EXPERIMENT))
    browser.set_filter_text(filter_text)


def test_saved_filters_are_saved_listed_applied_and_deleted_per_workspace(
        qtbot, browser, mlflow_server, sdk, prod):
    url = mlflow_server.url
    show_prod(browser, url, "ws-a", ERRORS)
    saved = browser.saved_button.menu()
    assert "Delete" in entries(saved) and not entries(saved)["Delete"].isEnabled()
    answer_next_input_dialog("failed only")
    entries(saved)["Save current filter…"].trigger()
    assert "failed only" in entries(saved)

    # Listed for this workspace only, also in a browser opened later.
    browser.set_filter_text(OK)
    show_prod(browser, url, "ws-b")
    assert "failed only" not in entries(saved)
    later = new_browser(qtbot)
    show_prod(later, url, "ws-a", OK)
    assert load_all(qtbot, later) == sdk_ids(sdk, prod, OK)
    entries(later.saved_button.menu())["failed only"].trigger()  # applied
    assert later.builder.text.text() == ERRORS
    expected = sdk_ids(sdk, prod, ERRORS)
    assert expected and load_all(qtbot, later) == expected
    later.model.reset(None)
    later.app_model.set_client(None)

    show_prod(browser, url, "ws-a")
    delete = entries(saved)["Delete"].menu()
    delete.aboutToShow.emit()
    (forget,) = [a for a in delete.actions() if a.text() == "failed only"]
    forget.trigger()
    assert "failed only" not in entries(saved)


def test_recent_filters_list_the_last_applied_newest_first_and_apply_again(
        qtbot, browser, mlflow_server, sdk, prod):
    show_prod(browser, mlflow_server.url, "ws-recent")
    recent = browser.recent_button.menu()
    assert [a.isEnabled() for a in entries(recent).values()] == [False]  # "No recent filters"
    for text in (ERRORS, OK, ERRORS):
        browser.set_filter_text(text)
    assert list(entries(recent)) == [ERRORS, OK]  # newest first, each once
    show_prod(browser, mlflow_server.url, "other")
    assert list(entries(recent)) == ["No recent filters"]

    show_prod(browser, mlflow_server.url, "ws-recent")
    entries(recent)[OK].trigger()
    assert browser.builder.text.text() == OK
    assert load_all(qtbot, browser) == sdk_ids(sdk, prod, OK)


def test_clicking_the_time_header_asks_the_server_for_the_sdks_order(qtbot, browser,
                                                                    mlflow_server, sdk, prod):
    import mlflow

    show_prod(browser, mlflow_server.url, "ws-sort")
    newest_first = load_all(qtbot, browser)
    click_header(browser, "Time")
    assert browser.order_by == ("timestamp_ms ASC",)
    oldest_first = load_all(qtbot, browser)
    expected = [t.info.trace_id for t in mlflow.search_traces(
        locations=[prod], order_by=["timestamp_ms ASC"], max_results=500, include_spans=False,
        return_type="list")]
    assert oldest_first == expected and oldest_first != newest_first

    click_header(browser, "Time")
    assert browser.order_by == ("timestamp_ms DESC",)
    assert load_all(qtbot, browser) == [t.info.trace_id for t in sdk.search_traces(
        locations=[prod], order_by=["timestamp_ms DESC"], max_results=500,
        include_spans=False)]


def test_auto_refresh_timer_shows_the_new_traces_count(qtbot, client, sdk, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
    monkeypatch.setattr(browser_module, "AUTO_REFRESH_MS", 300)
    exp_id = sdk.create_experiment("auto-refresh-timer")
    mlflow.set_experiment(experiment_id=exp_id)
    with mlflow.start_span("request-1"):
        pass
    browser = new_browser(qtbot)
    set_source(browser, client, "ws-timer", client.get_experiment(exp_id))
    assert len(load_all(qtbot, browser)) == 1
    browser.auto_refresh.setChecked(True)
    for i in (2, 3):
        with mlflow.start_span(f"request-{i}"):
            pass
    new = len(sdk.search_traces(locations=[exp_id], include_spans=False)) - 1

    qtbot.waitUntil(browser.new_button.isVisible, timeout=WAIT_MS)  # no call but the timer's
    assert browser.new_button.text() == f"{new} new traces" and new == 2
    assert len(browser.model.rows) == 1
    browser.auto_refresh.setChecked(False)
    assert browser.new_button.isHidden()
    browser.model.reset(None)
