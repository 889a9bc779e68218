"""The sessions view against the real seeded server: sessions grouped as the SDK's traces are,
newest first; a session's conversation is the SDK's traces of it, oldest first; loads stop on
request and failures reach the user."""

from __future__ import annotations

from collections import defaultdict

import pytest
from PySide6.QtCore import Qt

from tests.conftest import PROD_EXPERIMENT, experiment_id
from tests.ui.columns import assert_fits, assert_last_takes_the_rest
from tests.ui.waiting import background_work_ended
from traceviewer.core.client import RestClient, RetryPolicy
from traceviewer.core.model import SESSION_KEY, USER_KEY
from traceviewer.ui.summaries import summary_view
from traceviewer.ui.summaries.sessions import SessionsView

WAIT_MS = 60_000
FAST = RetryPolicy(attempts=2, total_s=5.0, base_delay_s=0.01, max_delay_s=0.05)


@pytest.fixture
def view(qtbot):
    widget = SessionsView()
    qtbot.addWidget(widget)
    widget.resize(1300, 700)
    return widget


def sdk_traces(sdk, exp_id: str, filter_string: str | None = None):
    return sdk.search_traces(locations=[exp_id], filter_string=filter_string, max_results=500,
                             include_spans=False)


def context(info, key: str) -> str | None:
    return info.tags.get(key) or info.trace_metadata.get(key) or None


def sdk_session_ids(sdk, exp_id: str, session: str) -> list[str]:
    """The session's traces as the SDK finds them (tags or metadata), oldest first."""
    found = {}
    for prefix in ("tags", "metadata"):
        for t in sdk_traces(sdk, exp_id, f"{prefix}.`{SESSION_KEY}` = '{session}'"):
            found[t.info.trace_id] = t.info.request_time
    return sorted(found, key=lambda trace_id: (found[trace_id], trace_id))


def loaded(qtbot, view: SessionsView) -> None:
    qtbot.waitUntil(lambda: view.loader.state != "loading", timeout=WAIT_MS)
    assert view.loader.state == "done", view.loader.banner.label.text()


def test_sessions_are_the_sdks_traces_grouped_newest_first(qtbot, view, client, sdk):
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    grouped, where = defaultdict(list), set()
    for t in sdk_traces(sdk, exp_id):
        if session := context(t.info, SESSION_KEY):
            grouped[session].append(t.info)
            where.add("tags" if t.info.tags.get(SESSION_KEY) else "metadata")
    assert where == {"tags", "metadata"}  # the seed stores sessions both ways
    view.load(client, [exp_id], [""])
    loaded(qtbot, view)
    got = {s.session: (s.traces, s.errors, s.user, s.last_ms) for s in view.model.rows}
    want = {s: (len(infos), sum(i.state.value == "ERROR" for i in infos),
                context(infos[0], USER_KEY), max(i.request_time for i in infos))
            for s, infos in grouped.items()}
    assert got == want
    lasts = [s.last_ms for s in view.model.rows]
    assert lasts == sorted(lasts, reverse=True)
    assert view.model.rowCount() == len(want) > 1


def test_selected_session_reads_as_the_sdks_turns_oldest_first(qtbot, view, client, sdk):
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    view.load(client, [exp_id], [""])
    loaded(qtbot, view)
    # The busiest session; the seed stores some sessions in tags, others in metadata.
    row = max(range(view.model.rowCount()), key=lambda r: view.model.rows[r].traces)
    session = view.model.rows[row].session
    view.table.selectRow(row)
    qtbot.waitUntil(lambda: view.turns_stack.currentWidget() is view.turns, timeout=WAIT_MS)
    ids = [turn.trace_id for turn in view.turn_model.turns]
    assert ids == sdk_session_ids(sdk, exp_id, session)
    assert len(ids) == view.model.rows[row].traces
    assert session in view.conversation_title.text()


def test_enter_on_a_turn_opens_its_trace(qtbot, view, client, sdk):
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    view.load(client, [exp_id], [""])
    loaded(qtbot, view)
    view.table.selectRow(0)
    qtbot.waitUntil(lambda: view.turn_model.rowCount() > 0, timeout=WAIT_MS)
    view.show()
    last = view.turn_model.index(view.turn_model.rowCount() - 1)
    view.turns.setCurrentIndex(last)
    view.turns.setFocus()
    with qtbot.waitSignal(view.open_trace) as signal:
        qtbot.keyClick(view.turns, Qt.Key.Key_Return)
    assert signal.args == [view.turn_model.turns[-1].trace_id]


def test_filter_narrows_sessions_and_turns(qtbot, view, client, sdk):
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    errors = [t.info for t in sdk_traces(sdk, exp_id, "attributes.status = 'ERROR'")]
    sessions = {context(i, SESSION_KEY) for i in errors} - {None}
    assert sessions
    view.load(client, [exp_id], ["attributes.status = 'ERROR'"])
    loaded(qtbot, view)
    assert {s.session for s in view.model.rows} == sessions
    view.table.selectRow(0)
    qtbot.waitUntil(lambda: view.turn_model.rowCount() > 0, timeout=WAIT_MS)
    assert {turn.state for turn in view.turn_model.turns} == {"ERROR"}


def test_no_match_says_so(qtbot, view, client, sdk):
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    view.load(client, [exp_id], ["tags.environment = 'no-such-environment'"])
    loaded(qtbot, view)
    assert view.sessions_stack.currentWidget() is view.sessions_empty
    assert view.sessions_empty.text() == "No traces match this filter."


def test_stop_keeps_what_was_read_and_ignores_later_pages(qtbot, view, sdk, fault_proxy,
                                                          monkeypatch):
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    # Pages of 10, so that the seeded traces take several; the first comes at once, the
    # later ones are late.
    monkeypatch.setattr(summary_view, "MAX_PAGE_SIZE", 10)
    fault_proxy.inject("delay", times=1, match="/traces/search", seconds=0)
    fault_proxy.inject("delay", times=10, match="/traces/search", seconds=2.0)
    first_page = [t.info for t in sdk.search_traces(locations=[exp_id], max_results=10,
                                                    include_spans=False)]
    with RestClient(fault_proxy.url, retry=FAST) as slow:
        with qtbot.waitSignal(view.loader.updated, timeout=WAIT_MS):
            view.load(slow, [exp_id], [""])
        # The next page asked for and held back by the proxy: stopping now makes it late.
        qtbot.waitUntil(lambda: fault_proxy.received_count("/traces/search") >= 2,
                        timeout=WAIT_MS)
        view.loader.cancel()
        assert view.loader.state == "stopped"
        assert view.loader.status.text().startswith("Stopped after 10 traces")
        sessions = {context(info, SESSION_KEY) for info in first_page} - {None}
        assert sessions and view.model.rowCount() == len(sessions)
        background_work_ended(qtbot)  # the late page has arrived: it must be dropped
        assert view.model.rowCount() == len(sessions)
        assert view.loader.state == "stopped"
        assert view.loader.status.text().startswith("Stopped after 10 traces")


def test_server_failure_shows_a_banner_that_retries(qtbot, view, sdk, fault_proxy):
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    with RestClient(fault_proxy.url, retry=FAST) as proxied:
        fault_proxy.inject("status", times=5, match="/traces/search", status=500)
        view.load(proxied, [exp_id], [""])
        qtbot.waitUntil(lambda: view.loader.state == "failed", timeout=WAIT_MS)
        assert view.loader.banner.isVisibleTo(view)
        assert view.sessions_empty.text() == "Could not read the traces."
        fault_proxy.clear()
        view.loader.banner.retry_button.click()
        loaded(qtbot, view)
        assert view.model.rowCount() > 1


def test_clear_empties_both_panes(qtbot, view, client, sdk):
    view.load(client, [experiment_id(sdk, PROD_EXPERIMENT)], [""])
    loaded(qtbot, view)
    view.clear()
    assert view.model.rowCount() == 0 and view.turn_model.rowCount() == 0
    assert view.sessions_empty.text() == "Choose an experiment to see its sessions."


def test_columns_fit_their_content_and_the_first_request_takes_the_rest(qtbot, view, client,
                                                                        sdk):
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    view.load(client, [exp_id], [""])
    loaded(qtbot, view)
    view.show()
    qtbot.waitExposed(view)
    infos = [t.info for t in sdk_traces(sdk, exp_id)]
    assert_fits(view.table, 1, [s for i in infos if (s := context(i, SESSION_KEY))])
    assert_fits(view.table, 2, [u for i in infos if (u := context(i, USER_KEY))])
    assert_last_takes_the_rest(view.table)
