"""The trace browser: filter builder, quick and saved filters, and the lazily loaded trace table
of one experiment.

Rows come from `core.search.iter_traces` (one server query per AND-only alternative of the
filter, merged and de-duplicated) through a `StreamCursor`, one page per `fetchMore`. Applying a
filter resets the model, which cancels the fetch in flight: the table never holds rows of two
filters. Sorting by time or duration asks the server; other columns sort the loaded rows only,
and the status line says so."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMenu,
    QPushButton,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from traceviewer.core import filter_groups, search
from traceviewer.core.app_model import AppModel
from traceviewer.core.client import RestClient
from traceviewer.core.errors import BadFilter
from traceviewer.core.filters import Clause
from traceviewer.core.model import Experiment, TraceInfo
from traceviewer.core.paging import StreamCursor
from traceviewer.core.saved_filters import SavedFilters
from traceviewer.core.suggestions import ValueCounts, sample
from traceviewer.ui.browse.filter_builder import FilterBuilder
from traceviewer.ui.browse.trace_table import COLUMN_NAMES, TRACE_COLUMNS, TraceTable, trace_model
from traceviewer.ui.common.banner import ErrorBanner
from traceviewer.ui.common.plain import plain_tooltip
from traceviewer.ui.common.tasks import TaskRunner

# Columns the server can sort by, and the order_by field for each.
SERVER_SORT = {"Time": "timestamp_ms", "Duration": "execution_time_ms"}
AUTO_REFRESH_MS = 30_000
NEW_TRACES_CAP = 100  # "100+ new traces": counting further is not worth the requests


def menu_text(text: str) -> str:
    """Data as a menu entry: `&` would turn into a keyboard accelerator."""
    return text.replace("&", "&&")


def quick_clauses(column: str, info: TraceInfo) -> list[tuple[str, Clause, Clause]]:
    """(label, only-this clause, exclude-this clause) for a cell of `column`."""
    def pair(label: str, field: str, value: str) -> tuple[str, Clause, Clause]:
        return label, Clause(field, "=", value), Clause(field, "!=", value)

    if column == "Session" and info.session:
        return [pair(f"session {info.session}", "session", info.session)]
    if column == "User" and info.user:
        return [pair(f"user {info.user}", "user", info.user)]
    if column == "State":
        return [pair(f"state {info.state}", "status", info.state)]
    if column == "Name" and info.name:
        return [pair(f"name {info.name}", "name", info.name)]
    if column == "Client request ID" and info.client_request_id:
        return [pair(f"client request id {info.client_request_id}", "client_request_id",
                     info.client_request_id)]
    if column == "Tags":
        return [pair(f"{k}={v}", f"tags.{k}", v) for k, v in sorted(info.tags.items())
                if not k.startswith("mlflow.")]
    return []


class TraceBrowser(QWidget):
    """Emits `trace_activated(TraceInfo)` on Enter/double-click, `review_requested(trace ids)`
    for the review queue (empty: the whole filter), `export_requested()` and
    `compare_requested(a id, b id)` for two selected traces (A the older)."""

    trace_activated = Signal(object)
    compare_requested = Signal(str, str)
    review_requested = Signal(list)
    export_requested = Signal()

    def __init__(self, app_model: AppModel | None = None, parent=None):
        super().__init__(parent)
        self.app_model = app_model or AppModel()
        self.memory = self.app_model.memory
        self._columns_of: str | None = None  # the workspace whose columns are shown
        self.page_size = search.PAGE_SIZE
        self._local_sort: str | None = None
        self._restoring = False
        self._poll = TaskRunner(self)
        self._sample = TaskRunner(self)  # values for the builder's suggestions
        self._sampled = False

        self.builder = FilterBuilder()
        self.builder.applied.connect(self.apply)
        self.saved_button = self._menu_button("Saved", "Saved filters of this workspace",
                                              self._fill_saved_menu)
        self.recent_button = self._menu_button("Recent", "Filters applied recently",
                                               self._fill_recent_menu)
        export = QPushButton("Export…")
        export.setToolTip("Export every trace of this filter to CSV or JSONL (Ctrl+E)")
        export.clicked.connect(self.export_requested)
        review = QPushButton("Review…")
        review.setToolTip("Review the selected traces, or all traces of this filter (Ctrl+R)")
        review.clicked.connect(self.request_review)
        self.compare_button = QPushButton("Compare")
        self.compare_button.setToolTip("Compare the two selected traces span by span (Ctrl+D)")
        self.compare_button.setEnabled(False)
        self.compare_button.clicked.connect(self.request_compare)
        self.auto_refresh = QCheckBox("Auto-refresh")
        self.auto_refresh.setToolTip("Check for new traces every 30 seconds")
        self.new_button = QPushButton()
        self.new_button.setToolTip("Load the new traces (F5)")
        self.new_button.setStyleSheet("font-weight: bold;")
        self.new_button.clicked.connect(self.reload)
        self.new_button.hide()
        tools = QHBoxLayout()
        for w in (self.saved_button, self.recent_button, export, review, self.compare_button):
            tools.addWidget(w)
        tools.addStretch(1)
        tools.addWidget(self.new_button)
        tools.addWidget(self.auto_refresh)

        self.banner = ErrorBanner()
        self.model = trace_model(self)
        self.table = TraceTable(self.model)
        self.table.trace_activated.connect(self.trace_activated)
        # A reset (a new query) drops the selection without selectionChanged.
        for signal in (self.table.selectionModel().selectionChanged, self.model.modelReset):
            signal.connect(
                lambda *_: self.compare_button.setEnabled(len(self.table.selected_traces()) == 2))
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._cell_menu)
        header = self.table.horizontalHeader()
        header.setSortIndicatorShown(True)
        header.setSortIndicator(COLUMN_NAMES.index("Time"), Qt.SortOrder.DescendingOrder)
        header.sectionClicked.connect(self._sort_clicked)
        header.sectionMoved.connect(self._remember_columns)
        self.table.columns_changed.connect(self._remember_columns)
        self.empty = QLabel()
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setTextFormat(Qt.TextFormat.PlainText)
        self.empty.setWordWrap(True)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.table)
        self.stack.addWidget(self.empty)
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Stop")
        self.cancel_button.setToolTip("Stop loading (Esc)")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        status_line = QHBoxLayout()
        status_line.addWidget(self.status, 1)
        status_line.addWidget(self.cancel_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.builder)
        layout.addLayout(tools)
        layout.addWidget(self.banner)
        layout.addWidget(self.stack, 1)
        layout.addLayout(status_line)

        self.model.loading_changed.connect(self._update_status)
        self.model.page_loaded.connect(lambda _n: self._update_status())
        self.model.page_loaded.connect(lambda _n: self.banner.succeeded("traces"))
        self.model.failed.connect(self._on_failed)
        self._timer = QTimer(self, interval=AUTO_REFRESH_MS)
        self._timer.timeout.connect(self._check_new)
        self.auto_refresh.toggled.connect(self._set_auto_refresh)
        for keys, slot in (("Ctrl+E", self.export_requested.emit),
                           ("Ctrl+R", self.request_review),
                           ("Ctrl+D", self.request_compare),
                           ("Esc", self.cancel)):
            action = QAction(self, shortcut=QKeySequence(keys))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.triggered.connect(slot)
            self.addAction(action)
        self._update_status()
        self.app_model.workspace_changed.connect(self._on_workspace)
        self.app_model.source_changed.connect(self._on_query)
        self.app_model.source_changed.connect(self._new_values)
        self.builder.suggestions_wanted.connect(self._sample_values)
        self.model.page_loaded.connect(self._count_loaded)
        self.app_model.query_changed.connect(self._on_query)

    # The app model's state, as the browser shows it.
    @property
    def client(self) -> RestClient | None:
        return self.app_model.client

    @property
    def experiment(self) -> Experiment | None:
        return self.app_model.experiment

    @property
    def workspace(self) -> str | None:
        return self.app_model.workspace.name if self.app_model.workspace else None

    @property
    def clauses(self) -> list[Clause]:
        return list(self.app_model.query.clauses)

    @property
    def order_by(self) -> tuple[str, ...]:
        return self.app_model.query.order_by

    def _set_auto_refresh(self, on: bool) -> None:
        if on:
            self._timer.start()
        else:
            self._timer.stop()
            self.new_button.hide()

    def _menu_button(self, text: str, tip: str, fill) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(button)
        menu.aboutToShow.connect(lambda: fill(menu))
        button.setMenu(menu)
        return button

    # -- source and filter ---------------------------------------------------------------

    def _on_workspace(self, _model: AppModel) -> None:
        """Another workspace brings back its remembered columns."""
        if self.workspace != self._columns_of:
            self._columns_of = self.workspace
            state = self.memory.get(self.workspace) if self.workspace else None
            self._restore_columns(state.columns if state else None)

    def _on_query(self, _model: AppModel) -> None:
        self.builder.set_groups(self.app_model.query.groups)
        self._reload_table()

    def _new_values(self, _model: AppModel) -> None:
        """Suggestions start over for another experiment: the pages the table loads, and a
        sample once a key or value box is used."""
        self._sample.cancel()
        self._sampled = False
        self.builder.set_counts(ValueCounts())

    def _sample_values(self) -> None:
        client, experiment, counts = self.client, self.experiment, self.builder.counts
        if self._sampled or client is None or experiment is None or counts is None:
            return
        self._sampled = True
        ids = [experiment.experiment_id]
        # Suggestions are a help, not data: a failed sample leaves those of the loaded pages.
        self._sample.start(lambda token: sample(client, ids, counts, token),
                           lambda _counts: self.builder.set_counts(counts), lambda _exc: None)

    def _count_loaded(self, _n: int) -> None:
        counts = self.builder.counts
        if counts is not None:
            counts.add(self.model.rows)
            self.builder.set_counts(counts)

    def set_filter_text(self, text: str) -> None:
        """Apply a filter string as if typed (an error is shown at the filter, with its
        position)."""
        self.builder.text.setText(text)
        self.builder.apply_text()

    def apply(self, groups: list[list[Clause]]) -> None:
        """Apply the builder's groups (ORed; one group for an AND-only filter)."""
        self.app_model.set_groups([list(g) for g in groups])

    def filter_strings(self) -> list[str]:
        """The AND-only server filters whose union is the current filter."""
        return self.app_model.query.filter_strings()

    def reload(self) -> None:
        """Start over: first page of the current filter and order (F5)."""
        self.app_model.refresh()

    def _reload_table(self) -> None:
        self.banner.hide()
        self.new_button.hide()
        self._poll.cancel()
        if self._local_sort:  # the server's order again: show which
            field, direction = self.order_by[0].split()
            server_column = next(n for n, f in SERVER_SORT.items() if f == field)
            indicator = Qt.SortOrder.DescendingOrder if direction == "DESC" \
                else Qt.SortOrder.AscendingOrder
            self.table.horizontalHeader().setSortIndicator(COLUMN_NAMES.index(server_column),
                                                           indicator)
        self._local_sort = None
        client, experiment = self.client, self.experiment
        if client is None or experiment is None:
            self.model.reset(None)
        else:
            ids, alts, order = [experiment.experiment_id], self.filter_strings(), self.order_by
            size = self.page_size
            self.model.reset(StreamCursor(lambda token: search.iter_traces(
                client, ids, alts, order_by=order, page_size=size, token=token), size))
        self._update_status()

    def cancel(self) -> None:
        self.model.stop()
        self._update_status()

    def _on_failed(self, exc: Exception) -> None:
        kept = len(self.model.rows)
        suffix = f" The {kept} traces already loaded stay." if kept else ""
        if isinstance(exc, BadFilter):
            self.banner.show_error(f"The server rejected the filter: {exc}", source="traces")
        else:
            self.banner.show_error(f"Loading traces failed: {exc}{suffix}", retry=self.model.retry,
                                   source="traces")
        self._update_status()

    # -- sorting -------------------------------------------------------------------------

    def _sort_clicked(self, section: int) -> None:
        name = COLUMN_NAMES[section]
        header = self.table.horizontalHeader()
        descending = header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
        if name in SERVER_SORT:
            self.app_model.set_order((f"{SERVER_SORT[name]} {'DESC' if descending else 'ASC'}",))
            return
        column = TRACE_COLUMNS[section]
        self.table.clearSelection()  # rows move: a selection would now mark other traces
        self.model.sort_loaded(column.sort_key or column.text, descending)
        self._local_sort = name
        self._update_status()

    # -- quick, saved and recent filters -------------------------------------------------

    def _cell_menu(self, pos) -> None:
        index = self.table.indexAt(pos)
        if not index.isValid():
            return
        info: TraceInfo = self.model.row_at(index.row())
        menu = QMenu(self)
        menu.addAction("Open trace", lambda: self.trace_activated.emit(info))
        menu.addAction("Copy trace ID", lambda: QGuiApplication.clipboard().setText(
            info.trace_id))
        menu.addAction("Compare the two selected traces", QKeySequence("Ctrl+D"),
                       self.request_compare).setEnabled(self.compare_button.isEnabled())
        text = str(self.model.data(index) or "")
        menu.addAction("Copy cell", lambda: QGuiApplication.clipboard().setText(text))
        quick = quick_clauses(COLUMN_NAMES[index.column()], info)
        if quick:
            menu.addSeparator()
        for label, only, exclude in quick:
            label = menu_text(label)
            menu.addAction(f"Show only {label}", partial(self.add_clause, only))
            menu.addAction(f"Exclude {label}", partial(self.add_clause, exclude))
        menu.exec(self.table.viewport().mapToGlobal(pos))

    def add_clause(self, clause: Clause) -> None:
        """AND `clause` to the filter (to every OR group, replacing a clause on the same
        field) and apply."""
        groups = self.builder.group_clauses() or [[]]
        try:
            self.set_filter_text(filter_groups.build(
                [[c for c in g if c.field != clause.field] + [clause] for g in groups]))
        except BadFilter as exc:  # e.g. a tag value no filter string can hold
            self.builder.show_error(exc)

    def _fill_saved_menu(self, menu: QMenu) -> None:
        menu.clear()
        if not self.workspace:
            menu.addAction("No workspace").setEnabled(False)
            return
        store = SavedFilters(self.workspace)
        menu.setToolTipsVisible(True)
        for name, text in store.saved().items():
            action = menu.addAction(menu_text(name), partial(self.set_filter_text, text))
            action.setToolTip(plain_tooltip(text) or "")
        menu.addSeparator()
        menu.addAction("Save current filter…", self._save_current)
        delete = menu.addMenu("Delete")
        for name in store.saved():
            delete.addAction(menu_text(name), partial(store.delete, name))
        delete.setEnabled(bool(store.saved()))

    def _save_current(self) -> None:
        text = self.app_model.query.text
        name, ok = QInputDialog.getText(self, "Save filter", f"Name for:\n{text or '(all)'}")
        if ok and name.strip() and self.workspace:
            SavedFilters(self.workspace).save(name.strip(), text)

    def _fill_recent_menu(self, menu: QMenu) -> None:
        menu.clear()
        recent = SavedFilters(self.workspace).recent() if self.workspace else []
        for text in recent:
            menu.addAction(menu_text(text), partial(self.set_filter_text, text))
        if not recent:
            menu.addAction("No recent filters").setEnabled(False)

    # -- review, auto-refresh ------------------------------------------------------------

    def request_review(self) -> None:
        """Ask for a review of the selected traces (several selected), else of the filter's
        traces (an empty list)."""
        selected = self.table.selected_traces()
        self.review_requested.emit([t.trace_id for t in selected] if len(selected) > 1 else [])

    def request_compare(self) -> None:
        """Ask to compare the two selected traces (the older one is A)."""
        selected = self.table.selected_traces()
        if len(selected) == 2:
            a, b = sorted(selected, key=lambda t: t.request_time_ms)
            self.compare_requested.emit(a.trace_id, b.trace_id)

    def _check_new(self) -> None:
        """Count traces newer than the newest loaded one; the table itself does not move."""
        client, experiment = self.client, self.experiment
        if client is None or experiment is None or self._poll.busy:
            return
        newer = self.app_model.query.groups or [[]]
        if self.model.rows:
            newest = max(t.request_time_ms for t in self.model.rows)
            newer = [[*g, Clause("timestamp_ms", ">", newest)] for g in newer]
        alts, ids = filter_groups.server_filters(newer), [experiment.experiment_id]
        self._poll.start(
            lambda token: len(search.search_all(client, ids, alts, token=token,
                                                limit=NEW_TRACES_CAP)),
            self._show_new, lambda _exc: None)  # a failed poll is retried on the next tick

    def _show_new(self, count: int) -> None:
        if count:
            more = "+" if count >= NEW_TRACES_CAP else ""
            self.new_button.setText(f"{count}{more} new trace{'s' if count != 1 else ''}")
            self.new_button.show()

    # -- columns -------------------------------------------------------------------------

    def _restore_columns(self, visible: tuple[str, ...] | None) -> None:
        header = self.table.horizontalHeader()
        names = [n for n in (visible or ()) if n in COLUMN_NAMES]
        self._restoring = True  # the moves below are not the user's: remember nothing
        try:
            if not names:
                self.table.reset_columns()
                return
            for visual, name in enumerate(names):
                header.moveSection(header.visualIndex(COLUMN_NAMES.index(name)), visual)
            for i, name in enumerate(COLUMN_NAMES):
                self.table.setColumnHidden(i, name not in names)
        finally:
            self._restoring = False

    def _remember_columns(self, *_args) -> None:
        if self._restoring or not self.workspace:
            return
        header = self.table.horizontalHeader()
        visible = tuple(COLUMN_NAMES[header.logicalIndex(v)] for v in range(header.count())
                        if not header.isSectionHidden(header.logicalIndex(v)))
        state = self.memory.get(self.workspace)
        self.memory.put(self.workspace, replace(state, columns=visible))

    # -- status --------------------------------------------------------------------------

    def _update_status(self) -> None:
        model = self.model
        n = len(model.rows)
        loading = model.loading
        self.cancel_button.setVisible(loading)
        if self.experiment is None:
            text = "Select an experiment to see its traces."
        elif loading and not n:
            text = "Loading traces…"
        elif n == 0 and model.complete:
            text = ("No traces match this filter." if self.clauses
                    else "This experiment has no traces yet.")
        else:
            text = ""
        if text:
            self.empty.setText(text)
            self.stack.setCurrentWidget(self.empty)
        else:
            self.stack.setCurrentWidget(self.table)
        count = f"{n} trace{'s' if n != 1 else ''}"
        if loading:
            status = f"{count} loaded · loading more…"
        elif model.complete:
            status = f"All {count} loaded" if n else ""
        else:
            status = f"{count} loaded · scroll for more"
        if self._local_sort:
            status += f" · sorted by {self._local_sort} over the loaded rows only"
        self.status.setText(status)
