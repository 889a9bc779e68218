"""The Overview tab: statistics of the current experiment and filter (the AppModel's query) in a
time range, split by a group-by dimension: charts, a legend and the compare table.

Numbers come from core.stats in the background (TaskRunner: latest wins, cancelled by a newer
request or Stop); a query seen before shows its cached result at once, then refreshes. Clicking
a bucket or a legend entry sets the query to exactly those traces (time range, group value and
the filter) and asks the main window for the trace table (`open_table`)."""

from __future__ import annotations

import csv
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from traceviewer.core import fmt, stats
from traceviewer.core.app_model import AppModel
from traceviewer.core.cancel import CancelToken
from traceviewer.core.errors import BadFilter, UsageError
from traceviewer.core.filters import TIME_PRESETS, Clause
from traceviewer.core.stats import GroupBy, StatsQuery, StatsResult
from traceviewer.ui.common.banner import ErrorBanner
from traceviewer.ui.common.plain import plain_label
from traceviewer.ui.common.tasks import TaskRunner
from traceviewer.ui.overview.charts import OverviewCharts
from traceviewer.ui.overview.compare_table import CompareTable

ALL_TIME = "all"
DEFAULT_RANGE = "7d"
PARTIAL_MS = 250
# The group-by choices offered; any `tag:KEY` or `metadata:KEY` may be typed.
GROUP_CHOICES = ("none", "tag:environment", "tag:app_version", "tag:region",
                 "tag:deployment_id", "user", "session", "state", "name")


class OverviewView(QWidget):
    open_table = Signal()  # the query now selects the clicked traces: show the trace table
    numbers_changed = Signal(object)  # the StatsResult shown (partial ones too)

    def __init__(self, app_model: AppModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app_model = app_model
        self.runner = TaskRunner(self)
        self.cache = stats.StatsCache()
        self.result: StatsResult | None = None
        self._stale = True
        self._partials = 0
        self.path: str | None = None  # None: core.stats chooses; bench/overview.py forces one
        self._pending: StatsResult | None = None
        self._partial_timer = QTimer(self, interval=PARTIAL_MS, singleShot=True)
        self._partial_timer.timeout.connect(self._show_pending)

        self.range_box = QComboBox()
        self.range_box.addItems([*TIME_PRESETS, ALL_TIME])
        self.range_box.setCurrentText(DEFAULT_RANGE)
        self.range_box.setToolTip("Time range: that long ago until now")
        self.group_box = QComboBox()
        self.group_box.setEditable(True)
        self.group_box.addItems(GROUP_CHOICES)
        self.group_box.setCurrentText("tag:environment")
        self.group_box.setToolTip("Split every chart by: tag:KEY, metadata:KEY, user, session, "
                                  "state or name")
        self.bucket_box = QComboBox()
        self.bucket_box.addItems([b for b in stats.BUCKET_CHOICES if b != "none"])
        self.bucket_box.setToolTip("Time bucket (auto: minute, hour or day by the range)")
        for box in (self.range_box, self.bucket_box):
            box.currentTextChanged.connect(lambda _t: self.reload())
        self.group_box.activated.connect(lambda _i: self.reload())
        line = self.group_box.lineEdit()
        if line is not None:
            line.returnPressed.connect(self.reload)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop reading; the numbers so far stay")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.hide()
        self.png_button = QPushButton("Export PNG…")
        self.png_button.clicked.connect(self.export_png)
        self.csv_button = QPushButton("Export CSV…")
        self.csv_button.clicked.connect(self.export_csv)
        self.copy_button = QPushButton("Copy table as CSV")
        self.copy_button.clicked.connect(self._copy_csv)

        bar = QHBoxLayout()
        for text, widget in (("Range:", self.range_box), ("Group by:", self.group_box),
                             ("Bucket:", self.bucket_box)):
            label = QLabel(text)
            label.setBuddy(widget)
            bar.addWidget(label)
            bar.addWidget(widget)
        self.group_box.setMinimumWidth(180)
        bar.addStretch(1)
        bar.addWidget(self.stop_button)
        bar.addWidget(self.png_button)
        bar.addWidget(self.csv_button)
        self.state_label = plain_label(selectable=False)
        self.state_label.setObjectName("overviewState")
        self.banner = ErrorBanner()
        self.charts = OverviewCharts()
        self.charts.bucket_clicked.connect(self.open_bucket)
        self.charts.group_clicked.connect(self.open_group)
        self.compare = CompareTable()
        below = QWidget()
        below_layout = QVBoxLayout(below)
        below_layout.setContentsMargins(0, 0, 0, 0)
        copy_row = QHBoxLayout()
        copy_row.addWidget(QLabel("Compare groups (the best of each column is marked; others "
                                  "show their difference to it)"))
        copy_row.addStretch(1)
        copy_row.addWidget(self.copy_button)
        below_layout.addLayout(copy_row)
        below_layout.addWidget(self.compare, 1)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.charts)
        self.splitter.addWidget(below)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([560, 200])
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.banner)
        layout.addWidget(self.state_label)
        layout.addWidget(self.splitter, 1)

        app_model.source_changed.connect(self._model_changed)
        app_model.query_changed.connect(self._model_changed)
        self._show_state()

    # -- what to compute -------------------------------------------------------------------

    def stats_query(self) -> StatsQuery | None:
        """The statistics query of the app model's experiment and filter and the controls."""
        scope = self.app_model.scope
        if scope is None:
            return None
        text = self.group_box.currentText().strip()
        group = None if text in ("", "none") else GroupBy.parse(text)
        since = self.range_box.currentText()
        return StatsQuery.of_groups(scope.experiment.experiment_id, scope.query.groups,
                                    None if since == ALL_TIME else since, None, group,
                                    self.bucket_box.currentText())

    def set_group_by(self, text: str) -> None:
        self.group_box.setCurrentText(text)
        self.reload()

    def set_range(self, preset: str) -> None:
        self.range_box.setCurrentText(preset)  # reloads when it changes

    def _model_changed(self, _model: AppModel) -> None:
        self._stale = True
        if self.isVisible():
            self.reload()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._stale:
            self.reload()

    def reload(self) -> None:
        """Compute the numbers again (the cached ones show meanwhile)."""
        self._stale = False
        self.banner.hide()
        scope = self.app_model.scope
        try:
            query = self.stats_query()
        except (UsageError, BadFilter) as exc:
            self.banner.show_error(exc)
            return
        if scope is None or query is None:
            self.runner.cancel()
            self._show(None)
            return
        cached = self.cache.get(scope.client.host, query)
        self._show(cached)
        client, cache, path = scope.client, self.cache, self.path
        self._partials = 0

        def work(token: CancelToken) -> StatsResult:
            return stats.compute(client, query, token, on_partial=token.progress, path=path,
                                 cache=cache)

        self.stop_button.show()
        self.runner.start(work, self._done, self._failed, self._partial)
        self._show_state()

    def stop(self) -> None:
        self.runner.cancel()
        self.stop_button.hide()
        self._show_state(stopped=True)

    def _partial(self, result: Any) -> None:
        # Pages may come faster than charts are worth redrawing: at most one redraw per
        # PARTIAL_MS (the first at once), the latest partial result wins.
        if not isinstance(result, StatsResult):
            return
        self._partials += 1
        self._pending = result
        if not self._partial_timer.isActive():
            self._show_pending()

    def _show_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and self.runner.busy:
            self._show(pending)
            self._partial_timer.start()  # the next one waits its turn

    def _done(self, result: StatsResult) -> None:
        self.stop_button.hide()
        self._partial_timer.stop()
        self._pending = None
        self._show(result)

    def _failed(self, exc: Exception) -> None:
        self.stop_button.hide()
        self.banner.show_error(exc, retry=self.reload)
        self._show_state()

    # -- showing ---------------------------------------------------------------------------

    def _show(self, result: StatsResult | None) -> None:
        self.result = result
        self.charts.set_result(result)
        self.compare.set_result(result)
        self._show_state()
        self.numbers_changed.emit(result)

    @property
    def loading(self) -> bool:
        return self.runner.busy

    def _show_state(self, stopped: bool = False) -> None:
        self.state_label.setText(self.state_text(stopped))

    def state_text(self, stopped: bool = False) -> str:
        """What the numbers shown are: none yet, empty, partial, cached or final."""
        r = self.result
        if self.app_model.scope is None:
            return "Open an experiment to see its overview."
        if r is None:
            return "Reading…" if self.loading else ""
        since = r.query.since
        where = f"in the last {since}" if since else "in this experiment"
        if not self.loading and not r.from_cache and r.empty:
            return f"No traces {where}{' matching the filter' if r.query.groups else ''}."
        if r.from_cache:
            when = fmt.timestamp_ms(r.computed_at_ms)
            state = "refreshing…" if self.loading else "could not refresh"
            return f"Cached numbers from {when}; {state}"
        if not r.complete:
            verb = "stopped" if stopped else "reading"
            if r.read is not None:
                total = (f" of ~{stats.rounded_estimate(r.estimated_total):,}"
                         if r.estimated_total else "")
                return f"Partial: {r.read:,}{total} traces read ({verb})."
            return f"Partial: {len(r.totals)} groups so far ({verb})."
        count = sum(c.traces for c in r.totals)
        via = ("the server's trace metrics" if r.path == stats.METRICS_PATH
               else "trace search pages")
        return f"{count:,} traces {where}, from {via}."

    # -- drill-down ------------------------------------------------------------------------

    def drill_groups(self, group: str | None, bucket_ms: int | None
                     ) -> list[list[Clause]] | None:
        """`stats.drill_down` of the result shown (None before one)."""
        return None if self.result is None else stats.drill_down(self.result, group, bucket_ms)

    def open_bucket(self, group: str | None, bucket_ms: int) -> None:
        self._open(self.drill_groups(group, bucket_ms))

    def open_group(self, group: str | None) -> None:
        self._open(self.drill_groups(group, None))

    def _open(self, groups: list[list[Clause]] | None) -> None:
        if groups is None:
            self.state_label.setText("These traces have no value of the group (or were not in "
                                     "the sample of values): no filter selects exactly them.")
            return
        self.app_model.set_groups(groups)
        self.open_table.emit()

    # -- export ----------------------------------------------------------------------------

    def _copy_csv(self) -> None:
        self.compare.copy_csv()

    def export_png(self, path: str | None = None) -> None:
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export charts", "overview.png",
                                                  "PNG image (*.png)")
        if path:
            self.charts.flush()
            self.charts.grab().save(path, "PNG")

    def export_csv(self, path: str | None = None) -> None:
        if self.result is None:
            return
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export numbers", "overview.csv",
                                                  "CSV (*.csv)")
        if path:
            with open(path, "w", newline="", encoding="utf-8") as f:
                csv.writer(f, lineterminator="\n").writerows(
                    stats.csv_rows([*self.result.cells, *self.result.totals]))

