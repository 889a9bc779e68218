"""The timeline (waterfall): one plain widget (`SpanBars`) that paints a time axis and the bars
of the spans the span tree shows right now, row for row, so tree and timeline line up.

The tree owns the vertical position: the timeline is handed the nodes of the tree's visible rows
and their height (`set_rows`), and asks the tree to scroll when the wheel turns over it. The
timeline owns the time axis: milliseconds since the trace start, ticks at round steps of a unit
(`core.trace_layout.tick_step`), zoomed with Ctrl+wheel or +/- around the span under the cursor
(or the selected span) so that span stays in view, zoomed to a span by a double-click or Z,
panned by dragging, Shift+wheel, a horizontal trackpad scroll or ←/→. Selecting a span brings
its bar into view. No plotting library: importing one (pyqtgraph) took longer than showing a
cached trace.

Below it, the overview strip (`Overview`) shows the whole trace, every span by time and by its
place in the fully expanded tree, painted once into an image with numpy; the window the
timeline and the tree show is marked on it, and dragging it moves both."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QImage, QPainter, QPen
from PySide6.QtWidgets import QApplication, QToolTip, QVBoxLayout, QWidget

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
TICK_LEN_PX = 4
RIGHT_MARGIN_PX = 8  # room for the last tick label


class SpanBars(QWidget):
    """The waterfall: a time axis along the top, then one bar per row the tree shows, painted
    in device pixels (crisp 1 px minimum widths, readable labels), grouped by brush (one
    drawRects call per colour).

    It owns the time window (`set_range`, kept within `set_limits`). Dragging pans it; the
    wheel, clicks and double-clicks are handed to the `Timeline` as signals: plain wheel
    scrolls the rows (the tree decides), Ctrl+wheel zooms time around a point, Shift+wheel and
    horizontal scrolls pan time."""

    range_changed = Signal(float, float)
    clicked = Signal(QPointF)  # (ms since the trace start, row) under the pointer
    double_clicked = Signal(QPointF)
    scroll_rows = Signal(int)
    zoom_at = Signal(float, QPointF)  # factor (< 1 zooms in), the point under the cursor
    pan_by = Signal(float)  # fraction of the window

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layout_: TreeLayout | None = None
        self.rows: list[int] = []
        self.selected = -1
        self.matches: set[int] = set()
        self.current_match = -1
        self.x_range = (0.0, 1.0)
        self._limits = (-math.inf, math.inf, 0.0)  # first and last time, narrowest window
        self.axis_height = 24
        self.row_height = 1
        self._press: tuple[QPointF, tuple[float, float]] | None = None
        self._dragged = False
        self._font = QFont()
        self._font.setPointSizeF(max(7.0, self._font.pointSizeF() - 1))
        self._metrics = QFontMetrics(self._font)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
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
        self.layout_, self.rows, self.selected = layout, [], -1
        self.matches, self.current_match = set(), -1
        self.update()

    def set_rows(self, rows: list[int], row_height: int) -> None:
        self.rows, self.row_height = rows, max(row_height, 1)
        self.update()

    # -- the time window ----------------------------------------------------------------------

    def set_limits(self, first: float, last: float, narrowest: float) -> None:
        self._limits = (first, last, narrowest)

    def set_range(self, t0: float, t1: float) -> None:
        """Show [t0, t1] ms, as much of it as the limits allow."""
        first, last, narrowest = self._limits
        width = min(max(t1 - t0, narrowest, 1e-12), last - first)
        t0 = min(max(t0, first), last - width)
        new = (t0, t0 + width)
        if new != self.x_range:
            self.x_range = new
            self.update()
            self.range_changed.emit(*new)

    def plot_width(self) -> float:
        return float(max(self.width() - RIGHT_MARGIN_PX, 1))

    def _scale(self) -> tuple[float, float]:
        """Pixels per ms and the pixel of time 0."""
        t0, t1 = self.x_range
        sx = self.plot_width() / max(t1 - t0, 1e-12)
        return sx, -t0 * sx

    def point_of(self, ms: float, row: float) -> QPointF:
        """The widget pixel of a time on a row (row + 0.5 is the row's middle)."""
        sx, dx = self._scale()
        return QPointF(ms * sx + dx, self.axis_height + row * self.row_height)

    def map_to_view(self, pos: QPointF) -> QPointF:
        """(ms since the trace start, row) at a widget pixel."""
        sx, dx = self._scale()
        return QPointF((pos.x() - dx) / sx, (pos.y() - self.axis_height) / self.row_height)

    def node_at(self, point: QPointF) -> int:
        """The span node of the row at a (ms, row) point, or -1."""
        row = math.floor(point.y())
        if self.layout_ is None or not 0 <= row < len(self.rows):
            return -1
        node = self.rows[row]
        return -1 if node == self.layout_.syn else node

    # -- painting -----------------------------------------------------------------------------

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), palette.TIMELINE_BG.color())
        p.setFont(self._font)
        self._paint_axis(p)
        p.setClipRect(QRectF(0, self.axis_height, self.plot_width(), self.height()))
        self._paint_bars(p)
        p.end()

    def ticks(self) -> tuple[float, list[tuple[float, str]]]:
        """The axis step and its ticks in the window (ms since the trace start, label): about
        one every TICK_PX pixels, at a round step of a time unit."""
        t0, t1 = self.x_range
        step, _, _ = tick_step(t1 - t0, self.plot_width() / TICK_PX)
        first, last = math.ceil(max(t0, 0.0) / step), math.floor(t1 / step)
        return step, [(k * step, tick_label(k * step, step)) for k in range(first, last + 1)]

    def _paint_axis(self, p: QPainter) -> None:
        sx, dx = self._scale()
        base = self.axis_height - 1
        p.setPen(palette.AXIS.color())
        p.drawLine(QPointF(0, base), QPointF(self.plot_width(), base))
        for value, label in self.ticks()[1]:
            x = value * sx + dx
            p.setPen(palette.AXIS.color())
            p.drawLine(QPointF(x, base - TICK_LEN_PX), QPointF(x, base))
            p.setPen(palette.AXIS_TEXT.color())
            p.drawText(QRectF(x - TICK_PX / 2, 0, TICK_PX, base - TICK_LEN_PX),
                       Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter, label)

    def _paint_bars(self, p: QPainter) -> None:
        lay = self.layout_
        if lay is None or not self.rows:
            return
        sx, dx = self._scale()
        sy, dy = float(self.row_height), float(self.axis_height)
        rows = [(k, node) for k, node in enumerate(self.rows) if node != lay.syn]
        if not rows:
            return
        ks = np.array([k for k, _ in rows], dtype=np.float64)
        nodes = np.array([node for _, node in rows], dtype=np.int64)
        left = lay.x0[nodes] * sx + dx
        right = np.maximum(lay.x1[nodes] * sx + dx, left + 1.0)
        top, height = (ks + BAR_TOP) * sy + dy, np.full(len(ks), (BAR_BOTTOM - BAR_TOP) * sy)
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
        self._paint_labels(p, rects, nodes, 0.0, self.plot_width())

    def _paint_labels(self, p: QPainter, rects: list[QRectF], nodes: np.ndarray,
                      first: float, last: float) -> None:
        p.setFont(self._font)
        lay = self.layout_
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

    # -- the pointer ----------------------------------------------------------------------------

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            text = self._bar_tooltip(self.map_to_view(QPointF(event.pos())))
            QToolTip.showText(event.globalPos(), text or self.toolTip(), self)
            return True
        return super().event(event)

    def _bar_tooltip(self, point: QPointF) -> str | None:
        """What the bar under a (ms, row) point is, or None off the bars."""
        node = self.node_at(point)
        lay = self.layout_
        slack = 3 / self._scale()[0]  # a thin bar is 1 px wide on screen: 3 px of grace
        if lay is None or node < 0 or not lay.x0[node] <= point.x() <= lay.x1[node] + slack:
            return None
        span = lay.trace.spans[node]
        lines = [span.name, f"{span.span_type} · {span.status}",
                 f"starts +{duration_ms(float(lay.x0[node]))}, "
                 f"takes {format_duration(span.duration_ns)}"]
        if lay.critical[node]:
            lines.append("on the critical path")
        return plain_tooltip("\n".join(lines))

    def wheelEvent(self, event) -> None:
        event.accept()
        delta = event.angleDelta()
        horizontal = delta.y() == 0 and delta.x() != 0
        steps = (delta.x() if horizontal else delta.y()) / 120
        if not steps:
            return
        modifiers = event.modifiers()
        if modifiers & Qt.KeyboardModifier.ControlModifier:
            self.zoom_at.emit(ZOOM_STEP ** steps, self.map_to_view(event.position()))
        elif modifiers & Qt.KeyboardModifier.ShiftModifier or horizontal:
            self.pan_by.emit(-PAN_STEP * steps)
        else:
            self.scroll_rows.emit(-3 if steps > 0 else 3)

    def mousePressEvent(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        self._press, self._dragged = (event.position(), self.x_range), False
        event.accept()

    def mouseMoveEvent(self, event) -> None:
        if self._press is None:
            return
        start, (t0, t1) = self._press
        moved = event.position().x() - start.x()
        if self._dragged or abs(moved) >= QApplication.startDragDistance():
            self._dragged = True
            shift = moved / self._scale()[0]
            self.set_range(t0 - shift, t1 - shift)
        event.accept()

    def mouseReleaseEvent(self, event) -> None:
        if self._press is not None and not self._dragged:
            self.clicked.emit(self.map_to_view(event.position()))
        self._press = None
        event.accept()

    def mouseDoubleClickEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.double_clicked.emit(self.map_to_view(event.position()))
        event.accept()


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
        self.overview = Overview()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.bars, 1)
        layout.addWidget(self.overview)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.bars.setToolTip("Waterfall of the spans shown in the tree. Drag, Shift+wheel or "
                             "←/→ to pan, Ctrl+wheel or +/− to zoom, double-click or Z to zoom "
                             "to a span, 0 to fit; the dark outline marks the critical path.")
        self.bars.clicked.connect(self._clicked)
        self.bars.double_clicked.connect(self._double_clicked)
        self.bars.scroll_rows.connect(self.scroll_rows)
        self.bars.zoom_at.connect(self._wheel_zoom)
        self.bars.pan_by.connect(self.pan)
        self.bars.range_changed.connect(lambda t0, t1: self.overview.set_window(time=(t0, t1)))
        self.overview.moved.connect(self._overview_moved)

    def set_layout(self, layout: TreeLayout | None) -> None:
        """Show another trace; the time range fits the whole trace."""
        self.bars.set_layout(layout)
        self.overview.set_layout(layout)
        if layout is not None:
            self.bars.set_limits(-0.05 * layout.total_ms, 1.05 * layout.total_ms + 1e-3, 1e-6)
        self.fit()

    def set_header_height(self, pixels: int) -> None:
        """Match the axis height to the tree's header so the first rows line up."""
        self.bars.axis_height = pixels
        self.bars.update()

    def set_rows(self, rows: list[int], row_height: int) -> None:
        """The nodes of the tree's rows from the top of its viewport, and the row height."""
        self.bars.set_rows(rows, row_height)
        row_count = (self.bars.height() - self.bars.axis_height) / max(row_height, 1)
        lay = self.bars.layout_
        shown = rows[:max(int(row_count), 1)]
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
        lay = self.bars.layout_
        if lay is None or not 0 <= node < lay.n:
            return None
        return float(lay.x0[node]), float(lay.x1[node])

    def visible_range(self) -> tuple[float, float]:
        """The time window shown, in ms since the trace start."""
        return self.bars.x_range

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
            self.bars.set_range(a - 0.05 * width, a + 0.95 * width)
        else:
            self.bars.set_range(b - 0.95 * width, b + 0.05 * width)

    def zoom_to(self, node: int) -> None:
        """Fit the window to one span's bar."""
        bar = self._bar(node)
        if bar is not None:
            a, b = bar
            margin = max((b - a) * 0.05, 1e-4)
            self.bars.set_range(a - margin, b + margin)

    def zoom_to_selected(self) -> None:
        self.zoom_to(self.bars.selected)

    def set_matches(self, matches: set[int], current: int) -> None:
        self.bars.matches, self.bars.current_match = matches, current
        self.bars.update()

    def fit(self) -> None:
        """Show the whole trace duration."""
        total = max(self.bars.layout_.total_ms if self.bars.layout_ else 1.0, 1e-3)
        self.bars.set_range(-0.01 * total, 1.01 * total)

    def zoom(self, factor: float, anchor: float | None = None) -> None:
        """Zoom time (factor < 1 zooms in) keeping `anchor` where it is on screen; without one,
        around the selected span (its point nearest the window's centre), else the centre."""
        t0, t1 = self.visible_range()
        if anchor is None:
            anchor = self._nearest_point(self.bars.selected, (t0 + t1) / 2)
        anchor = min(max(anchor, t0), t1)
        self.bars.set_range(anchor - (anchor - t0) * factor, anchor + (t1 - anchor) * factor)

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
        self.bars.set_range(t0, t1)
        lay = self.bars.layout_
        if lay is not None and lay.n and top_rank != self.overview.window_ranks[0]:
            self.scroll_to_node.emit(int(lay.display_order[top_rank]))

    def pan(self, fraction: float) -> None:
        """Move the time window by a fraction of its width."""
        x0, x1 = self.bars.x_range
        shift = (x1 - x0) * fraction
        self.bars.set_range(x0 + shift, x1 + shift)

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
