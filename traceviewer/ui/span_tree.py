"""The span tree: a `QAbstractItemModel` over a trace's arrays, and its view.

`TreeLayout.build(trace)` runs in the background: it derives, with numpy, everything the tree
and the timeline need per span (child lists, row numbers, times relative to the trace start,
span-type styles, the critical path), so the Qt model only indexes lists and never walks the
trace on the GUI thread. Orphan spans (parent not in the trace) hang under one synthetic
"missing parent" node placed after the real roots."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PySide6.QtCore import QAbstractItemModel, QModelIndex, Qt
from PySide6.QtGui import QAction, QBrush, QColor, QFont, QGuiApplication, QIcon
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QMenu, QTreeView

from traceviewer.core.cancel import CancelToken
from traceviewer.core.fmt import duration_ms
from traceviewer.core.model import Trace
from traceviewer.core.otlp import LazyAttributes
from traceviewer.ui.plain import plain_tooltip

ICONS = Path(__file__).resolve().parent.parent / "resources" / "icons"


@dataclass(frozen=True, slots=True)
class SpanStyle:
    """How one family of span types looks in the tree and on the timeline."""

    icon: str
    color: str


STYLES: tuple[SpanStyle, ...] = (
    SpanStyle("unknown", "#7a7f87"),
    SpanStyle("chain", "#3b6fd4"),
    SpanStyle("agent", "#8e44ad"),
    SpanStyle("llm", "#e8710a"),
    SpanStyle("retriever", "#2e9e4f"),
    SpanStyle("tool", "#138d90"),
    SpanStyle("reranker", "#8a8a1c"),
    SpanStyle("parser", "#9c5b2e"),
    SpanStyle("embedding", "#c2457a"),
)
_STYLE_OF_TYPE = {
    "CHAIN": 1, "TASK": 1, "AGENT": 2, "LLM": 3, "CHAT_MODEL": 3, "RETRIEVER": 4, "MEMORY": 4,
    "TOOL": 5, "RERANKER": 6, "PARSER": 7, "EMBEDDING": 8,
}
ERROR_COLOR = "#d93025"
MISSING_PARENT = "missing parent"


def style_index(span_type: str | None) -> int:
    """Index into STYLES for an MLflow span type (unknown types get the neutral style)."""
    return _STYLE_OF_TYPE.get((span_type or "").upper(), 0)


@cache
def span_icon(name: str) -> QIcon:
    """The span-type icon `span-<name>.svg` (loaded once)."""
    return QIcon(str(ICONS / f"span-{name}.svg"))


def format_duration(ns: int | None) -> str:
    """A span duration for display; '…' while the span is still running."""
    return "…" if ns is None else duration_ms(ns / 1e6)


def span_tokens(span) -> int | None:
    """Total tokens a span reports, if any."""
    usage = span.token_usage
    if not usage:
        return None
    total = usage.get("total_tokens")
    if total is None:
        total = (usage.get("input_tokens") or 0) + (usage.get("output_tokens") or 0)
    return int(total)


class TreeLayout:
    """Per-span arrays derived from a Trace for the tree model and the timeline.

    Nodes 0..n-1 are spans; node n is the synthetic "missing parent" node when the trace has
    orphans. Built off the GUI thread."""

    def __init__(self, trace: Trace, token: CancelToken | None = None):
        self.trace = trace
        spans = trace.spans
        n = self.n = len(spans)
        parent = np.frombuffer(trace.parent, dtype=np.int32) if n else np.empty(0, np.int32)
        orphan = np.fromiter((s.orphan for s in spans), dtype=bool, count=n)
        self.has_orphans = bool(orphan.any())
        self.syn = n if self.has_orphans else -1
        self.top = top = n + 1  # the bucket of the top-level nodes
        key = np.where(parent >= 0, parent, np.where(orphan, n, top))
        order = np.argsort(key, kind="stable")  # stable: siblings keep their start order
        starts = np.searchsorted(key[order], np.arange(n + 3))
        row = np.empty(n, dtype=np.int64)
        row[order] = np.arange(n) - starts[key[order]]
        # Node-indexed lists (list indexing is much cheaper than numpy scalars in data()).
        self.kids: list[int] = order.tolist()
        self.child_start: list[int] = starts[:-1].tolist()
        self.child_count: list[int] = np.diff(starts).tolist()
        self.row_of: list[int] = row.tolist()
        self.parent: list[int] = np.where(key == top, -1, key).tolist()
        if self.has_orphans:
            # The top bucket sorts last, so the synthetic node can join it at the end.
            self.kids.append(n)
            self.row_of.append(self.child_count[top])
            self.child_count[top] += 1
            self.parent.append(-1)
        if token:
            token.check()

        # Display order: the real roots' subtrees (pre-order blocks), then the orphans' blocks.
        is_root = parent < 0
        root_of = np.maximum.accumulate(np.where(is_root, np.arange(n), 0)) if n else parent
        in_orphan_tree = orphan[root_of] if n else orphan
        self.display_order = np.concatenate(
            [np.flatnonzero(~in_orphan_tree), np.flatnonzero(in_orphan_tree)])

        t0 = self.t0 = trace.start_ns or 0
        end_fallback = trace.end_ns or t0
        start_ns = np.fromiter((s.start_ns for s in spans), dtype=np.int64, count=n)
        end_ns = np.fromiter((end_fallback if s.end_ns is None else s.end_ns for s in spans),
                             dtype=np.int64, count=n)
        self.open_ended = np.fromiter((s.end_ns is None for s in spans), dtype=bool, count=n)
        self.in_progress = trace.info.state == "IN_PROGRESS" or bool(self.open_ended.any())
        # Relative ms as float64: exact to the µs for traces shorter than years.
        self.x0 = (start_ns - t0) / 1e6
        self.x1 = np.maximum(end_ns - t0, start_ns - t0) / 1e6
        self.total_ms = float(self.x1.max()) if n else 0.0
        self.style = np.fromiter((style_index(s.span_type) for s in spans), dtype=np.int8,
                                 count=n)
        self.error = np.fromiter((s.status == "ERROR" for s in spans), dtype=bool, count=n)
        self.critical = self._critical_path(end_ns)
        self._haystacks: list[str] | None = None

    def children(self, node: int) -> list[int]:
        """Child nodes of a node (the synthetic node's children are the orphans)."""
        start = self.child_start[node]
        return self.kids[start:start + self.child_count[node]]

    def top_nodes(self) -> list[int]:
        """Top-level nodes: the real roots, then the synthetic node if any."""
        return self.children(self.top)

    def ancestors(self, node: int) -> list[int]:
        """Nodes above `node`, nearest first (the synthetic node for orphans)."""
        out = []
        node = self.parent[node]
        while node >= 0:
            out.append(node)
            node = self.parent[node]
        return out

    def _critical_path(self, end_ns: np.ndarray) -> np.ndarray:
        """Spans on the critical path: from the root, repeatedly the child that ends last
        (the one the parent waited for)."""
        marked = np.zeros(self.n, dtype=bool)
        roots = [r for r in self.top_nodes() if r != self.syn] or (
            self.children(self.syn) if self.has_orphans else [])
        if not roots:
            return marked
        node = max(roots, key=lambda i: end_ns[i])
        while True:
            marked[node] = True
            kids = self.children(node)
            if not kids:
                return marked
            node = max(kids, key=lambda i: end_ns[i])

    def search(self, text: str, token: CancelToken | None = None) -> list[int]:
        """Spans whose name, type, attributes (inputs and outputs among them) or events contain
        `text` (case-insensitive), in display order."""
        needle = text.casefold()
        if self._haystacks is None:
            haystacks = []
            for i, span in enumerate(self.trace.spans):
                if token and i % 500 == 0:
                    token.check()
                attrs = span.attributes
                texts = ([attrs.json_text(k) for k in attrs] if isinstance(attrs, LazyAttributes)
                         else [json.dumps(v, default=str) for v in attrs.values()])
                events = [f"{e.name} {json.dumps(dict(e.attributes), default=str)}"
                          for e in span.events]
                fields = (span.name, span.span_type, span.span_id, *attrs, *texts, *events)
                haystacks.append("\n".join(fields).casefold())
            self._haystacks = haystacks
        hay = self._haystacks
        # Attribute texts are JSON: also look for the needle as JSON escapes it (quotes, é).
        escaped = json.dumps(text)[1:-1].casefold()
        return [i for i in self.display_order.tolist() if needle in hay[i] or escaped in hay[i]]


# Roles and flags as plain ints: comparing against PySide6's enum members costs microseconds,
# and data() runs thousands of times per paint.
_DISPLAY, _DECORATION, _TOOLTIP, _FONT, _ALIGNMENT, _BACKGROUND, _FOREGROUND = (
    r.value for r in (Qt.DisplayRole, Qt.DecorationRole, Qt.ToolTipRole, Qt.FontRole,
                      Qt.TextAlignmentRole, Qt.BackgroundRole, Qt.ForegroundRole))
_FLAGS = Qt.ItemIsEnabled | Qt.ItemIsSelectable
_NO_FLAGS = Qt.NoItemFlags
_RIGHT = int((Qt.AlignRight | Qt.AlignVCenter).value)

# Children beyond this many under one parent are added as the view scrolls to them
# (canFetchMore/fetchMore), so expanding a 100k-child node costs no more than this.
FETCH_CHUNK = 500

COLUMNS = ("Name", "Duration", "Start", "Status", "Tokens")
NAME, DURATION, START, STATUS, TOKENS = range(len(COLUMNS))


class SpanTreeModel(QAbstractItemModel):
    """Adapts a TreeLayout to Qt: index ids are node numbers, nothing is stored per span."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.layout: TreeLayout | None = None
        self._shown: dict[int, int] = {}  # parent node -> children exposed, for big parents
        self.matches: set[int] = set()
        self.current_match = -1
        self._error_brush = QBrush(QColor(ERROR_COLOR))
        self._match_brush = QBrush(QColor(255, 221, 87, 110))
        self._current_brush = QBrush(QColor(255, 190, 40, 200))
        self._missing_brush = QBrush(QColor("#7a7f87"))
        self._bold = QFont()
        self._bold.setBold(True)

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
        count = self.layout.child_count[bucket]
        return count if count <= FETCH_CHUNK else self._shown.get(bucket, FETCH_CHUNK)

    def _fetch(self, parent: QModelIndex, bucket: int, at_least: int) -> None:
        shown = self._shown_count(bucket)
        total = self.layout.child_count[bucket]
        new = min(total, max(at_least, shown + FETCH_CHUNK))
        if new <= shown:
            return
        self.beginInsertRows(parent, shown, new - 1)
        self._shown[bucket] = new
        self.endInsertRows()

    def _bucket(self, parent: QModelIndex) -> int:
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
            return span_icon(STYLES[lay.style[node]].icon) if column == NAME else None
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
            return span.name
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
            return span_icon("missing")
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
        self.setVerticalScrollMode(QAbstractItemView.ScrollPerItem)
        self.setSelectionMode(QAbstractItemView.SingleSelection)
        self.setAllColumnsShowFocus(True)
        self.setExpandsOnDoubleClick(True)
        self.setIndentation(14)
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(NAME, QHeaderView.Stretch)
        # Wide enough for the longest usual values ("59 min 59 s", "+59 min 59 s", "ERROR").
        metrics = self.fontMetrics()
        for column, sample in ((DURATION, "59 min 59 s"), (START, "+59 min 59 s"),
                               (STATUS, "ERROR"), (TOKENS, "999,999")):
            header.setSectionResizeMode(column, QHeaderView.Interactive)
            self.setColumnWidth(column, metrics.horizontalAdvance(sample) + 16)
        self.setContextMenuPolicy(Qt.CustomContextMenu)
        self.customContextMenuRequested.connect(self._context_menu)
        self.setToolTip("Spans of the trace. ←/→ collapse and expand, * expands everything "
                        "below the current span.")

    def span_model(self) -> SpanTreeModel:
        return self.model()

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

    def expand_to_errors(self) -> int:
        """Collapse everything, then expand just enough to show every error span."""
        lay = self.span_model().layout
        if lay is None:
            return 0
        self.collapseAll()
        errors = np.flatnonzero(lay.error).tolist()
        needed = {a for node in errors for a in lay.ancestors(node)}
        # Parents before children: an index is only expandable once its parent is.
        for node in sorted(needed, key=lambda a: len(lay.ancestors(a))):
            self.expand(self.span_model().index_of(node))
        if errors:
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

