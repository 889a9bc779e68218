"""The users view against the real seeded server: per-user counts equal what the SDK's traces
say, and activating a user asks for exactly that user's traces."""

from __future__ import annotations

from collections import defaultdict

import pytest
from PySide6.QtCore import Qt

from tests.conftest import PROD_EXPERIMENT, experiment_id
from tests.ui.columns import assert_fits, assert_last_takes_the_rest
from traceviewer.core import filters as flt
from traceviewer.core.model import SESSION_KEY, USER_KEY
from traceviewer.ui.summaries.users import UsersView

WAIT_MS = 60_000


@pytest.fixture
def view(qtbot):
    widget = UsersView()
    qtbot.addWidget(widget)
    widget.resize(900, 500)
    return widget


def context(info, key: str) -> str | None:
    return info.tags.get(key) or info.trace_metadata.get(key) or None


def sdk_found(sdk, exp_id: str, filter_strings: list[str]) -> list:
    """The SDK's traces matching any of these AND-only filters (each trace once)."""
    found = {}
    for text in filter_strings:
        for t in sdk.search_traces(locations=[exp_id], filter_string=text, max_results=500,
                                   include_spans=False):
            found[t.info.trace_id] = t.info
    return list(found.values())


def sdk_users(sdk, exp_id: str, filter_string: str | None = None) -> dict:
    """user -> (traces, sessions, errors, last seen ms) from the SDK's traces."""
    traces = sdk.search_traces(locations=[exp_id], filter_string=filter_string,
                               max_results=500, include_spans=False)
    per_user = defaultdict(list)
    for t in traces:
        if user := context(t.info, USER_KEY):
            per_user[user].append(t.info)
    return {user: (len(infos), len({context(i, SESSION_KEY) for i in infos} - {None}),
                   sum(i.state.value == "ERROR" for i in infos),
                   max(i.request_time for i in infos))
            for user, infos in per_user.items()}


def shown(view: UsersView) -> dict:
    return {u.user: (u.traces, len(u.sessions), u.errors, u.last_seen_ms)
            for u in view.model.rows}


def loaded(qtbot, view: UsersView) -> None:
    qtbot.waitUntil(lambda: view.loader.state != "loading", timeout=WAIT_MS)
    assert view.loader.state == "done", view.loader.banner.label.text()


def test_user_counts_equal_the_sdks(qtbot, view, client, sdk):
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    view.load(client, [exp_id], [""])
    loaded(qtbot, view)
    want = sdk_users(sdk, exp_id)
    assert len(want) > 1
    assert shown(view) == want
    assert any(errors for _t, _s, errors, _l in want.values())


def test_user_counts_under_a_filter_equal_the_sdks(qtbot, view, client, sdk):
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    view.load(client, [exp_id], ["attributes.status = 'ERROR'"])
    loaded(qtbot, view)
    assert shown(view) == sdk_users(sdk, exp_id, "attributes.status = 'ERROR'")


def test_most_recently_seen_user_is_listed_first(qtbot, view, client, sdk):
    view.load(client, [experiment_id(sdk, PROD_EXPERIMENT)], [""])
    loaded(qtbot, view)
    seen = [view.user_at(row).last_seen_ms for row in range(view.proxy.rowCount())]
    assert seen == sorted(seen, reverse=True)
    view.table.sortByColumn(1, Qt.SortOrder.DescendingOrder)  # by trace count, as numbers
    counts = [view.user_at(row).traces for row in range(view.proxy.rowCount())]
    assert counts == sorted(counts, reverse=True)


def test_activating_a_user_asks_for_exactly_their_traces(qtbot, view, client, sdk):
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    view.load(client, [exp_id], [""])
    loaded(qtbot, view)
    view.show()
    view.table.setFocus()
    view.table.selectRow(0)
    user = view.user_at(0)
    with qtbot.waitSignal(view.show_filtered) as signal:
        qtbot.keyClick(view.table, Qt.Key.Key_Return)
    text = signal.args[0]
    assert flt.parse(text) == [flt.user(user.user)]
    # The text, expanded as the trace table does (tags or metadata), finds the user's traces.
    found = sdk_found(sdk, exp_id, flt.alternatives(flt.parse(text)))
    assert len(found) == user.traces
    assert {context(i, USER_KEY) for i in found} == {user.user}


def test_activating_a_user_keeps_the_current_filter(qtbot, view, client, sdk):
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    traces = sdk.search_traces(locations=[exp_id], max_results=50, include_spans=False)
    session_id = next(s for t in traces if (s := context(t.info, SESSION_KEY)))
    clauses = [flt.status("OK"), flt.session(session_id)]
    view.load(client, [exp_id], flt.alternatives(clauses))
    loaded(qtbot, view)
    view.show()
    index = view.proxy.index(0, 0)
    with qtbot.waitSignal(view.show_filtered) as signal:
        view.table.activated.emit(index)
    user = view.user_at(0)
    assert flt.parse(signal.args[0]) == [*clauses, flt.user(user.user)]
    found = sdk_found(sdk, exp_id, flt.alternatives(flt.parse(signal.args[0])))
    assert len(found) == user.traces
    assert {(i.state.value, context(i, SESSION_KEY), context(i, USER_KEY)) for i in found} == {
        ("OK", session_id, user.user)}


def test_no_match_says_so(qtbot, view, client, sdk):
    view.load(client, [experiment_id(sdk, PROD_EXPERIMENT)], ["tags.environment = 'nowhere'"])
    loaded(qtbot, view)
    assert view.empty.text() == "No traces match this filter."
    assert view.summary.text() == ""


def test_columns_fit_their_content_and_the_last_one_takes_the_rest(qtbot, view, client, sdk):
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    view.load(client, [exp_id], [""])
    loaded(qtbot, view)
    view.show()
    qtbot.waitExposed(view)
    assert_fits(view.table, 0, list(sdk_users(sdk, exp_id)))
    assert_last_takes_the_rest(view.table)
