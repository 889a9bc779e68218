"""The trace compare view: two traces aligned span by span (`core.trace_diff`) as one merged
tree with two duration bars per row (A above, B below, coloured by the pair's status), the
whole-trace summary above it and the text diff of the selected pair below.

Loading both traces and diffing them runs in the background through one `TaskRunner`
(`core.trace_compare.compare`): a new comparison cancels the one in flight. The item model only
indexes the arrays `core.trace_compare` derived; n / p (F8 / Shift+F8) step through the
differences, and "Only differences" hides the pairs that are the same (keeping those above a
difference)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRectF,
    QStringListModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QAction, QKeySequence, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from traceviewer.core import fmt
from traceviewer.core.app_model import AppModel
from traceviewer.core.cache import TraceCache
from traceviewer.core.client import RestClient
from traceviewer.core.errors import NotFound
from traceviewer.core.model import TraceInfo
from traceviewer.core.terminal import neutralize_bidi
from traceviewer.core.trace_compare import Compared, MergedTree, compare
from traceviewer.core.trace_diff import Pair, Status, text_diff
from traceviewer.ui.common import palette
from traceviewer.ui.common.banner import ErrorBanner
from traceviewer.ui.common.plain import copy_text, plain_label, plain_tooltip
from traceviewer.ui.common.tasks import TaskRunner

COLUMNS = ("Span", "Status", "A", "B", "Δ duration", "Δ tokens", "Durations (A above, B below)")
NAME, STATUS, A_DURATION, B_DURATION, DURATION_DELTA, TOKEN_DELTA, BARS = range(len(COLUMNS))
STATUS_TEXT = {Status.SAME: "same", Status.CHANGED: "changed", Status.ONLY_A: "only in A",
               Status.ONLY_B: "only in B"}
STATUS_COLOUR = {Status.SAME: palette.DIFF_SAME, Status.CHANGED: palette.DIFF_CHANGED,
                 Status.ONLY_A: palette.DIFF_ONLY_A, Status.ONLY_B: palette.DIFF_ONLY_B}
# A tree of this many rows or fewer opens fully expanded; a bigger one shows its first levels.
EXPAND_ALL_ROWS = 2000

_DISPLAY, _FOREGROUND, _ALIGNMENT, _TOOLTIP = (
    r.value for r in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ForegroundRole,
                      Qt.ItemDataRole.TextAlignmentRole, Qt.ItemDataRole.ToolTipRole))
_RIGHT = int((Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter).value)
_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable


def status_text(pair: Pair) -> str:
    """'changed (status, inputs)', 'only in A', …"""
    text = STATUS_TEXT[pair.status]
    return f"{text} ({', '.join(pair.changes)})" if pair.changes else text


class CompareModel(QAbstractItemModel):
    """The merged tree of a comparison: index ids are pair numbers (`TraceDiff.pairs`)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.compared: Compared | None = None
        self.tree: MergedTree | None = None
        palette.follow(self._colours_changed)

    def _colours_changed(self) -> None:
        self.brushes = {status: role.brush() for status, role in STATUS_COLOUR.items()}
        if self.tree is not None and self.tree.roots:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.tree.roots) - 1,
                                                               len(COLUMNS) - 1))

    def set_compared(self, compared: Compared | None, only_differences: bool = False) -> None:
        """Show a comparison (None: nothing), all its pairs or only the differences."""
        self.beginResetModel()
        self.compared = compared
        self.tree = None if compared is None else (
            compared.differences_tree if only_differences else compared.tree)
        self.endResetModel()

    def pair(self, index: QModelIndex) -> int:
        """The pair number of an index, -1 for the invalid index."""
        return index.internalId() if index.isValid() else -1

    def index_of(self, pair: int, column: int = 0) -> QModelIndex:
        tree = self.tree
        if tree is None or pair < 0 or tree.row[pair] < 0:
            return QModelIndex()
        return self.createIndex(tree.row[pair], column, pair)

    # QAbstractItemModel ------------------------------------------------------------------

    def index(self, row, column, parent=QModelIndex()):  # noqa: B008 (Qt's signature)
        tree = self.tree
        if tree is None or not 0 <= column < len(COLUMNS):
            return QModelIndex()
        siblings = tree.children(self.pair(parent))
        if not 0 <= row < len(siblings):
            return QModelIndex()
        return self.createIndex(row, column, siblings[row])

    def parent(self, index=QModelIndex()):  # noqa: B008
        tree = self.tree
        if tree is None or not index.isValid():
            return QModelIndex()
        p = tree.parent[index.internalId()]
        return QModelIndex() if p < 0 else self.createIndex(tree.row[p], 0, p)

    def rowCount(self, parent=QModelIndex()):  # noqa: B008
        if self.tree is None or parent.column() > 0:
            return 0
        return len(self.tree.children(self.pair(parent)))

    def columnCount(self, parent=QModelIndex()):  # noqa: B008
        return len(COLUMNS)

    def hasChildren(self, parent=QModelIndex()):  # noqa: B008
        return self.rowCount(parent) > 0

    def flags(self, index):
        return _FLAGS if index.isValid() else Qt.ItemFlag.NoItemFlags

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        compared = self.compared
        if compared is None or not index.isValid():
            return None
        role = role.value if hasattr(role, "value") else role
        pair = compared.diff.pairs[index.internalId()]
        column = index.column()
        if role == _DISPLAY:
            return self._text(pair, column)
        if role == _FOREGROUND and column == STATUS:
            return self.brushes[pair.status]
        if role == _ALIGNMENT and column in (A_DURATION, B_DURATION, DURATION_DELTA,
                                             TOKEN_DELTA):
            return _RIGHT
        if role == _TOOLTIP and column in (NAME, STATUS):
            return plain_tooltip(f"{pair.path}\n{status_text(pair)}")
        return None

    def _text(self, pair: Pair, column: int) -> str:
        assert self.compared is not None
        result = self.compared.diff
        if column == NAME:
            span = result.span(pair, "a") or result.span(pair, "b")
            return neutralize_bidi(span.name) if span is not None else ""
        if column == STATUS:
            return status_text(pair)
        if column in (A_DURATION, B_DURATION):
            span = result.span(pair, "a" if column == A_DURATION else "b")
            d = None if span is None else span.duration_ns
            return "" if span is None else ("…" if d is None else fmt.duration_ms(d / 1e6))
        if column == DURATION_DELTA:
            return fmt.signed_duration_ms(pair.duration_delta_ms)
        if column == TOKEN_DELTA:
            return f"{pair.token_delta:+,}" if pair.token_delta else ""
        return ""


class BarsDelegate(QStyledItemDelegate):
    """Paints a row's two duration bars (A in the upper half, B in the lower) on the
    comparison's one time scale, in the colour of the pair's status."""

    def __init__(self, model: CompareModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._model = model

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        self.initStyleOption(option, index)
        widget = option.widget
        style = widget.style() if widget is not None else None
        if style is not None:  # the row's background and selection, no text
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, option, painter, widget)
        compared = self._model.compared
        if compared is None or not index.isValid():
            return
        i = index.internalId()
        brush = self._model.brushes[compared.diff.pairs[i].status]
        rect = QRectF(option.rect).adjusted(4, 3, -4, -3)
        half = rect.height() / 2
        bars = compared.bars
        painter.save()
        painter.setPen(Qt.PenStyle.NoPen)
        for top, start, end in ((rect.top(), bars.a_start[i], bars.a_end[i]),
                                (rect.top() + half + 1, bars.b_start[i], bars.b_end[i])):
            if start != start:  # NaN: no span on this side
                continue
            x = rect.left() + start * rect.width()
            width = max((end - start) * rect.width(), 2.0)
            painter.fillRect(QRectF(x, top, width, half - 1), brush)
        painter.restore()


class CompareTree(QTreeView):
    """The merged tree; right-click copies span ids."""

    def __init__(self, model: CompareModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.setUniformRowHeights(True)
        self.setAllColumnsShowFocus(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setItemDelegateForColumn(BARS, BarsDelegate(model, self))
        header = self.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for column, width in ((NAME, 240), (STATUS, 230), (A_DURATION, 70), (B_DURATION, 70),
                              (DURATION_DELTA, 80), (TOKEN_DELTA, 70)):
            self.setColumnWidth(column, width)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)

    def _menu(self, pos) -> None:
        menu = self.context_menu(self.indexAt(pos))
        if menu is not None:
            menu.exec(self.viewport().mapToGlobal(pos))

    def context_menu(self, index: QModelIndex) -> QMenu | None:
        """The row's menu: copy its span id in A or in B, or its path."""
        model = self.model()
        assert isinstance(model, CompareModel)
        if model.compared is None or not index.isValid():
            return None
        result = model.compared.diff
        pair = result.pairs[model.pair(index)]
        menu = QMenu(self)
        for side in ("a", "b"):
            span = result.span(pair, side)
            action = menu.addAction(f"Copy span ID in {side.upper()}")
            if span is None:
                action.setEnabled(False)
            else:
                action.triggered.connect(lambda _c=False, s=span.span_id: copy_text(s))
        menu.addAction("Copy path", lambda: copy_text(pair.path))
        return menu


class CompareView(QWidget):
    """Two traces compared. See the module docstring."""

    status_message = Signal(str)
    compared_shown = Signal(object)  # the Compared, once the tree shows it
    compare_failed = Signal(str)

    def __init__(self, parent: QWidget | None = None, cache: TraceCache | None = None,
                 app_model: AppModel | None = None) -> None:
        super().__init__(parent)
        self.cache = cache or TraceCache()
        self.compared: Compared | None = None
        # A retry goes through the workspace's current client (a switch closes the one before).
        self._app_model = app_model
        self._request: tuple[str, str] | None = None  # trace ids A and B
        self._client: RestClient | None = None  # the last client given, without an app model
        self._runner = TaskRunner(self)
        self._diff_runner = TaskRunner(self)

        self.banner = ErrorBanner()
        self.model = CompareModel(self)
        self.tree = CompareTree(self.model)
        self.text_diff = QPlainTextEdit()
        self.text_diff.setReadOnly(True)
        self.text_diff.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text_diff.setPlaceholderText("Select a span to see how its inputs, outputs and "
                                          "chat messages differ.")
        self.summary = plain_label()
        self.counts = plain_label()
        self._build_progress()
        self._build_toolbar()
        self._build_layout()
        self.tree.selectionModel().currentChanged.connect(self._current_changed)

    # -- construction -------------------------------------------------------------------------

    def _build_progress(self) -> None:
        self.progress_label = QLabel()
        self.progress_label.setTextFormat(Qt.TextFormat.PlainText)
        bar = QProgressBar()
        bar.setRange(0, 0)
        bar.setMaximumWidth(160)
        self.cancel_button = cancel = QPushButton("Cancel")
        cancel.setToolTip("Stop comparing (Esc)")
        cancel.clicked.connect(self.cancel)
        escape = QAction(self, shortcut=QKeySequence(Qt.Key.Key_Escape))
        escape.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        escape.triggered.connect(self.cancel)
        self.addAction(escape)
        self.progress = QWidget()
        row = QHBoxLayout(self.progress)
        row.setContentsMargins(4, 0, 4, 0)
        row.addWidget(bar)
        row.addWidget(self.progress_label, 1)
        row.addWidget(cancel)
        self.progress.hide()

    def _step_action(self, text: str, keys: Sequence[str], forward: bool) -> QAction:
        action = QAction(text, self)
        action.setShortcuts([QKeySequence(k) for k in keys])
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.setToolTip(f"{text} ({' or '.join(keys)})")
        action.triggered.connect(lambda: self.step_difference(forward))
        self.addAction(action)
        return action

    def _build_toolbar(self) -> None:
        self.only_differences = QCheckBox("Only differences")
        self.only_differences.setToolTip("Hide the spans that are the same in A and B (those "
                                         "above a difference stay)")
        self.only_differences.toggled.connect(self._filter_changed)
        self.next_action = self._step_action("Next difference", ("N", "F8"), True)
        self.prev_action = self._step_action("Previous difference", ("P", "Shift+F8"), False)
        self.toolbar = QHBoxLayout()
        self.toolbar.addWidget(self.only_differences)
        for action in (self.prev_action, self.next_action):
            button = QToolButton()
            button.setDefaultAction(action)
            self.toolbar.addWidget(button)
        self.toolbar.addStretch(1)

    def _build_layout(self) -> None:
        self.empty = plain_label("No comparison open.\n\nSelect two traces in the trace table "
                                 "and press Ctrl+D, or use Compare with… in the Trace tab.",
                                 False)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        palette.set_style(self.empty, "color: $MUTED_TEXT")
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.tree)
        split.addWidget(self.text_diff)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        content = QWidget()
        box = QVBoxLayout(content)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.summary)
        box.addWidget(self.counts)
        box.addLayout(self.toolbar)
        box.addWidget(split, 1)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.empty)
        self.pages.addWidget(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.banner)
        layout.addWidget(self.progress)
        layout.addWidget(self.pages, 1)

    # -- comparing ----------------------------------------------------------------------------

    def compare(self, client: RestClient, a_id: str, b_id: str) -> None:
        """Load traces A and B (from the cache when there) and compare them in the
        background; a comparison in flight is cancelled."""
        self._request = (a_id, b_id)
        self._client = client if self._app_model is None else None
        cache = self.cache
        self.banner.hide()
        self.progress_label.setText(f"Comparing {a_id} with {b_id}…")
        self.progress.show()
        self.cancel_button.setFocus()  # Esc cancels: the focus must be in this view
        self._runner.start(lambda token: compare(client, a_id, b_id, cache, token),
                           self._done, self._failed, self._progress)

    def retry(self) -> None:
        """Run the last comparison again (through the workspace's current client)."""
        client = self._client if self._app_model is None else self._app_model.client
        if self._request is not None and client is not None:
            self.compare(client, *self._request)

    def cancel(self) -> None:
        """Stop the comparison in flight."""
        if self._runner.busy:
            self._runner.cancel()
            self.progress.hide()
            self.status_message.emit("Comparison cancelled.")

    def _progress(self, value: object) -> None:
        self.progress_label.setText(value if isinstance(value, str)
                                    else f"Comparing… {value:,} spans aligned")

    def _done(self, compared: Compared) -> None:
        self.progress.hide()
        self.banner.succeeded("compare")
        self.show_compared(compared)

    def _failed(self, exc: Exception) -> None:
        self.progress.hide()
        ids = f"{self._request[0]} with {self._request[1]}" if self._request else "the traces"
        hint = ("Check that both trace IDs belong to this workspace." if isinstance(exc, NotFound)
                else "Retry once the server answers.")
        self.banner.show_error(f"Could not compare {ids}: {exc} {hint}", self.retry,
                               source="compare")
        self.compare_failed.emit(str(exc))

    def show_compared(self, compared: Compared) -> None:
        """Show a comparison: summary, merged tree (first difference selected) and its text
        diff."""
        self.compared = compared
        self.pages.setCurrentIndex(1)
        s = compared.summary
        self.summary.setText(
            f"A {s.a_id} {s.a_name}  ({fmt.duration_ms(s.a_duration_ms) or '?'})   vs   "
            f"B {s.b_id} {s.b_name}  ({fmt.duration_ms(s.b_duration_ms) or '?'})")
        totals = [f"duration {fmt.signed_duration_ms(s.duration_delta_ms) or 'unknown'}"]
        if s.token_delta is not None:
            totals.append(f"tokens {s.token_delta:+,}")
        self.counts.setText(" · ".join([*(f"{fmt.plural(s.counts[status], 'span')} "
                                          f"{STATUS_TEXT[status]}" for status in Status),
                                        *totals]))
        self._show_tree()
        self.compared_shown.emit(compared)

    def _show_tree(self) -> None:
        compared = self.compared
        if compared is None:
            return
        self.tree.setUpdatesEnabled(False)
        self.model.set_compared(compared, self.only_differences.isChecked())
        if len(compared.diff.pairs) <= EXPAND_ALL_ROWS:
            self.tree.expandAll()
        else:
            self.tree.expandToDepth(1)
        self.tree.setUpdatesEnabled(True)
        tree = self.model.tree
        assert tree is not None
        first = tree.step(-1, True)
        index = self.model.index_of(first) if first >= 0 else self.model.index(0, 0)
        if index.isValid():
            self._select(index)
        else:
            self.text_diff.clear()

    def _filter_changed(self, _on: bool) -> None:
        keep = self.model.pair(self.tree.currentIndex())
        self._show_tree()
        index = self.model.index_of(keep)
        if index.isValid():
            self._select(index)

    # -- navigation and the text diff ---------------------------------------------------------

    def current_pair(self) -> int:
        """The selected pair (-1: none)."""
        return self.model.pair(self.tree.currentIndex())

    def step_difference(self, forward: bool) -> None:
        """Select the next (or previous) difference in tree order, wrapping around."""
        tree = self.model.tree
        if tree is None:
            return
        target = tree.step(self.current_pair(), forward)
        if target < 0:
            self.status_message.emit("A and B do not differ.")
            return
        self._select(self.model.index_of(target))

    def _select(self, index: QModelIndex) -> None:
        self.tree.setCurrentIndex(index)
        self.tree.scrollTo(index)  # expands its parents too

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        compared = self.model.compared
        if compared is None or not current.isValid():
            self.text_diff.clear()
            return
        result = compared.diff
        pair = result.pairs[self.model.pair(current)]
        a, b = result.span(pair, "a"), result.span(pair, "b")
        self._diff_runner.start(lambda token: text_diff(a, b), self._show_text_diff,
                                lambda exc: self.text_diff.setPlainText(
                                    f"Could not diff this span: {exc}"))

    def _show_text_diff(self, text: str) -> None:
        self.text_diff.setPlainText(neutralize_bidi(text, one_line=False) if text else
                                    "Inputs, outputs and chat messages are the same in A and B.")


class CompareWithDialog(QDialog):
    """Asks for the trace to compare the open one with: a pasted trace id, or one of the traces
    loaded in the trace table."""

    def __init__(self, current: str, loaded: Sequence[TraceInfo],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compare with…")
        self._ids = [t.trace_id for t in loaded if t.trace_id != current]
        names = {t.trace_id: t for t in loaded}
        self.id_edit = QLineEdit(placeholderText="Trace ID (tr-…)")
        self.list = QListView()
        self.list.setModel(QStringListModel([
            neutralize_bidi(f"{fmt.timestamp_ms(names[i].request_time_ms)}  {i}  "
                            f"{names[i].name or ''}") for i in self._ids], self))
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list.selectionModel().currentChanged.connect(
            lambda index, _p: self.id_edit.setText(self._ids[index.row()]))
        self.list.doubleClicked.connect(self.accept)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText("Compare")
        ok.setEnabled(False)
        self.id_edit.textChanged.connect(lambda text: ok.setEnabled(bool(text.strip())))
        layout = QVBoxLayout(self)
        layout.addWidget(plain_label(f"Compare {current} (A) with trace B:", False))
        layout.addWidget(self.id_edit)
        layout.addWidget(plain_label("or pick one of the traces loaded in the trace table:",
                                     False))
        layout.addWidget(self.list, 1)
        layout.addWidget(buttons)
        self.resize(560, 420)

    def chosen_id(self) -> str:
        return self.id_edit.text().strip()
