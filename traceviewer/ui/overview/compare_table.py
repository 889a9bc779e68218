"""The compare table under the Overview's charts: one row per group value with its traces, error
rate, p50/p95 latency, tokens per trace and each assessment's pass rate (or mean); each column's
best group is marked, the others show their difference to it. Sortable; copies as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from traceviewer.core import fmt
from traceviewer.core.stats import Cell, StatsResult
from traceviewer.ui.common import palette
from traceviewer.ui.common.plain import copy_text, plain_tooltip

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
NO_GROUP = "(no value)"
_Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True, slots=True)
class Column:
    """One numeric column: its title, its value of a cell, whether higher is better (None:
    neither, no best), and how a value reads."""

    title: str
    value: Callable[[Cell], float | None]
    higher_better: bool | None
    text: Callable[[float], str]


def _pct(v: float) -> str:
    return f"{v:.1%}"


def _ms(v: float) -> str:
    return fmt.duration_ms(v)


def _count(v: float) -> str:
    return fmt.number(round(v))


def _mean(v: float) -> str:
    return f"{v:.3g}"


def group_name(group: str | None) -> str:
    return NO_GROUP if group is None else group


def columns_for(result: StatsResult) -> list[Column]:
    """The table's columns for `result`: the fixed ones, then one per assessment name."""
    cols = [
        Column("Traces", lambda c: float(c.traces), None, _count),
        Column("Error %", lambda c: c.error_rate, False, _pct),
        Column("p50", lambda c: c.latency.p50, False, _ms),
        Column("p95", lambda c: c.latency.p95, False, _ms),
        Column("Tokens/trace", lambda c: c.total_tokens / c.traces if c.traces else None, False,
               _count),
    ]
    names = sorted({n for c in result.totals for n in c.assessments})
    for name in names:
        rated = any(c.assessments[name].pass_rate is not None for c in result.totals
                    if name in c.assessments)
        if rated:
            cols.append(Column(f"{name} pass", _rate_of(name), True, _pct))
        else:
            cols.append(Column(f"{name} mean", _mean_of(name), True, _mean))
    return cols


def _rate_of(name: str) -> Callable[[Cell], float | None]:
    def value(c: Cell) -> float | None:
        a = c.assessments.get(name)
        return a.pass_rate if a is not None else None
    return value


def _mean_of(name: str) -> Callable[[Cell], float | None]:
    def value(c: Cell) -> float | None:
        a = c.assessments.get(name)
        return a.mean if a is not None else None
    return value


class CompareModel(QAbstractTableModel):
    """Rows: the result's group totals. Column 0 is the group value (untrusted: plain text)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[Cell] = []
        self.columns: list[Column] = []
        self._best: list[float | None] = []

    def set_result(self, result: StatsResult | None) -> None:
        self.beginResetModel()
        self.rows = sorted(result.totals, key=lambda c: -c.traces) if result else []
        self.columns = columns_for(result) if result else []
        self._best = [self._best_of(col) for col in self.columns]
        self.endResetModel()

    def _best_of(self, col: Column) -> float | None:
        if col.higher_better is None or len(self.rows) < 2:
            return None
        values = [v for v in (col.value(c) for c in self.rows) if v is not None]
        if not values:
            return None
        return max(values) if col.higher_better else min(values)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else 1 + len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole or orientation != Qt.Orientation.Horizontal:
            return None
        return "Group" if section == 0 else self.columns[section - 1].title

    def value(self, row: int, column: int) -> float | None:
        return self.columns[column - 1].value(self.rows[row])

    def text(self, row: int, column: int) -> str:
        """What the cell reads: the value, and for a worse group its difference to the best."""
        if column == 0:
            return group_name(self.rows[row].group)
        col, v = self.columns[column - 1], self.value(row, column)
        if v is None:
            return "–"
        best = self._best[column - 1]
        if best is None or v == best:
            return col.text(v)
        diff = v - best
        sign = "+" if diff > 0 else "−"
        if col.text is _pct:
            return f"{col.text(v)} ({sign}{abs(diff) * 100:.1f} pt)"
        return f"{col.text(v)} ({sign}{col.text(abs(diff))})"

    def is_best(self, row: int, column: int) -> bool | None:
        """True for the column's best group, False for a worse one, None without a best."""
        if column == 0:
            return None
        best, v = self._best[column - 1], self.value(row, column)
        if best is None or v is None:
            return None
        return v == best

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, column = index.row(), index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self.text(row, column)
        if role == SORT_ROLE:
            if column == 0:
                return group_name(self.rows[row].group).lower()
            v = self.value(row, column)
            return float("-inf") if v is None else v
        if role == Qt.ItemDataRole.ToolTipRole and column == 0:
            return plain_tooltip(group_name(self.rows[row].group))
        if role == Qt.ItemDataRole.BackgroundRole:
            best = self.is_best(row, column)
            if best is True:
                return palette.BEST_CELL.brush()
            if best is False:
                return palette.WORSE_CELL.brush()
        if role == Qt.ItemDataRole.TextAlignmentRole and column > 0:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def csv_text(self) -> str:
        """The table as CSV: raw numbers (ratios as fractions, latency in ms)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["group", *(c.title for c in self.columns)])
        for r, cell in enumerate(self.rows):
            writer.writerow([group_name(cell.group), *(
                "" if (v := self.value(r, k)) is None else f"{v:.6g}"
                for k in range(1, 1 + len(self.columns)))])
        return out.getvalue()


class CompareTable(QTableView):
    """The sortable view of a CompareModel; Ctrl+C copies the whole table as CSV."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.compare = CompareModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.compare)
        self.proxy.setSortRole(SORT_ROLE)
        self.setModel(self.proxy)
        self.setSortingEnabled(True)
        self.sortByColumn(1, Qt.SortOrder.DescendingOrder)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().hide()
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)
        QShortcut(QKeySequence.StandardKey.Copy, self, self.copy_csv)

    def set_result(self, result: StatsResult | None) -> None:
        self.compare.set_result(result)
        self.proxy.sort(self.horizontalHeader().sortIndicatorSection(),
                        self.horizontalHeader().sortIndicatorOrder())

    def copy_csv(self) -> None:
        copy_text(self.compare.csv_text())
