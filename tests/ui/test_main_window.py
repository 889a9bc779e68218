"""The main window on the real test server: GUI flags, first run, workspace switching."""

from __future__ import annotations

import subprocess
import sys

from PySide6.QtGui import QAction, QImage, QKeySequence

from tests.conftest import BIG_EXPERIMENT, PROD_EXPERIMENT, experiment_id
from tests.ui.test_browser_tools import answer_next_input_dialog
from traceviewer.core import filters
from traceviewer.core.model import USER_KEY
from traceviewer.core.workspaces import Workspace, WorkspaceStore
from traceviewer.ui.main_window import MainWindow

WAIT_MS = 60_000


def window(qtbot) -> MainWindow:
    w = MainWindow()
    qtbot.addWidget(w)
    return w


def shown_ids(qtbot, w: MainWindow) -> list[str]:
    model = w.browser.model
    qtbot.waitUntil(lambda: w.browser.experiment is not None and model.complete
                    and not model.loading, timeout=WAIT_MS)
    assert not w.browser.banner.isVisibleTo(w), w.browser.banner.label.text()
    return [t.trace_id for t in model.rows]


def test_experiment_and_filter_flags_open_the_filtered_table(qtbot, mlflow_server, sdk):
    WorkspaceStore().upsert(Workspace("local", mlflow_server.url))
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    user = sdk.search_traces(locations=[exp_id], max_results=1)[0].info.tags[USER_KEY]
    w = window(qtbot)
    w.open_experiment(PROD_EXPERIMENT)
    w.set_filter(filters.build([filters.user(user)]))
    w.load_workspaces(select="local")
    expected = [t.info.trace_id for t in sdk.search_traces(
        locations=[exp_id], filter_string=f"tags.`{USER_KEY}` = '{user}'", max_results=500)]
    assert shown_ids(qtbot, w) == expected
    assert w.browser.builder.rows[0].clause() == filters.user(user)


def test_no_workspace_shows_the_first_run_screen(qtbot):
    w = window(qtbot)
    w.load_workspaces()
    assert w.pages.currentWidget() is w.first_run


def test_a_damaged_workspace_file_is_named_on_the_first_run_screen(qtbot):
    path = WorkspaceStore().path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"{not json")
    w = window(qtbot)
    w.show()
    w.load_workspaces()
    assert w.pages.currentWidget() is w.first_run
    assert w.banner.isVisible()
    assert str(path) in w.banner.label.text()
    assert not path.exists() and list(path.parent.glob(path.name + ".corrupt-*"))


def test_switching_workspaces_keeps_each_ones_experiment_and_filter(qtbot, mlflow_server, sdk):
    store = WorkspaceStore()
    store.upsert(Workspace("first", mlflow_server.url))
    store.upsert(Workspace("second", mlflow_server.url))
    w = window(qtbot)
    w.open_experiment(PROD_EXPERIMENT)
    w.load_workspaces(select="first")
    shown_ids(qtbot, w)
    w.browser.set_filter_text("status = 'ERROR'")
    shown_ids(qtbot, w)

    w.workspace_box.setCurrentText("second")
    qtbot.waitUntil(lambda: w.app_model.client is not None and bool(w.experiments.model.rows),
                    timeout=WAIT_MS)
    assert w.app_model.experiment is None  # nothing remembered for this workspace yet
    w.open_experiment(BIG_EXPERIMENT)
    assert w.app_model.experiment is not None and w.app_model.experiment.name == BIG_EXPERIMENT
    assert w.browser.builder.text.text() == ""
    shown_ids(qtbot, w)

    w.workspace_box.setCurrentText("first")
    qtbot.waitUntil(lambda: w.app_model.experiment is not None
                    and w.app_model.experiment.name == PROD_EXPERIMENT, timeout=WAIT_MS)
    assert w.browser.builder.text.text() == "status = 'ERROR'"
    prod = experiment_id(sdk, PROD_EXPERIMENT)
    expected = [t.info.trace_id for t in sdk.search_traces(
        locations=[prod], filter_string="status = 'ERROR'", max_results=500,
        include_spans=False)]
    assert expected
    assert shown_ids(qtbot, w) == expected


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "traceviewer", *args], capture_output=True,
                          text=True, timeout=300)


def test_screenshot_flag_saves_the_filtered_table_and_exits_0(mlflow_server, tmp_path):
    WorkspaceStore().upsert(Workspace("local", mlflow_server.url))
    out = tmp_path / "shot.png"
    result = run_cli("--workspace", "local", "--experiment", PROD_EXPERIMENT,
                     "--filter", "status = 'ERROR'", "--screenshot", str(out))
    assert result.returncode == 0, result.stderr
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1280, 800)


def test_trace_flag_downloads_the_trace_once_and_the_next_run_shows_it_from_the_cache(
        fault_proxy, sdk, prod, tmp_path):
    (wanted,) = sdk.search_traces(locations=[prod], max_results=1, include_spans=False)
    WorkspaceStore().upsert(Workspace("local", fault_proxy.url))
    for _run in range(2):
        result = run_cli("--workspace", "local", "--trace", wanted.info.trace_id,
                         "--screenshot", str(tmp_path / "shot.png"))
        assert result.returncode == 0, result.stderr
        # Started before the window, taken over by the Trace tab: one download in all.
        assert fault_proxy.forwarded_count("/traces/get") == 1


def test_malformed_filter_flag_says_where_and_exits_2(mlflow_server):
    WorkspaceStore().upsert(Workspace("local", mlflow_server.url))
    result = run_cli("--workspace", "local", "--filter", "status = 'OK' AND name =",
                     "--screenshot", "unused.png")
    assert result.returncode == 2
    assert "at character" in result.stderr


def connected_window(qtbot, workspace: Workspace, experiment: str | None = None) -> MainWindow:
    WorkspaceStore().upsert(workspace)
    w = window(qtbot)
    if experiment is not None:
        w.open_experiment(experiment)
    w.load_workspaces(select=workspace.name)
    qtbot.waitUntil(lambda: w.app_model.client is not None and (
        experiment is None or (w.app_model.experiment is not None
                               and w.app_model.experiment.name == experiment)),
                    timeout=WAIT_MS)
    return w


def test_ctrl_g_finds_a_client_request_id_recorded_in_another_experiment(qtbot, mlflow_server,
                                                                          sdk):
    prod = experiment_id(sdk, PROD_EXPERIMENT)
    (wanted,) = sdk.search_traces(locations=[prod], max_results=1, include_spans=False)
    assert wanted.info.client_request_id and not wanted.info.client_request_id.startswith("tr-")
    w = connected_window(qtbot, Workspace("local", mlflow_server.url), BIG_EXPERIMENT)
    with qtbot.waitSignal(w.trace_view.trace_shown, timeout=WAIT_MS) as shown:
        w.open_by_id(wanted.info.client_request_id)
    assert shown.args[0].info.trace_id == wanted.info.trace_id
    assert w.tabs.currentWidget() is w.trace_view


def test_ctrl_g_miss_says_it_searched_every_experiment_of_the_workspace(qtbot, mlflow_server,
                                                                          sdk):
    w = connected_window(qtbot, Workspace("local", mlflow_server.url), BIG_EXPERIMENT)
    w.open_by_id("no-app-ever-sent-this-id")
    qtbot.waitUntil(lambda: not w.banner.isHidden(), timeout=WAIT_MS)
    count = len(sdk.search_experiments(max_results=1000))
    text = w.banner.label.text()
    assert "no-app-ever-sent-this-id" in text
    assert f"all {count} experiments of this workspace" in text, text


def test_a_failed_lookup_banner_goes_away_when_the_next_lookup_succeeds(qtbot, mlflow_server,
                                                                       sdk):
    prod = experiment_id(sdk, PROD_EXPERIMENT)
    (wanted,) = sdk.search_traces(locations=[prod], max_results=1, include_spans=False)
    w = connected_window(qtbot, Workspace("local", mlflow_server.url), PROD_EXPERIMENT)
    w.open_by_id("no-app-ever-sent-this-id")
    qtbot.waitUntil(lambda: not w.banner.isHidden(), timeout=WAIT_MS)
    with qtbot.waitSignal(w.trace_view.trace_shown, timeout=WAIT_MS):
        w.open_by_id(wanted.info.client_request_id)
    assert w.banner.isHidden()


def test_another_actions_banner_stays_when_a_lookup_succeeds(qtbot, mlflow_server, sdk):
    prod = experiment_id(sdk, PROD_EXPERIMENT)
    (wanted,) = sdk.search_traces(locations=[prod], max_results=1, include_spans=False)
    w = connected_window(qtbot, Workspace("local", mlflow_server.url), PROD_EXPERIMENT)
    w.banner.show_error("The demo server stopped", source="demo")
    with qtbot.waitSignal(w.trace_view.trace_shown, timeout=WAIT_MS):
        w.open_by_id(wanted.info.client_request_id)
    assert not w.banner.isHidden()


def test_status_bar_says_tls_is_not_verified_while_connected_to_such_a_workspace(
        qtbot, mlflow_server):
    WorkspaceStore().upsert(Workspace("checked", mlflow_server.url))
    w = connected_window(qtbot, Workspace("unchecked", mlflow_server.url, verify_tls=False))
    w.show()
    assert w.tls_warning.isVisible()
    assert "NOT VERIFIED" in w.tls_warning.text()
    assert "unchecked" in w.tls_warning.toolTip()
    w.workspace_box.setCurrentText("checked")
    qtbot.waitUntil(lambda: w.app_model.client is not None
                    and w.app_model.workspace.name == "checked", timeout=WAIT_MS)
    assert not w.tls_warning.isVisible()



def test_pyqtgraph_is_left_for_the_overview_tab_the_trace_tab_does_without():
    code = ("import sys, traceviewer.ui.main_window\n"
            "print('pyqtgraph' in sys.modules)\n"
            "import traceviewer.ui.trace.trace_view, traceviewer.ui.trace.compare_view\n"
            "print('pyqtgraph' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_the_gui_flags_and_the_main_window_import_no_keyring_lock_browser_or_command():
    # Each is loaded where first needed (a command, a file written, a keyring read, a sign-in).
    code = ("import sys, traceviewer.ui.main_window\n"
            "from traceviewer.cli import parse_args\n"
            "args = parse_args(['--workspace', 'w', '--view', 'overview', '--screenshot', 'x'])\n"
            "assert (args.command, args.workspace, args.view) == (None, 'w', 'overview')\n"
            "lazy = ('keyring', 'filelock', 'webbrowser')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in lazy\n"
            "             or m.startswith('traceviewer.cli.') or m == 'traceviewer.core.stats'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def tab_index(w: MainWindow, title: str) -> int:
    return next(i for i in range(w.tabs.count()) if w.tabs.tabText(i) == title)


def test_the_trace_review_and_overview_tabs_are_built_when_first_shown_and_then_work(
        qtbot, mlflow_server, sdk, prod):
    from traceviewer.ui.overview.overview_view import OverviewView
    from traceviewer.ui.review.review_panel import ReviewPanel
    from traceviewer.ui.trace.trace_view import TraceView

    (wanted,) = sdk.search_traces(locations=[prod], max_results=1, include_spans=False)
    w = connected_window(qtbot, Workspace("local", mlflow_server.url), PROD_EXPERIMENT)
    w.show()
    trace_tab = tab_index(w, "Trace")
    assert not isinstance(w.tabs.widget(trace_tab), TraceView)
    w.tabs.setCurrentIndex(trace_tab)  # as a click on the tab does
    assert isinstance(w.tabs.currentWidget(), TraceView)
    assert w.tabs.currentIndex() == trace_tab and w.tabs.tabToolTip(trace_tab) == \
        f"Ctrl+{trace_tab + 1}"
    with qtbot.waitSignal(w.trace_view.trace_shown, timeout=WAIT_MS) as shown:
        w.open_trace(wanted.info.trace_id)
    assert w.tabs.currentWidget() is w.trace_view
    assert sorted(s.span_id for s in shown.args[0].spans) == sorted(
        s.span_id for s in sdk.get_trace(wanted.info.trace_id).data.spans)

    review_tab = tab_index(w, "Review")
    assert not isinstance(w.tabs.widget(review_tab), ReviewPanel)
    w.tabs.setCurrentIndex(review_tab)
    assert isinstance(w.tabs.currentWidget(), ReviewPanel) and w.tabs.currentWidget() is w.review
    assert not w.review.submit_button.isEnabled()  # no queue yet: nothing to submit

    overview_tab = tab_index(w, "Overview")
    assert not isinstance(w.tabs.widget(overview_tab), OverviewView)
    w.tabs.setCurrentIndex(overview_tab)
    view = w.tabs.currentWidget()
    assert isinstance(view, OverviewView) and view is w.overview
    qtbot.waitUntil(lambda: view.result is not None and view.result.complete
                    and not view.loading, timeout=WAIT_MS)
    assert view.result.query.experiment_id == prod


def ctrl_g(w: MainWindow):
    """The window's Ctrl+G action (File > Open trace by ID or client request ID…)."""
    (action,) = [a for a in w.findChildren(QAction) if a.shortcut() == QKeySequence("Ctrl+G")]
    return action


def test_ctrl_g_asks_for_an_id_and_opens_the_trace_of_that_client_request_id(qtbot,
                                                                          mlflow_server, sdk):
    prod = experiment_id(sdk, PROD_EXPERIMENT)
    (wanted,) = sdk.search_traces(locations=[prod], max_results=1, include_spans=False)
    w = connected_window(qtbot, Workspace("local", mlflow_server.url), BIG_EXPERIMENT)
    answer_next_input_dialog(f"  {wanted.info.client_request_id} ")  # pasted with spaces
    with qtbot.waitSignal(w.trace_view.trace_shown, timeout=WAIT_MS) as shown:
        ctrl_g(w).trigger()
    assert shown.args[0].info.trace_id == wanted.info.trace_id
    assert w.tabs.currentWidget() is w.trace_view and w.banner.isHidden()


def test_ctrl_g_with_an_unknown_id_says_so_in_the_banner(qtbot, mlflow_server, sdk):
    w = connected_window(qtbot, Workspace("local", mlflow_server.url), PROD_EXPERIMENT)
    answer_next_input_dialog("req-nobody-sent")
    ctrl_g(w).trigger()
    qtbot.waitUntil(lambda: not w.banner.isHidden(), timeout=WAIT_MS)
    experiments = sdk.search_experiments(max_results=1000)
    text = w.banner.label.text()
    assert text.startswith("No trace with client request ID 'req-nobody-sent' in all "
                           f"{len(experiments)} experiments of this workspace")
    named = text[text.index("(") + 1:text.rindex(")")].split(" and ")[0].split(", ")
    assert set(named) <= {e.name for e in experiments} and len(named) == min(5, len(experiments))
    assert w.tabs.currentWidget() is not w.trace_view


def assessment_names(w: MainWindow) -> list[str]:
    tree = w.assessments.tree
    return sorted(tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount()))


def test_while_another_trace_loads_the_assessments_pane_offers_nothing_of_the_last_one(
        qtbot, sdk, fault_proxy):
    prod = experiment_id(sdk, PROD_EXPERIMENT)
    judged = [t.info for t in sdk.search_traces(locations=[prod], max_results=500,
                                                include_spans=False) if t.info.assessments]
    first, other = judged[0], judged[1]
    w = connected_window(qtbot, Workspace("local", fault_proxy.url))
    panel, view = w.assessments, w.trace_view
    with qtbot.waitSignal(view.trace_shown, timeout=WAIT_MS):
        w.open_trace(first.trace_id)
    qtbot.waitUntil(lambda: assessment_names(w) == sorted(a.name for a in first.assessments),
                    timeout=WAIT_MS)
    assert panel.add_button.isEnabled()

    fault_proxy.inject("delay", seconds=8.0, match="/traces/get")  # the spans, not the info
    with qtbot.waitSignal(view.trace_shown, timeout=WAIT_MS):
        w.open_trace(other.trace_id)
        assert assessment_names(w) == [] and not panel.add_button.isEnabled()
        qtbot.waitUntil(lambda: view.header.state.isVisibleTo(w), timeout=WAIT_MS)  # its info
        assert view.trace is None  # its spans are still held back
        assert assessment_names(w) == [] and not panel.add_button.isEnabled()
    qtbot.waitUntil(lambda: assessment_names(w) == sorted(a.name for a in other.assessments),
                    timeout=WAIT_MS)
    assert panel.info.trace_id == other.trace_id and panel.add_button.isEnabled()


def test_f5_on_the_compare_tab_runs_its_comparison_again(qtbot, mlflow_server, sdk):
    prod = experiment_id(sdk, PROD_EXPERIMENT)
    a, b = (t.info.trace_id for t in sdk.search_traces(locations=[prod], max_results=2,
                                                        include_spans=False))
    w = connected_window(qtbot, Workspace("local", mlflow_server.url))
    with qtbot.waitSignal(w.compare_view.compared_shown, timeout=WAIT_MS):
        w.compare(a, b)
    assert w.tabs.currentWidget() is w.compare_view
    with qtbot.waitSignal(w.compare_view.compared_shown, timeout=WAIT_MS) as again:
        w.refresh_action.trigger()
    diff = again.args[0].diff
    assert {diff.a.info.trace_id, diff.b.info.trace_id} == {a, b}
