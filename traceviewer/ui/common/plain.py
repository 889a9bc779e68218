"""Untrusted text (trace content) in places where Qt would guess rich text, with bidi and
control characters shown as visible escapes (core.terminal.neutralize_bidi), not obeyed."""

from __future__ import annotations

from PySide6 import QtGui
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel

from traceviewer.core.terminal import neutralize_bidi


def plain_tooltip(text: str) -> str | None:
    """Tooltip text shown literally (Qt guesses rich text in tooltips, so it is escaped) and
    wrapped; no tooltip for empty text."""
    if not text:
        return None
    return QtGui.Qt.convertFromPlainText(neutralize_bidi(text, one_line=False),
                                         Qt.WhiteSpaceMode.WhiteSpaceNormal)


class PlainLabel(QLabel):
    """A label that shows untrusted text literally: plain text, a U+202E shown as <U+202E>
    instead of reversing what follows; newlines and tabs kept."""

    def setText(self, text: str) -> None:
        super().setText(neutralize_bidi(text, one_line=False))


def plain_label(text: str = "", selectable: bool = True, *, style: str = "") -> QLabel:
    """A word-wrapped label that shows `text` literally (never as rich text)."""
    label = PlainLabel()
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setText(text)
    label.setWordWrap(True)
    if style:
        label.setStyleSheet(style)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                      | Qt.TextInteractionFlag.TextSelectableByKeyboard)
    return label


def copy_text(text: str) -> None:
    """Put `text` on the clipboard."""
    QGuiApplication.clipboard().setText(text)
