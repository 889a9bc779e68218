"""The main window: workspace selector, experiments, and the views of the open experiment."""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from PySide6.QtCore import QProcess, QSettings, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QProgressBar,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from traceviewer.core import filters, paths, search
from traceviewer.core.app_model import AppModel
from traceviewer.core.cache import TraceCache
from traceviewer.core.client import RestClient
from traceviewer.core.databricks_auth import current_user
from traceviewer.core.errors import ConfigError
from traceviewer.core.model import Experiment, TraceInfo
from traceviewer.core.workspaces import Workspace, WorkspaceMemory, WorkspaceStore, open_client
from traceviewer.ui.about import AboutDialog
from traceviewer.ui.browse.browser import TraceBrowser
from traceviewer.ui.browse.experiments import ExperimentsPanel
from traceviewer.ui.browse.export_dialog import ExportDialog
from traceviewer.ui.common import palette
from traceviewer.ui.common.banner import ErrorBanner
from traceviewer.ui.common.tasks import TaskRunner, activity
from traceviewer.ui.review.assessments import AssessmentsPanel
from traceviewer.ui.review.outbox_status import OutboxSender, OutboxStatus
from traceviewer.ui.summaries.sessions import SessionsView
from traceviewer.ui.summaries.users import UsersView
from traceviewer.ui.workspaces.first_run import FirstRunScreen
from traceviewer.ui.workspaces.workspace_manager import WorkspaceManager

if TYPE_CHECKING:  # built when first needed (the Trace and Overview tabs import pyqtgraph)
    from traceviewer.ui.overview.overview_view import OverviewView
    from traceviewer.ui.review.review_panel import ReviewPanel
    from traceviewer.ui.trace.compare_view import CompareView
    from traceviewer.ui.trace.trace_view import TraceView

TRACE_FILES = "Trace JSON (*.json);;All files (*)"

log = logging.getLogger(__name__)


def searched(experiments: list[Experiment], shown: int = 5) -> str:
    """'the 3 experiments of this workspace (a, b, c)', naming at most `shown` of them."""
    if not experiments:
        return "this workspace (it has no experiments)"
    names = ", ".join(e.name for e in experiments[:shown])
    if len(experiments) > shown:
        names += f" and {len(experiments) - shown} more"
    count = "the experiment" if len(experiments) == 1 else f"all {len(experiments)} experiments"
    return f"{count} of this workspace ({names})"


def settings() -> QSettings:
    """Window layout and other UI preferences, kept beside the config (no secrets here)."""
    return QSettings(str(paths.config_dir() / "ui.ini"), QSettings.Format.IniFormat)


class DeferredPage(QWidget):
    """Holds a tab's place until its page is first needed; the main window then builds the
    page and puts it in the tab instead."""

    def __init__(self, build: Callable[[], QWidget]):
        super().__init__()
        self.build = build
        self.page: QWidget | None = None


class MainWindow(QMainWindow):
    def __init__(self, store: WorkspaceStore | None = None):
        super().__init__()
        self.setWindowTitle("Trace Viewer")
        self.app_model = AppModel(store or WorkspaceStore(), WorkspaceMemory())
        self.store, self.memory = self.app_model.store, self.app_model.memory
        self._pending_experiment: str | None = None
        self._pending_filter: str | None = None
        self._pending_trace: str | None = None
        self._connect = TaskRunner(self)
        self._lookup = TaskRunner(self)

        self.workspace_box = QComboBox()
        self.workspace_box.setMinimumWidth(180)
        self.workspace_box.setToolTip("Workspace (Ctrl+W to focus)")
        self.workspace_box.currentTextChanged.connect(self._switch_workspace)
        toolbar = QToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        toolbar.addWidget(QLabel(" Workspace: "))
        toolbar.addWidget(self.workspace_box)
        self.refresh_action = QAction("Refresh", self)
        self.refresh_action.setShortcut(QKeySequence.StandardKey.Refresh)
        self.refresh_action.setToolTip("Reload the current view (F5)")
        self.refresh_action.triggered.connect(self.refresh)
        toolbar.addAction(self.refresh_action)
        self.addToolBar(toolbar)

        self.banner = ErrorBanner()
        self.experiments = ExperimentsPanel()
        self.experiments.experiment_selected.connect(self._on_experiment_selected)
        self.experiments.failed.connect(
            lambda exc: self.banner.show_error(exc, retry=self.experiments.model.retry,
                                               source="experiments"))
        self.experiments.model.page_loaded.connect(self._select_pending_experiment)
        self.experiments.model.page_loaded.connect(
            lambda _n: self.banner.succeeded("experiments"))
        self.browser = TraceBrowser(self.app_model)
        self.browser.trace_activated.connect(lambda info: self.open_trace(info.trace_id))
        self.app_model.source_changed.connect(self._query_changed)
        self.app_model.query_changed.connect(self._query_changed)
        self.browser.export_requested.connect(self.export_traces)
        self.sessions = SessionsView()
        self.sessions.open_trace.connect(self.open_trace)
        self.users = UsersView()
        self.users.show_filtered.connect(self._show_filtered)
        self._stale_views: set[SessionsView | UsersView] = {self.sessions, self.users}
        self.outbox_sender = OutboxSender(parent=self)
        self.browser.review_requested.connect(self.start_review)
        self.assessments = AssessmentsPanel(self.outbox_sender, self.app_model)
        self.assessments.info_changed.connect(self.browser.model.replace_row)
        self.trace_cache = TraceCache()
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.browser, "Traces")
        self.tabs.addTab(self.sessions, "Sessions")
        self.tabs.addTab(self.users, "Users")
        self._trace_page = DeferredPage(self._build_trace_view)
        self.tabs.addTab(self._trace_page, "Trace")
        self._review_page = DeferredPage(self._build_review)
        self.tabs.addTab(self._review_page, "Review")
        self.browser.compare_requested.connect(self.compare)
        self._overview_page = DeferredPage(self._build_overview)
        self.tabs.addTab(self._overview_page, "Overview")
        self._compare_page = DeferredPage(self._build_compare_view)
        self.tabs.addTab(self._compare_page, "Compare")  # after Overview: its Ctrl+6 stays
        self.tabs.currentChanged.connect(self._tab_changed)
        for i in range(self.tabs.count()):
            self.tabs.setTabToolTip(i, f"Ctrl+{i + 1}")
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.addWidget(self.experiments)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([280, 1000])

        browse = QWidget()
        layout = QVBoxLayout(browse)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter, 1)
        self.first_run = FirstRunScreen(self.store)
        self.first_run.workspaces_changed.connect(lambda name: self.load_workspaces(select=name))
        self.first_run.demo_requested.connect(self.start_demo)
        self._demo: QProcess | None = None
        self.pages = QStackedWidget()
        self.pages.addWidget(browse)
        self.pages.addWidget(self.first_run)
        central = QWidget()  # the banner stays visible on the first-run page too
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addWidget(self.banner)
        layout.addWidget(self.pages, 1)
        self.setCentralWidget(central)

        self.connection_label = QLabel("Not connected")
        self.connection_label.setTextFormat(Qt.TextFormat.PlainText)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.setToolTip("Loading…")
        self.busy.hide()
        activity.busy_changed.connect(self.busy.setVisible)
        # A bound method, so the connection ends with the window.
        activity.unhandled_failure.connect(self._show_unhandled)
        self.statusBar().addPermanentWidget(OutboxStatus(self.outbox_sender))
        self.statusBar().addPermanentWidget(self.busy)
        self.tls_warning = QLabel("TLS NOT VERIFIED")
        self.tls_warning.setObjectName("tlsWarning")
        palette.set_style(self.tls_warning, "#tlsWarning { color: $ERROR_TEXT; background: "
                                            "$ERROR_BG; border: 1px solid $ERROR_BORDER; "
                                            "border-radius: 3px; padding: 0 4px; "
                                            "font-weight: bold; }")
        self.tls_warning.hide()
        self.statusBar().addPermanentWidget(self.tls_warning)
        self.statusBar().addPermanentWidget(self.connection_label)

        focus_experiments = QAction(self, shortcut=QKeySequence("Ctrl+K"))
        focus_experiments.triggered.connect(self.experiments.search.setFocus)
        focus_workspace = QAction(self, shortcut=QKeySequence("Ctrl+W"))
        focus_workspace.triggered.connect(self.workspace_box.showPopup)
        self.addActions([focus_experiments, focus_workspace])
        self.outbox_sender.kick()  # labels left from an earlier run go out now
        for i in range(9):
            tab = QAction(self, shortcut=QKeySequence(f"Ctrl+{i + 1}"))
            tab.triggered.connect(lambda _c=False, i=i: self.tabs.setCurrentIndex(i))
            self.addAction(tab)
        self._build_menus()
        self.resize(1280, 800)
        self._restore_layout()

    # Pages built when first needed
    @property
    def trace_view(self) -> TraceView:
        """The Trace tab's view (built now if it was not yet)."""
        return cast("TraceView", self._built(self._trace_page))

    @property
    def overview(self) -> OverviewView:
        """The Overview tab's view (built now if it was not yet)."""
        return cast("OverviewView", self._built(self._overview_page))

    @property
    def review(self) -> ReviewPanel:
        """The Review tab's panel (built now if it was not yet)."""
        return cast("ReviewPanel", self._built(self._review_page))

    @property
    def compare_view(self) -> CompareView:
        """The Compare tab's view (built now if it was not yet)."""
        return cast("CompareView", self._built(self._compare_page))

    def _build_trace_view(self) -> QWidget:
        from traceviewer.ui.trace.trace_view import TraceView

        view = TraceView(cache=self.trace_cache, assessments=self.assessments)
        view.trace_shown.connect(self._show_assessments)
        # Assessments are always fresh: a re-read trace info reaches the editor, and what the
        # editors show (with the outbox's writes) reaches that trace's row of the table.
        view.info_read.connect(self.assessments.show_read)
        # While another trace loads, or when none came, there is nothing to label.
        view.trace_cleared.connect(self._clear_assessments)
        # A trace that opens is the lookup's next success (whichever way it was opened).
        view.trace_shown.connect(lambda _t: self.banner.succeeded("lookup"))
        view.status_message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        view.compare_requested.connect(self._compare_with_dialog)
        return view

    def _build_review(self) -> QWidget:
        from traceviewer.ui.review.review_panel import ReviewPanel

        panel = ReviewPanel(self.outbox_sender, app_model=self.app_model)
        panel.earlier.info_changed.connect(self.browser.model.replace_row)
        return panel

    def _build_compare_view(self) -> QWidget:
        from traceviewer.ui.trace.compare_view import CompareView

        view = CompareView(cache=self.trace_cache, app_model=self.app_model)
        view.status_message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        return view

    def _build_overview(self) -> QWidget:
        from traceviewer.ui.overview.overview_view import OverviewView

        view = OverviewView(self.app_model)
        view.open_table.connect(lambda: self.tabs.setCurrentWidget(self.browser))
        return view

    def _built(self, deferred: DeferredPage) -> QWidget:
        """The page `deferred` holds the place of: built and put in its tab on first use."""
        if deferred.page is None:
            deferred.page = page = deferred.build()
            index = self.tabs.indexOf(deferred)
            current = self.tabs.currentIndex() == index
            self.tabs.blockSignals(True)  # the same tab stays current: not a change
            self.tabs.insertTab(index, page, self.tabs.tabText(index))
            self.tabs.setTabToolTip(index, self.tabs.tabToolTip(index + 1))
            self.tabs.removeTab(index + 1)
            if current:
                self.tabs.setCurrentIndex(index)
            self.tabs.blockSignals(False)
            deferred.deleteLater()
        return deferred.page

    def _show_unhandled(self, exc: Exception) -> None:
        """A background failure no view handled."""
        self.banner.show_error(f"Something failed in the background: {exc}")

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        file.addAction("Open trace file…", QKeySequence.StandardKey.Open, self._open_file_dialog)
        file.addAction("Open trace by ID or client request ID…", QKeySequence("Ctrl+G"),
                       self._open_by_id_dialog)
        file.addAction("Export open trace as JSON…", QKeySequence("Ctrl+Shift+S"),
                       self._export_trace_dialog)
        file.addAction("Export traces…", QKeySequence("Ctrl+E"), self.export_traces)
        file.addSeparator()
        file.addAction("Quit", QKeySequence.StandardKey.Quit, self.close)
        view = bar.addMenu("&View")
        view.addAction(self.refresh_action)
        workspace = bar.addMenu("&Workspace")
        workspace.addAction("Manage workspaces…", QKeySequence("Ctrl+,"), self.manage_workspaces)
        about = bar.addMenu("&Help").addAction("About Trace Viewer",
                                               lambda: AboutDialog(self).exec())
        about.setMenuRole(QAction.MenuRole.AboutRole)

    # Workspaces and connection
    def load_workspaces(self, select: str | None = None) -> None:
        """Fill the workspace selector from the config and connect to `select` (or the last
        used, or the first)."""
        try:
            names = [ws.name for ws in self.store.list()]
        except ConfigError as exc:  # a damaged config: kept aside, the message says where
            self.banner.show_error(str(exc), source="config")
            names = []
        else:
            self.banner.succeeded("config")
        last = self.memory.current
        target = select if select in names else (last if last in names else None)
        if target is None and names:
            target = names[0]
        self.workspace_box.blockSignals(True)
        self.workspace_box.clear()
        self.workspace_box.addItems(names)
        if target is not None:
            self.workspace_box.setCurrentText(target)
        self.workspace_box.blockSignals(False)
        if target is None:
            self.first_run.refresh()
            self.pages.setCurrentWidget(self.first_run)
            self._connect_to(None)
        else:
            self.pages.setCurrentIndex(0)
            self._on_workspace_chosen(target)

    def manage_workspaces(self) -> None:
        workspace = self.app_model.workspace
        dialog = WorkspaceManager(self.store, self,
                                  select=workspace.name if workspace else None)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.workspaces_changed.connect(lambda name: self.load_workspaces(select=name or None))
        dialog.open()

    def start_demo(self) -> None:
        """Run `traceviewer demo --no-gui` as a child process (it registers the `demo`
        workspace) and open its workspace once it serves; it stops when the window closes."""
        if getattr(sys, "frozen", False) or importlib.util.find_spec("mlflow") is None:
            self.banner.show_error(
                "The demo needs MLflow, which installed packages leave out: from a checkout of "
                "Trace Viewer run scripts/demo, or pip install 'traceviewer[demo]' and run "
                "traceviewer demo.")
            return
        if self._demo is not None:
            return
        self._demo = process = QProcess(self)
        process.setProcessChannelMode(QProcess.ProcessChannelMode.ForwardedErrorChannel)

        def output() -> None:
            text = bytes(process.readAllStandardOutput().data()).decode(errors="replace")
            if "MLflow server:" in text:
                self.statusBar().showMessage("Demo server started.", 5000)
                self.load_workspaces(select="demo")

        def finished(code: int, _status) -> None:
            self._demo = None
            self.banner.show_error(f"The demo server stopped (exit code {code}); run "
                                   "traceviewer demo in a terminal to see why.")

        process.readyReadStandardOutput.connect(output)
        process.finished.connect(finished)
        self.statusBar().showMessage("Starting the demo server (seeding takes a few minutes "
                                     "the first time)…")
        process.start(sys.executable, ["-m", "traceviewer", "demo", "--no-gui"])

    def _switch_workspace(self, name: str) -> None:
        """The user picked another workspace: what was pending for the last one is dropped."""
        self._pending_experiment = self._pending_filter = self._pending_trace = None
        self._on_workspace_chosen(name)

    def _on_workspace_chosen(self, name: str) -> None:
        if name:
            self._connect_to(self.store.get(name))

    def _connect_to(self, workspace: Workspace | None) -> None:
        self._lookup.cancel()
        self.setWindowTitle("Trace Viewer")
        self.app_model.set_workspace(workspace)
        self.experiments.set_client(None)
        self.tls_warning.hide()
        if workspace is None:
            self.connection_label.setText("No workspace")
            return
        self.connection_label.setText(f"Connecting to {workspace.host}…")
        self.banner.hide()

        def connect(token):
            client = open_client(workspace)  # reads the keyring: not on the GUI thread
            try:
                if client.databricks:
                    # A workspace reports no MLflow version: who is signed in shows it answers.
                    user = current_user(client, token)
                    shown = f"Databricks · {user}" if user else "Databricks"
                else:
                    shown = f"MLflow {client.version()}"
                token.check()  # superseded by another connect: this client is nobody's
                return client, shown
            except BaseException:
                client.close()
                raise

        self._connect.start(connect, self._on_connected, self._on_connect_failed)

    def _on_connected(self, result: tuple[RestClient, str]) -> None:
        client, shown = result
        workspace = self.app_model.workspace
        assert workspace is not None
        self.connection_label.setText(f"{workspace.host} · {shown}")
        self.banner.succeeded("connect")
        self.tls_warning.setVisible(workspace.tls_unverified)
        self.tls_warning.setToolTip(
            f"TLS certificate verification is off for workspace '{workspace.name}': anyone on "
            "the network path can read or change what is sent, credentials included. Give it a "
            "CA bundle or turn verification back on (Workspace > Manage workspaces).")
        if self._pending_experiment is None:
            self._pending_experiment = (self.memory.get(workspace.name).last_experiment
                                        or workspace.default_experiment)
        self.app_model.set_client(client)
        self.experiments.set_client(client)
        if self._pending_trace:
            self.open_trace(self._pending_trace)

    def _on_connect_failed(self, exc: Exception) -> None:
        host = self.app_model.workspace.host if self.app_model.workspace else "the server"
        self.connection_label.setText(f"Not connected to {host}")
        self.banner.show_error(f"Cannot connect: {exc}", retry=lambda: self._connect_to(
            self.app_model.workspace), source="connect")

    # Experiments
    def open_experiment(self, name_or_id: str) -> None:
        """Select this experiment once it is listed (now or when the list has loaded)."""
        self._pending_experiment = name_or_id
        self._select_pending_experiment()

    def _select_pending_experiment(self, *_args) -> None:
        if self._pending_experiment and self.experiments.select(self._pending_experiment):
            self._pending_experiment = None

    def _on_experiment_selected(self, experiment: Experiment) -> None:
        self.setWindowTitle(f"{experiment.name} – Trace Viewer")
        text, self._pending_filter = self._pending_filter, None
        self.app_model.set_experiment(experiment, filter_text=text)

    def set_filter(self, text: str) -> None:
        """Open the trace table with this filter (applied once an experiment is shown);
        BadFilter, with the position, if it does not parse."""
        filters.parse(text)
        self._pending_filter = text

    def refresh(self) -> None:
        """F5: reload what the current tab shows."""
        current = self.tabs.currentWidget()
        if current is self._trace_page.page:
            self.trace_view.reload()
        elif current is self._compare_page.page:
            self.compare_view.retry()
        elif current is self._overview_page.page:
            self.overview.reload()
        elif current is self.browser:
            self.browser.reload()
        elif current in (self.sessions, self.users):
            self._stale_views.add(current)
            self._load_current_view()
        else:
            self.experiments.reload()

    # Views of the browser's query
    def _query_changed(self, _model: AppModel) -> None:
        self._stale_views = {self.sessions, self.users}
        self._load_current_view()

    def _tab_changed(self, _index: int) -> None:
        if isinstance(deferred := self.tabs.currentWidget(), DeferredPage):
            self._built(deferred)
        # A trace and the review queue want the width; the experiments list is for browsing.
        self.experiments.setVisible(self.tabs.currentWidget() in (
            self.browser, self.sessions, self.users))
        self._load_current_view()

    def _load_current_view(self) -> None:
        """Sessions and users load when their tab is shown, once per query."""
        current = self.tabs.currentWidget()
        view = next((v for v in self._stale_views if v is current), None)
        if view is None:
            return
        self._stale_views.discard(view)
        scope = self.app_model.scope
        if scope is None:
            view.clear()
        else:
            view.load(scope.client, scope.experiment_ids, scope.query.filter_strings())

    def _show_filtered(self, text: str) -> None:
        self.tabs.setCurrentWidget(self.browser)
        self.browser.set_filter_text(text)

    def export_traces(self) -> None:
        scope = self.app_model.scope
        if scope is None:
            self.statusBar().showMessage("Open an experiment first.", 5000)
            return
        runner = TaskRunner()
        dialog = ExportDialog(self, runner, scope.client, scope.experiment_ids,
                              scope.query.filter_strings(), scope.query.order_by)
        runner.setParent(dialog)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.exec()

    def start_review(self, trace_ids: list[str]) -> None:
        """Review these traces, or (none given) the traces of the browser's filter."""
        scope, workspace = self.app_model.scope, self.app_model.workspace
        if scope is None or workspace is None:
            self.statusBar().showMessage("Open an experiment first.", 5000)
            return
        title = scope.query.text or f"all traces of {scope.experiment.name}"
        self.tabs.setCurrentWidget(self.review)
        experiment_id = scope.experiment.experiment_id
        if trace_ids:
            self.review.start(scope.client, workspace, experiment_id, trace_ids,
                              title=f"{len(trace_ids)} selected traces")
        else:
            self.review.start_search(scope.client, workspace, experiment_id,
                                     scope.query.filter_strings(), title=title)

    # Traces
    def open_trace(self, trace_id: str) -> None:
        """Show this trace in the Trace tab (once connected)."""
        if self.app_model.client is None:
            self._pending_trace = trace_id
            return
        self._pending_trace = None
        self.tabs.setCurrentWidget(self.trace_view)
        self.trace_view.open_trace(self.app_model.client, trace_id)

    def compare(self, a_id: str, b_id: str) -> None:
        """Compare trace A with trace B span by span in the Compare tab."""
        if self.app_model.client is None:
            self.statusBar().showMessage("Connect to a workspace first.", 5000)
            return
        self.tabs.setCurrentWidget(self.compare_view)
        self.compare_view.compare(self.app_model.client, a_id, b_id)

    def _compare_with_dialog(self, a_id: str) -> None:
        from traceviewer.ui.trace.compare_view import CompareWithDialog

        dialog = CompareWithDialog(a_id, self.browser.model.rows, self)
        chosen = dialog.chosen_id() if dialog.exec() else ""
        dialog.deleteLater()
        if chosen:
            self.compare(a_id, chosen)

    def _show_assessments(self, trace) -> None:
        """Assessments of a trace from the server are editable; a trace from a file has none
        to edit here."""
        client, workspace = self.app_model.client, self.app_model.workspace
        if self.trace_view.from_server and client is not None and workspace is not None:
            self.assessments.setEnabled(True)
            self.assessments.show_trace(trace.info, client, workspace)
        else:
            self._clear_assessments()

    def _clear_assessments(self) -> None:
        self.assessments.setEnabled(False)
        self.assessments.clear()

    def _open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open trace file", "", TRACE_FILES)
        if path:
            self.tabs.setCurrentWidget(self.trace_view)
            self.trace_view.open_file(path)

    def _export_trace_dialog(self) -> None:
        if self._trace_page.page is None or self.trace_view.trace is None:
            self.statusBar().showMessage("Open a trace first.", 5000)
            return
        name = f"{self.trace_view.trace.info.trace_id}.json"
        path, _ = QFileDialog.getSaveFileName(self, "Export trace", name, TRACE_FILES)
        if path:
            self.trace_view.export_trace(path)

    def _open_by_id_dialog(self) -> None:
        text, ok = QInputDialog.getText(
            self, "Open trace", "Trace ID (tr-…) or client request ID:")
        if ok and text.strip():
            self.open_by_id(text.strip())

    def open_by_id(self, text: str) -> None:
        """Open a trace by id; anything else is looked up as a client request id in every
        experiment of the workspace (a miss names the experiments searched)."""
        client = self.app_model.client
        if text.startswith("tr-") or client is None:
            self.open_trace(text)
            return

        def found(result: tuple[list[TraceInfo], list[Experiment]]) -> None:
            infos, experiments = result
            if infos:
                self.banner.succeeded("lookup")
                self.open_trace(infos[0].trace_id)
                if len(infos) > 1:
                    self.statusBar().showMessage(
                        f"{len(infos)} traces have client request ID {text!r}: showing the "
                        "newest.", 8000)
                return
            self.banner.show_error(f"No trace with client request ID {text!r} in "
                                   f"{searched(experiments)}.", source="lookup")

        self.statusBar().showMessage(f"Looking up client request ID {text!r} in every "
                                     "experiment…", 8000)
        self._lookup.start(
            lambda token: search.find_by_client_request_id_everywhere(client, text, token),
            found, lambda exc: self.banner.show_error(f"Looking up {text!r} failed: {exc}",
                                                      retry=lambda: self.open_by_id(text),
                                                      source="lookup"))

    # Layout memory
    def _restore_layout(self) -> None:
        s = settings()
        if geometry := s.value("geometry"):
            self.restoreGeometry(geometry)
        if state := s.value("splitter"):
            self.splitter.restoreState(state)

    def closeEvent(self, event) -> None:
        s = settings()
        s.setValue("geometry", self.saveGeometry())
        s.setValue("splitter", self.splitter.saveState())
        self.app_model.set_client(None)
        if self._demo is not None:
            self._demo.finished.disconnect()
            self._demo.terminate()  # SIGTERM: the demo command stops its server
            self._demo.waitForFinished(10_000)
        super().closeEvent(event)
