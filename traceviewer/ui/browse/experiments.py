"""The experiments of a workspace: a searchable, paged list."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QLineEdit,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from traceviewer.core.client import RestClient
from traceviewer.core.fmt import timestamp_ms
from traceviewer.core.model import Experiment
from traceviewer.core.paging import TokenCursor
from traceviewer.core.search import experiment_name_filter
from traceviewer.ui.common.paged_model import Column, PagedModel

COLUMNS: list[Column[Experiment]] = [
    Column("Experiment", lambda e: e.name, tooltip=lambda e: f"{e.name}\nID {e.experiment_id}"),
    Column("Updated", lambda e: timestamp_ms(e.last_update_time_ms)),
]


class ExperimentsPanel(QWidget):
    """Search box over a paged experiment list; emits `experiment_selected` on activation."""

    experiment_selected = Signal(object)  # Experiment
    failed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._client: RestClient | None = None
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search experiments (Ctrl+K)")
        self.search.setClearButtonEnabled(True)
        self.model = PagedModel(COLUMNS, key=lambda e: e.experiment_id, parent=self)
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.verticalHeader().hide()
        self.view.setShowGrid(False)
        self.view.setWordWrap(False)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # "/Shared/pr…genai-app"
        self.view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.view.horizontalHeader().setSectionResizeMode(
            1, QHeaderView.ResizeMode.ResizeToContents)
        self.empty = QLabel()
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setTextFormat(Qt.TextFormat.PlainText)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.empty)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.search)
        layout.addWidget(self.stack, 1)

        self._debounce = QTimer(self, singleShot=True, interval=250)
        self._debounce.timeout.connect(self.reload)
        self.search.textChanged.connect(self._debounce.start)
        self.model.loading_changed.connect(self._update_empty_state)
        self.model.page_loaded.connect(lambda _n: self._update_empty_state())
        self.model.failed.connect(self.failed)

        def current_changed(current: QModelIndex, _previous: QModelIndex) -> None:
            if current.isValid():
                self.experiment_selected.emit(self.model.row_at(current.row()))

        self.view.selectionModel().currentRowChanged.connect(current_changed)

    def set_client(self, client: RestClient | None) -> None:
        self._client = client
        self.reload()

    def reload(self) -> None:
        client, text_filter = self._client, experiment_name_filter(self.search.text())
        if client is None:
            self.model.reset(None)
        else:
            self.model.reset(TokenCursor(lambda page_token: client.search_experiments(
                filter=text_filter, max_results=100, page_token=page_token)))
        self._update_empty_state()

    def select(self, name_or_id: str) -> bool:
        """Select the loaded experiment with this name or id; False if it is not loaded."""
        for row, experiment in enumerate(self.model.rows):
            if name_or_id in (experiment.name, experiment.experiment_id):
                self.view.selectRow(row)
                return True
        return False

    def _update_empty_state(self) -> None:
        if self.model.rows:
            self.stack.setCurrentWidget(self.view)
            return
        if self.model.loading:
            self.empty.setText("Loading experiments…")
        elif self._client is None:
            self.empty.setText("No workspace connected.")
        elif self.search.text().strip():
            self.empty.setText(f"No experiment matches “{self.search.text().strip()}”.")
        else:
            self.empty.setText("This workspace has no experiments yet.")
        self.stack.setCurrentWidget(self.empty)
