"""The span inspector: everything about the selected span.

Tabs: the conversation of chat spans, the documents of retriever spans, inputs and outputs (a
collapsible JSON tree or the raw text), attributes, and events with exception stack traces.
Trace content is untrusted: every label here is plain text, never rich text."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontDatabase, QKeySequence, QShortcut, QTextOption
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QStackedWidget,
    QTabWidget,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from traceviewer.core.model import Span
from traceviewer.core.trace_layout import format_duration, span_tokens
from traceviewer.ui.common import palette
from traceviewer.ui.common.cards import Cards, chat_cards, document_cards
from traceviewer.ui.common.plain import copy_text, plain_label

MAX_CHILDREN = 500  # per JSON node; the raw view always has everything
PREVIEW_CHARS = 300


def wrapped_text() -> QPlainTextEdit:
    """A read-only plain-text box in the fixed font whose lines wrap at the box's width, a
    long word (a 2,000-character line) anywhere: no horizontal scrolling."""
    box = QPlainTextEdit(readOnly=True)
    box.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    box.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
    box.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
    return box


def to_json_text(value: Any) -> str:
    """Pretty JSON for display and copying (strings as themselves)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=_plain)


def _plain(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else str(value)


def _scalar_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                           default=_plain)
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "…"


def span_json(span: Span) -> str:
    """The span as readable JSON (decoded attributes), for copying."""
    return to_json_text({
        "span_id": span.span_id, "parent_id": span.parent_id, "name": span.name,
        "span_type": span.span_type, "start_ns": span.start_ns, "end_ns": span.end_ns,
        "status": span.status, "status_message": span.status_message,
        "attributes": dict(span.attributes),
        "events": [{"name": e.name, "time_ns": e.time_ns, "attributes": dict(e.attributes)}
                   for e in span.events],
    })


class JsonView(QWidget):
    """A value as a collapsible JSON tree or as raw text, with copy."""

    VALUE_ROLE = Qt.ItemDataRole.UserRole

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.value: Any = None
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Key", "Value"])
        self.tree.setUniformRowHeights(True)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._menu)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        QShortcut(QKeySequence.StandardKey.Copy, self.tree, self._copy_selected,
                  context=Qt.ShortcutContext.WidgetShortcut)
        self.raw = wrapped_text()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.tree)
        self.stack.addWidget(self.raw)
        self.raw_button = QToolButton()
        self.raw_button.setText("Raw")
        self.raw_button.setCheckable(True)
        self.raw_button.setToolTip("Show the value as raw text")
        self.raw_button.toggled.connect(lambda on: self.stack.setCurrentIndex(int(on)))
        copy = QToolButton()
        copy.setText("Copy")
        copy.setToolTip("Copy the whole value as JSON")
        copy.clicked.connect(lambda: copy_text(to_json_text(self.value)))
        self.empty = plain_label("", selectable=False)
        palette.set_style(self.empty, "color: $MUTED_TEXT")
        bar = QHBoxLayout()
        bar.addWidget(self.empty, 1)
        bar.addWidget(self.raw_button)
        bar.addWidget(copy)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.stack)

    def set_value(self, value: Any, empty_text: str) -> None:
        """Show a value (None: the empty text)."""
        self.value = value
        self.tree.clear()
        self.empty.setText(empty_text if value is None else "")
        self.raw.setPlainText("" if value is None else to_json_text(value))
        if value is None:
            return
        if isinstance(value, dict | list):
            self._fill(self.tree.invisibleRootItem(), value)
            self.tree.expandToDepth(1)
        else:
            self._add(self.tree.invisibleRootItem(), "value", value)
        self.raw_button.setChecked(isinstance(value, str) and "\n" in value)

    def _fill(self, parent: QTreeWidgetItem, value: dict | list) -> None:
        pairs = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
        for key, child in pairs[:MAX_CHILDREN]:
            self._add(parent, str(key), child)
        if len(pairs) > MAX_CHILDREN:
            QTreeWidgetItem(parent, ["…", f"{len(pairs) - MAX_CHILDREN} more (see Raw)"])

    def _add(self, parent: QTreeWidgetItem, key: str, value: Any) -> None:
        if isinstance(value, dict | list):
            summary = f"{{{len(value)} keys}}" if isinstance(value, dict) else f"[{len(value)}]"
            item = QTreeWidgetItem(parent, [key, summary])
            self._fill(item, value)
        else:
            item = QTreeWidgetItem(parent, [key, _scalar_text(value)])
        item.setData(0, self.VALUE_ROLE, value)

    def _copy_selected(self) -> None:
        item = self.tree.currentItem()
        if item is not None:
            copy_text(to_json_text(item.data(0, self.VALUE_ROLE)))

    def _menu(self, pos) -> None:
        item = self.tree.itemAt(pos)
        if item is None:
            return
        menu = QMenu(self)
        menu.addAction("Copy value", lambda: copy_text(to_json_text(item.data(0,
                                                                               self.VALUE_ROLE))))
        menu.addAction("Copy key", lambda: copy_text(item.text(0)))
        menu.exec(self.tree.viewport().mapToGlobal(pos))


class Inspector(QWidget):
    """Shows one span; empty until a span is selected."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.span: Span | None = None
        self.title = plain_label()
        font = QFont(self.title.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() + 1)
        self.title.setFont(font)
        self.summary = plain_label()
        palette.set_style(self.summary, "color: $SECONDARY_TEXT")
        copy_id = QPushButton("Copy id")
        copy_id.setToolTip("Copy the span id")
        copy_id.clicked.connect(lambda: self.span and copy_text(self.span.span_id))
        copy_span = QPushButton("Copy span as JSON")
        copy_span.setToolTip("Copy the whole span (attributes decoded) as JSON")
        copy_span.clicked.connect(lambda: self.span and copy_text(span_json(self.span)))
        buttons = QHBoxLayout()
        buttons.addWidget(copy_id)
        buttons.addWidget(copy_span)
        buttons.addStretch(1)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.chat = Cards()
        self.documents = Cards()
        self.inputs = JsonView()
        self.outputs = JsonView()
        self.attributes = JsonView()
        self.events = wrapped_text()

        self.placeholder = plain_label("Select a span in the tree or the timeline.", False)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        palette.set_style(self.placeholder, "color: $MUTED_TEXT")
        self.body = QWidget()
        body = QVBoxLayout(self.body)
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.title)
        body.addWidget(self.summary)
        body.addLayout(buttons)
        body.addWidget(self.tabs, 1)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(self.body)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 0, 0, 0)
        layout.addWidget(self.stack)

    def show_span(self, span: Span | None) -> None:
        """Show a span (None: the placeholder)."""
        self.span = span
        if span is None:
            self.stack.setCurrentWidget(self.placeholder)
            return
        self.stack.setCurrentWidget(self.body)
        self.title.setText(span.name)
        facts = [span.span_type, span.status, format_duration(span.duration_ns),
                 f"span {span.span_id}"]
        tokens = span_tokens(span)
        if tokens is not None:
            usage = span.token_usage or {}  # set: it has tokens
            facts.append(f"{tokens:,} tokens ({usage.get('input_tokens', '?')} in, "
                         f"{usage.get('output_tokens', '?')} out)")
        if span.status_message:
            facts.append(span.status_message)
        self.summary.setText(" · ".join(facts))

        previous = self.tabs.tabText(self.tabs.currentIndex())
        self.tabs.clear()
        messages = span.chat_messages
        if messages:
            self.chat.set_cards(chat_cards(messages))
            self.tabs.addTab(self.chat, "Chat")
        docs = document_cards(span.outputs)
        if docs:
            self.documents.set_cards(docs)
            self.tabs.addTab(self.documents, f"Documents ({len(docs)})")
        self.inputs.set_value(span.inputs, "No inputs recorded.")
        self.outputs.set_value(span.outputs, "No outputs recorded (a span that raised has "
                               "none)." if span.status == "ERROR" else "No outputs recorded.")
        self.tabs.addTab(self.inputs, "Inputs")
        self.tabs.addTab(self.outputs, "Outputs")
        self.attributes.set_value(dict(span.attributes), "No attributes.")
        self.tabs.addTab(self.attributes, f"Attributes ({len(span.attributes)})")
        self.events.setPlainText(events_text(span))
        label = f"Exceptions ({len(span.exceptions)})" if span.exceptions else (
            f"Events ({len(span.events)})")
        self.tabs.addTab(self.events, label)
        # Stay on the same kind of tab while moving through spans; errors show first.
        names = [self.tabs.tabText(i) for i in range(self.tabs.count())]
        wanted = next((i for i, n in enumerate(names) if n.split(" (")[0] ==
                       previous.split(" (")[0]), 0)
        if span.exceptions and span.status == "ERROR":
            wanted = len(names) - 1
        self.tabs.setCurrentIndex(wanted)


def events_text(span: Span) -> str:
    """Events as text; exceptions with their type, message and stack trace."""
    if not span.events:
        return "No events."
    blocks = []
    for event in span.events:
        attrs = dict(event.attributes)
        if event.name == "exception":
            head = (f"{attrs.pop('exception.type', 'Exception')}: "
                    f"{attrs.pop('exception.message', '')}")
            stack = attrs.pop("exception.stacktrace", "")
            lines = [f"● exception  +{format_duration(event.time_ns - span.start_ns)}", head]
            if stack:
                lines += ["", str(stack).rstrip()]
        else:
            lines = [f"● {event.name}  +{format_duration(event.time_ns - span.start_ns)}"]
        lines += [f"{k}: {_scalar_text(v)}" for k, v in attrs.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
