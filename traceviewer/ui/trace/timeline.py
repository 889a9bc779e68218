"""The timeline (waterfall): one pyqtgraph GraphicsObject that paints the bars of the spans the
span tree shows right now, row for row, so tree and timeline line up.

The tree owns the vertical position: the timeline is handed the nodes of the tree's visible rows
(`set_rows`) and a y range of exactly that many rows, and asks the tree to scroll when the wheel
turns over it. The timeline owns the time axis: milliseconds since the trace start, zoomed with
Ctrl+wheel or +/-, panned by dragging or with the arrow keys."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QVBoxLayout, QWidget

from traceviewer.core.fmt import duration_ms
from traceviewer.core.trace_layout import TreeLayout, format_duration
from traceviewer.ui.common import palette
from traceviewer.ui.common.plain import plain_tooltip
from traceviewer.ui.trace.span_tree import STYLES

BAR_TOP, BAR_BOTTOM = 0.18, 0.82  # of a row
LABEL_MIN_PX = 36  # narrower bars get their label beside them


class TimeAxis(pg.AxisItem):
    """Tick labels as durations since the trace start."""

    def tickStrings(self, values, scale, spacing):
        return [duration_ms(v * scale) if v >= 0 else "" for v in values]


class SpanBars(pg.GraphicsObject):
    """Paints one bar per displayed row, grouped by brush (one drawRects call per colour)."""

    def __init__(self) -> None:
        super().__init__()
        self.layout: TreeLayout | None = None
        self.rows: list[int] = []
        self.selected = -1
        self.matches: set[int] = set()
        self.current_match = -1
        self._font = QFont()
        self._font.setPointSizeF(max(7.0, self._font.pointSizeF() - 1))
        self._metrics = QFontMetrics(self._font)
        self.setAcceptHoverEvents(True)
        palette.follow(self.colours_changed)

    def colours_changed(self) -> None:
        """Take the brushes and pens from the palette's current scheme, and repaint."""
        self._brushes = [s.color.brush() for s in STYLES]
        self._open_brushes = [QBrush(palette.faded(s.color)) for s in STYLES]
        self._error_brush = palette.SPAN_ERROR.brush()
        self._critical_pen = QPen(palette.CRITICAL_PATH.color(), 2)
        self._selected_pen = QPen(palette.SELECTED.color(), 3)
        self._match_pen = QPen(palette.MATCH.color(), 2)
        self._on_bar = palette.BAR_LABEL.color()
        self._on_open_bar = palette.TEXT.color()
        self._beside_bar = palette.SECONDARY_TEXT.color()
        self.update()

    def set_layout(self, layout: TreeLayout | None) -> None:
        self.prepareGeometryChange()
        self.layout, self.rows, self.selected = layout, [], -1
        self.matches, self.current_match = set(), -1
        self.update()

    def set_rows(self, rows: list[int]) -> None:
        self.prepareGeometryChange()
        self.rows = rows
        self.update()

    def boundingRect(self) -> QRectF:
        total = self.layout.total_ms if self.layout else 0.0
        return QRectF(0.0, 0.0, max(total, 1e-3), float(max(len(self.rows), 1)))

    def node_at(self, pos: QPointF) -> int:
        """The span node of the row under an item-coordinate point, or -1."""
        row = int(pos.y())
        if self.layout is None or not 0 <= row < len(self.rows) or pos.y() < 0:
            return -1
        node = self.rows[row]
        return -1 if node == self.layout.syn else node

    def paint(self, p: QPainter, *args) -> None:
        lay = self.layout
        if lay is None or not self.rows:
            return
        t = p.transform()
        sx, dx, sy, dy = t.m11(), t.m31(), t.m22(), t.m32()
        p.resetTransform()  # paint in device pixels: crisp 1 px minimum widths, readable text
        # The visible time window in device pixels (the painter may cover more than the plot).
        (t0, t1), _ = self.getViewBox().viewRange()
        edges = (t0 * sx + dx, t1 * sx + dx)
        rows = [(k, node) for k, node in enumerate(self.rows) if node != lay.syn]
        if not rows:
            return
        ks = np.array([k for k, _ in rows], dtype=np.float64)
        nodes = np.array([node for _, node in rows], dtype=np.int64)
        left = lay.x0[nodes] * sx + dx
        right = np.maximum(lay.x1[nodes] * sx + dx, left + 1.0)
        y_a, y_b = (ks + BAR_TOP) * sy + dy, (ks + BAR_BOTTOM) * sy + dy
        top, height = np.minimum(y_a, y_b), np.abs(y_b - y_a)
        rects = [QRectF(a, b, c - a, h) for a, b, c, h in
                 zip(left.tolist(), top.tolist(), right.tolist(), height.tolist(), strict=True)]

        p.setPen(Qt.PenStyle.NoPen)
        error = lay.error[nodes]
        open_ended = lay.open_ended[nodes]
        styles = lay.style[nodes]
        groups: dict[int, list[QRectF]] = {}
        for j, rect in enumerate(rects):
            key = -1 if error[j] else int(styles[j]) + (100 if open_ended[j] else 0)
            groups.setdefault(key, []).append(rect)
        for key, group in groups.items():
            if key == -1:
                p.setBrush(self._error_brush)
            elif key >= 100:
                p.setBrush(self._open_brushes[key - 100])
            else:
                p.setBrush(self._brushes[key])
            p.drawRects(group)

        p.setBrush(Qt.BrushStyle.NoBrush)
        critical = [r for j, r in enumerate(rects) if lay.critical[nodes[j]]]
        if critical:
            p.setPen(self._critical_pen)
            p.drawRects(critical)
        for pen, wanted in ((self._match_pen, self.matches), (self._selected_pen, {self.selected})):
            marked = [r for j, r in enumerate(rects) if int(nodes[j]) in wanted]
            if marked:
                p.setPen(pen)
                p.drawRects(marked)
        self._paint_labels(p, rects, nodes, min(edges), max(edges))

    def _paint_labels(self, p: QPainter, rects: list[QRectF], nodes: np.ndarray,
                      first: float, last: float) -> None:
        p.setFont(self._font)
        lay = self.layout
        assert lay is not None  # only painted with a layout
        spans = lay.trace.spans
        open_ended, error = lay.open_ended, lay.error
        for rect, node in zip(rects, nodes.tolist(), strict=True):
            if rect.height() < self._metrics.height() - 2 or not (
                    rect.right() >= first and rect.left() <= last):
                continue
            span = spans[node]
            text = f"{span.name}  {format_duration(span.duration_ns)}"
            # The text box is a little taller than the bar so descenders are not clipped.
            top, height = rect.top() - 2, rect.height() + 4
            left, right = max(rect.left(), first), min(rect.right(), last)
            align = Qt.AlignmentFlag.AlignLeft
            needed = self._metrics.horizontalAdvance(text)
            after = last - rect.right() - 4
            before = rect.left() - first - 4
            if right - left - 6 >= needed or (
                    right - left >= LABEL_MIN_PX and max(after, before) < needed):
                p.setPen(self._on_open_bar if open_ended[node] and not error[node]
                         else self._on_bar)
                box = QRectF(left + 3, top, right - left - 6, height)
            else:
                # Beside the bar: after it, or before it when the bar ends near the right edge.
                p.setPen(self._beside_bar)
                box = QRectF(rect.right() + 4, top, after, height)
                if after < min(needed, before):
                    box = QRectF(first, top, before, height)
                    align = Qt.AlignmentFlag.AlignRight
            elided = self._metrics.elidedText(text, Qt.TextElideMode.ElideRight, int(box.width()))
            p.drawText(box, Qt.AlignmentFlag.AlignVCenter | align | Qt.TextFlag.TextSingleLine,
                       elided)

    def hoverEvent(self, ev) -> None:
        if ev.isExit():
            self.setToolTip("")
            return
        node = self.node_at(ev.pos())
        lay = self.layout
        if lay is None or node < 0 or not lay.x0[node] <= ev.pos().x() <= lay.x1[node] + (
                3 * self.pixelWidth()):
            self.setToolTip("")
            return
        span = lay.trace.spans[node]
        lines = [span.name, f"{span.span_type} · {span.status}",
                 f"starts +{duration_ms(float(lay.x0[node]))}, "
                 f"takes {format_duration(span.duration_ns)}"]
        if lay.critical[node]:
            lines.append("on the critical path")
        self.setToolTip(plain_tooltip("\n".join(lines)))


class TimelineViewBox(pg.ViewBox):
    """Wheel scrolls the rows (the tree decides), Ctrl+wheel zooms time, click selects."""

    scroll_rows = Signal(int)
    clicked = Signal(QPointF)

    def wheelEvent(self, ev, axis=None):
        if ev.modifiers() & Qt.ControlModifier:
            super().wheelEvent(ev, axis=0)
            return
        ev.accept()
        delta = ev.delta() if hasattr(ev, "delta") else ev.angleDelta().y()
        self.scroll_rows.emit(-3 if delta > 0 else 3)

    def mouseClickEvent(self, ev):
        if ev.button() == Qt.LeftButton:
            ev.accept()
            self.clicked.emit(self.mapToView(ev.pos()))
        else:
            super().mouseClickEvent(ev)


class Timeline(QWidget):
    """The waterfall beside the span tree."""

    span_clicked = Signal(int)
    scroll_rows = Signal(int)
    step_rows = Signal(int)  # ↑/↓ pressed over the timeline: move the selection
    resized = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.bars = SpanBars()
        self.box = TimelineViewBox(enableMenu=False)
        self.box.setMouseEnabled(x=True, y=False)
        self.box.invertY(True)
        self.box.setDefaultPadding(0.0)
        self.box.addItem(self.bars)
        self.axis = TimeAxis("top")
        self.axis.setLabel("")
        self.plot = pg.PlotWidget(viewBox=self.box, axisItems={"top": self.axis})
        item = self.plot.getPlotItem()
        item.hideAxis("left")
        item.hideAxis("bottom")
        item.showAxis("top")
        item.hideButtons()
        item.layout.setContentsMargins(0, 0, 8, 0)
        palette.follow(self._colours_changed)
        self.plot.setFocusPolicy(Qt.NoFocus)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self.setFocusPolicy(Qt.StrongFocus)
        self.setToolTip("Waterfall of the spans shown in the tree. Drag or ←/→ to pan, "
                        "Ctrl+wheel or +/− to zoom, 0 to fit; the dark outline marks the "
                        "critical path.")
        self.box.clicked.connect(self._clicked)
        self.box.scroll_rows.connect(self.scroll_rows)
        self._row_count = 0

    def _colours_changed(self) -> None:
        self.plot.setBackground(palette.TIMELINE_BG.color())
        self.axis.setPen(palette.AXIS.color())
        self.axis.setTextPen(palette.AXIS_TEXT.color())

    def set_layout(self, layout: TreeLayout | None) -> None:
        """Show another trace; the time range fits the whole trace."""
        self.bars.set_layout(layout)
        if layout is not None:
            self.box.setLimits(xMin=-0.05 * layout.total_ms, xMax=1.05 * layout.total_ms + 1e-3,
                               minXRange=1e-6)
        self.fit()

    def set_header_height(self, pixels: int) -> None:
        """Match the axis height to the tree's header so the first rows line up."""
        self.axis.setHeight(pixels)

    def set_rows(self, rows: list[int], row_height: int) -> None:
        """The nodes of the tree's rows from the top of its viewport, and the row height."""
        self.bars.set_rows(rows)
        height = max(self.box.height(), 1.0)
        self._row_count = height / max(row_height, 1)
        self.box.setYRange(0, self._row_count, padding=0)

    def set_selected(self, node: int) -> None:
        self.bars.selected = node
        self.bars.update()

    def set_matches(self, matches: set[int], current: int) -> None:
        self.bars.matches, self.bars.current_match = matches, current
        self.bars.update()

    def fit(self) -> None:
        """Show the whole trace duration."""
        total = self.bars.layout.total_ms if self.bars.layout else 1.0
        self.box.setXRange(0, max(total, 1e-3), padding=0.01)

    def zoom(self, factor: float) -> None:
        """Zoom time around the centre (factor < 1 zooms in)."""
        (x0, x1), _ = self.box.viewRange()
        centre, half = (x0 + x1) / 2, (x1 - x0) / 2 * factor
        self.box.setXRange(centre - half, centre + half, padding=0)

    def pan(self, fraction: float) -> None:
        """Move the time window by a fraction of its width."""
        (x0, x1), _ = self.box.viewRange()
        shift = (x1 - x0) * fraction
        self.box.setXRange(x0 + shift, x1 + shift, padding=0)

    def _clicked(self, point: QPointF) -> None:
        node = self.bars.node_at(point)
        if node >= 0:
            self.span_clicked.emit(node)

    def keyPressEvent(self, event) -> None:
        key = event.key()
        actions = {
            Qt.Key.Key_Plus: lambda: self.zoom(0.5), Qt.Key.Key_Equal: lambda: self.zoom(0.5),
            Qt.Key.Key_Minus: lambda: self.zoom(2.0),
            Qt.Key.Key_0: self.fit, Qt.Key.Key_Home: self.fit,
            Qt.Key.Key_Left: lambda: self.pan(-0.2), Qt.Key.Key_Right: lambda: self.pan(0.2),
            Qt.Key.Key_Up: lambda: self.step_rows.emit(-1),
            Qt.Key.Key_Down: lambda: self.step_rows.emit(1),
        }
        action = actions.get(key)
        if action is None:
            super().keyPressEvent(event)
            return
        action()
        event.accept()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.resized.emit()
