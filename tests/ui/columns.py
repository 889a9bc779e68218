"""Checks of table column widths against the text they show, and clicks on their headers."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QTableView

from traceviewer.ui.browse.browser import TraceBrowser
from traceviewer.ui.browse.trace_table import COLUMN_NAMES

SLACK_PX = 40  # cell padding and a little room; far less than a stretched column


def assert_fits(table: QTableView, column: int, texts: list[str]) -> None:
    """The longest of `texts` fits `column` whole, with no more than SLACK_PX to spare."""
    longest = max(texts, key=table.fontMetrics().horizontalAdvance)
    need = table.fontMetrics().horizontalAdvance(longest)
    width = table.horizontalHeader().sectionSize(column)
    assert need < width < need + SLACK_PX, (longest, need, width)


def assert_last_takes_the_rest(table: QTableView) -> None:
    """The visible columns fill the view, so the last one took what the others left."""
    header = table.horizontalHeader()
    visible = [i for i in range(header.count()) if not header.isSectionHidden(i)]
    assert sum(header.sectionSize(i) for i in visible) >= table.viewport().width()


def click_header(browser: TraceBrowser, column: str) -> None:
    header = browser.table.horizontalHeader()
    i = COLUMN_NAMES.index(column)
    x = header.sectionViewportPosition(i) + header.sectionSize(i) // 2
    QTest.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(x, header.height() // 2))
