"""The header of the trace detail view: name, ids, state, duration, tokens, session, user,
tags and markers (running, partial, duplicate spans merged, cached). It fills in step by step:
the trace id as soon as a trace is asked for, its info once that arrives, then its spans."""

from __future__ import annotations

import time

from PySide6.QtGui import QFont
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from traceviewer.core.fmt import duration_ms
from traceviewer.core.model import TraceInfo
from traceviewer.core.trace_layout import TreeLayout
from traceviewer.ui.common import palette
from traceviewer.ui.common.plain import copy_text, plain_label


def _chip(text: str, role: palette.Role, tooltip: str) -> QLabel:
    label = plain_label(text, selectable=False)
    label.setWordWrap(False)
    _colour_chip(label, role)
    label.setToolTip(tooltip)
    label.hide()
    return label


def _colour_chip(chip: QLabel, role: palette.Role) -> None:
    """Give a chip the background of a palette role (CHIP_OK, ...)."""
    palette.set_style(chip, "background: $bg; color: $TEXT; border-radius: 4px; padding: 1px 6px;",
                      bg=role)


def _copy_button(tooltip: str) -> QToolButton:
    button = QToolButton()
    button.setText("Copy")
    button.setToolTip(tooltip)
    return button


class TraceHeader(QFrame):
    """Trace id, client request id, state, duration, tokens, session, user, tags, markers;
    `status` (a loading progress row, say) at the right of the title."""

    def __init__(self, status: QWidget | None = None, parent=None):
        super().__init__(parent)
        self.title = plain_label()
        font = QFont(self.title.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() + 2)
        self.title.setFont(font)
        self.trace_id = plain_label()
        self.request_id = plain_label()
        for label in (self.trace_id, self.request_id):
            label.setWordWrap(False)  # ids are copied, never broken across lines
        copy_trace = _copy_button("Copy the trace id")
        self._ids = ("", "")  # as the server sent them (the labels show them neutralised)
        copy_trace.clicked.connect(lambda: copy_text(self._ids[0]))
        self.copy_request = _copy_button("Copy the client request id")
        self.copy_request.clicked.connect(lambda: copy_text(self._ids[1]))
        self.state = _chip("", palette.CHIP_OK, "Trace state")
        self.in_progress = _chip("in progress", palette.CHIP_WARNING,
                                 "The trace is still running: spans may be missing. Reload "
                                 "(F5) to see more.")
        self.partial = _chip("", palette.CHIP_WARNING, "")
        self.duplicates = _chip("", palette.CHIP_WARNING, "")
        self.cached = _chip("", palette.CHIP_INFO, "Shown from the local cache. Reload (F5) to "
                                                  "fetch it from the server again.")
        self.facts = plain_label()
        palette.set_style(self.facts, "color: $SECONDARY_TEXT")
        self.tags = plain_label()
        palette.set_style(self.tags, "color: $MUTED_TEXT")

        ids = QHBoxLayout()
        for widget in (QLabel("Trace"), self.trace_id, copy_trace, QLabel("  Request"),
                       self.request_id, self.copy_request):
            ids.addWidget(widget)
        ids.addStretch(1)
        top = QHBoxLayout()
        top.addWidget(self.title)
        for chip in (self.state, self.in_progress, self.partial, self.duplicates, self.cached):
            top.addWidget(chip)
        top.addStretch(1)
        if status is not None:
            top.addWidget(status)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addLayout(ids)
        layout.addWidget(self.facts)
        layout.addWidget(self.tags)

    def show_opening(self, title: str, trace_id: str = "") -> None:
        """What is being opened (a trace id, a file name), before anything about it is known."""
        self.title.setText(title)
        self.trace_id.setText(trace_id or "—")
        self._ids = (trace_id, "")
        self.request_id.setText("—")
        self.copy_request.setEnabled(False)
        for chip in (self.state, self.in_progress, self.partial, self.duplicates, self.cached):
            chip.hide()
        self.facts.setText("")
        self.tags.hide()

    def show_info(self, info: TraceInfo, spans: int | None = None) -> None:
        """The trace's info (before its spans are there: `spans` None, the recorded count)."""
        self.title.setText(info.name or "(unnamed trace)")
        self.trace_id.setText(info.trace_id)
        self._ids = (info.trace_id, info.client_request_id or "")
        self.request_id.setText(info.client_request_id or "—")
        self.copy_request.setEnabled(bool(info.client_request_id))
        ok = info.state == "OK"
        self.state.setText(info.state)
        _colour_chip(self.state, palette.CHIP_OK if ok else palette.CHIP_ERROR)
        self.state.show()
        self.facts.setText(header_facts(info, info.num_spans if spans is None else spans))
        tags = {k: v for k, v in info.tags.items() if not k.startswith("mlflow.")}
        self.tags.setText("Tags: " + ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))
                          if tags else "")
        self.tags.setVisible(bool(tags))

    def show_trace(self, layout: TreeLayout, cached_at: float | None) -> None:
        """The trace with its spans: info, markers (running, partial, duplicates, cached)."""
        trace = layout.trace
        info = trace.info
        self.show_info(info, len(trace.spans))
        if not info.name:
            self.title.setText(trace.spans[0].name if trace.spans else "(no spans)")
        self.in_progress.setVisible(layout.in_progress)
        expected = info.num_spans
        self.partial.setVisible(trace.partial)
        if trace.partial:
            self.partial.setText(f"partial: {len(trace.spans):,} of {expected:,} spans")
            self.partial.setToolTip("The server recorded more spans than it returned (still "
                                    "exporting, or lost). Reload (F5) later.")
        self.duplicates.setVisible(trace.duplicates > 0)
        if trace.duplicates:
            spans = "span" if trace.duplicates == 1 else "spans"
            self.duplicates.setText(f"{trace.duplicates:,} duplicate {spans} merged")
            self.duplicates.setToolTip(
                f"The server sent {trace.duplicates:,} more {spans} with a span id another span "
                "already had (a span exported twice). One span is shown per id: the finished "
                "copy, else the later one.")
        self.cached.setVisible(cached_at is not None)
        if cached_at is not None:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(cached_at))
            self.cached.setText(f"cached at {when}")


def header_facts(info: TraceInfo, spans: int | None) -> str:
    """Started, duration, spans, tokens, session and user as one line."""
    facts = [time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.request_time_ms / 1000))]
    if info.duration_ms is not None:
        facts.append(duration_ms(info.duration_ms))
    if spans is not None:
        facts.append(f"{spans:,} spans")
    usage = info.token_usage
    if usage and usage.get("total_tokens") is not None:
        facts.append(f"{int(usage['total_tokens']):,} tokens")
    if info.session:
        facts.append(f"session {info.session}")
    if info.user:
        facts.append(f"user {info.user}")
    return " · ".join(facts)
