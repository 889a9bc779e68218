"""The trace detail view: header, span tree and timeline side by side, span inspector, and the
trace's assessments.

Loading (server, cache or file), JSON parsing and the tree layout (`core.trace_loading`,
`core.trace_layout`) all run in the background through one `TaskRunner`, so opening another
trace cancels the previous load. The trace shown is cleared as soon as another is asked for; the
header names the new one at once and shows its info (read beside the spans) when it arrives.
The Qt model only adapts the arrays `TreeLayout` computed."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QModelIndex, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from traceviewer.core import assessment_state, fmt
from traceviewer.core import trace_loading as loading
from traceviewer.core.cache import TraceCache
from traceviewer.core.cancel import CancelToken
from traceviewer.core.client import RestClient
from traceviewer.core.model import Trace
from traceviewer.core.otlp import dump_trace, load_trace_file
from traceviewer.core.trace_layout import TreeLayout, initial_expansion
from traceviewer.core.trace_loading import Loaded
from traceviewer.ui.common import palette
from traceviewer.ui.common.banner import ErrorBanner
from traceviewer.ui.common.plain import plain_label
from traceviewer.ui.common.tasks import TaskRunner, WriteRunner
from traceviewer.ui.trace.assessment_list import AssessmentList
from traceviewer.ui.trace.header import TraceHeader
from traceviewer.ui.trace.inspector import Inspector
from traceviewer.ui.trace.span_tree import SpanTreeModel, SpanTreeView
from traceviewer.ui.trace.timeline import Timeline

# Expand levels of the tree on open while it shows at most this many rows: the view lays out
# every expanded row when the first span is selected, so more rows make opening slower.
INITIAL_ROWS = 500
SEARCH_DELAY_MS = 250
AFTER_PAINT_MS = 250  # background work that can wait starts this long after a trace is shown


class TraceView(QWidget):
    """The detail view of one trace. See the module docstring."""

    status_message = Signal(str)
    trace_shown = Signal(object)  # the Trace, once its tree and timeline are populated
    info_read = Signal(object)  # an assessment_state.Read: the shown trace's info read again
    trace_cleared = Signal()  # no trace is shown any more (another is loading, or none came)
    load_failed = Signal(str)
    compare_requested = Signal(str)  # the id of the trace shown: compare it with another

    def __init__(self, parent=None, cache: TraceCache | None = None,
                 assessments: QWidget | None = None):
        """`assessments`: a widget for the Assessments tab that fills itself on `trace_shown`
        (an editor); without one the tab lists the trace's assessments read-only."""
        super().__init__(parent)
        self.cache = cache or TraceCache()
        self.trace: Trace | None = None
        self._client: RestClient | None = None
        self._trace_id: str | None = None
        self._runner = TaskRunner(self)
        self._search_runner = TaskRunner(self)
        self._export_runner = WriteRunner(self)
        self._discard_runner = TaskRunner(self)
        self._cache_runner = TaskRunner(self)
        self._info_runner = TaskRunner(self)
        self._matches: list[int] = []
        self._match_pos = -1

        self.banner = ErrorBanner()
        self._build_progress()
        self.header = TraceHeader(status=self.progress)
        self._read: assessment_state.Read | None = None  # the info read of this open
        # The trace let go for the load in flight: freed once that load shows, fails, is
        # cancelled or is superseded.
        self._released: list[TreeLayout] = []
        self.model = SpanTreeModel(self)
        self.tree = SpanTreeView(self.model)
        self.timeline = Timeline()
        self.inspector = Inspector()
        self.assessments = assessments or AssessmentList()
        self._build_toolbar()
        self._build_layout()
        self._connect()
        self.setAcceptDrops(True)
        self._show_empty()

    # -- construction -------------------------------------------------------------------------

    def _action(self, text: str, shortcut, slot, tip: str) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.setToolTip(f"{tip} ({QKeySequence(shortcut).toString()})" if shortcut else tip)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_toolbar(self) -> None:
        self.search = QLineEdit(placeholderText="Search spans: names, attributes, inputs, "
                                                "outputs  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.match_label = QLabel("")
        self.match_label.setMinimumWidth(90)
        self.find_action = self._action("Find", QKeySequence.StandardKey.Find, self._focus_search,
                                        "Search inside the trace")
        self.next_action = self._action("Next", QKeySequence.StandardKey.FindNext,
                                        lambda: self._step_match(1), "Next match")
        self.prev_action = self._action("Previous", QKeySequence.StandardKey.FindPrevious,
                                        lambda: self._step_match(-1), "Previous match")
        self.expand_action = self._action("Expand all", "Ctrl+Shift+E", self._expand_all,
                                          "Expand every span")
        self.collapse_action = self._action("Collapse all", "Ctrl+Shift+C", self._collapse_all,
                                            "Collapse every span")
        self.errors_action = self._action("Expand to errors", "Ctrl+E", self._expand_to_errors,
                                          "Show and select the spans that failed")
        self.fit_action = self._action("Fit timeline", None, self.timeline.fit,
                                       "Show the whole trace duration on the timeline (0)")
        self.zoom_span_action = self._action("Zoom to span", "Z", self.timeline.zoom_to_selected,
                                             "Fit the timeline to the selected span")
        self.reload_action = self._action("Reload", QKeySequence.StandardKey.Refresh, self.reload,
                                          "Fetch the trace from the server again")
        self.open_action = self._action("Open trace file…", QKeySequence.StandardKey.Open,
                                        self._choose_file, "Open a trace saved as JSON")
        self.export_action = self._action("Export trace…", QKeySequence.StandardKey.Save,
                                          self._choose_export, "Save the trace as JSON")
        self.compare_action = self._action("Compare with…", "Ctrl+D", self._ask_compare,
                                           "Compare this trace with another one span by span")
        self.toolbar = QHBoxLayout()
        self.toolbar.addWidget(self.search, 1)
        for action in (self.prev_action, self.next_action):
            self.toolbar.addWidget(self._button(action))
        self.toolbar.addWidget(self.match_label)
        for action in (self.expand_action, self.collapse_action, self.errors_action,
                       self.fit_action, self.reload_action, self.open_action,
                       self.export_action, self.compare_action):
            self.toolbar.addWidget(self._button(action))

    @staticmethod
    def _button(action: QAction) -> QToolButton:
        button = QToolButton()
        button.setDefaultAction(action)
        return button

    def _build_progress(self) -> None:
        self.progress_label = QLabel()
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setMaximumWidth(160)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop loading (Esc)")
        self.cancel_button.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QWidget()
        row = QHBoxLayout(self.progress)
        row.setContentsMargins(4, 0, 4, 0)
        row.addWidget(self.progress_bar)
        row.addWidget(self.progress_label, 1)
        row.addWidget(self.cancel_button)
        # In the header's title row. Showing it must not resize the tree and timeline: relaying
        # them out repaints them (Python paint code) while the load competes for the GIL.
        policy = self.progress.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.progress.setSizePolicy(policy)
        self.progress.hide()

    def _build_layout(self) -> None:
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.addWidget(self.tree)
        self.split.addWidget(self.timeline)
        self.side = QTabWidget()
        self.side.addTab(self.inspector, "Span")
        self.side.addTab(self.assessments, "Assessments")
        self.split.addWidget(self.side)
        # The inspector's tabs and buttons ask for more width than it needs: the tree and the
        # timeline come first.
        self.side.setMinimumWidth(320)
        self.split.setStretchFactor(0, 4)
        self.split.setStretchFactor(1, 3)
        self.split.setStretchFactor(2, 3)
        self.split.setSizes([560, 420, 420])
        self.empty = plain_label("No trace open.\n\nOpen one from the trace table, press Ctrl+O "
                                 "to open a trace JSON file, or drop a file here.", False)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        palette.set_style(self.empty, "color: $MUTED_TEXT")
        self.pages = QStackedWidget()
        self.pages.addWidget(self.empty)
        content = QWidget()
        box = QVBoxLayout(content)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.header)
        box.addLayout(self.toolbar)
        box.addWidget(self.split, 1)
        self.pages.addWidget(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.banner)
        layout.addWidget(self.pages, 1)

    def _connect(self) -> None:
        self._rows_timer = QTimer(self, singleShot=True, interval=0)
        self._rows_timer.timeout.connect(self._sync_rows)
        self._search_timer = QTimer(self, singleShot=True, interval=SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self._run_search)
        self.search.textChanged.connect(lambda _: self._search_timer.start())
        self.search.returnPressed.connect(lambda: self._step_match(1))
        for signal in (self.tree.verticalScrollBar().valueChanged, self.tree.expanded,
                       self.tree.collapsed, self.model.modelReset, self.timeline.resized):
            signal.connect(self._schedule_rows)
        self.tree.viewport().installEventFilter(self)
        self.tree.selectionModel().currentChanged.connect(self._current_changed)
        self.timeline.span_clicked.connect(self.tree.select_node)
        self.timeline.scroll_rows.connect(
            lambda d: self.tree.verticalScrollBar().setValue(
                self.tree.verticalScrollBar().value() + d))
        self.timeline.step_rows.connect(self._step_row)
        self.timeline.scroll_to_node.connect(self.tree.scroll_node_to_top)

    def eventFilter(self, obj, event):
        if event.type() == event.Type.Resize:
            self._schedule_rows()
        return super().eventFilter(obj, event)

    # -- public API ---------------------------------------------------------------------------

    def open_trace(self, client: RestClient, trace_id: str, use_cache: bool = True) -> None:
        """Load a trace in the background (from the cache when present) and show it."""
        again = self.trace is not None and (self._client, self._trace_id) == (client, trace_id)
        self._client, self._trace_id = client, trace_id
        cache = self.cache
        # Another trace: the one shown goes at once. The same one again (a reload) stays until
        # the new copy is there, or if that fails.
        self._start(lambda token: loading.from_server(client, trace_id, cache, use_cache, token),
                    f"Opening trace {trace_id}…", clear=not again)
        if not again:
            self.header.show_opening(trace_id, trace_id)
        self._read_info(client, trace_id)

    @property
    def from_server(self) -> bool:
        """True when the trace shown (or loading) comes from a server, not a file."""
        return self._client is not None

    def reload(self) -> None:
        """Fetch the open trace from the server again, bypassing the cache."""
        if self._client is not None and self._trace_id is not None:
            self.open_trace(self._client, self._trace_id, use_cache=False)

    def show_trace(self, trace: Trace) -> None:
        """Show a trace already in memory (its layout is computed in the background)."""
        self._client = self._trace_id = None
        self._start(lambda token: Loaded(TreeLayout(trace, token)), "Preparing the trace…")
        self.header.show_info(trace.info, len(trace.spans))

    def open_file(self, path: str | Path) -> None:
        """Open a trace JSON file (REST get response or MLflow's Trace.to_json format)."""
        self._client = self._trace_id = None
        path = str(path)
        self._start(lambda token: Loaded(TreeLayout(load_trace_file(path), token)),
                    f"Opening {Path(path).name}…")
        self.header.show_opening(Path(path).name)

    def export_trace(self, path: str | Path) -> None:
        """Save the open trace as JSON (MLflow's Trace.to_json format) in the background."""
        trace = self.trace
        if trace is None:
            self.status_message.emit("No trace to export.")
            return
        path = Path(path)
        self._export_runner.start(
            lambda token: path.write_bytes(dump_trace(trace)),
            lambda _: self._exported(trace.info.trace_id, path),
            lambda exc: self.banner.show_error(f"Could not export the trace to {path}: {exc}",
                                               source="export"))

    def _exported(self, trace_id: str, path: Path) -> None:
        self.banner.succeeded("export")
        self.status_message.emit(f"Exported {trace_id} to {path}")

    def cancel(self) -> None:
        """Stop the load in flight."""
        if self._runner.busy:
            self._runner.cancel()
            self._load_ended()
            self.status_message.emit("Loading cancelled.")

    # -- loading ------------------------------------------------------------------------------

    def _start(self, work: Callable[[CancelToken], Loaded], message: str,
               clear: bool = True) -> None:
        """Clear the trace shown (if `clear`) and run `work` for the next one (the caller fills
        the header with what it knows of it)."""
        self.banner.hide()
        self._search_runner.cancel()
        self._info_runner.cancel()
        self._read = None
        self._discard_released()  # the load in flight (if any) is superseded
        shown = self.model.layout
        # A huge trace is let go at once and freed by the load itself, before it reads the next
        # one; a smaller one once the next is painted.
        huge = shown is not None and shown.n >= loading.RELEASE_SPANS
        released = self._release() if shown is not None and (clear or huge) else []
        if huge:
            self._cache_runner.cancel()  # it holds the trace being released
        else:
            self._released = released
        self.pages.setCurrentIndex(1)
        self.progress_label.setText(message)
        self.progress.show()
        started = time.perf_counter()

        def done(loaded: Loaded) -> None:
            self.progress.hide()
            self.banner.succeeded("load")
            self._show(loaded)
            self._discard_released(AFTER_PAINT_MS)
            self.status_message.emit(
                f"Opened {len(loaded.layout.trace.spans):,} spans in "
                f"{time.perf_counter() - started:.2f} s")

        def failed(exc: Exception) -> None:
            self._load_ended()
            retry = self.reload if self._client is not None else None
            self.banner.show_error(str(exc), retry, source="load")
            self.load_failed.emit(str(exc))

        def run(token: CancelToken) -> Loaded:
            if huge:
                loading.discard(released)
            return work(token)  # parsing pauses the collector itself, not the download

        self._runner.start(run, done, failed, self.progress_label.setText)

    def _load_ended(self) -> None:
        """A load failed or was cancelled: what it let go is freed; a trace still shown (a
        reload's) takes the info read meanwhile, and without one the view says it has none."""
        self.progress.hide()
        self._discard_released()
        if self.trace is None:
            self.trace_cleared.emit()
        elif self._read is not None:
            self._show_read(self._read)

    def _show(self, loaded: Loaded) -> None:
        layout = loaded.layout
        previous = [self.model.layout] if self.model.layout not in (None, layout) else []
        trace = self.trace = layout.trace
        self.header.show_trace(layout, loaded.cached_at)
        if isinstance(self.assessments, AssessmentList):
            self.assessments.show_info(trace.info)
        count = len(trace.info.assessments)
        self.side.setTabText(1, f"Assessments ({count})" if count else "Assessments")
        self._matches, self._match_pos = [], -1
        self.match_label.setText("")
        self.timeline.set_layout(layout)
        self.tree.setUpdatesEnabled(False)
        self.model.set_layout(layout)
        for node in initial_expansion(layout, INITIAL_ROWS):
            self.tree.expand(self.model.index_of(node))
        self.tree.setUpdatesEnabled(True)
        self.timeline.set_header_height(self.tree.header().height())
        first = self.model.index(0, 0)
        if first.isValid():
            self.tree.setCurrentIndex(first)
        else:
            self.inspector.show_span(None)
        self._sync_rows()
        # Once the new trace is painted: freeing and caching would compete with the first paint.
        if previous:
            QTimer.singleShot(AFTER_PAINT_MS, self, lambda: self._discard(previous))
        if (key := loaded.cache_as) is not None:
            QTimer.singleShot(AFTER_PAINT_MS, self, lambda: self._store(key, trace))
        if self.search.text():
            self._run_search()
        self.trace_shown.emit(trace)
        if self._read is not None:
            self._show_read(self._read)

    def _read_info(self, client: RestClient, trace_id: str) -> None:
        """Read the trace's info (name, state, assessments, tags) beside its spans: the header
        shows it if it comes first; once the spans show, it brings what is said about them now
        (the spans may come from the cache). During a reload it waits for the new copy."""

        def read(fresh: assessment_state.Read) -> None:
            self._read = fresh
            if self.trace is None:
                self.header.show_info(fresh.info)
            elif not self._runner.busy:
                self._show_read(fresh)

        self._info_runner.start(
            lambda token: assessment_state.read_info(client, trace_id, token), read,
            lambda exc: self.status_message.emit(f"Could not read the trace's info and "
                                                 f"assessments: {exc}"))

    def _show_read(self, fresh: assessment_state.Read) -> None:
        if isinstance(self.assessments, AssessmentList):
            self.assessments.show_info(fresh.info)
        count = len(fresh.info.assessments)
        self.side.setTabText(1, f"Assessments ({count})" if count else "Assessments")
        self.info_read.emit(fresh)

    def _show_empty(self) -> None:
        self.pages.setCurrentIndex(0)

    def _release(self) -> list[TreeLayout]:
        """Stop showing the trace; return it in a list for `discard`."""
        assert self.model.layout is not None  # only called with a trace shown
        holder = [self.model.layout]
        self.trace = None
        self._matches, self._match_pos = [], -1
        self.match_label.setText("")
        self.model.set_layout(None)
        self.timeline.set_layout(None)
        self.inspector.show_span(None)
        self.side.setTabText(1, "Assessments")
        self.trace_cleared.emit()
        return holder

    def _discard(self, holder: list[TreeLayout]) -> None:
        self._discard_runner.start(lambda token: loading.discard(holder), lambda _: None)

    def _discard_released(self, delay_ms: int = 0) -> None:
        """Free the trace let go for the last load, in chunks in the background."""
        holder, self._released = self._released, []
        if holder:
            QTimer.singleShot(delay_ms, self, lambda: self._discard(holder))

    def _store(self, key: tuple[str, str], trace: Trace) -> None:
        """Write the trace shown to the cache in the background."""
        if self.trace is not trace:
            return
        cache, holder = self.cache, [trace]
        self._cache_runner.start(
            lambda token: loading.store(cache, key, holder, token), lambda _: None,
            lambda exc: self.status_message.emit(f"Could not cache the trace: {exc}"))

    # -- tree / timeline sync -----------------------------------------------------------------

    def _schedule_rows(self, *_) -> None:
        self._rows_timer.start()

    def _sync_rows(self) -> None:
        """Hand the timeline the nodes of the rows the tree shows, top to bottom."""
        if self.model.layout is None:
            self.timeline.set_rows([], 1)
            return
        index = self.tree.indexAt(QPoint(1, 1))
        row_height = self.tree.rowHeight(index) if index.isValid() else 0
        if row_height <= 0:
            row_height = max(self.tree.sizeHintForRow(0), 1)
        wanted = self.tree.viewport().height() // row_height + 2
        rows: list[int] = []
        while index.isValid() and len(rows) < wanted:
            rows.append(self.model.node(index))
            index = self.tree.indexBelow(index)
        self.timeline.set_header_height(self.tree.header().height())
        self.timeline.set_rows(rows, row_height)

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        layout = self.model.layout
        node = self.model.node(current)
        self.timeline.set_selected(node)
        if layout is None or node < 0 or node == layout.syn:
            self.inspector.show_span(None)
            return
        self.inspector.show_span(layout.trace.spans[node])

    def _step_row(self, delta: int) -> None:
        index = self.tree.currentIndex()
        target = self.tree.indexBelow(index) if delta > 0 else self.tree.indexAbove(index)
        if target.isValid():
            self.tree.setCurrentIndex(target)

    def _expand_all(self) -> None:
        self.tree.keeping_current_in_place(self.tree.expandAll)

    def _collapse_all(self) -> None:
        self.tree.keeping_current_in_place(self.tree.collapseAll)

    def _expand_to_errors(self) -> None:
        count = self.tree.keeping_current_in_place(self.tree.expand_to_errors)
        self.status_message.emit(f"{fmt.plural(count, 'span')} failed." if count
                                 else "No span failed.")

    # -- search -------------------------------------------------------------------------------

    def _focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def _run_search(self) -> None:
        layout, text = self.model.layout, self.search.text().strip()
        if layout is None or not text:
            self._search_runner.cancel()
            self._set_matches([])
            return
        self.match_label.setText("searching…")
        self._search_runner.start(lambda token: layout.search(text, token), self._set_matches,
                                  lambda exc: self.match_label.setText("search failed"))

    def _set_matches(self, matches: list[int]) -> None:
        self._matches = matches
        self._match_pos = -1
        self.model.matches = set(matches)
        self.timeline.set_matches(self.model.matches, -1)
        if matches:
            self._step_match(1)
        else:
            self.model.current_match = -1
            self.match_label.setText("no match" if self.search.text().strip() else "")
            self.tree.viewport().update()

    def _step_match(self, delta: int) -> None:
        if not self._matches:
            return
        self._match_pos = (self._match_pos + delta) % len(self._matches)
        node = self._matches[self._match_pos]
        self.model.current_match = node
        self.timeline.set_matches(self.model.matches, node)
        self.match_label.setText(f"{self._match_pos + 1} of {len(self._matches):,}")
        self.tree.select_node(node)
        self.tree.viewport().update()

    # -- files --------------------------------------------------------------------------------

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open trace", "", "Trace JSON (*.json);;"
                                                                     "All files (*)")
        if path:
            self.open_file(path)

    def _ask_compare(self) -> None:
        if self.trace is None or not self.from_server:
            self.status_message.emit("Open a trace from a workspace to compare it.")
            return
        self.compare_requested.emit(self.trace.info.trace_id)

    def _choose_export(self) -> None:
        if self.trace is None:
            return
        name = f"{self.trace.info.trace_id or 'trace'}.json"
        path, _ = QFileDialog.getSaveFileName(self, "Export trace", name, "Trace JSON (*.json)")
        if path:
            self.export_trace(path)

    def dragEnterEvent(self, event) -> None:
        if _dropped_file(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        path = _dropped_file(event)
        if path is not None:
            event.acceptProposedAction()
            self.open_file(path)


def _dropped_file(event) -> str | None:
    urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
    local = [u.toLocalFile() for u in urls if u.isLocalFile()]
    return local[0] if len(local) == 1 else None
