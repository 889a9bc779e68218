"""The span tree: a `QAbstractItemModel` over the arrays of a `core.trace_layout.TreeLayout`,
and its view. The model only indexes lists and never walks the trace on the GUI thread. Orphan
spans (parent not in the trace) hang under one synthetic "missing parent" node placed after the
real roots."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TypeVar, cast

import numpy as np
from PySide6.QtCore import QAbstractItemModel, QByteArray, QModelIndex, QObject, Qt
from PySide6.QtGui import QAction, QFont, QGuiApplication, QIcon, QImage, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QMenu, QTreeView

from traceviewer.core.terminal import neutralize_bidi
from traceviewer.core.trace_layout import TreeLayout, format_duration, span_tokens
from traceviewer.ui.common import palette
from traceviewer.ui.common.plain import plain_tooltip

T = TypeVar("T")
ICONS = Path(__file__).resolve().parents[2] / "resources" / "icons"
_SVG_COLOUR = re.compile(r"#[0-9a-fA-F]{6}\b")


@dataclass(frozen=True, slots=True)
class SpanStyle:
    """How one family of span types looks in the tree and on the timeline."""

    icon: str
    color: palette.Role


STYLES: tuple[SpanStyle, ...] = (
    SpanStyle("unknown", palette.SPAN_UNKNOWN),
    SpanStyle("chain", palette.SPAN_CHAIN),
    SpanStyle("agent", palette.SPAN_AGENT),
    SpanStyle("llm", palette.SPAN_LLM),
    SpanStyle("retriever", palette.SPAN_RETRIEVER),
    SpanStyle("tool", palette.SPAN_TOOL),
    SpanStyle("reranker", palette.SPAN_RERANKER),
    SpanStyle("parser", palette.SPAN_PARSER),
    SpanStyle("embedding", palette.SPAN_EMBEDDING),
)
MISSING_PARENT = "missing parent"


def span_icon(name: str) -> QIcon:
    """The span-type icon `span-<name>.svg`, in the colours of the current scheme."""
    return _span_icon(name, palette.is_dark())


@cache
def _span_icon(name: str, dark: bool) -> QIcon:
    # The files' colours are placeholders: white is the glyph, any other the family colour.
    svg = (ICONS / f"span-{name}.svg").read_text(encoding="utf-8")
    family = {style.icon: style.color for style in STYLES}.get(name, palette.SPAN_MISSING)
    svg = _SVG_COLOUR.sub(lambda m: (palette.BAR_LABEL if m[0].lower() == palette.BAR_LABEL.light
                                     else family).hex(dark), svg)
    icon = QIcon()
    renderer = QSvgRenderer(QByteArray(svg.encode()))
    for size in (16, 24, 32, 48):
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(0)
        painter = QPainter(image)
        renderer.render(painter)
        painter.end()
        icon.addPixmap(QPixmap.fromImage(image))
    return icon


# Roles and flags as plain ints: comparing against PySide6's enum members costs microseconds,
# and data() runs thousands of times per paint.
_DISPLAY, _DECORATION, _TOOLTIP, _FONT, _ALIGNMENT, _BACKGROUND, _FOREGROUND = (
    r.value for r in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.DecorationRole,
                      Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.FontRole,
                      Qt.ItemDataRole.TextAlignmentRole, Qt.ItemDataRole.BackgroundRole,
                      Qt.ItemDataRole.ForegroundRole))
_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
_NO_FLAGS = Qt.ItemFlag.NoItemFlags
_RIGHT = int((Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter).value)

# Children beyond this many under one parent are added as the view scrolls to them
# (canFetchMore/fetchMore), so expanding a 100k-child node costs no more than this.
FETCH_CHUNK = 500

COLUMNS = ("Name", "Duration", "Start", "Status", "Tokens")
NAME, DURATION, START, STATUS, TOKENS = range(len(COLUMNS))


class SpanTreeModel(QAbstractItemModel):
    """Adapts a TreeLayout to Qt: index ids are node numbers, nothing is stored per span."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.layout: TreeLayout | None = None
        self._shown: dict[int, int] = {}  # parent node -> children exposed, for big parents
        self.matches: set[int] = set()
        self.current_match = -1
        palette.follow(self._colours_changed)
        self._bold = QFont()
        self._bold.setBold(True)

    def _colours_changed(self) -> None:
        self._error_brush = palette.SPAN_ERROR.brush()
        self._match_brush = palette.MATCH_ROW.brush()
        self._current_brush = palette.CURRENT_MATCH_ROW.brush()
        self._missing_brush = palette.SPAN_MISSING.brush()
        self._icons = [span_icon(style.icon) for style in STYLES]
        self._missing_icon = span_icon("missing")
        if self.layout is not None and self.rowCount():  # icons and text colours: repaint
            self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1,
                                                               len(COLUMNS) - 1))

    def set_layout(self, layout: TreeLayout | None) -> None:
        """Show another trace (None: empty)."""
        self.beginResetModel()
        self.layout = layout
        self._shown = {}
        self.matches, self.current_match = set(), -1
        self.endResetModel()

    def node(self, index: QModelIndex) -> int:
        """The node of an index, or -1 for the invalid index."""
        return index.internalId() if index.isValid() else -1

    def index_of(self, node: int, column: int = 0) -> QModelIndex:
        """The model index of a node, fetching its siblings up to it if needed."""
        lay = self.layout
        if lay is None or node < 0:
            return QModelIndex()
        parent = lay.parent[node]
        row = lay.row_of[node]
        bucket = lay.top if parent < 0 else parent
        if row >= self._shown_count(bucket):
            parent_index = QModelIndex() if parent < 0 else self.index_of(parent)
            self._fetch(parent_index, bucket, row + 1)
        return self.createIndex(row, column, node)

    def _shown_count(self, bucket: int) -> int:
        assert self.layout is not None  # rows are only counted, fetched, indexed with a layout
        count = self.layout.child_count[bucket]
        return count if count <= FETCH_CHUNK else self._shown.get(bucket, FETCH_CHUNK)

    def _fetch(self, parent: QModelIndex, bucket: int, at_least: int) -> None:
        shown = self._shown_count(bucket)
        assert self.layout is not None
        total = self.layout.child_count[bucket]
        new = min(total, max(at_least, shown + FETCH_CHUNK))
        if new <= shown:
            return
        self.beginInsertRows(parent, shown, new - 1)
        self._shown[bucket] = new
        self.endInsertRows()

    def _bucket(self, parent: QModelIndex) -> int:
        assert self.layout is not None
        return parent.internalId() if parent.isValid() else self.layout.top

    # QAbstractItemModel ------------------------------------------------------------------

    def index(self, row, column, parent=QModelIndex()):  # noqa: B008 (Qt's signature)
        lay = self.layout
        if lay is None or row < 0 or not 0 <= column < len(COLUMNS):
            return QModelIndex()
        bucket = self._bucket(parent)
        if row >= self._shown_count(bucket):
            return QModelIndex()
        return self.createIndex(row, column, lay.kids[lay.child_start[bucket] + row])

    def parent(self, index=QModelIndex()):  # noqa: B008
        lay = self.layout
        if lay is None or not index.isValid():
            return QModelIndex()
        p = lay.parent[index.internalId()]
        return QModelIndex() if p < 0 else self.createIndex(lay.row_of[p], 0, p)

    def rowCount(self, parent=QModelIndex()):  # noqa: B008
        if self.layout is None or parent.column() > 0:
            return 0
        return self._shown_count(self._bucket(parent))

    def hasChildren(self, parent=QModelIndex()):  # noqa: B008
        if self.layout is None or parent.column() > 0:
            return False
        return self.layout.child_count[self._bucket(parent)] > 0

    def canFetchMore(self, parent=QModelIndex()):  # noqa: B008
        if self.layout is None or parent.column() > 0:
            return False
        bucket = self._bucket(parent)
        return self._shown_count(bucket) < self.layout.child_count[bucket]

    def fetchMore(self, parent=QModelIndex()):  # noqa: B008
        if self.layout is not None:
            self._fetch(parent, self._bucket(parent), 0)

    def columnCount(self, parent=QModelIndex()):  # noqa: B008
        return len(COLUMNS)

    def headerData(self, section, orientation, role=_DISPLAY):
        if orientation == Qt.Horizontal and role == _DISPLAY:
            return COLUMNS[section]
        return None

    def flags(self, index):
        return _FLAGS if index.isValid() else _NO_FLAGS

    def data(self, index, role=_DISPLAY):
        lay = self.layout
        if lay is None or not index.isValid():
            return None
        node, column = index.internalId(), index.column()
        if node == lay.syn:
            return self._missing_data(column, role)
        if role == _DISPLAY:
            return self._text(lay, node, column)
        if role == _DECORATION:
            return self._icons[lay.style[node]] if column == NAME else None
        if role == _FOREGROUND:
            return self._error_brush if lay.error[node] else None
        if role == _FONT:
            return self._bold if lay.error[node] and column in (NAME, STATUS) else None
        if role == _BACKGROUND:
            if node not in self.matches:
                return None
            return self._current_brush if node == self.current_match else self._match_brush
        if role == _ALIGNMENT:
            return _RIGHT if column in (DURATION, START, TOKENS) else None
        if role == _TOOLTIP and column == NAME:
            span = lay.trace.spans[node]
            return plain_tooltip(f"{span.name}\n{span.span_type} · {span.span_id}")
        return None

    @staticmethod
    def _text(lay: TreeLayout, node: int, column: int) -> str | None:
        span = lay.trace.spans[node]
        if column == NAME:
            return neutralize_bidi(span.name)
        if column == DURATION:
            return format_duration(span.duration_ns)
        if column == START:
            return f"+{format_duration(span.start_ns - lay.t0)}"
        if column == STATUS:
            return span.status
        tokens = span_tokens(span)
        return None if tokens is None else f"{tokens:,}"

    def _missing_data(self, column: int, role: int):
        if role == _DISPLAY and column == NAME:
            return MISSING_PARENT
        if role == _DECORATION and column == NAME:
            return self._missing_icon
        if role == _FOREGROUND:
            return self._missing_brush
        if role == _TOOLTIP:
            return ("Spans whose parent is not in this trace (still running, or lost in "
                    "export).")
        return None


class SpanTreeView(QTreeView):
    """Tree view tuned for very large span trees: uniform rows, one row per scroll step."""

    def __init__(self, model: SpanTreeModel, parent=None):
        super().__init__(parent)
        self.setModel(model)
        self.setUniformRowHeights(True)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerItem)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAllColumnsShowFocus(True)
        self.setExpandsOnDoubleClick(True)
        self.setIndentation(14)
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        # Wide enough for the longest usual values ("59 min 59 s", "+59 min 59 s", "ERROR").
        metrics = self.fontMetrics()
        for column, sample in ((DURATION, "59 min 59 s"), (START, "+59 min 59 s"),
                               (STATUS, "ERROR"), (TOKENS, "999,999")):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            self.setColumnWidth(column, metrics.horizontalAdvance(sample) + 16)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._context_menu)
        self.setToolTip("Spans of the trace. ←/→ collapse and expand, * expands everything "
                        "below the current span.")

    def span_model(self) -> SpanTreeModel:
        return cast(SpanTreeModel, self.model())

    def select_node(self, node: int) -> None:
        """Select a node, expanding its ancestors and scrolling it into view."""
        model = self.span_model()
        if model.layout is None:
            return
        for ancestor in reversed(model.layout.ancestors(node)):
            self.expand(model.index_of(ancestor))
        index = model.index_of(node)
        self.setCurrentIndex(index)
        self.scrollTo(index)

    def scroll_node_to_top(self, node: int) -> None:
        """Show a node at the top of the viewport, expanding its ancestors (the overview strip
        was dragged there)."""
        model = self.span_model()
        if model.layout is None or node < 0:
            return
        for ancestor in reversed(model.layout.ancestors(node)):
            self.expand(model.index_of(ancestor))
        self.scrollTo(model.index_of(node), QAbstractItemView.ScrollHint.PositionAtTop)

    def shown_node(self, node: int) -> int:
        """The node itself when its row is shown, else its collapsed ancestor that is."""
        model = self.span_model()
        assert model.layout is not None
        for ancestor in reversed(model.layout.ancestors(node)):
            if not self.isExpanded(model.index_of(ancestor)):
                return ancestor
        return node

    def keeping_current_in_place(self, change: Callable[[], T]) -> T:
        """Run `change` (expand or collapse rows), then scroll so the current span's row (or,
        when it was collapsed away, its ancestor's) is where the current row was on screen."""
        model = self.span_model()
        index = self.currentIndex()
        before = self.visualRect(index).top() if index.isValid() else -1
        result = change()
        node = model.node(self.currentIndex())
        if model.layout is None or node < 0:
            return result
        shown = self.shown_node(node)
        target = model.index_of(shown)
        if shown != node:
            self.setCurrentIndex(target)
        height = max(self.rowHeight(target), 1)
        if not 0 <= before <= self.viewport().height() - height:
            before = (self.viewport().height() - height) // 2  # was off screen: the middle
        now = self.visualRect(target).top()
        bar = self.verticalScrollBar()
        bar.setValue(bar.value() + round((now - before) / height))
        return result

    def expand_to_errors(self) -> int:
        """Collapse everything, then expand just enough to show every error span and the
        current span, which stays current (with none, the first error span becomes it)."""
        model = self.span_model()
        lay = model.layout
        if lay is None:
            return 0
        current = model.node(self.currentIndex())
        self.collapseAll()
        errors = np.flatnonzero(lay.error).tolist()
        shown = errors + ([current] if current >= 0 else [])
        needed = {a for node in shown for a in lay.ancestors(node)}
        # Parents before children: an index is only expandable once its parent is.
        for node in sorted(needed, key=lambda a: len(lay.ancestors(a))):
            self.expand(model.index_of(node))
        if current < 0 and errors:
            self.select_node(errors[0])
        return len(errors)

    def _context_menu(self, pos) -> None:
        model = self.span_model()
        node = model.node(self.indexAt(pos))
        if model.layout is None or node < 0 or node == model.layout.syn:
            return
        span = model.layout.trace.spans[node]
        menu = QMenu(self)
        for label, value in (("Copy span name", span.name), ("Copy span id", span.span_id)):
            action = QAction(label, menu)
            action.triggered.connect(lambda _=False, v=value: QGuiApplication.clipboard()
                                     .setText(v))
            menu.addAction(action)
        menu.addSeparator()
        for label, slot in (("Expand all below", lambda: self.expandRecursively(
                self.indexAt(pos))), ("Collapse all", self.collapseAll)):
            action = QAction(label, menu)
            action.triggered.connect(slot)
            menu.addAction(action)
        menu.exec(self.viewport().mapToGlobal(pos))

