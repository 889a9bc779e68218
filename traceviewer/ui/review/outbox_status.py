"""Sending the label outbox from the GUI, and the widget that shows what waits.

`OutboxSender` is the app's one sender: panels queue writes in the `Outbox` (a local, fsync'd
SQLite write, done on the GUI thread so a label is durable before the UI says it is saved) and
call `kick()`; the sender flushes in the background through a `TaskRunner` and emits `changed`.
While items wait it tries again on a timer, honouring each item's backoff, so labels given while
the network is down leave once it is back. `OutboxStatus` shows the pending count and last error
and lets the user retry or discard the items refused or not saved (parked)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from traceviewer.core.cancel import CancelToken
from traceviewer.core.client import RestClient
from traceviewer.core.errors import OutboxUnavailable, TraceViewerError
from traceviewer.core.outbox import Outbox, SendReport, Status, Target
from traceviewer.core.redact import redact
from traceviewer.ui.common import palette
from traceviewer.ui.common.plain import plain_label, plain_tooltip
from traceviewer.ui.common.tasks import TaskRunner

RETRY_INTERVAL_MS = 10_000


class OutboxSender(QObject):
    """Flushes the outbox in the background; see the module docstring.

    `open_client(target)` makes the client for a target (default: the workspace's settings and
    keyring secret, `outbox.open_target_client`); it runs on a worker thread."""

    changed = Signal()  # the outbox's content or status changed
    flushed = Signal(object)  # dict[Target, SendReport] of a finished pass

    def __init__(self, outbox: Outbox | None = None,
                 open_client: Callable[[Target], RestClient] | None = None,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.outbox = outbox or Outbox()
        self._open_client = open_client
        self._runner = TaskRunner(self)
        self._again = False
        self._force = False
        self.timer = QTimer(self)
        self.timer.setInterval(RETRY_INTERVAL_MS)
        self.timer.timeout.connect(lambda: self._flush(force=False))

    @property
    def busy(self) -> bool:
        return self._runner.busy

    def status(self) -> Status:
        """Pending and parked counts and the last error (a local read)."""
        return self.outbox.status()

    def kick(self) -> None:
        """Send what is pending now (e.g. right after queueing an assessment, or at app start)."""
        self.changed.emit()
        self._flush(force=True)

    def _flush(self, force: bool) -> None:
        if self._runner.busy:
            # Never cancel a pass mid-item: ask for another pass once this one ends.
            self._again, self._force = True, self._force or force
            return
        outbox, opener = self.outbox, self._open_client

        def work(token: CancelToken) -> dict[Target, SendReport]:
            return outbox.flush(opener, force=force, token=token)

        self._runner.start(work, self._done, self._failed)

    def _done(self, reports: dict[Target, SendReport]) -> None:
        self.flushed.emit(reports)
        self._settle()

    def _failed(self, exc: Exception) -> None:
        self._settle()

    def _settle(self) -> None:
        self.changed.emit()
        if self._again:
            force, self._again, self._force = self._force, False, False
            self._flush(force)
            return
        try:
            again = bool(self.outbox.status().pending)
        except OutboxUnavailable:
            again = True  # unusable for now (the status says why): look again later
        if again:
            self.timer.start()
        else:
            self.timer.stop()

    def retry(self, item_id: int) -> None:
        """Send a parked item again."""
        self.outbox.retry(item_id)
        self.kick()

    def discard(self, item_id: int) -> None:
        """Give up on an unsent item (the user chose to)."""
        self.outbox.discard(item_id)
        self.changed.emit()


class ParkedDialog(QDialog):
    """Unsent items with their reasons; retry or discard the selected one. What fails (a
    locked outbox, an item another program sent or discarded meanwhile) is said in the dialog."""

    def __init__(self, sender: OutboxSender, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Assessments waiting to be sent")
        self.resize(820, 320)
        self._sender = sender
        self.list = QTreeWidget()
        self.list.setHeaderLabels(["State", "Change", "Trace", "Where", "Queued", "Reason"])
        self.list.setRootIsDecorated(False)
        self.list.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # A damaged outbox this session set aside: where it went, for as long as the app runs.
        self.set_aside = QLabel(sender.outbox.set_aside or "")
        self.set_aside.setTextFormat(Qt.TextFormat.PlainText)
        self.set_aside.setWordWrap(True)
        self.set_aside.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        palette.set_style(self.set_aside, "color: $ERROR_TEXT;")
        self.set_aside.setVisible(bool(sender.outbox.set_aside))
        self.error = plain_label()
        palette.set_style(self.error, "color: $ERROR_TEXT;")
        self.error.hide()
        self.retry_button = QPushButton("Retry")
        self.discard_button = QPushButton("Discard")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.retry_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.discard_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        self.retry_button.clicked.connect(lambda: self._act(sender.retry))
        self.discard_button.clicked.connect(lambda: self._act(sender.discard))
        layout = QVBoxLayout(self)
        layout.addWidget(self.set_aside)
        layout.addWidget(self.error)
        layout.addWidget(self.list)
        layout.addWidget(buttons)
        sender.changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Re-read the unsent items (the list stays as it was when the outbox cannot be read)."""
        try:
            items = self._sender.outbox.items()
        except TraceViewerError as exc:
            self._say(exc)
            return
        self.error.hide()
        self.list.clear()
        for item in items:
            change = f"{item.op} {item.name or item.assessment_id or ''}".strip()
            queued = datetime.fromtimestamp(item.created).strftime("%Y-%m-%d %H:%M:%S")
            row = QTreeWidgetItem(self.list, [
                "refused or not saved" if item.state == "parked" else "pending", change,
                item.trace_id, str(item.target), queued, item.last_error or ""])
            row.setData(0, Qt.ItemDataRole.UserRole, item.item_id)
        if (first := self.list.topLevelItem(0)) is not None:
            self.list.setCurrentItem(first)

    def _act(self, action: Callable[[int], None]) -> None:
        current = self.list.currentItem()
        if current is None:
            return
        try:
            action(current.data(0, Qt.ItemDataRole.UserRole))
        except TraceViewerError as exc:
            self.refresh()  # e.g. sent by another program meanwhile: show what still waits
            self._say(exc)

    def _say(self, exc: TraceViewerError) -> None:
        self.error.setText(str(exc))
        self.error.show()


class OutboxStatus(QWidget):
    """"Outbox: 2 pending · 1 refused or not saved" with the last error, for a status bar or a
    panel."""

    def __init__(self, sender: OutboxSender, parent: QWidget | None = None):
        super().__init__(parent)
        self._sender = sender
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.send_button = QPushButton("Send now")
        self.send_button.setToolTip("Send the waiting assessments now")
        self.details_button = QPushButton("Details…")
        self.details_button.setToolTip("See, retry or discard the waiting assessments")
        self.dialog: ParkedDialog | None = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.send_button)
        layout.addWidget(self.details_button)
        self.send_button.clicked.connect(sender.kick)
        self.details_button.clicked.connect(self.show_details)
        sender.changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Show the current counts and last error."""
        try:
            status = self._sender.status()
        except OutboxUnavailable as exc:  # read-only, locked or damaged: say so, briefly
            self.label.setText("The outbox cannot be used now (see the tooltip)")
            self.label.setToolTip(plain_tooltip(str(exc)) or "")
            palette.set_style(self.label, "color: $ERROR_TEXT;")
            self.send_button.hide()
            self.details_button.hide()
            return
        waiting = status.pending + status.parked
        damaged = bool(self._sender.outbox.set_aside)
        if not waiting:
            self.label.setText("A damaged outbox file was moved aside: see Details…" if damaged
                               else "All assessments sent")
        else:
            parts = [f"{status.pending} pending"] if status.pending else []
            if status.parked:
                parts.append(f"{status.parked} refused or not saved")
            text = "Outbox: " + " · ".join(parts)
            if status.last_error:
                text += f" — {redact(status.last_error)}"
            self.label.setText(text)
        self.label.setToolTip(plain_tooltip(self.label.text()) or "")  # holds the server's error
        palette.set_style(self.label, "color: $ERROR_TEXT;" if status.parked or damaged
                          else "")
        self.send_button.setVisible(bool(status.pending))
        self.details_button.setVisible(bool(waiting) or damaged)

    def show_details(self) -> None:
        """Open the list of waiting items (retry / discard)."""
        if self.dialog is None:
            self.dialog = ParkedDialog(self._sender, self)
        self.dialog.refresh()
        self.dialog.show()
