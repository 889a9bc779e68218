"""A dismissable error banner with an optional Retry action, shown above a view."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from traceviewer.core.redact import redact
from traceviewer.ui.common import palette


class ErrorBanner(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBanner")
        palette.set_style(self, "#errorBanner { background: $ERROR_BG; border: 1px solid "
                                "$ERROR_BORDER; border-radius: 4px; } "
                                "QLabel { color: $ERROR_TEXT; }")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.retry_button = QPushButton("Retry")
        self.retry_button.setToolTip("Try the failed request again")
        close = QPushButton("Dismiss")
        close.clicked.connect(self.hide)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.retry_button)
        layout.addWidget(close)
        self._retry: Callable[[], None] | None = None
        self.source: str | None = None
        self.retry_button.clicked.connect(self._on_retry)
        self.hide()

    def show_error(self, message: str | Exception, retry: Callable[[], None] | None = None,
                   *, source: str = "") -> None:
        """Show `message` (secrets masked); `retry` re-runs what failed. `source` names the
        action that failed, so its next success can take the banner away (`succeeded`)."""
        self.label.setText(redact(str(message)))
        self._retry = retry
        self.source = source
        self.retry_button.setVisible(retry is not None)
        self.show()

    def succeeded(self, source: str = "") -> None:
        """The action `source` worked this time: a failure of it no longer stands. The
        banner of another action's failure stays."""
        if self.source == source:
            self.hide()

    def setVisible(self, visible: bool) -> None:
        if not visible:
            self.source = None  # a hidden banner stands for no failure
        super().setVisible(visible)

    def _on_retry(self) -> None:
        self.hide()
        if self._retry is not None:
            self._retry()
