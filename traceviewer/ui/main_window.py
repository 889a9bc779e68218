"""The main window: workspace selector, experiments, and the views of the open experiment."""

from __future__ import annotations

import logging
from dataclasses import replace

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
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

from traceviewer.core import paths
from traceviewer.core.client import RestClient
from traceviewer.core.model import Experiment
from traceviewer.core.workspaces import Workspace, WorkspaceMemory, WorkspaceStore, open_client
from traceviewer.ui.banner import ErrorBanner
from traceviewer.ui.experiments import ExperimentsPanel
from traceviewer.ui.tasks import TaskRunner, activity

log = logging.getLogger(__name__)


def settings() -> QSettings:
    """Window layout and other UI preferences, kept beside the config (no secrets here)."""
    return QSettings(str(paths.config_dir() / "ui.ini"), QSettings.Format.IniFormat)


class MainWindow(QMainWindow):
    client_changed = Signal(object)  # RestClient | None

    def __init__(self, store: WorkspaceStore | None = None):
        super().__init__()
        self.setWindowTitle("Trace Viewer")
        self.store = store or WorkspaceStore()
        self.memory = WorkspaceMemory()
        self.client: RestClient | None = None
        self.workspace: Workspace | None = None
        self.experiment: Experiment | None = None
        self._pending_experiment: str | None = None
        self._connect = TaskRunner(self)

        self.workspace_box = QComboBox()
        self.workspace_box.setMinimumWidth(180)
        self.workspace_box.setToolTip("Workspace (Ctrl+W to focus)")
        self.workspace_box.currentTextChanged.connect(self._on_workspace_chosen)
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
            lambda exc: self.banner.show_error(exc, retry=self.experiments.model.retry))
        self.experiments.model.page_loaded.connect(self._select_pending_experiment)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.addWidget(self.experiments)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([280, 1000])

        browse = QWidget()
        layout = QVBoxLayout(browse)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addWidget(self.banner)
        layout.addWidget(self.splitter, 1)
        self.pages = QStackedWidget()
        self.pages.addWidget(browse)
        self.setCentralWidget(self.pages)

        self.connection_label = QLabel("Not connected")
        self.connection_label.setTextFormat(Qt.TextFormat.PlainText)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.setToolTip("Loading…")
        self.busy.hide()
        activity.busy_changed.connect(self.busy.setVisible)
        self.statusBar().addPermanentWidget(self.busy)
        self.statusBar().addPermanentWidget(self.connection_label)

        focus_experiments = QAction(self, shortcut=QKeySequence("Ctrl+K"))
        focus_experiments.triggered.connect(self.experiments.search.setFocus)
        focus_workspace = QAction(self, shortcut=QKeySequence("Ctrl+W"))
        focus_workspace.triggered.connect(self.workspace_box.showPopup)
        self.addActions([focus_experiments, focus_workspace])
        self.resize(1280, 800)
        self._restore_layout()

    # Workspaces and connection
    def load_workspaces(self, select: str | None = None) -> None:
        """Fill the workspace selector from the config and connect to `select` (or the last
        used, or the first)."""
        names = [ws.name for ws in self.store.list()]
        last = self.memory.current
        target = select if select in names else (last if last in names else None)
        if target is None and names:
            target = names[0]
        self.workspace_box.blockSignals(True)
        self.workspace_box.clear()
        self.workspace_box.addItems(names)
        self.workspace_box.blockSignals(False)
        if target is None:
            self._connect_to(None)
        else:
            self.workspace_box.setCurrentText(target)
            self._on_workspace_chosen(target)

    def _on_workspace_chosen(self, name: str) -> None:
        if name:
            self._connect_to(self.store.get(name))

    def _connect_to(self, workspace: Workspace | None) -> None:
        self.workspace = workspace
        self._set_client(None)
        if workspace is None:
            self.connection_label.setText("No workspace")
            return
        self.memory.set_current(workspace.name)
        self.connection_label.setText(f"Connecting to {workspace.host}…")
        self.banner.hide()

        def connect(token):
            client = open_client(workspace)  # reads the keyring: not on the GUI thread
            try:
                return client, client.version()
            except Exception:
                client.close()
                raise

        self._connect.start(connect, self._on_connected, self._on_connect_failed)

    def _on_connected(self, result: tuple[RestClient, str]) -> None:
        client, version = result
        assert self.workspace is not None
        self.connection_label.setText(f"{self.workspace.host} · MLflow {version}")
        if self._pending_experiment is None:
            self._pending_experiment = (self.memory.get(self.workspace.name).last_experiment
                                        or self.workspace.default_experiment)
        self._set_client(client)

    def _on_connect_failed(self, exc: Exception) -> None:
        host = self.workspace.host if self.workspace else "the server"
        self.connection_label.setText(f"Not connected to {host}")
        self.banner.show_error(f"Cannot connect: {exc}", retry=lambda: self._connect_to(
            self.workspace))

    def _set_client(self, client: RestClient | None) -> None:
        old, self.client = self.client, client
        self.experiment = None
        self.experiments.set_client(client)
        self.client_changed.emit(client)
        if old is not None:
            old.close()

    # Experiments
    def open_experiment(self, name_or_id: str) -> None:
        """Select this experiment once it is listed (now or when the list has loaded)."""
        self._pending_experiment = name_or_id
        self._select_pending_experiment()

    def _select_pending_experiment(self, *_args) -> None:
        if self._pending_experiment and self.experiments.select(self._pending_experiment):
            self._pending_experiment = None

    def _on_experiment_selected(self, experiment: Experiment) -> None:
        self.experiment = experiment
        self.setWindowTitle(f"{experiment.name} – Trace Viewer")
        if self.workspace is not None:
            state = self.memory.get(self.workspace.name)
            self.memory.put(self.workspace.name, replace(state, last_experiment=experiment.name))

    def refresh(self) -> None:
        self.experiments.reload()

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
        self._set_client(None)
        super().closeEvent(event)
