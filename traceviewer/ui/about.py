"""The About dialog (version from `traceviewer.__version__`, the one version source) and the
app icon."""

from __future__ import annotations

import platform
import sys

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from traceviewer import __version__, resources


def app_icon() -> QIcon:
    """The app icon at every rendered size (for the window, taskbar and this dialog)."""
    icon = QIcon()
    for path in resources.icon_paths():
        icon.addFile(str(path))
    return icon


def build_details() -> str:
    """Version details for a bug report: app, Python, Qt and OS."""
    return (f"Trace Viewer {__version__}\n"
            f"Python {platform.python_version()} ({sys.executable})\n"
            f"Qt {qVersion()}, PySide6 {PySide6.__version__}\n"
            f"{platform.platform()}")


def _plain_label(text: str, parent: QWidget) -> QLabel:
    label = QLabel(text, parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


class AboutDialog(QDialog):
    """Name, version, purpose and copyable version details."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("About Trace Viewer")
        self.setWindowIcon(app_icon())

        logo = QLabel(self)
        logo.setPixmap(app_icon().pixmap(96, 96))
        logo.setAlignment(Qt.AlignmentFlag.AlignTop)

        title = _plain_label("Trace Viewer", self)
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        title.setFont(font)
        self.version_label = _plain_label(f"Version {__version__}", self)
        self.version_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        summary = _plain_label(
            "A fast native desktop viewer for MLflow traces, with human review.", self)
        summary.setWordWrap(True)
        # The first line repeats the name and version shown above.
        self.details_label = _plain_label(build_details().split("\n", 1)[1], self)
        self.details_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details_label.setStyleSheet("color: palette(placeholder-text);")
        license_label = _plain_label("Licensed under the Apache License 2.0.", self)

        text = QVBoxLayout()
        for widget in (title, self.version_label, summary, self.details_label, license_label):
            text.addWidget(widget)
        text.addStretch(1)
        top = QHBoxLayout()
        top.addWidget(logo)
        top.addSpacing(12)
        top.addLayout(text, 1)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        copy = QPushButton("Copy Details", self)
        copy.setToolTip("Copy the version details to the clipboard, e.g. for a bug report")
        copy.clicked.connect(self.copy_details)
        buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(buttons)
        self.setMinimumWidth(460)

    def copy_details(self) -> None:
        """Put the version details on the clipboard."""
        QGuiApplication.clipboard().setText(build_details())
