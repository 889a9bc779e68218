"""Titled plain-text cards: the messages of a conversation, the documents of a retriever."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget

from traceviewer.ui.common import palette
from traceviewer.ui.common.plain import plain_label


class Cards(QScrollArea):
    """A vertical list of titled plain-text cards (chat messages, documents)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.NoFrame)
        self._body = QWidget()
        self._layout = QVBoxLayout(self._body)
        self._layout.setAlignment(Qt.AlignTop)
        self.setWidget(self._body)

    def set_cards(self, cards: list[tuple[str, str, palette.Role]]) -> None:
        """Replace the cards: (title, text, background colour) each."""
        while self._layout.count():
            widget = self._layout.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        for title, text, colour in cards:
            card = QFrame()
            card.setObjectName("card")
            palette.set_style(card, "QFrame#card { background: $bg; border-radius: 6px; }",
                              bg=colour)
            box = QVBoxLayout(card)
            head = plain_label(title)
            font = QFont(head.font())
            font.setBold(True)
            head.setFont(font)
            box.addWidget(head)
            box.addWidget(plain_label(text))
            self._layout.addWidget(card)


ROLE_COLOURS = {"user": palette.CARD_USER, "assistant": palette.CARD_ASSISTANT,
                "system": palette.CARD_SYSTEM, "tool": palette.CARD_TOOL}


def message_text(message: Mapping[str, Any]) -> str:
    """A chat message's content as text: string content, text parts, and tool calls."""
    content = message.get("content")
    if isinstance(content, list):
        parts = [p.get("text", "") if isinstance(p, Mapping) else str(p) for p in content]
        text = "\n".join(part for part in parts if part)
    else:
        text = "" if content is None else str(content)
    for call in message.get("tool_calls") or ():
        function = call.get("function", {}) if isinstance(call, Mapping) else {}
        text += f"\n→ {function.get('name', '?')}({function.get('arguments', '')})"
    return text.strip()


def chat_cards(messages) -> list[tuple[str, str, palette.Role]]:
    """Cards for a conversation."""
    cards = []
    for message in messages:
        role = str(message.get("role", "?"))
        title = role if not message.get("name") else f"{role} · {message['name']}"
        cards.append((title, message_text(message), ROLE_COLOURS.get(role, palette.CARD_SYSTEM)))
    return cards


def document_cards(outputs: Any) -> list[tuple[str, str, palette.Role]] | None:
    """Cards for a retriever's documents (the content, then each metadata entry), or None if
    the outputs are not a document list."""
    if not isinstance(outputs, list) or not outputs or not all(
            isinstance(d, Mapping) and "page_content" in d for d in outputs):
        return None
    cards = []
    for number, doc in enumerate(outputs, 1):
        raw = doc.get("metadata")
        # Untrusted: metadata that is not a map is shown as it is, not trusted to have keys.
        metadata: Mapping[str, Any] = raw if isinstance(raw, Mapping) else (
            {"metadata": raw} if raw else {})
        source = doc.get("id") or metadata.get("doc_uri") or metadata.get("source") or ""
        score = metadata.get("score", metadata.get("relevance_score"))
        title = " · ".join(str(p) for p in (f"#{number}", source,
                                              None if score is None else f"score {score}") if p)
        details = "\n".join(f"{key}: {value}" for key, value in metadata.items())
        text = "\n\n".join(p for p in (str(doc.get("page_content", "")), details) if p)
        cards.append((title, text, palette.CARD_DOCUMENT))
    return cards
