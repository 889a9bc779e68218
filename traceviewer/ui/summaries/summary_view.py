"""Sessions and users of a trace search, loaded in the background and shown as they grow.

`SummaryLoader` streams every page of the search through the task runner, folds it into a
`core.aggregate.Aggregator` on the worker thread and hands each page's `Update` to the GUI
thread; `SummaryModel` merges the changed summaries into a table without resetting it, so the
selection and scroll position survive the load."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from traceviewer.core.aggregate import Aggregator, Update
from traceviewer.core.cancel import CancelToken
from traceviewer.core.fmt import plural
from traceviewer.core.search import MAX_PAGE_SIZE, TraceSearcher, iter_traces
from traceviewer.core.terminal import neutralize_bidi
from traceviewer.ui.common.banner import ErrorBanner
from traceviewer.ui.common.plain import plain_tooltip
from traceviewer.ui.common.tasks import TaskRunner

SORT_ROLE = Qt.ItemDataRole.UserRole


@dataclass(frozen=True)
class SummaryColumn:
    header: str
    text: Callable[[Any], str]
    sort_value: Callable[[Any], Any] | None = None  # default: the text
    align_right: bool = False
    tooltip: Callable[[Any], str] | None = None


class SummaryModel(QAbstractTableModel):
    """Rows of summaries in arrival order; `merge` updates known rows and appends new ones."""

    def __init__(self, columns: Sequence[SummaryColumn], key: Callable[[Any], Hashable],
                 parent=None):
        super().__init__(parent)
        self.columns = list(columns)
        self.rows: list[Any] = []
        self._key = key
        self._row_of: dict[Hashable, int] = {}

    def clear(self) -> None:
        self.beginResetModel()
        self.rows, self._row_of = [], {}
        self.endResetModel()

    def merge(self, items: Sequence[Any]) -> None:
        """Replace the rows of known items, append the others (in the order given)."""
        changed: list[int] = []
        new: list[Any] = []
        for item in items:
            row = self._row_of.get(self._key(item))
            if row is None:
                new.append(item)
            else:
                self.rows[row] = item
                changed.append(row)
        if changed:
            self.dataChanged.emit(self.index(min(changed), 0),
                                  self.index(max(changed), len(self.columns) - 1))
        if new:
            first = len(self.rows)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            for offset, item in enumerate(new):
                self._row_of[self._key(item)] = first + offset
            self.rows.extend(new)
            self.endInsertRows()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        column, item = self.columns[index.column()], self.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:  # untrusted: bidi and controls made visible
            return neutralize_bidi(column.text(item))
        if role == SORT_ROLE:
            return (column.sort_value or column.text)(item)
        if role == Qt.ItemDataRole.ToolTipRole and column.tooltip is not None:
            return plain_tooltip(column.tooltip(item))
        if role == Qt.ItemDataRole.TextAlignmentRole and column.align_right:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.columns[section].header
        return None


def empty_label() -> QLabel:
    """The centred plain-text label a view shows instead of an empty table."""
    label = QLabel()
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


def empty_text(state: str, traces: int, what: str, key: str) -> str:
    """Why a sessions or users table is empty (`what`: 'sessions'; `key`: the context key)."""
    if state == "idle":
        return f"Choose an experiment to see its {what}."
    if state == "loading":
        return "Reading traces…"
    if state == "failed":
        return "Could not read the traces."
    if traces == 0:
        return "No traces match this filter."
    return f"None of the {plural(traces, 'trace')} has {key} (in tags or metadata)."


def _aggregate(client: TraceSearcher, experiment_ids: list[str], filters: list[str],
               token: CancelToken) -> int:
    aggregator = Aggregator()
    for page in iter_traces(client, experiment_ids, filters, page_size=MAX_PAGE_SIZE,
                            token=token):
        token.progress(aggregator.add(page))
    return aggregator.traces


class SummaryLoader(QWidget):
    """The load of one trace search: a status line with a busy bar and Cancel, an error banner
    with Retry, and `updated(Update)` per page. States: idle, loading, done, stopped, failed."""

    updated = Signal(object)  # Update
    state_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = "idle"
        self.traces = 0
        self._request: tuple[Any, list[str], list[str]] | None = None
        self.runner = TaskRunner(self)
        self.banner = ErrorBanner()
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.setTextVisible(False)
        self.cancel_button = QPushButton("Stop")
        self.cancel_button.setToolTip("Stop loading; what is loaded stays")
        self.cancel_button.clicked.connect(self.cancel)
        row = QHBoxLayout()
        row.setContentsMargins(4, 2, 4, 2)
        row.addWidget(self.status, 1)
        row.addWidget(self.busy)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.banner)
        layout.addLayout(row)
        self._set_state("idle")

    def load(self, client: TraceSearcher, experiment_ids: list[str], filters: list[str]) -> None:
        """Read every trace matching any of `filters` (AND-only strings), newest first."""
        self._request = (client, list(experiment_ids), list(filters))
        self.banner.hide()
        self.traces = 0
        self._set_state("loading")
        ids, texts = self._request[1], self._request[2]
        self.runner.start(lambda token: _aggregate(client, ids, texts, token),
                          self._on_done, self._on_error, self._on_progress)

    def reload(self) -> None:
        if self._request is not None:
            self.load(*self._request)

    def cancel(self) -> None:
        """Stop the load in flight; the figures cover the traces read so far."""
        if self.state == "loading":
            self.runner.cancel()
            self._set_state("stopped")

    def clear(self) -> None:
        self.runner.cancel()
        self._request = None
        self.traces = 0
        self.banner.hide()
        self._set_state("idle")

    def _on_progress(self, value: Any) -> None:
        # iter_traces also reports its running count (an int); the Update carries it too.
        if isinstance(value, Update):
            self.traces = value.traces
            self._show_status()
            self.updated.emit(value)

    def _on_done(self, traces: int) -> None:
        self.traces = traces
        self._set_state("done")

    def _on_error(self, exc: Exception) -> None:
        self.banner.show_error(exc, retry=self.reload)
        self._set_state("failed")

    def _set_state(self, state: str) -> None:
        self.state = state
        loading = state == "loading"
        self.busy.setVisible(loading)
        self.cancel_button.setVisible(loading)
        self._show_status()
        self.state_changed.emit(state)

    def _show_status(self) -> None:
        n = plural(self.traces, "trace")
        self.status.setText({
            "idle": "",
            "loading": f"Reading traces… {n} so far",
            "done": f"All {n} read.",
            "stopped": f"Stopped after {n}: the figures cover these only.",
            "failed": f"Failed after {n}: the figures cover these only.",
        }[self.state])
