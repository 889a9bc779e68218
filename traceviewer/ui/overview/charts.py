"""The Overview's charts (pyqtgraph): traces, latency percentiles, error rate, feedback pass rate
and tokens per time bucket, one colour per group with a plain-text legend beside them. A click on
a point emits `bucket_clicked(group, bucket_start_ms)`, one on a legend entry `group_clicked`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QPen, QPixmap
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGridLayout,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from traceviewer.core import fmt, stats
from traceviewer.core.stats import Cell, StatsResult
from traceviewer.ui.common import palette
from traceviewer.ui.common.plain import plain_tooltip
from traceviewer.ui.overview.compare_table import group_name

GROUP_ROLE = Qt.ItemDataRole.UserRole + 1
# The latency lines of one group: p50 solid, p90 dashed, p99 dotted.
LATENCY_LINES = (("p50", Qt.PenStyle.SolidLine), ("p90", Qt.PenStyle.DashLine),
                 ("p99", Qt.PenStyle.DotLine))


@dataclass(frozen=True, slots=True)
class Chart:
    """One plot: its title, unit, and the y value and tooltip line of a cell; `percent` for a
    chart whose values are 0-100."""

    title: str
    y: Callable[[Cell], float | None]
    tip: Callable[[Cell], str]
    percent: bool = False


def _feedback_name(result: StatsResult) -> str | None:
    """The first assessment name with pass/fail values (the one the feedback chart shows)."""
    names = sorted({n for c in result.totals for n, a in c.assessments.items()
                    if a.pass_rate is not None})
    return names[0] if names else None


def _charts(result: StatsResult) -> list[Chart]:
    feedback = _feedback_name(result)

    def errors(c: Cell) -> float | None:
        return None if c.error_rate is None else c.error_rate * 100

    def rate(c: Cell) -> float | None:
        a = c.assessments.get(feedback or "")
        return None if a is None or a.pass_rate is None else a.pass_rate * 100

    def rate_tip(c: Cell) -> str:
        a = c.assessments.get(feedback or "")
        if a is None or a.pass_rate is None:
            return f"{feedback}: none"
        return f"{feedback}: {a.pass_rate:.0%} ({a.passed} of {a.passed + a.failed} passed)"

    return [
        Chart("Traces", lambda c: float(c.traces), lambda c: f"{c.traces:,} traces"),
        Chart("Latency (ms): p50 —, p90 - -, p99 ···", lambda c: c.latency.p50,
              lambda c: (f"p50 {fmt.duration_ms(c.latency.p50)}, p90 "
                         f"{fmt.duration_ms(c.latency.p90)}, p99 "
                         f"{fmt.duration_ms(c.latency.p99)}")),
        Chart("Errors (%)", errors,
              lambda c: f"{c.errors} of {c.traces} traces failed ({c.error_rate or 0:.0%})",
              percent=True),
        Chart(f"{feedback} pass rate (%)" if feedback else "Feedback pass rate (%)", rate,
              rate_tip, percent=True),
        Chart("Tokens", lambda c: float(c.total_tokens),
              lambda c: (f"{c.total_tokens:,} tokens ({c.input_tokens:,} in, "
                         f"{c.output_tokens:,} out)")),
    ]


class OverviewCharts(QWidget):
    bucket_clicked = Signal(object, object)  # group value (None: no group), bucket start (ms)
    group_clicked = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plots: list[pg.PlotWidget] = []
        self.scatters: dict[tuple[int, str | None], pg.ScatterPlotItem] = {}
        self._items: dict[tuple[int, str | None], list[Any]] = {}
        self._tips: dict[tuple[int, str | None], dict[int | None, str]] = {}
        self._colours: dict[str | None, int] = {}
        self.result: StatsResult | None = None
        self._steps: list[Callable[[], None]] = []
        self._titles: list[str | None] = [None] * 5
        self._ranges: list[tuple[tuple[float, float], tuple[float, float]] | None] = [None] * 5
        self._step_timer = QTimer(self, interval=0, singleShot=True)
        self._step_timer.timeout.connect(self._step)
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        for i in range(5):
            plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem(utcOffset=0)})
            plot.setMinimumHeight(150)
            plot.getPlotItem().hideButtons()
            plot.getPlotItem().setMenuEnabled(False)
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.getPlotItem().disableAutoRange()  # set in steps by _set_range
            for name in ("left", "bottom"):  # tick labels kept as pixels between their changes
                plot.getPlotItem().getAxis(name).setCacheMode(
                    QGraphicsItem.CacheMode.DeviceCoordinateCache)
            self.plots.append(plot)
            grid.addWidget(plot, i // 3, i % 3)
        self.legend = QListWidget()
        self.legend.setObjectName("overviewLegend")
        self.legend.setToolTip("Click a group to open its traces in the table")
        self.legend.setMaximumWidth(220)
        self.legend.itemClicked.connect(
            lambda item: self.group_clicked.emit(item.data(GROUP_ROLE)))
        grid.addWidget(self.legend, 1, 2)
        outer = QHBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        inner = QVBoxLayout()
        inner.addLayout(grid)
        outer.addLayout(inner)
        palette.follow(self._colours_changed)
        self._colours_changed()

    def _colours_changed(self) -> None:
        self._titles = [None] * len(self.plots)
        for plot in self.plots:
            plot.setBackground(palette.TIMELINE_BG.color())
            for name in ("left", "bottom"):
                axis = plot.getPlotItem().getAxis(name)
                axis.setPen(palette.AXIS.color())
                axis.setTextPen(palette.AXIS_TEXT.color())
        if self.result is not None:
            self.set_result(self.result)

    def colour(self, index: int) -> QColor:
        return palette.SERIES[index % len(palette.SERIES)].color()

    def series_groups(self, chart: int = 0) -> list[str | None]:
        """The groups drawn in `chart` (one series each)."""
        return [g for (c, g) in self.scatters if c == chart]

    def point_of(self, group: str | None, bucket_ms: int, chart: int = 0) -> pg.SpotItem | None:
        """The point of `group` at `bucket_ms` in `chart` (for clicking it)."""
        scatter = self.scatters.get((chart, group))
        if scatter is None:
            return None
        return next((p for p in scatter.points() if p.data()[1] == bucket_ms), None)

    def set_result(self, result: StatsResult | None) -> None:
        """Draw `result` (None: clear). Items are kept and given new data, so partial results
        redraw cheaply; a group keeps its colour while the same query refines. The legend and
        each chart are drawn in turns of the event loop (one chart painted per turn, so a
        redraw never holds the GUI thread for all five); a newer result replaces the turns
        still pending."""
        previous, self.result = self.result, result
        if result is None or previous is None or previous.query != result.query:
            self._colours.clear()
        self._steps = self._plan(result)
        self._step_timer.start()

    @property
    def drawing(self) -> bool:
        """True while turns of the last `set_result` are still to be drawn."""
        return bool(self._steps)

    def flush(self) -> None:
        """Draw the pending turns now (before the charts are grabbed as an image)."""
        while self._steps:
            self._steps.pop(0)()

    def _step(self) -> None:
        if self._steps:
            self._steps.pop(0)()
        if self._steps:
            self._step_timer.start()

    def _plan(self, result: StatsResult | None) -> list[Callable[[], None]]:
        """The drawing turns of `result`: the legend, then one per chart."""
        if result is None or result.window.bucket_ms is None:
            return [self._clear]
        groups = result.groups
        for group in groups:
            self._colours.setdefault(group, len(self._colours))
        by_group: dict[str | None, list[Cell]] = {g: [] for g in groups}
        for cell in result.cells:
            by_group.setdefault(cell.group, []).append(cell)
        series = [(g, self.colour(self._colours[g]),
                   sorted(by_group.get(g, []), key=lambda c: c.bucket_start or 0))
                  for g in groups]
        charts = _charts(result)
        x_range = stats.time_axis(result)

        def legend() -> None:
            self.legend.clear()
            for group, colour, _cells in series:
                self._legend_entry(group, colour, result)

        def chart(ci: int) -> Callable[[], None]:
            def draw() -> None:
                if self._titles[ci] != charts[ci].title:  # a new title lays the plot out again
                    self._titles[ci] = charts[ci].title
                    self.plots[ci].getPlotItem().setTitle(charts[ci].title,
                                                          color=palette.TEXT.hex(), size="9pt")
                top = max((self._series(ci, charts[ci], group, cells, colour)
                           for group, colour, cells in series), default=0.0)
                self._drop({(ci, g) for g in groups}, ci)
                ceiling = stats.nice_ceiling(top * 1.05)  # the highest point below the frame
                if charts[ci].percent:
                    ceiling = min(ceiling, 105.0)
                self._set_range(ci, x_range, (0.0, ceiling))
            return draw

        return [legend, *(chart(ci) for ci in range(len(self.plots)))]

    def _clear(self) -> None:
        self.legend.clear()
        self._drop(set())

    def _set_range(self, ci: int, x: tuple[float, float], y: tuple[float, float]) -> None:
        # Ranges move in steps (nice_ceiling), not with every partial result: an axis whose
        # ticks stay is not laid out and rendered again (its pixels are cached), the costly
        # part of a redraw.
        if self._ranges[ci] != (x, y):
            self._ranges[ci] = (x, y)
            self.plots[ci].getPlotItem().getViewBox().setRange(xRange=x, yRange=y, padding=0)

    def _drop(self, keep: set[tuple[int, str | None]], chart: int | None = None) -> None:
        """Remove the items of the series not in `keep` (of `chart` only, if given)."""
        for key in [k for k in self._items if k not in keep and chart in (None, k[0])]:
            plot = self.plots[key[0]].getPlotItem()
            for item in self._items.pop(key):
                plot.removeItem(item)
            self.scatters.pop(key, None)
            self._tips.pop(key, None)

    def _legend_entry(self, group: str | None, colour: QColor, result: StatsResult) -> None:
        total = next((c for c in result.totals if c.group == group), None)
        swatch = QPixmap(QSize(12, 12))
        swatch.fill(colour)
        item = QListWidgetItem(QIcon(swatch), group_name(group))  # a list item: plain text
        item.setData(GROUP_ROLE, group)
        if total is not None:
            item.setToolTip(plain_tooltip(f"{group_name(group)}: {total.traces:,} traces\n"
                                          "Click to open these traces") or "")
        self.legend.addItem(item)

    def _series(self, ci: int, chart: Chart, group: str | None, cells: list[Cell],
                colour: QColor) -> float:
        """Give the series of `group` in chart `ci` its data; returns its highest y value."""
        key = (ci, group)
        points = [(c, y) for c in cells if (y := chart.y(c)) is not None]
        xs = [(c.bucket_start or 0) / 1000 for c, _ in points]
        ys = [y for _, y in points]
        lines = ([[(c.bucket_start or 0, getattr(c.latency, name)) for c in cells]
                  for name, _style in LATENCY_LINES] if ci == 1
                 else [[(c.bucket_start or 0, y) for c, y in points]])
        styles = [style for _n, style in LATENCY_LINES] if ci == 1 else [Qt.PenStyle.SolidLine]
        items = self._items.get(key)
        if items is None:
            plot = self.plots[ci].getPlotItem()
            curves = [pg.PlotCurveItem() for _ in lines]
            scatter = pg.ScatterPlotItem(size=7, hoverable=True, tip=self._tip_for(key))
            scatter.sigClicked.connect(self._clicked)
            items = [*curves, scatter]
            for item in items:
                plot.addItem(item)
            self._items[key] = items
            self.scatters[key] = scatter
        *curves, scatter = items
        top = max(ys, default=0.0)
        for curve, line, style in zip(curves, lines, styles, strict=True):
            drawn = [(x, y) for x, y in line if y is not None]
            top = max([top, *(y for _, y in drawn)])
            curve.setData([x / 1000 for x, _ in drawn], [y for _, y in drawn],
                          pen=_pen(colour, style))
        self._tips[key] = {c.bucket_start: chart.tip(c) for c, _ in points}
        scatter.setData(xs, ys, data=[(group, c.bucket_start) for c, _ in points],
                        brush=colour, pen=pg.mkPen(colour))
        return top

    def _tip_for(self, key: tuple[int, str | None]) -> Callable[..., str]:
        def tip(x: float, y: float, data: Any) -> str:
            when = fmt.timestamp_ms(data[1])
            text = self._tips.get(key, {}).get(data[1], "")
            return plain_tooltip(f"{group_name(data[0])}\n{when}\n{text}"
                                 "\nClick to open these traces") or ""
        return tip

    def _clicked(self, _item: pg.ScatterPlotItem, points: Any, _event: Any) -> None:
        if len(points):
            group, bucket = points[0].data()
            self.bucket_clicked.emit(group, int(bucket))


def _pen(colour: QColor, style: Qt.PenStyle) -> QPen:
    pen = QPen(colour, 2)
    pen.setStyle(style)
    pen.setCosmetic(True)
    return pen
