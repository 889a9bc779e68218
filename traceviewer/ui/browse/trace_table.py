"""The trace table: columns over `TraceInfo` rows, chosen and ordered by the user."""

from __future__ import annotations

from functools import partial
from typing import cast

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QAbstractItemView, QMenu, QTableView

from traceviewer.core.aggregate import readable
from traceviewer.core.fmt import duration_ms, number, timestamp_ms
from traceviewer.core.model import TraceInfo
from traceviewer.core.review import feedback_glance, feedback_lines
from traceviewer.ui.common import palette
from traceviewer.ui.common.paged_model import Column, PagedModel

PREVIEW_CHARS = 200
PREVIEW_COLUMNS = ("Request", "Response")  # as wide as PREVIEW_WIDTH, not their content
PREVIEW_WIDTH = 230
MAX_FIT_WIDTH = 320  # a column fitted to its content grows no wider


def _preview(text: str | None) -> str:
    """One line of the words of an untrusted preview (the view shows it as plain text)."""
    return " ".join(readable(text).split())[:PREVIEW_CHARS]


def _tokens(info: TraceInfo) -> str:
    usage = info.token_usage or {}
    return number(usage.get("total_tokens"))


def _failed(info: TraceInfo) -> palette.Role | None:
    return palette.ERROR_ROW if info.state == "ERROR" else None


def _state_colour(info: TraceInfo) -> palette.Role | None:
    return palette.ERROR_TEXT if info.state == "ERROR" else None


def _tags(info: TraceInfo) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(info.tags.items())
                     if not k.startswith("mlflow."))


TRACE_COLUMNS: list[Column[TraceInfo]] = [
    Column("Time", lambda t: timestamp_ms(t.request_time_ms), tooltip=lambda t: t.trace_id),
    Column("Name", lambda t: t.name or ""),
    Column("Request", lambda t: _preview(t.request_preview),
           tooltip=lambda t: (t.request_preview or "")[:2000]),
    Column("Response", lambda t: _preview(t.response_preview),
           tooltip=lambda t: (t.response_preview or "")[:2000]),
    Column("State", lambda t: t.state, foreground=_state_colour),
    Column("Duration", lambda t: duration_ms(t.duration_ms), align_right=True,
           descending_first=True),
    Column("Feedback", lambda t: feedback_glance(t.assessments),
           tooltip=lambda t: feedback_lines(t.assessments)),
    Column("Session", lambda t: t.session or ""),
    Column("User", lambda t: t.user or ""),
    Column("Client request ID", lambda t: t.client_request_id or ""),
    Column("Tokens", _tokens, align_right=True,
           sort_key=lambda t: (t.token_usage or {}).get("total_tokens") or 0),
    Column("Tags", _tags, tooltip=_tags),
]
COLUMN_NAMES = [c.header for c in TRACE_COLUMNS]
DEFAULT_HIDDEN = ("Client request ID", "Tags")


def trace_model(parent=None) -> PagedModel:
    return PagedModel(TRACE_COLUMNS, key=lambda t: t.trace_id, parent=parent,
                      background=_failed)


class TraceTable(QTableView):
    """A table of traces; right-click the header to choose columns, drag to reorder them."""

    trace_activated = Signal(object)  # TraceInfo
    columns_changed = Signal()  # shown/hidden from the header menu

    def __init__(self, model: PagedModel, parent=None):
        super().__init__(parent)
        self.setModel(model)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setWordWrap(False)
        self.setShowGrid(False)
        self.setAlternatingRowColors(True)
        self.verticalHeader().hide()
        self.verticalHeader().setDefaultSectionSize(24)
        header = self.horizontalHeader()
        header.setSectionsMovable(True)
        header.setStretchLastSection(True)
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._column_menu)
        self._fitted = False  # widths fitted to the first rows shown since reset_columns
        model.page_loaded.connect(self._fit_once)
        self.reset_columns()
        self.activated.connect(lambda index: self.trace_activated.emit(
            model.row_at(index.row())))

    def reset_columns(self) -> None:
        """Default order and visibility; widths fitted to the rows (once some have loaded)."""
        header = self.horizontalHeader()
        for i, name in enumerate(COLUMN_NAMES):
            header.moveSection(header.visualIndex(i), i)
            self.setColumnHidden(i, name in DEFAULT_HIDDEN)
        self._fitted = False
        self._fit_once()

    def fit_columns(self) -> None:
        """Each column as wide as its header and the loaded rows' text (at most
        MAX_FIT_WIDTH; the previews PREVIEW_WIDTH); the last column takes the rest."""
        self._fitted = True
        for i, name in enumerate(COLUMN_NAMES):
            if name in PREVIEW_COLUMNS:
                self.setColumnWidth(i, PREVIEW_WIDTH)
            else:
                self.resizeColumnToContents(i)
                self.setColumnWidth(i, min(self.columnWidth(i), MAX_FIT_WIDTH))

    def _fit_once(self, *_args) -> None:
        # Once, on the first rows: later pages or filters do not move columns under the user.
        if not self._fitted and self.model().rowCount():
            self.fit_columns()

    def selected_traces(self) -> list[TraceInfo]:
        model = cast(PagedModel, self.model())
        return [model.row_at(i.row()) for i in self.selectionModel().selectedRows()]

    def _show_column(self, i: int, on: bool) -> None:
        self.setColumnHidden(i, not on)
        self.columns_changed.emit()

    def _column_menu(self, pos) -> None:
        menu = QMenu(self)
        for i, name in enumerate(COLUMN_NAMES):
            action = QAction(name, menu, checkable=True, checked=not self.isColumnHidden(i))
            action.toggled.connect(partial(self._show_column, i))
            menu.addAction(action)
        menu.exec(self.horizontalHeader().mapToGlobal(pos))
