"""Untrusted text (trace content) in places where Qt would guess rich text."""

from __future__ import annotations

from PySide6 import QtGui
from PySide6.QtCore import Qt


def plain_tooltip(text: str) -> str | None:
    """Tooltip text shown literally (Qt guesses rich text in tooltips, so it is escaped) and
    wrapped; no tooltip for empty text."""
    if not text:
        return None
    return QtGui.Qt.convertFromPlainText(text, Qt.WhiteSpaceMode.WhiteSpaceNormal)
