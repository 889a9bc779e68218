"""The assessments of a trace, read-only: the Trace tab's list when no editor is given."""

from __future__ import annotations

from PySide6.QtWidgets import QHeaderView, QTreeWidget, QTreeWidgetItem

from traceviewer.core.model import TraceInfo
from traceviewer.ui.common import palette


class AssessmentList(QTreeWidget):
    """The trace's assessments, read-only (the review view edits them)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setHeaderLabels(["Name", "Value", "Source", "Rationale"])
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.header().setSectionResizeMode(QHeaderView.Interactive)
        self.setColumnWidth(0, 150)
        self.setColumnWidth(1, 90)
        self.setColumnWidth(2, 150)

    def show_info(self, info: TraceInfo) -> None:
        """Show the assessments of a trace info."""
        self.clear()
        for a in info.assessments:
            value = a.error or ("" if a.value is None else str(a.value))
            item = QTreeWidgetItem(self, [a.name, value, f"{a.source_type} {a.source_id}".strip(),
                                          a.rationale or ""])
            if not a.valid:
                item.setToolTip(0, "Overridden by a newer assessment")
                for column in range(4):
                    item.setForeground(column, palette.MUTED_TEXT.brush())
