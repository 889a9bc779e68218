"""A trace's assessments (feedback and expectations) with add, edit, override, delete and undo.

    panel = AssessmentsPanel(sender)              # sender: the app's OutboxSender
    panel.show_trace(info, client, workspace)     # TraceInfo, RestClient, Workspace
    panel.show_trace(info, client, workspace, schemas)  # label schemas (default: SchemaStore)

Every write is queued in the durable outbox (source type HUMAN, source id = the workspace's
reviewer identity, asked for in the label dialog when the workspace has none) and sent by the
sender; rows show the outbox's writes at once (`core.assessment_state.merge`) and say which
are not sent yet. After a send the panel re-reads the trace's assessments in the background
(`TaskRunner`); the GUI thread never talks to the server. `info_changed` hands on the trace info
as it stands (for the table's feedback column) once the panel holds a server read.
A change the outbox cannot record (`OutboxUnavailable`: locked, damaged, read-only, disk full)
is never shown as made: the banner says why and what to do, and the label dialog opens again
with what was entered. Assessment text is untrusted and shown as plain text only."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QMessageBox,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from traceviewer.core import assessment_state, fmt
from traceviewer.core.app_model import AppModel
from traceviewer.core.cancel import CancelToken
from traceviewer.core.client import RestClient
from traceviewer.core.errors import OutboxUnavailable
from traceviewer.core.model import Assessment, TraceInfo
from traceviewer.core.outbox import Item, SendReport, Target
from traceviewer.core.review import (
    LabelSchema,
    SchemaStore,
    assessment_body,
    format_value,
)
from traceviewer.core.workspaces import Workspace
from traceviewer.ui.common import palette
from traceviewer.ui.common.banner import ErrorBanner
from traceviewer.ui.common.plain import plain_tooltip
from traceviewer.ui.common.tasks import TaskRunner
from traceviewer.ui.review.dialogs import AssessmentDialog
from traceviewer.ui.review.outbox_status import OutboxSender

COLUMNS = ("Name", "Kind", "Value", "Rationale", "Source", "Time", "Status")
_ID_ROLE = Qt.ItemDataRole.UserRole


class AssessmentsPanel(QWidget):
    """The assessments of one trace; see the module docstring for the API."""

    changed = Signal()  # a write was queued (or undone)
    info_changed = Signal(object)  # the TraceInfo with the outbox's writes, after a server read
    info_read = Signal(object)  # an assessment_state.Read of the trace shown

    def __init__(self, sender: OutboxSender, app_model: AppModel | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.outbox_sender = sender
        self.app_model = app_model or AppModel()  # where a new reviewer id is saved
        self.outbox = sender.outbox
        self.info: TraceInfo | None = None
        self.read_at = 0.0  # when `info` was read from the server (0: unknown, e.g. cached)
        self.current: list[assessment_state.Current] = []
        self.client: RestClient | None = None
        self.workspace: Workspace | None = None
        self.schemas: tuple[LabelSchema, ...] = ()
        self.dialog: AssessmentDialog | None = None
        self.confirm_box: QMessageBox | None = None
        self._undo: list[tuple[str, Callable[[], object]]] = []  # undo's result is unused
        self._runner = TaskRunner(self)

        self.banner = ErrorBanner()
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for column, width in enumerate((150, 85, 110, 220, 200, 150)):
            self.tree.setColumnWidth(column, width)
        # Tool buttons in two rows: whole labels in the Trace tab's side pane at its narrowest
        # (push buttons are at least 80 px each in most styles).
        self.add_button = _button("Add feedback…")
        self.expect_button = _button("Add expectation…")
        self.edit_button = _button("Edit…")
        self.override_button = _button("Override…")
        self.delete_button = _button("Delete")
        self.undo_button = _button("Undo")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.banner)
        for row in ((self.add_button, self.expect_button),
                    (self.edit_button, self.override_button, self.delete_button,
                     self.undo_button)):
            buttons = QHBoxLayout()
            for button in row:
                buttons.addWidget(button)
            buttons.addStretch(1)
            layout.addLayout(buttons)
        layout.addWidget(self.tree, 1)

        self.add_button.clicked.connect(lambda: self.add(kind="feedback"))
        self.expect_button.clicked.connect(lambda: self.add(kind="expectation"))
        self.edit_button.clicked.connect(self.edit)
        self.override_button.clicked.connect(self.override)
        self.delete_button.clicked.connect(self.delete)
        self.undo_button.clicked.connect(self.undo)
        QShortcut(QKeySequence.StandardKey.Undo, self, self.undo,
                  context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.tree.currentItemChanged.connect(self._update_buttons)
        sender.changed.connect(self._redraw)
        sender.flushed.connect(self._after_flush)
        self._update_buttons()

    # -- showing ------------------------------------------------------------------------------

    def show_trace(self, info: TraceInfo, client: RestClient, workspace: Workspace,
                   schemas: Sequence[LabelSchema] | None = None, read_at: float = 0.0) -> None:
        """Show `info`'s assessments (read from the server at `read_at`, 0 when unknown);
        writes go to `workspace` (reads through `client`)."""
        if self.info is None or self.info.trace_id != info.trace_id:
            self._undo.clear()
        self.info, self.client, self.workspace = info, client, workspace
        self.read_at = read_at
        self.schemas = tuple(schemas) if schemas is not None else SchemaStore().get(
            workspace.name, info.experiment_id)
        self._redraw()

    def clear(self) -> None:
        """Show no trace: no assessments, nothing to add to or undo."""
        self._runner.cancel()
        self._undo.clear()
        self.info = self.client = self.workspace = None
        self.read_at, self.current = 0.0, []
        self._redraw()

    @property
    def target(self) -> Target:
        assert self.workspace is not None
        return Target(self.workspace.name, self.workspace.host)

    def refresh(self) -> None:
        """Re-read the trace's assessments from the server (in the background)."""
        if self.info is None or self.client is None:
            return
        client, trace_id = self.client, self.info.trace_id

        def work(token: CancelToken) -> assessment_state.Read:
            return assessment_state.read_info(client, trace_id, token)

        self._runner.start(work, self.show_read,
                           lambda exc: self.banner.show_error(exc, retry=self.refresh))

    def show_read(self, read: assessment_state.Read) -> None:
        """Show a fresher read of the trace shown (ignored for another trace)."""
        if self.info is not None and read.info.trace_id == self.info.trace_id \
                and read.read_at >= self.read_at:
            self.info, self.read_at = read.info, read.read_at
            self._redraw()
            self.info_read.emit(read)

    def _after_flush(self, reports: dict[Target, SendReport]) -> None:
        if self.workspace is not None and reports.get(self.target, SendReport()).sent:
            self.refresh()

    def _redraw(self) -> None:
        selected = self.selected_id()
        self.tree.clear()
        if self.info is None:
            self._update_buttons()
            return
        try:
            items = assessment_state.pending_items(self.outbox, self.target,
                                                   self.info.trace_id) if self.workspace else []
        except OutboxUnavailable as exc:  # e.g. a read-only disk: the server's read still shows
            items = []
            self.banner.show_error(f"{exc} Changes not sent yet are not shown.",
                                   source="outbox")
        self.current = assessment_state.merge(self.info.assessments, items, self.read_at)
        by_id = {c.assessment.assessment_id: c.assessment for c in self.current}
        for current in self.current:
            a = current.assessment
            status = []
            if not a.valid:
                status.append("overridden")
            if a.overrides:
                old = by_id.get(a.overrides)
                status.append(f"overrides {format_value(old.value) if old else a.overrides}")
            if current.queued is not None:
                status.append(_queued_text(current.queued))
            row = self._row([a.name, a.kind, a.error or format_value(a.value), a.rationale or "",
                             f"{a.source_type} {a.source_id}".strip(),
                             fmt.timestamp_ms(a.create_time_ms) if a.assessment_id else "",
                             ", ".join(status)])
            if a.assessment_id:  # a queued create has no id yet: nothing to edit on the server
                row.setData(0, _ID_ROLE, a.assessment_id)
            if not a.valid or current.deleted:
                for column in range(len(COLUMNS)):
                    row.setForeground(column, palette.MUTED_TEXT.brush())
        if self.read_at:
            self.info_changed.emit(assessment_state.merged_info(self.info, items, self.read_at))
        for i in range(self.tree.topLevelItemCount() if selected else 0):
            top = self.tree.topLevelItem(i)
            if top is not None and top.data(0, _ID_ROLE) == selected:
                self.tree.setCurrentItem(top)
        self._update_buttons()

    def _row(self, texts: list[str]) -> QTreeWidgetItem:
        # QTreeWidgetItem text is plain text: untrusted values never render as markup.
        row = QTreeWidgetItem(self.tree, [t.replace("\n", " ") for t in texts])
        row.setToolTip(3, plain_tooltip(texts[3]) or "")
        return row

    def selected_id(self) -> str | None:
        current = self.tree.currentItem()
        return current.data(0, _ID_ROLE) if current is not None else None

    def selected(self) -> Assessment | None:
        """The selected assessment as it stands with the outbox's edits (None for one whose
        create or delete is still queued)."""
        wanted = self.selected_id()
        if self.info is None or not wanted:
            return None
        return next((c.assessment for c in self.current
                     if c.assessment.assessment_id == wanted and not c.deleted), None)

    def _update_buttons(self, *_: Any) -> None:
        shown = self.info is not None and self.workspace is not None
        chosen = self.selected() is not None
        for button in (self.add_button, self.expect_button):
            button.setEnabled(shown)
        for button in (self.edit_button, self.override_button, self.delete_button):
            button.setEnabled(shown and chosen)
        self.undo_button.setEnabled(bool(self._undo))
        self.undo_button.setToolTip(f"Undo: {self._undo[-1][0]} (Ctrl+Z)" if self._undo
                                    else "Nothing to undo")

    # -- writing ------------------------------------------------------------------------------

    def _ask(self, title: str, kind: str, current: Assessment | None,
             then: Callable[[AssessmentDialog], None]) -> None:
        assert self.workspace is not None
        self.dialog = AssessmentDialog(title, self.schemas, kind=kind,
                                  need_reviewer=not self.workspace.reviewer, current=current,
                                  parent=self)

        def accepted() -> None:
            dialog = self.dialog
            assert dialog is not None and self.workspace is not None
            if not dialog.reviewer.isHidden():
                self.workspace = self.app_model.save_reviewer(self.workspace,
                                                              dialog.reviewer.text())
            if not self._recorded(lambda: then(dialog),
                                  "What you entered is still in the dialog."):
                dialog.show_again(f"{self.banner.label.text()} Press OK to try again.")

        self.dialog.accepted.connect(accepted)
        self.dialog.open()

    def _recorded(self, write: Callable[[], object], kept: str = "") -> bool:
        """Run an outbox write; False, with the reason (and `kept`: what the user still has) in
        the banner, when the outbox could not record it."""
        try:
            write()
        except OutboxUnavailable as exc:
            self.banner.show_error(f"{exc} {kept}".strip(), source="outbox")
            return False
        self.banner.succeeded("outbox")
        return True

    def _queued(self, description: str, undo: Callable[[], object]) -> None:
        self._undo.append((description, undo))
        self.changed.emit()
        self.outbox_sender.kick()

    def add(self, kind: str = "feedback") -> None:
        """Ask for a new assessment and queue it."""
        if self.info is None:
            return
        self._ask("Add feedback" if kind == "feedback" else "Add expectation", kind, None,
                  lambda d: self._create(d, kind, overrides=None))

    def override(self) -> None:
        """Ask for an assessment that replaces the selected one (the old one stays, marked
        invalid)."""
        old = self.selected()
        if old is not None:
            self._ask(f"Override {old.name}", old.kind, old,
                      lambda d: self._create(d, old.kind, overrides=old.assessment_id))

    def _create(self, dialog: AssessmentDialog, kind: str, overrides: str | None) -> None:
        assert self.info is not None and self.workspace is not None
        body = assessment_body(dialog.label_name(), dialog.value(), self.workspace.reviewer or "",
                               rationale=dialog.rationale_text(), kind=kind,
                               overrides=overrides)
        item = self.outbox.add_create(self.target, self.info.trace_id, body)
        self._queued(f"add {item.name}", lambda: assessment_state.retract(self.outbox, item))

    def edit(self) -> None:
        """Ask for new values of the selected assessment and queue the update."""
        old = self.selected()
        if old is None:
            return

        def update(dialog: AssessmentDialog) -> None:
            fields: dict[str, Any] = {old.kind: {"value": dialog.value()},
                                      "rationale": dialog.rationale_text() or ""}
            if dialog.label_name() != old.name:
                fields["assessment_name"] = dialog.label_name()
            previous = {old.kind: {"value": old.value}, "rationale": old.rationale or "",
                        "assessment_name": old.name}
            self.outbox.add_update(self.target, old.trace_id, fields, old.assessment_id)
            self._queued(f"edit {old.name}", lambda: self.outbox.add_update(
                self.target, old.trace_id, previous, old.assessment_id))

        self._ask(f"Edit {old.name}", old.kind, old, update)

    def delete(self) -> None:
        """Ask for confirmation, then queue the delete of the selected assessment."""
        old = self.selected()
        if old is None:
            return
        self.confirm_box = QMessageBox(
            QMessageBox.Icon.Question, "Delete assessment",
            f"Delete {old.name} = {format_value(old.value)} by {old.source_id or old.source_type}?"
            " You can undo this.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        self.confirm_box.setTextFormat(Qt.TextFormat.PlainText)
        self.confirm_box.setDefaultButton(QMessageBox.StandardButton.No)

        def decided(button: int) -> None:
            if button != QMessageBox.StandardButton.Yes or not self._recorded(
                    lambda: self.outbox.add_delete(self.target, old.trace_id, old.assessment_id)):
                return
            # Restored as it was, with its original source (a judge's label stays a judge's).
            body = assessment_body(old.name, old.value, old.source_id or "-",
                                   rationale=old.rationale, kind=old.kind,
                                   overrides=old.overrides)
            body["source"] = {"source_type": old.source_type, "source_id": old.source_id}
            self._queued(f"delete {old.name}", lambda: self.outbox.add_create(
                self.target, old.trace_id, body))

        self.confirm_box.finished.connect(decided)
        self.confirm_box.open()

    def undo(self) -> None:
        """Undo the last change made in this panel (queued like any other change)."""
        if not self._undo or not self._recorded(self._undo[-1][1]):
            return
        self._undo.pop()
        self.changed.emit()
        self.outbox_sender.kick()


def _button(text: str) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    return button


def _queued_text(item: Item) -> str:
    what = {"create": "", "update": "edit ", "delete": "delete "}[item.op]
    if item.state == "parked":
        return f"{what}refused: {item.last_error}"
    return f"{what}not sent yet" + (f" ({item.last_error})" if item.last_error else "")
