"""Export the current trace result (every page) to CSV or JSON Lines, with progress and cancel.

The file appears only when the export completes (core.export writes a temporary file and
renames it), so cancelling or failing leaves nothing behind."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from traceviewer.core.cancel import CancelToken
from traceviewer.core.export import export
from traceviewer.core.fmt import plural
from traceviewer.core.redact import redact
from traceviewer.core.search import MAX_PAGE_SIZE, TraceSearcher, iter_traces
from traceviewer.ui.common import palette
from traceviewer.ui.common.tasks import TaskRunner

FORMATS = {"csv": "CSV (spreadsheets)", "jsonl": "JSON Lines (one trace per line)"}


def _run_export(client: TraceSearcher, experiment_ids: list[str], filters: list[str],
                order_by: list[str] | None, path: Path, fmt: str, token: CancelToken) -> int:
    pages = iter_traces(client, experiment_ids, filters, order_by, page_size=MAX_PAGE_SIZE,
                        token=token)
    return export(pages, path, fmt, token)


class ExportDialog(QDialog):
    """Choose a format and a file, then export; `runner` is used by this dialog alone while it
    is open (a task started on it by anything else interrupts the export)."""

    def __init__(self, parent: QWidget | None, runner: TaskRunner, client: TraceSearcher,
                 experiment_ids: Sequence[str], filters: Sequence[str],
                 order_by: Sequence[str] | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export traces")
        self._runner = runner
        self._request = (client, list(experiment_ids), list(filters),
                         list(order_by) if order_by else None)
        self._token: CancelToken | None = None
        self._path: Path | None = None

        shown = " OR ".join(f for f in filters if f) or "none (every trace)"
        scope = QLabel(f"Every trace of the current result, all pages, one row per trace.\n"
                       f"Filter: {shown}")
        scope.setTextFormat(Qt.TextFormat.PlainText)
        scope.setWordWrap(True)
        self.format_box = QComboBox()
        for fmt, label in FORMATS.items():
            self.format_box.addItem(label, fmt)
        self.path_edit = QLineEdit(str(Path.home() / time.strftime("traces-%Y%m%d-%H%M.csv")))
        self.path_edit.setMinimumWidth(380)
        self.choose_button = QPushButton("Choose…")
        self.choose_button.clicked.connect(self._choose)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.choose_button)
        form = QFormLayout()
        form.addRow("Format", self.format_box)
        form.addRow("File", path_row)
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setRange(0, 1)
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox()
        self.export_button = self.buttons.addButton(
            "Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(scope)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)

        self.format_box.currentIndexChanged.connect(self._format_changed)
        self._runner.busy_changed.connect(self._runner_busy)

    @property
    def running(self) -> bool:
        return self._token is not None

    def fmt(self) -> str:
        return self.format_box.currentData()

    def _format_changed(self) -> None:
        text = self.path_edit.text().strip()
        if text:
            self.path_edit.setText(str(Path(text).with_suffix("." + self.fmt())))

    def _choose(self) -> None:
        pattern = f"{FORMATS[self.fmt()]} (*.{self.fmt()})"
        path, _ = QFileDialog.getSaveFileName(self, "Export traces to", self.path_edit.text(),
                                              pattern)
        if path:
            self.path_edit.setText(path)

    def start(self) -> None:
        """Export to the chosen file in the background."""
        text = self.path_edit.text().strip()
        if not text:
            self._show("Choose a file to export to.", error=True)
            return
        path = Path(text).expanduser()
        if path.is_dir():
            self._show(f"{path} is a folder: add a file name.", error=True)
            return
        self._path = path
        self._set_running(True)
        self._show("Reading traces…")
        client, ids, filters, order_by = self._request
        fmt = self.fmt()
        self._token = self._runner.start(
            lambda token: _run_export(client, ids, filters, order_by, path, fmt, token),
            self._done, self._failed, self._progressed)

    def cancel_export(self) -> None:
        """Stop the export in flight; no file is written."""
        if self._token is not None:
            self._token = None
            self._runner.cancel()
            self._stopped("Export cancelled; no file was written.")

    def reject(self) -> None:
        """Cancel stops a running export first; otherwise it closes the dialog."""
        if self.running:
            self.cancel_export()
        else:
            super().reject()

    def _runner_busy(self, busy: bool) -> None:
        # Another task started on the runner cancels ours without a callback.
        if not busy and self._token is not None and self._token.cancelled:
            self._token = None
            self._stopped("The export was interrupted; no file was written.")

    def _progressed(self, count: int) -> None:
        self._show(f"Exported {plural(count, 'trace')}…")

    def _done(self, count: int) -> None:
        self._token = None
        self._set_running(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self._show(f"Exported {plural(count, 'trace')} to {self._path}.")
        self.export_button.hide()
        self.cancel_button.setText("Close")

    def _failed(self, exc: Exception) -> None:
        self._token = None
        self._stopped(f"Export failed: {exc}", error=True)

    def _stopped(self, message: str, error: bool = False) -> None:
        self._set_running(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self._show(message, error)

    def _set_running(self, running: bool) -> None:
        for widget in (self.format_box, self.path_edit, self.choose_button, self.export_button):
            widget.setEnabled(not running)
        if running:
            self.progress.setRange(0, 0)  # the total is unknown until the last page

    def _show(self, message: str, error: bool = False) -> None:
        palette.set_style(self.status, "color: $ERROR_TEXT;" if error else "")
        self.status.setText(redact(message))
