"""The Overview tab on the seeded experiment: one series per environment, a click on a bucket
opens the trace table showing exactly the SDK's traces of that bucket and group, and the compare
table has one row per app_version."""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt

from tests.conftest import PROD_EXPERIMENT
from tests.ui.test_main_window import WAIT_MS, connected_window, shown_ids
from traceviewer.core.filters import Clause
from traceviewer.core.workspaces import Workspace
from traceviewer.ui.overview.overview_view import ALL_TIME


def sdk_infos(sdk, prod):
    return [t.info for t in sdk.search_traces(locations=[prod], max_results=500,
                                              include_spans=False)]


def overview_of(qtbot, mlflow_server, group_by: str, groups=None):
    """The main window's Overview over all time, split by `group_by`, with the filter `groups`
    (AND groups joined by OR), once its final numbers are drawn."""
    w = connected_window(qtbot, Workspace("local", mlflow_server.url), PROD_EXPERIMENT)
    w.show()
    qtbot.waitExposed(w)
    w.tabs.setCurrentWidget(w.overview)
    view = w.overview
    view.set_range(ALL_TIME)
    view.set_group_by(group_by)
    if groups is not None:
        w.app_model.set_groups(groups)
    qtbot.waitUntil(lambda: view.result is not None and view.result.complete
                    and not view.loading and view.result.query.group_by.text == group_by
                    and view.result.query.groups == (groups or [])
                    and not view.charts.drawing, timeout=WAIT_MS)
    assert not view.banner.isVisibleTo(w), view.banner.label.text()
    return w, view


def test_overview_draws_one_series_per_environment_and_a_bucket_click_opens_its_traces(
        qtbot, mlflow_server, sdk, prod):
    infos = sdk_infos(sdk, prod)
    w, view = overview_of(qtbot, mlflow_server, "tag:environment")
    environments = {i.tags.get("environment") for i in infos}
    for chart in range(len(view.charts.plots)):
        if chart == 3:
            continue  # the pass-rate chart draws only groups with feedback
        assert sorted(view.charts.series_groups(chart)) == sorted(environments)
    assert view.charts.legend.count() == len(environments)
    for chart, plot in enumerate(view.charts.plots):  # ranges set in steps still show it all
        (x0, x1), (y0, y1) = plot.getPlotItem().getViewBox().viewRange()
        for group in view.charts.series_groups(chart):
            for spot in view.charts.scatters[(chart, group)].points():
                assert x0 < spot.pos().x() < x1 and y0 <= spot.pos().y() <= y1, (chart, group)

    # The production bucket with the most traces, clicked with the mouse.
    size = view.result.window.bucket_ms
    cell = max((c for c in view.result.cells if c.group == "production"),
               key=lambda c: c.traces)
    spot = view.charts.point_of("production", cell.bucket_start)
    plot = view.charts.plots[0]
    scene = spot._plot.mapToScene(QPointF(spot.pos()))
    pos = plot.mapFromScene(scene)
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: w.tabs.currentWidget() is w.browser, timeout=WAIT_MS)
    expected = {i.trace_id for i in infos if i.tags.get("environment") == "production"
                and cell.bucket_start <= i.request_time < cell.bucket_start + size}
    assert len(expected) == cell.traces
    assert set(shown_ids(qtbot, w)) == expected


def test_compare_table_has_one_row_per_app_version(qtbot, mlflow_server, sdk, prod):
    infos = sdk_infos(sdk, prod)
    _w, view = overview_of(qtbot, mlflow_server, "tag:app_version")
    model = view.compare.compare
    versions = sorted({i.tags.get("app_version") for i in infos})
    assert sorted(model.text(r, 0) for r in range(model.rowCount())) == versions
    counts = {v: sum(i.tags.get("app_version") == v for i in infos) for v in versions}
    assert {model.text(r, 0): model.rows[r].traces for r in range(model.rowCount())} == counts
    header = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    assert header[:6] == ["Group", "Traces", "Error %", "p50", "p95", "Tokens/trace"]
    assert "response_is_correct pass" in header


def test_overview_of_an_or_filter_counts_the_sdks_union_and_a_legend_click_keeps_every_branch(
        qtbot, mlflow_server, sdk, prod):
    infos = sdk_infos(sdk, prod)
    regions = sorted({i.tags.get("region") for i in infos} - {None})
    branches = [[Clause("status", "=", "ERROR")], [Clause("tags.region", "=", regions[0])]]
    # Each branch from the SDK, the union by trace id.
    found = [{t.info.trace_id: t.info for t in sdk.search_traces(
        locations=[prod], max_results=500, filter_string=text, include_spans=False)}
        for text in ("status = 'ERROR'", f"tags.region = '{regions[0]}'")]
    union = found[0] | found[1]
    assert len(union) > max(len(f) for f in found)  # a real union: more than either branch
    w, view = overview_of(qtbot, mlflow_server, "tag:environment", branches)
    want: dict = {}
    for info in union.values():
        env = info.tags.get("environment")
        want[env] = want.get(env, 0) + 1
    assert {c.group: c.traces for c in view.result.totals} == want

    legend = view.charts.legend
    item = next(legend.item(r) for r in range(legend.count())
                if legend.item(r).text() == "production")
    qtbot.mouseClick(legend.viewport(), Qt.MouseButton.LeftButton,
                     pos=legend.visualItemRect(item).center())
    qtbot.waitUntil(lambda: w.tabs.currentWidget() is w.browser, timeout=WAIT_MS)
    expected = {t for t, i in union.items() if i.tags.get("environment") == "production"}
    assert set(shown_ids(qtbot, w)) == expected


def test_overview_of_a_filter_matching_nothing_says_so(qtbot, mlflow_server, sdk, prod):
    text = "tags.environment = 'no-such-environment'"
    assert not sdk.search_traces(locations=[prod], filter_string=text, max_results=1)
    _w, view = overview_of(qtbot, mlflow_server, "tag:environment",
                           [[Clause("tags.environment", "=", "no-such-environment")]])
    assert view.state_label.text() == "No traces in this experiment matching the filter."
    assert view.compare.compare.rowCount() == 0
    assert view.charts.legend.count() == 0
