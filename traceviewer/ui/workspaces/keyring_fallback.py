"""Saving a workspace when no keyring works: the user may keep its secret in this session's
memory instead (never in a file)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QMessageBox,
    QWidget,
)

from traceviewer.core.errors import KeyringUnavailable
from traceviewer.core.redact import redact
from traceviewer.ui.common.tasks import WriteRunner


def save_with_session_fallback(parent: QWidget, runner: WriteRunner,
                               save: Callable[[bool], Any], on_saved: Callable[[Any], None],
                               on_error: Callable[[Exception], None]) -> None:
    """Run `save(session_only)` in the background, first with the keyring. If no keyring is
    usable, ask whether to keep the secret for this session only and, if so, run it again with
    `session_only=True`; if not, report the keyring error. Never a plaintext fallback."""

    def failed(exc: Exception) -> None:
        if not isinstance(exc, KeyringUnavailable):
            on_error(exc)
            return
        box = QMessageBox(QMessageBox.Icon.Warning, "Keyring unavailable",
                          redact(str(exc)), parent=parent)
        box.setObjectName("keyringUnavailableBox")
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setInformativeText("Trace Viewer never writes secrets to a file. You can keep the "
                               "secret in memory until Trace Viewer quits, and enter it again "
                               "next time; the other settings are saved.")
        keep = box.addButton("Keep for this session only", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)

        def answered(_result: int) -> None:
            if box.clickedButton() is keep:
                runner.start(lambda _token: save(True), on_saved, on_error)
            else:
                on_error(exc)
        box.finished.connect(answered)
        box.open()

    runner.start(lambda _token: save(False), on_saved, failed)
