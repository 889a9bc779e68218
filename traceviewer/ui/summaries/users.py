"""The users view: per user of a trace search, the traces, sessions, errors and last request;
activating a user asks for the trace table filtered to them."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from traceviewer.core import filters as flt
from traceviewer.core.aggregate import Update, UserSummary
from traceviewer.core.fmt import number, plural, timestamp_ms
from traceviewer.core.search import TraceSearcher
from traceviewer.ui.summaries.summary_view import (
    SORT_ROLE,
    SummaryColumn,
    SummaryLoader,
    SummaryModel,
    empty_label,
    empty_text,
)

USER_COLUMNS = [
    SummaryColumn("User", lambda u: u.user, tooltip=lambda u: u.user),
    SummaryColumn("Traces", lambda u: number(u.traces), lambda u: u.traces, align_right=True),
    SummaryColumn("Sessions", lambda u: number(len(u.sessions)), lambda u: len(u.sessions),
                  align_right=True),
    SummaryColumn("Errors", lambda u: number(u.errors) if u.errors else "", lambda u: u.errors,
                  align_right=True),
    SummaryColumn("Last seen", lambda u: timestamp_ms(u.last_seen_ms),
                  lambda u: u.last_seen_ms),
]
LAST_SEEN = 4


def user_filter(filters: list[str], user: str) -> str:
    """The filter text for the traces of `user` among those of `filters` (AND-only strings
    from `filters.alternatives`, whose first one has session/user in the tags form that
    `parse` reads back as those fields)."""
    base = flt.parse(filters[0]) if filters else []
    return flt.build([*(c for c in base if c.field != "user"), flt.user(user)])


class UsersView(QWidget):
    """Users of the current experiment and filter, most recently seen first (sortable)."""

    show_filtered = Signal(str)  # the current filter AND this user, as filter text

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._without_user = 0
        self._filters: list[str] = []
        self.loader = SummaryLoader()
        self.model = SummaryModel(USER_COLUMNS, key=lambda u: u.user, parent=self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(LAST_SEEN, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.setToolTip("Double-click or Enter: the traces of this user")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.summary = QLabel()
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.summary.setContentsMargins(4, 0, 4, 2)
        self.empty = empty_label()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.table)
        self.stack.addWidget(self.empty)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.loader)
        layout.addWidget(self.summary)
        layout.addWidget(self.stack, 1)

        self.loader.updated.connect(self._merge)
        self.loader.state_changed.connect(lambda _state: self._update_state())
        self.table.activated.connect(self._activated)
        self._update_state()

    def load(self, client: TraceSearcher, experiment_ids: list[str], filters: list[str]) -> None:
        """Count per user the traces matching any of `filters` (AND-only strings)."""
        self._without_user = 0
        self._filters = list(filters)
        self.model.clear()
        self.loader.load(client, experiment_ids, filters)

    def clear(self) -> None:
        self._without_user = 0
        self.model.clear()
        self.loader.clear()

    def user_at(self, row: int) -> UserSummary:
        """The user shown in table row `row` (in the current sort order)."""
        return self.model.rows[self.proxy.mapToSource(self.proxy.index(row, 0)).row()]

    def _merge(self, update: Update) -> None:
        self._without_user = update.without_user
        self.model.merge(update.users)
        self._update_state()

    def _update_state(self) -> None:
        users = len(self.model.rows)
        parts = [plural(users, "user")] if users else []
        if self._without_user:
            parts.append(f"{plural(self._without_user, 'trace')} without a user")
        self.summary.setText(" · ".join(parts))
        if users:
            self.stack.setCurrentWidget(self.table)
            return
        self.empty.setText(empty_text(self.loader.state, self.loader.traces, "users",
                                      "a user id (mlflow.trace.user)"))
        self.stack.setCurrentWidget(self.empty)

    def _activated(self, index: QModelIndex) -> None:
        if index.isValid():
            self.show_filtered.emit(user_filter(self._filters, self.user_at(index.row()).user))
