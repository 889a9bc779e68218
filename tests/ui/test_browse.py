"""The trace browser against the real seeded server: filtered tables equal the SDK's results,
lazy paging, stale rows never shown, failures mid-scroll keep what was loaded."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from PySide6.QtCore import QItemSelection, QItemSelectionModel, Qt

from tests.conftest import PROD_EXPERIMENT, experiment_id
from tests.core.test_filters import filters as clause_lists
from tests.ui.waiting import background_work_ended
from traceviewer.core import filters
from traceviewer.core.app_model import AppModel
from traceviewer.core.client import RestClient, RetryPolicy
from traceviewer.core.filters import Clause
from traceviewer.core.model import SESSION_KEY, USER_KEY
from traceviewer.core.workspaces import Workspace, WorkspaceMemory
from traceviewer.ui.browse.browser import TraceBrowser
from traceviewer.ui.browse.filter_builder import FilterBuilder
from traceviewer.ui.browse.trace_table import COLUMN_NAMES

WAIT_MS = 60_000


def load_all(qtbot, browser: TraceBrowser) -> list[str]:
    """Scroll until the last page has arrived; the trace ids in table order."""
    model = browser.model
    while True:
        qtbot.waitUntil(lambda: not model.loading, timeout=WAIT_MS)
        assert not browser.banner.isVisible(), browser.banner.label.text()
        if model.complete:
            return [t.trace_id for t in model.rows]
        model.fetchMore()


def sdk_ids(sdk, exp_id: str, filter_string: str) -> list[str]:
    traces = sdk.search_traces(locations=[exp_id], filter_string=filter_string, max_results=500,
                               include_spans=False)
    return [t.info.trace_id for t in traces]


def set_source(browser: TraceBrowser, client, workspace: str | None, experiment,
               filter_text: str | None = None) -> None:
    """Point the browser's app model at this workspace (by name), client and experiment, as the
    main window does."""
    model = browser.app_model
    if workspace is not None and (model.workspace is None or model.workspace.name != workspace):
        model.set_workspace(Workspace(workspace, client.host))
    model.set_client(client)
    model.set_experiment(experiment, filter_text=filter_text)


def show(browser, client, sdk, clauses: list[Clause], workspace: str = "ws") -> None:
    experiment = client.get_experiment_by_name(PROD_EXPERIMENT)
    set_source(browser, client, workspace, experiment, filter_text=filters.build(clauses))


def test_session_filter_shows_exactly_the_sdk_traces(qtbot, browser, client, sdk):
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    session = sdk.search_traces(locations=[exp_id], max_results=1)[0].info.tags[SESSION_KEY]
    show(browser, client, sdk, [filters.session(session)])
    ids = load_all(qtbot, browser)
    expected = sdk_ids(sdk, exp_id, f"tags.`{SESSION_KEY}` = '{session}'")
    assert len(expected) > 1
    assert ids == expected


def test_user_filter_shows_exactly_the_sdk_traces_over_several_pages(qtbot, browser, client,
                                                                     sdk):
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    user = sdk.search_traces(locations=[exp_id], max_results=1)[0].info.tags[USER_KEY]
    browser.page_size = 3
    pages = []
    browser.model.page_loaded.connect(pages.append)
    show(browser, client, sdk, [filters.user(user)])
    ids = load_all(qtbot, browser)
    expected = sdk_ids(sdk, exp_id, f"tags.`{USER_KEY}` = '{user}'")
    assert len(expected) > 3
    assert ids == expected
    assert len(pages) >= 2 and all(n <= 3 for n in pages)
    assert browser.status.text() == f"All {len(expected)} traces loaded"


def test_scrolling_the_view_fetches_the_next_page(qtbot, browser, client, sdk):
    browser.page_size = 5
    show(browser, client, sdk, [])
    qtbot.waitUntil(lambda: len(browser.model.rows) >= 5 and not browser.model.loading,
                    timeout=WAIT_MS)
    first = len(browser.model.rows)
    browser.table.scrollToBottom()
    qtbot.waitUntil(lambda: len(browser.model.rows) > first, timeout=WAIT_MS)


def test_filter_change_during_a_slow_fetch_never_shows_stale_rows(qtbot, browser, fault_proxy,
                                                                  sdk):
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    with RestClient(fault_proxy.url) as slow:
        fault_proxy.inject("delay", seconds=1.5, match="/traces/search")
        show(browser, slow, sdk, [filters.status("OK")])
        # The OK query is in flight at the proxy.
        qtbot.waitUntil(lambda: fault_proxy.received_count("/traces/search") == 1,
                        timeout=WAIT_MS)
        browser.set_filter_text("status = 'ERROR'")
        ids = load_all(qtbot, browser)
        background_work_ended(qtbot)  # the delayed OK page has arrived: it must be dropped
    assert ids and {t.state for t in browser.model.rows} == {"ERROR"}
    assert [t.trace_id for t in browser.model.rows] == sdk_ids(sdk, exp_id, "status = 'ERROR'")


def test_server_error_mid_scroll_keeps_loaded_rows_and_retry_continues(qtbot, browser,
                                                                       fault_proxy, sdk):
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    with RestClient(fault_proxy.url, retry=RetryPolicy(attempts=1)) as flaky:
        browser.page_size = 10
        armed = [True]

        def fail_next_page(_n: int) -> None:
            if armed.pop() if armed else False:
                fault_proxy.inject("status", status=500, match="/traces/search")

        browser.model.page_loaded.connect(fail_next_page)
        show(browser, flaky, sdk, [])
        qtbot.waitUntil(lambda: len(browser.model.rows) == 10, timeout=WAIT_MS)
        browser.model.fetchMore()
        qtbot.waitUntil(browser.banner.isVisible, timeout=WAIT_MS)
        assert "Loading traces failed" in browser.banner.label.text()
        assert "10 traces already loaded stay" in browser.banner.label.text()
        assert len(browser.model.rows) == 10
        browser.banner.retry_button.click()
        ids = load_all(qtbot, browser)
    assert ids == sdk_ids(sdk, exp_id, "")


def test_quick_filter_show_only_this_user_then_exclude_state(qtbot, browser, client, sdk):
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    # A user with a failed trace, so that both clauses leave something to show.
    user = next(t.info.tags[USER_KEY] for t in sdk.search_traces(
        locations=[exp_id], filter_string="status = 'ERROR'", max_results=500,
        include_spans=False) if t.info.tags.get(USER_KEY))
    show(browser, client, sdk, [])
    qtbot.waitUntil(lambda: bool(browser.model.rows) and not browser.model.loading,
                    timeout=WAIT_MS)
    browser.add_clause(filters.user(user))
    browser.add_clause(Clause("status", "!=", "OK"))
    text = f"tags.`{USER_KEY}` = '{user}' AND status != 'OK'"
    assert browser.builder.text.text() == text
    expected = sdk_ids(sdk, exp_id, text)
    assert expected
    assert load_all(qtbot, browser) == expected


def test_filter_and_columns_are_remembered_per_workspace(qtbot, client, sdk):
    memory = WorkspaceMemory()
    first = TraceBrowser(AppModel(memory=memory))
    qtbot.addWidget(first)
    show(first, client, sdk, [filters.status("ERROR")], workspace="prod")
    first.builder.apply()
    user_column = first.table.horizontalHeader().logicalIndex(7)
    first.table.setColumnHidden(user_column, True)
    first.table.columns_changed.emit()
    second = TraceBrowser(AppModel(memory=memory))
    qtbot.addWidget(second)
    set_source(second, client, "prod", None)
    assert second.builder.text.text() == "status = 'ERROR'"
    assert second.table.isColumnHidden(user_column)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(clause_lists)
def test_builder_rows_to_string_and_back_round_trip(qtbot, cs):
    builder = FilterBuilder()
    qtbot.addWidget(builder)
    builder.set_clauses(cs)
    text = builder.text.text()
    assert not builder.error.isVisibleTo(builder), builder.error.text()
    builder.set_clauses([])
    builder.text.setText(text)
    builder.apply_text()
    assert builder.text.text() == text
    assert filters.build(builder.clauses()) == filters.build(cs)


def test_invalid_hand_written_filter_is_flagged_with_its_position(qtbot):
    builder = FilterBuilder()
    qtbot.addWidget(builder)
    applied = []
    builder.applied.connect(applied.append)
    builder.text.setText("status = 'OK' AND name = ")
    builder.apply_text()
    assert not applied
    assert builder.error.isVisibleTo(builder)
    assert "(at character 26)" in builder.error.text()
    assert builder.text.cursorPosition() == 25


def test_auto_refresh_counts_new_traces_without_touching_the_table(qtbot, browser, client, sdk,
                                                                   monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
    name = "auto-refresh-check"
    exp_id = sdk.create_experiment(name)

    def log_trace(i: int) -> None:
        with mlflow.start_span(f"request-{i}"):
            pass

    mlflow.set_experiment(experiment_id=exp_id)
    log_trace(1)
    set_source(browser, client, "ws", client.get_experiment(exp_id))
    assert len(load_all(qtbot, browser)) == 1
    browser.table.selectRow(0)
    log_trace(2)
    log_trace(3)
    browser._check_new()
    qtbot.waitUntil(browser.new_button.isVisible, timeout=WAIT_MS)
    assert browser.new_button.text() == "2 new traces"
    assert len(browser.model.rows) == 1 and browser.table.selected_traces()
    browser.new_button.click()
    assert len(load_all(qtbot, browser)) == 3


def test_html_in_a_preview_tooltip_is_shown_literally(qtbot, browser, client, sdk):
    show(browser, client, sdk, [])
    load_all(qtbot, browser)
    row = next(i for i, t in enumerate(browser.model.rows) if "<b>" in (t.request_preview or ""))
    column = COLUMN_NAMES.index("Request")
    tip = browser.model.data(browser.model.index(row, column), Qt.ItemDataRole.ToolTipRole)
    assert "<b>" not in tip and "&lt;b&gt;" in tip


def test_a_failed_page_banner_goes_away_when_scrolling_loads_the_next_page(qtbot, browser,
                                                                          fault_proxy, sdk):
    with RestClient(fault_proxy.url, retry=RetryPolicy(attempts=1)) as flaky:
        browser.page_size = 10
        armed = [True]

        def fail_next_page(_n: int) -> None:
            if armed.pop() if armed else False:
                fault_proxy.inject("status", status=500, match="/traces/search")

        browser.model.page_loaded.connect(fail_next_page)
        show(browser, flaky, sdk, [])
        qtbot.waitUntil(lambda: len(browser.model.rows) == 10, timeout=WAIT_MS)
        browser.model.fetchMore()
        qtbot.waitUntil(browser.banner.isVisible, timeout=WAIT_MS)
        with qtbot.waitSignal(browser.model.page_loaded, timeout=WAIT_MS):
            browser.model.fetchMore()  # scrolling on, not the banner's Retry
        assert len(browser.model.rows) > 10
        assert browser.banner.isHidden()


def test_a_new_query_disables_compare_with_the_selection_it_dropped(qtbot, browser, client,
                                                                     sdk):
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    user = sdk.search_traces(locations=[exp_id], max_results=1)[0].info.tags[USER_KEY]
    show(browser, client, sdk, [])
    load_all(qtbot, browser)
    table = browser.table
    table.selectionModel().select(
        QItemSelection(browser.model.index(0, 0), browser.model.index(1, 0)),
        QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
    assert browser.compare_button.isEnabled()
    show(browser, client, sdk, [filters.user(user)])
    load_all(qtbot, browser)
    assert table.selected_traces() == []
    assert not browser.compare_button.isEnabled()
