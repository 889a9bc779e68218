"""The filter builder with OR groups (shown as groups, written back unchanged), its cost line and
refusal, value suggestions from the seeded experiment, and Enter applying from any field."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from PySide6.QtCore import Qt

from tests.conftest import PROD_EXPERIMENT
from tests.core.test_filter_groups import groups as group_lists
from tests.ui.test_browse import WAIT_MS, set_source
from traceviewer.core import filter_groups, filters
from traceviewer.core.filters import Clause
from traceviewer.ui.browse.filter_builder import FilterBuilder

USER_TAG = "tags.`mlflow.trace.user`"


def _builder(qtbot) -> FilterBuilder:
    builder = FilterBuilder()
    qtbot.addWidget(builder)
    return builder


def test_an_or_string_shows_as_groups_and_is_written_back_unchanged(qtbot):
    builder = _builder(qtbot)
    text = f"({USER_TAG} = 'a' AND status = 'ERROR') OR {USER_TAG} = 'b'"
    builder.text.setText(text)
    builder.apply_text()
    assert [[r.clause() for r in g.rows] for g in builder.groups] == [
        [Clause("user", "=", "a"), Clause("status", "=", "ERROR")], [Clause("user", "=", "b")]]
    assert [g.title.text() for g in builder.groups] == ["Group 1: all of", "Group 2: all of"]
    assert builder.text.text() == text
    assert builder.cost.text() == "4 server queries, merged"  # users: tags or metadata


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(group_lists)
def test_builder_groups_to_string_and_back_round_trip(qtbot, gs):
    builder = _builder(qtbot)
    builder.set_groups(gs)
    text = builder.text.text()
    assert text == filter_groups.build(gs)
    builder.set_groups([])
    builder.text.setText(text)
    builder.apply_text()  # may refuse a costly filter, never change its text
    assert builder.text.text() == text
    assert builder.group_clauses() == filter_groups.parse(text)


def test_a_filter_costing_too_many_queries_is_refused_clearly(qtbot):
    builder = _builder(qtbot)
    applied = []
    builder.applied.connect(applied.append)
    values = ", ".join(f"'u{i}'" for i in range(13))
    builder.text.setText(f"{USER_TAG} IN ({values})")
    builder.apply_text()
    assert not applied
    assert "26 server queries" in builder.error.text()
    assert "too many" in builder.cost.text()


def test_removing_a_group_keeps_the_others(qtbot):
    builder = _builder(qtbot)
    builder.set_groups([[filters.status("OK")], [filters.status("ERROR")]])
    builder.groups[0].remove_requested.emit(builder.groups[0])
    assert builder.text.text() == "status = 'ERROR'"
    assert len(builder.groups) == 1 and builder.groups[0].remove_button.isHidden()


def test_enter_in_a_value_box_applies_the_filter(qtbot):
    builder = _builder(qtbot)
    builder.show()
    row = builder.add_row(Clause("user", "=", ""))
    edit = row.value_box.lineEdit()
    qtbot.keyClicks(edit, "user-x")
    with qtbot.waitSignal(builder.applied, timeout=5000) as applied:
        qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert applied.args == [[[Clause("user", "=", "user-x")]]]


def test_enter_in_the_field_box_applies_too(qtbot):
    builder = _builder(qtbot)
    builder.show()
    row = builder.add_row(filters.status("ERROR"))
    with qtbot.waitSignal(builder.applied, timeout=5000) as applied:
        qtbot.keyClick(row.field_box, Qt.Key.Key_Return)
    assert applied.args == [[[filters.status("ERROR")]]]


def test_two_letters_in_the_user_box_offer_the_matching_seeded_users(qtbot, browser, client,
                                                                    sdk, prod_infos):
    key = "mlflow.trace.user"
    users = {i.tags.get(key) or i.trace_metadata.get(key) for i in prod_infos} - {None}
    # Two letters some seeded users have and others lack.
    typed = next(u[k:k + 2] for u in sorted(users) for k in range(len(u) - 1)
                 if 0 < sum(u[k:k + 2].casefold() in v.casefold() for v in users) < len(users)
                 and u[k:k + 2].isalpha())
    expected = {u for u in users if typed.casefold() in u.casefold()}
    set_source(browser, client, "ws", client.get_experiment_by_name(PROD_EXPERIMENT))
    builder = browser.builder
    row = builder.add_row(Clause("user", "=", ""))
    edit = row.value_box.lineEdit()
    edit.setFocus()  # starts the background sample
    qtbot.waitUntil(lambda: builder.counts is not None and builder.counts.traces
                    >= len(prod_infos), timeout=WAIT_MS)
    qtbot.keyClicks(edit, typed)
    completer = row.suggestions.value_completer
    qtbot.waitUntil(lambda: completer.popup().isVisible(), timeout=5000)
    model = completer.completionModel()
    offered = {model.index(i, 0).data() for i in range(model.rowCount())}
    assert offered == expected
    assert row.value_box.count() > 0  # the dropdown arrow opens the most frequent users
