"""A table model over rows fetched page by page in the background.

Rows live in a plain list; cells are computed on demand by the column getters. The view asks for
more through `canFetchMore`/`fetchMore` as the user scrolls; each page comes from a cursor
(`core.paging`) advanced by the one task runner, and `reset` cancels a fetch in flight so a
table never mixes rows of two queries."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal

from traceviewer.core.paging import StreamCursor, TokenCursor
from traceviewer.core.terminal import neutralize_bidi
from traceviewer.ui.common.palette import Role
from traceviewer.ui.common.plain import plain_tooltip
from traceviewer.ui.common.tasks import TaskRunner

Row = TypeVar("Row")
_DISPLAY = Qt.ItemDataRole.DisplayRole
_TOOLTIP = Qt.ItemDataRole.ToolTipRole
_ALIGNMENT = Qt.ItemDataRole.TextAlignmentRole
_BACKGROUND = Qt.ItemDataRole.BackgroundRole
_FOREGROUND = Qt.ItemDataRole.ForegroundRole
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
_ANSWERED = frozenset((_DISPLAY, _TOOLTIP, _ALIGNMENT, _BACKGROUND, _FOREGROUND))


@dataclass(frozen=True)
class Column(Generic[Row]):
    header: str
    text: Callable[[Row], str]
    tooltip: Callable[[Row], str] | None = None
    align_right: bool = False
    sort_key: Callable[[Row], Any] | None = None  # for sorting loaded rows; default: text
    descending_first: bool = False  # the first click on the header sorts largest first
    foreground: Callable[[Row], Role | None] | None = None  # the text colour of a cell


class PagedModel(QAbstractTableModel):
    loading_changed = Signal(bool)
    failed = Signal(object)
    page_loaded = Signal(int)

    def __init__(self, columns: list[Column], key: Callable[[Any], Hashable] | None = None,
                 parent=None, background: Callable[[Any], Role | None] | None = None):
        super().__init__(parent)
        self.columns = columns
        self._background = background  # a row's colour (None: the view's own)
        self.rows: list[Any] = []
        self._key = key
        self._seen: set[Hashable] = set()
        self._cursor: TokenCursor | StreamCursor | None = None
        self._runner = TaskRunner(self)
        self._runner.busy_changed.connect(self.loading_changed)

    @property
    def loading(self) -> bool:
        return self._runner.busy

    @property
    def complete(self) -> bool:
        """True once the last page has arrived."""
        return self._cursor is None or self._cursor.done

    def reset(self, cursor: TokenCursor | StreamCursor | None) -> None:
        """Drop all rows and start over with `cursor` (None: stay empty)."""
        self._runner.cancel()
        self.beginResetModel()
        self.rows = []
        self._seen = set()
        self._cursor = cursor
        self.endResetModel()
        if cursor is not None:
            self._load()

    def stop(self) -> None:
        """Cancel the fetch in flight; rows already loaded stay, scrolling fetches again."""
        self._runner.cancel()

    def sort_loaded(self, key: Callable[[Any], Any], descending: bool) -> None:
        """Reorder the rows already loaded (pages loaded later are appended)."""
        self.layoutAboutToBeChanged.emit()
        self.rows.sort(key=key, reverse=descending)
        self.layoutChanged.emit()

    def retry(self) -> None:
        """Fetch the page that failed again; rows already loaded stay."""
        if not self.complete and not self._runner.busy:
            self._load()

    def row_at(self, row: int) -> Any:
        return self.rows[row]

    def replace_row(self, fresh: Any) -> bool:
        """Show `fresh` in place of the loaded row with the same key (a re-read trace info);
        False when no such row is loaded (or the model has no key)."""
        if self._key is None:
            return False
        wanted = self._key(fresh)
        for i, row in enumerate(self.rows):
            if self._key(row) == wanted:
                self.rows[i] = fresh
                self.dataChanged.emit(self.index(i, 0), self.index(i, len(self.columns) - 1))
                return True
        return False

    def _load(self) -> None:
        cursor = self._cursor
        assert cursor is not None
        self._runner.start(cursor.next_page, self._append, self.failed.emit)

    def _append(self, rows: list[Any]) -> None:
        cursor = self._cursor
        assert cursor is not None
        cursor.ack()
        if self._key is not None:
            # Offset page tokens shift when new rows arrive on the server: drop repeats.
            fresh = []
            for row in rows:
                k = self._key(row)
                if k not in self._seen:
                    self._seen.add(k)
                    fresh.append(row)
            rows = fresh
        if rows:
            first = len(self.rows)
            self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
            self.rows.extend(rows)
            self.endInsertRows()
        elif not cursor.done:
            # Only rows already shown (a stream started over after a failure): nothing new
            # grew the view, so it would not ask for more itself.
            self._load()
            return
        self.page_loaded.emit(len(rows))

    # Qt model interface
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def canFetchMore(self, parent=QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and not self.complete and not self._runner.busy

    def fetchMore(self, parent=QModelIndex()) -> None:  # noqa: B008
        if self.canFetchMore(parent):
            self._load()

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.columns[section].header
        if role == Qt.ItemDataRole.InitialSortOrderRole:  # read by the header's first click
            return (Qt.SortOrder.DescendingOrder if self.columns[section].descending_first
                    else Qt.SortOrder.AscendingOrder)
        return None

    def data(self, index, role=_DISPLAY):
        # Painting asks ~7 roles per visible cell; most have no value here, so answer by role
        # first and touch the row only for the ones that do.
        if role not in _ANSWERED or not index.isValid():
            return None
        column = self.columns[index.column()]
        if role == _ALIGNMENT:
            return _RIGHT if column.align_right else None
        if role == _BACKGROUND:
            colour = None if self._background is None else self._background(
                self.rows[index.row()])
            return None if colour is None else colour.brush()
        if role == _FOREGROUND:
            colour = None if column.foreground is None else column.foreground(
                self.rows[index.row()])
            return None if colour is None else colour.brush()
        if role == _TOOLTIP and column.tooltip is None:
            return None
        row = self.rows[index.row()]
        if role == _DISPLAY:  # untrusted text: bidi and control characters shown, not obeyed
            return neutralize_bidi(column.text(row))
        return plain_tooltip(column.tooltip(row))
