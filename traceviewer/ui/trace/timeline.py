"""The timeline (waterfall): one pyqtgraph GraphicsObject that paints the bars of the spans the
span tree shows right now, row for row, so tree and timeline line up.

The tree owns the vertical position: the timeline is handed the nodes of the tree's visible rows
(`set_rows`) and a y range of exactly that many rows, and asks the tree to scroll when the wheel
turns over it. The timeline owns the time axis: milliseconds since the trace start, ticks at
round steps of a unit (`core.trace_layout.tick_step`), zoomed with Ctrl+wheel or +/- around the
span under the cursor (or the selected span) so that span stays in view, zoomed to a span by a
double-click or Z, panned by dragging, Shift+wheel, a horizontal trackpad scroll or ←/→.
Selecting a span brings its bar into view.

Below it, the overview strip (`Overview`) shows the whole trace, every span by time and by its
place in the fully expanded tree, painted once into an image with numpy; the window the
timeline and the tree show is marked on it, and dragging it moves both."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QImage, QPainter, QPen
from PySide6.QtWidgets import QVBoxLayout, QWidget

from traceviewer.core.fmt import duration_ms
from traceviewer.core.trace_layout import TreeLayout, format_duration, tick_label, tick_step
from traceviewer.ui.common import palette
from traceviewer.ui.common.plain import plain_tooltip
from traceviewer.ui.trace.span_tree import STYLES

BAR_TOP, BAR_BOTTOM = 0.18, 0.82  # of a row
LABEL_MIN_PX = 36  # narrower bars get their label beside them
TICK_PX = 90  # about this many pixels between ticks
ZOOM_STEP = 0.8  # one wheel notch or + zooms in to this fraction of the window
PAN_STEP = 0.1  # one Shift+wheel notch pans this fraction of the window
OVERVIEW_PX = 56


class TimeAxis(pg.AxisItem):
    """Ticks at 1, 2 or 5 × 10ⁿ of a time unit, labelled as durations since the trace start."""

    def tickSpacing(self, minVal, maxVal, size):
        step, _, _ = tick_step(maxVal - minVal, size / TICK_PX)
        return [(step, 0.0)]

    def tickStrings(self, values, scale, spacing):
        return [tick_label(v * scale, spacing * scale) if v >= 0 else "" for v in values]


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
    """Wheel scrolls the rows (the tree decides), Ctrl+wheel zooms time (the timeline picks the
    point that stays put), Shift+wheel and horizontal scrolls pan time, click selects,
    double-click zooms to the span."""

    scroll_rows = Signal(int)
    clicked = Signal(QPointF)
    double_clicked = Signal(QPointF)
    zoom_at = Signal(float, QPointF)  # factor (< 1 zooms in), view point under the cursor
    pan_by = Signal(float)  # fraction of the window

    def wheelEvent(self, ev, axis=None):
        ev.accept()
        delta = ev.delta() if hasattr(ev, "delta") else ev.angleDelta().y()
        if not delta:
            return
        notches = delta / 120
        modifiers = ev.modifiers()
        if modifiers & Qt.KeyboardModifier.ControlModifier:
            self.zoom_at.emit(ZOOM_STEP ** notches, self.mapToView(ev.pos()))
        elif (modifiers & Qt.KeyboardModifier.ShiftModifier
              or ev.orientation() == Qt.Orientation.Horizontal):
            self.pan_by.emit(-PAN_STEP * notches)
        else:
            self.scroll_rows.emit(-3 if delta > 0 else 3)

    def mouseClickEvent(self, ev):
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            point = self.mapToView(ev.pos())
            (self.double_clicked if ev.double() else self.clicked).emit(point)
        else:
            super().mouseClickEvent(ev)


class Overview(QWidget):
    """The whole trace in a strip: each span at its time (x) and its place in the fully
    expanded tree (y), painted once per trace and size into an image; the window the timeline
    and the tree show is marked. Pressing outside the window centres it there; dragging moves
    it (`moved`: the new time range and the tree position, as a rank in display order)."""

    moved = Signal(float, float, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layout_: TreeLayout | None = None
        self.rank = np.empty(0, dtype=np.int64)  # node -> place in the fully expanded tree
        self.window_time = (0.0, 1.0)
        self.window_ranks = (0, 0)  # first and last rank the tree shows, +1
        self._image: QImage | None = None
        self._drag: tuple[QPointF, tuple[float, float], int] | None = None
        self.setFixedHeight(OVERVIEW_PX)
        self.setToolTip("The whole trace: drag the marked window, or click elsewhere, to move "
                        "the timeline and the tree there.")
        palette.follow(self._colours_changed)

    def _colours_changed(self) -> None:
        self._image = None
        self.update()

    def set_layout(self, layout: TreeLayout | None) -> None:
        self.layout_ = layout
        self.rank = np.empty(0, dtype=np.int64)
        if layout is not None and layout.n:
            self.rank = np.empty(layout.n, dtype=np.int64)
            self.rank[layout.display_order] = np.arange(layout.n)
        self.window_ranks = (0, 0)
        self._image = None
        self.update()

    def set_window(self, time: tuple[float, float] | None = None,
                   ranks: tuple[int, int] | None = None) -> None:
        if time is not None:
            self.window_time = time
        if ranks is not None:
            self.window_ranks = ranks
        self.update()

    # Geometry: x over the trace's duration, y over the spans in display order.
    def _total(self) -> float:
        return max(self.layout_.total_ms, 1e-3) if self.layout_ else 1.0

    def _count(self) -> int:
        return max(self.layout_.n, 1) if self.layout_ else 1

    def window_rect(self) -> QRectF:
        """The marked window, in widget pixels."""
        w, h = self.width(), self.height()
        t0, t1 = self.window_time
        r0, r1 = self.window_ranks
        x0 = max(0.0, t0 / self._total() * w)
        x1 = min(float(w), t1 / self._total() * w)
        y0, y1 = r0 / self._count() * h, r1 / self._count() * h
        return QRectF(x0, y0, max(x1 - x0, 4.0), max(y1 - y0, 6.0))

    def _render(self) -> QImage:
        """Every span as a 1-pixel-high run of its family's colour (errors win a pixel)."""
        w, h = max(self.width(), 1), max(self.height(), 1)
        lay = self.layout_
        background = palette.PANEL_BG.color().rgba()
        pixels = np.full((h, w), background, dtype=np.uint32)
        if lay is not None and lay.n:
            total = self._total()
            col0 = np.clip((lay.x0 / total * w).astype(np.int64), 0, w - 1)
            col1 = np.clip((lay.x1 / total * w).astype(np.int64), col0 + 1, w - 1)
            row = np.minimum(self.rank * (h - 1) // lay.n, h - 2)
            families = len(STYLES) + 1  # the span families, then errors
            family = np.where(lay.error, families - 1, lay.style.astype(np.int64))
            # Each span adds 1 where its run starts and -1 after it ends, in its family's plane,
            # 2 pixels high so that a single span shows; the sums along x are then the cover.
            # (bincount over flat indices: np.add.at took four times as long, on the GUI thread.)
            size = families * h * (w + 1)
            line = (family * h + row) * (w + 1)
            starts = np.concatenate((line + col0, line + (w + 1) + col0))
            ends = np.concatenate((line + col1 + 1, line + (w + 1) + col1 + 1))
            runs = (np.bincount(starts, minlength=size)
                    - np.bincount(ends, minlength=size)).reshape(families, h, w + 1)
            cover = np.cumsum(runs, axis=2)[:, :, :w]
            cover[-1] *= 1 << 20  # an error anywhere in a pixel shows
            winner = cover.argmax(axis=0)
            colours = np.array([s.color.color().rgba() for s in STYLES]
                               + [palette.SPAN_ERROR.color().rgba()], dtype=np.uint32)
            pixels = np.where(cover.max(axis=0) > 0, colours[winner], pixels).astype(np.uint32)
        image = QImage(pixels.tobytes(), w, h, w * 4, QImage.Format.Format_ARGB32)
        return image.copy()  # own its pixels

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        if self._image is not None and self._image.size() == self.size():
            p.drawImage(0, 0, self._image)
        else:  # rendered on the next turn of the event loop, not in the paint that shows a trace
            p.fillRect(self.rect(), palette.PANEL_BG.color())
            QTimer.singleShot(0, self, self._render_now)
        if self.layout_ is not None and self.layout_.n:
            fill = QColor(palette.SELECTED.color())
            fill.setAlpha(64)
            p.setBrush(fill)
            p.setPen(QPen(palette.SELECTED.color(), 1.5))
            p.drawRect(self.window_rect().adjusted(0.75, 0.75, -0.75, -0.75))
        p.setPen(palette.BORDER.color())
        p.drawLine(0, 0, self.width(), 0)
        p.end()

    def _render_now(self) -> None:
        if self._image is None or self._image.size() != self.size():
            self._image = self._render()
            self.update()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._image = None

    def mousePressEvent(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or not self.layout_ or not self.layout_.n:
            super().mousePressEvent(event)
            return
        pos = event.position()
        rect = self.window_rect()
        if not rect.contains(pos):  # jump: centre the window on the point, then drag from there
            self._drag = (rect.center(), self.window_time, self.window_ranks[0])
            self._move_to(pos)
        self._drag = (pos, self.window_time, self.window_ranks[0])
        event.accept()

    def mouseMoveEvent(self, event) -> None:
        if self._drag is not None:
            self._move_to(event.position())
            event.accept()

    def mouseReleaseEvent(self, event) -> None:
        self._drag = None
        event.accept()

    def _move_to(self, pos: QPointF) -> None:
        assert self._drag is not None
        start, (t0, t1), top = self._drag
        dt = (pos.x() - start.x()) / max(self.width(), 1) * self._total()
        dt = min(max(dt, -t0), self._total() - t1) if t1 - t0 < self._total() else 0.0
        ranks = (pos.y() - start.y()) / max(self.height(), 1) * self._count()
        new_top = int(min(max(top + ranks, 0), self._count() - 1))
        self.moved.emit(t0 + dt, t1 + dt, new_top)


class Timeline(QWidget):
    """The waterfall beside the span tree."""

    span_clicked = Signal(int)
    scroll_rows = Signal(int)
    step_rows = Signal(int)  # ↑/↓ pressed over the timeline: move the selection
    scroll_to_node = Signal(int)  # the overview was dragged: show this node at the tree's top
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
        self.plot.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.overview = Overview()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.overview)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.plot.setToolTip("Waterfall of the spans shown in the tree. Drag, Shift+wheel or "
                             "←/→ to pan, Ctrl+wheel or +/− to zoom, double-click or Z to zoom "
                             "to a span, 0 to fit; the dark outline marks the critical path.")
        self.box.clicked.connect(self._clicked)
        self.box.double_clicked.connect(self._double_clicked)
        self.box.scroll_rows.connect(self.scroll_rows)
        self.box.zoom_at.connect(self._wheel_zoom)
        self.box.pan_by.connect(self.pan)
        self.box.sigXRangeChanged.connect(
            lambda _box, rng: self.overview.set_window(time=(float(rng[0]), float(rng[1]))))
        self.overview.moved.connect(self._overview_moved)
        self._row_count = 0.0

    def _colours_changed(self) -> None:
        self.plot.setBackground(palette.TIMELINE_BG.color())
        self.axis.setPen(palette.AXIS.color())
        self.axis.setTextPen(palette.AXIS_TEXT.color())

    def set_layout(self, layout: TreeLayout | None) -> None:
        """Show another trace; the time range fits the whole trace."""
        self.bars.set_layout(layout)
        self.overview.set_layout(layout)
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
        lay = self.bars.layout
        shown = rows[:max(int(self._row_count), 1)]
        ranks = [int(self.overview.rank[n]) for n in shown
                 if lay is not None and 0 <= n < lay.n]
        self.overview.set_window(ranks=(min(ranks), max(ranks) + 1) if ranks else (0, 0))

    def set_selected(self, node: int) -> None:
        """Mark a span's bar, and bring it into view (panning, or zooming when it is wider
        than the window)."""
        self.bars.selected = node
        self.bars.update()
        self.ensure_visible(node)

    def _bar(self, node: int) -> tuple[float, float] | None:
        lay = self.bars.layout
        if lay is None or not 0 <= node < lay.n:
            return None
        return float(lay.x0[node]), float(lay.x1[node])

    def visible_range(self) -> tuple[float, float]:
        """The time window shown, in ms since the trace start."""
        (x0, x1), _ = self.box.viewRange()
        return float(x0), float(x1)

    def ensure_visible(self, node: int) -> None:
        """Pan (or zoom out to) the window so the span's bar is in it; a bar wider than the
        window that already overlaps it stays as it is."""
        bar = self._bar(node)
        if bar is None:
            return
        a, b = bar
        t0, t1 = self.visible_range()
        width = t1 - t0
        if (t0 <= a and b <= t1) or (b - a >= width and a < t1 and b > t0):
            return
        if b - a > 0.9 * width:
            self.zoom_to(node)
        elif a < t0:
            self.box.setXRange(a - 0.05 * width, a + 0.95 * width, padding=0)
        else:
            self.box.setXRange(b - 0.95 * width, b + 0.05 * width, padding=0)

    def zoom_to(self, node: int) -> None:
        """Fit the window to one span's bar."""
        bar = self._bar(node)
        if bar is not None:
            a, b = bar
            margin = max((b - a) * 0.05, 1e-4)
            self.box.setXRange(a - margin, b + margin, padding=0)

    def zoom_to_selected(self) -> None:
        self.zoom_to(self.bars.selected)

    def set_matches(self, matches: set[int], current: int) -> None:
        self.bars.matches, self.bars.current_match = matches, current
        self.bars.update()

    def fit(self) -> None:
        """Show the whole trace duration."""
        total = self.bars.layout.total_ms if self.bars.layout else 1.0
        self.box.setXRange(0, max(total, 1e-3), padding=0.01)

    def zoom(self, factor: float, anchor: float | None = None) -> None:
        """Zoom time (factor < 1 zooms in) keeping `anchor` where it is on screen; without one,
        around the selected span (its point nearest the window's centre), else the centre."""
        t0, t1 = self.visible_range()
        if anchor is None:
            anchor = self._nearest_point(self.bars.selected, (t0 + t1) / 2)
        anchor = min(max(anchor, t0), t1)
        self.box.setXRange(anchor - (anchor - t0) * factor, anchor + (t1 - anchor) * factor,
                           padding=0)

    def _nearest_point(self, node: int, x: float) -> float:
        """The point of a span's bar nearest `x` (`x` itself when there is no such span)."""
        bar = self._bar(node)
        return x if bar is None else min(max(x, bar[0]), bar[1])

    def _wheel_zoom(self, factor: float, point: QPointF) -> None:
        """Ctrl+wheel: around the span under the cursor, else the selected one, so that the
        span's bar stays in view."""
        node = self.bars.node_at(point)
        self.zoom(factor, self._nearest_point(node if node >= 0 else self.bars.selected,
                                              point.x()))

    def _double_clicked(self, point: QPointF) -> None:
        node = self.bars.node_at(point)
        if node >= 0:
            self.span_clicked.emit(node)
            self.zoom_to(node)

    def _overview_moved(self, t0: float, t1: float, top_rank: int) -> None:
        self.box.setXRange(t0, t1, padding=0)
        lay = self.bars.layout
        if lay is not None and lay.n and top_rank != self.overview.window_ranks[0]:
            self.scroll_to_node.emit(int(lay.display_order[top_rank]))

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
            Qt.Key.Key_0: self.fit, Qt.Key.Key_Home: self.fit, Qt.Key.Key_Z: self.zoom_to_selected,
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
