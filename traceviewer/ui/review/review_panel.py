"""The review queue: one trace at a time, labelled from the keyboard, resumable after a restart.

    panel = ReviewPanel(sender)                   # sender: the app's OutboxSender
    panel.start(client, workspace, experiment_id, trace_ids, title="errors today")
    panel.start_search(client, workspace, experiment_id, filters, title="errors today")

Shows what a reviewer needs to judge (request, response, the chat, key spans, earlier feedback)
and the label schemas of the experiment (`core.review.SchemaStore`). Keys: y / n answer the
yes/no label, 1-9 pick an option of a category label, c writes a comment (Enter sends, Esc
leaves the comment), Enter submits and moves on, s skips, → / j next, ← / k previous, u or
Ctrl+Z undoes the last submit or skip. The keys work wherever the focus is inside the panel
(text fields keep the letters typed into them). Without a queue the panel says how to start one.

A trace shown again (from the panel's cache, or revisited with ←) shows its assessments as they
stand: the last read merged with the outbox (`core.assessment_state`), re-read from the server
in the background. The reviewer's own earlier answers are preselected, and answering a question
again replaces that answer (one current answer per reviewer per question). Assessments go
through the durable outbox; the queue's place and what was answered are saved after every step
(`core.review.QueueStore`), so starting the same queue again resumes it. Traces load (and the
next one preloads) in the background."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QButtonGroup,
    QDoubleSpinBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from traceviewer.core import assessment_state, fmt, search
from traceviewer.core.aggregate import readable
from traceviewer.core.app_model import AppModel
from traceviewer.core.cancel import CancelToken
from traceviewer.core.client import RestClient
from traceviewer.core.errors import OutboxUnavailable
from traceviewer.core.model import Assessment, Trace
from traceviewer.core.outbox import Target
from traceviewer.core.review import (
    LabelSchema,
    QueueState,
    QueueStore,
    SchemaStore,
    Value,
)
from traceviewer.core.workspaces import Workspace
from traceviewer.ui.common import palette
from traceviewer.ui.common.banner import ErrorBanner
from traceviewer.ui.common.cards import Cards, chat_cards
from traceviewer.ui.common.plain import plain_label
from traceviewer.ui.common.tasks import TaskRunner
from traceviewer.ui.review.assessments import AssessmentsPanel
from traceviewer.ui.review.dialogs import SchemaDialog
from traceviewer.ui.review.outbox_status import OutboxSender, OutboxStatus

CACHED_TRACES = 8
MAX_QUEUE = 1000
KEY_SPAN_TYPES = frozenset({"TOOL", "RETRIEVER", "LLM", "CHAT_MODEL", "AGENT"})
_HELP = ("y / n answer · 1-9 option · c comment · Enter submit and next · s skip · "
         "→ / ← next / previous · u undo")
NO_QUEUE = ("No review queue yet.\n\nTo start one, open an experiment in the Traces tab and "
            "press Review… (Ctrl+R): it queues the selected traces, or every trace of the "
            "current filter when at most one is selected.\n\nThen answer with the keys "
            "below; a queue resumes where you left it.")
ANSWERED_BEFORE = "You answered this trace before: your answers are selected; submitting " \
                  "replaces them."


@dataclass(frozen=True, slots=True)
class _Step:
    """One undoable reviewer step: a submit (with its outbox items) or a skip."""

    trace_id: str
    position: int
    changes: tuple[assessment_state.Change, ...] = ()
    submitted: bool = False
    labelled_before: tuple[int, ...] | None = None  # the trace's entry before this submit


def key_spans(trace: Trace) -> list[int]:
    """Indices of the spans worth a reviewer's glance: failures, tools, retrievers, model calls."""
    return [i for i, s in enumerate(trace.spans)
            if s.status == "ERROR" or s.span_type in KEY_SPAN_TYPES]


def conversation(trace: Trace) -> tuple | None:
    """The longest chat (messages plus reply) any span of the trace holds."""
    chats = [m for s in trace.spans if (m := s.chat_messages)]
    return max(chats, key=len) if chats else None


class LabelRow(QWidget):
    """The input for one label schema: yes/no or numbered option buttons, a number or text."""

    def __init__(self, schema: LabelSchema, parent: QWidget | None = None):
        super().__init__(parent)
        self.schema = schema
        self.group = QButtonGroup(self)
        self.entry: QLineEdit | QDoubleSpinBox | None = None
        self.touched = False  # the reviewer chose or typed something since it was shown
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        name = QLabel(schema.name + (" *" if schema.required else ""))
        name.setTextFormat(Qt.TextFormat.PlainText)
        name.setMinimumWidth(150)
        layout.addWidget(name)
        if schema.kind in ("boolean", "category"):
            choices = (("Yes", "y"), ("No", "n")) if schema.kind == "boolean" else [
                (option, str(n)) for n, option in enumerate(schema.options, 1)]
            for index, (text, key) in enumerate(choices):
                button = QPushButton(f"{text}  [{key}]")
                button.setCheckable(True)
                button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys belong to the panel
                palette.set_style(button, "QPushButton:checked { background: $ACCENT; color: "
                                          "$ON_ACCENT; border-radius: 3px; padding: 3px 8px; }")
                self.group.addButton(button, index)
                layout.addWidget(button)
        elif schema.kind == "number":
            self.entry = QDoubleSpinBox()
            self.entry.setRange(-1e9, 1e9)
            self.entry.setDecimals(3)
            self.entry.setSpecialValueText("—")
            self.entry.setMinimum(-1e9)
            self.entry.setValue(-1e9)  # the special "no value" text
            self.entry.valueChanged.connect(self._touch)
            layout.addWidget(self.entry)
        else:
            self.entry = QLineEdit()
            self.entry.setPlaceholderText("text")
            self.entry.textEdited.connect(self._touch)
            layout.addWidget(self.entry)
        layout.addStretch(1)

    def choose(self, index: int) -> bool:
        """Press choice `index` (0 = yes or the first option); False if there is none."""
        button = self.group.button(index)
        if button is None:
            return False
        button.setChecked(True)
        self.touched = True
        return True

    def preset(self, value: Value | None) -> None:
        """Show `value` (an earlier answer) unless the reviewer has changed this row."""
        if self.touched:
            return
        self.clear()
        if value is None:
            return
        if self.schema.kind == "boolean" and isinstance(value, bool):
            self.group.button(0 if value else 1).setChecked(True)
        elif self.schema.kind == "category" and str(value) in self.schema.options:
            self.group.button(self.schema.options.index(str(value))).setChecked(True)
        elif isinstance(self.entry, QDoubleSpinBox) and isinstance(value, int | float) \
                and not isinstance(value, bool):
            self.entry.setValue(float(value))
        elif isinstance(self.entry, QLineEdit):
            self.entry.setText(str(value))
        self.touched = False

    def value(self) -> Value | None:
        """The value given, None when none is."""
        if self.schema.kind == "boolean":
            chosen = self.group.checkedId()
            return None if chosen < 0 else chosen == 0
        if self.schema.kind == "category":
            chosen = self.group.checkedId()
            return None if chosen < 0 else self.schema.options[chosen]
        if isinstance(self.entry, QDoubleSpinBox):
            if self.entry.value() == self.entry.minimum():
                return None
            number = self.entry.value()
            return int(number) if number.is_integer() else number
        assert self.entry is not None
        return self.entry.text().strip() or None

    def _touch(self, *_: object) -> None:
        self.touched = True

    def clear(self) -> None:
        self.touched = False
        self.group.setExclusive(False)
        for button in self.group.buttons():
            button.setChecked(False)
        self.group.setExclusive(True)
        if isinstance(self.entry, QDoubleSpinBox):
            self.entry.setValue(self.entry.minimum())
        elif self.entry is not None:
            self.entry.clear()
        self.touched = False


class CommentEdit(QLineEdit):
    """The comment line: Enter submits, Esc hands the keyboard back to the panel."""

    submitted = Signal()
    left = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.submitted.emit()
        elif event.key() == Qt.Key.Key_Escape:
            self.left.emit()
        else:
            super().keyPressEvent(event)


class ReviewPanel(QWidget):
    """The keyboard review queue; see the module docstring for the API and keys."""

    finished = Signal()  # the last trace of the queue was submitted or skipped

    def __init__(self, sender: OutboxSender, parent: QWidget | None = None,
                 store: QueueStore | None = None, app_model: AppModel | None = None):
        super().__init__(parent)
        self.outbox_sender = sender
        self.app_model = app_model or AppModel()  # where a new reviewer id is saved
        self.outbox = sender.outbox
        self.store = store or QueueStore()
        self.state: QueueState | None = None
        self.client: RestClient | None = None
        self.workspace: Workspace | None = None
        self.trace: Trace | None = None
        self.rows: list[LabelRow] = []
        self._steps: list[_Step] = []
        # Answers a submit that failed halfway left queued (they could not be taken back), per
        # trace: the next submit of that trace takes them into its step, so Undo takes them too.
        self._left_queued: dict[str, tuple[assessment_state.Change, ...]] = {}
        self._cache: OrderedDict[str, Trace] = OrderedDict()
        self._reads: dict[str, assessment_state.Read] = {}  # the latest read of a cached trace
        self._comment_preset = ""  # the comment as preselected (an earlier rationale)
        self._runner = TaskRunner(self)
        self._preload = TaskRunner(self)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._build()
        self._build_keys()
        # No queue yet: the empty state, without inputs that have nothing to act on.
        self.title.setText("Review")
        self.reviewer_row.hide()
        self.comment.hide()
        self._update_buttons()

    # -- construction -------------------------------------------------------------------------

    def _build(self) -> None:
        self.banner = ErrorBanner()
        self.title = plain_label(selectable=False)
        font = QFont(self.title.font())
        font.setBold(True)
        self.title.setFont(font)
        self.progress = plain_label(selectable=False)
        self.progress.setFont(font)
        self.title.setWordWrap(False)
        self.trace_line = plain_label()
        palette.set_style(self.trace_line, "color: $MUTED_TEXT;")
        head = QGridLayout()
        head.addWidget(self.title, 0, 0)
        head.addWidget(self.progress, 0, 1, Qt.AlignmentFlag.AlignRight)
        head.addWidget(self.trace_line, 1, 0, 1, 2)
        head.setColumnStretch(0, 1)

        self.request = self._text_box()
        self.response = self._text_box()
        self.chat = Cards()
        self.spans = QTreeWidget()
        self.spans.setHeaderLabels(["Span", "Type", "Duration", "Status"])
        self.spans.setRootIsDecorated(False)
        self.spans.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.spans.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        tabs = QTabWidget()
        tabs.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        tabs.addTab(self.chat, "Chat")
        tabs.addTab(self.spans, "Key spans")
        left = QWidget()
        grid = QGridLayout(left)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self._caption("Request"), 0, 0)
        grid.addWidget(self.request, 1, 0)
        grid.addWidget(self._caption("Response"), 2, 0)
        grid.addWidget(self.response, 3, 0)
        grid.addWidget(tabs, 4, 0)
        grid.setRowStretch(4, 1)
        self.no_queue = plain_label(NO_QUEUE, selectable=False)
        self.no_queue.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.no_queue.setMargin(24)
        palette.set_style(self.no_queue, "color: $MUTED_TEXT;")
        self.left = QStackedWidget()
        self.left.addWidget(self.no_queue)
        self.left.addWidget(left)

        self.earlier = AssessmentsPanel(self.outbox_sender, self.app_model)
        self.earlier.tree.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.earlier.info_read.connect(self._info_read)
        self.earlier.changed.connect(self._preselect)
        self.form_box = QFrame()
        self.form_box.setObjectName("labelForm")
        palette.set_style(self.form_box, "#labelForm { background: $PANEL_BG; border: 1px solid "
                                         "$BORDER; border-radius: 6px; }")
        self.form = QVBoxLayout(self.form_box)
        self.reviewer = QLineEdit()
        self.reviewer.setPlaceholderText("your reviewer id, e.g. alice@example.com")
        self.reviewer_row = QWidget()
        reviewer_layout = QHBoxLayout(self.reviewer_row)
        reviewer_layout.setContentsMargins(0, 0, 0, 0)
        signed = plain_label("Assessments are signed with your reviewer id:", selectable=False)
        signed.setWordWrap(False)
        reviewer_layout.addWidget(signed)
        reviewer_layout.addWidget(self.reviewer, 1)
        self.comment = CommentEdit()
        self.comment.setPlaceholderText("comment (c)")
        self.message = plain_label(selectable=False)
        palette.set_style(self.message, "color: $ERROR_TEXT;")
        self.answered_note = plain_label(ANSWERED_BEFORE, selectable=False)
        palette.set_style(self.answered_note, "color: $MUTED_TEXT;")
        self.answered_note.hide()
        buttons = QHBoxLayout()
        self.submit_button = QPushButton("Submit and next  [Enter]")
        self.skip_button = QPushButton("Skip  [s]")
        self.prev_button = QPushButton("← Previous")
        self.next_button = QPushButton("Next →")
        self.undo_button = QPushButton("Undo  [u]")
        for button in (self.submit_button, self.skip_button, self.prev_button,
                       self.next_button, self.undo_button):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.labels_box = QVBoxLayout()
        self.form.addWidget(self.reviewer_row)
        self.form.addWidget(self.answered_note)
        self.form.addLayout(self.labels_box)
        self.form.addWidget(self.comment)
        self.form.addLayout(buttons)
        self.form.addWidget(self.message)
        help_line = plain_label(_HELP, selectable=False)
        palette.set_style(help_line, "color: $MUTED_TEXT;")
        self.schemas_button = QPushButton("Label schemas…")
        self.schemas_button.setToolTip("Choose the questions reviewers answer in this experiment")
        self.schemas_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.schemas_button.clicked.connect(self.edit_schemas)
        buttons.addWidget(self.schemas_button)
        self.schema_dialog: SchemaDialog | None = None
        self.form.addWidget(help_line)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.form_box)
        right_layout.addWidget(self._caption("Earlier feedback"))
        right_layout.addWidget(self.earlier, 1)

        split = QSplitter()
        split.addWidget(self.left)
        split.addWidget(right)
        split.setSizes([560, 520])
        self.outbox_status = OutboxStatus(self.outbox_sender)
        layout = QVBoxLayout(self)
        layout.addWidget(self.banner)
        layout.addLayout(head)
        layout.addWidget(split, 1)
        layout.addWidget(self.outbox_status)

        self.submit_button.clicked.connect(self.submit)
        self.skip_button.clicked.connect(self.skip)
        self.prev_button.clicked.connect(lambda: self.go(-1))
        self.next_button.clicked.connect(lambda: self.go(1))
        self.undo_button.clicked.connect(self.undo)
        self.comment.submitted.connect(self.submit)
        self.comment.left.connect(self.setFocus)

    def _build_keys(self) -> None:
        """The review keys as shortcuts of the whole panel: they work wherever the focus is
        inside it (the chat pane, a button, the earlier feedback), while a text field keeps
        the letters, arrows and Enter typed into it (Qt lets it claim them first)."""
        keys: list[tuple[Qt.Key, Callable[[], object]]] = [
            (Qt.Key.Key_Return, self.submit), (Qt.Key.Key_Enter, self.submit),
            (Qt.Key.Key_Right, lambda: self.go(1)), (Qt.Key.Key_J, lambda: self.go(1)),
            (Qt.Key.Key_Left, lambda: self.go(-1)), (Qt.Key.Key_K, lambda: self.go(-1)),
            (Qt.Key.Key_Y, lambda: self._choose("boolean", 0)),
            (Qt.Key.Key_N, lambda: self._choose("boolean", 1)),
            (Qt.Key.Key_C, self.comment.setFocus), (Qt.Key.Key_S, self.skip),
            (Qt.Key.Key_U, self.undo)]
        keys += [(Qt.Key(Qt.Key.Key_1.value + n), partial(self._choose, "category", n))
                 for n in range(9)]
        self.shortcuts = []
        for key, slot in keys:
            shortcut = QShortcut(QKeySequence(key), self, context=Qt.ShortcutContext.
                                 WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)
            self.shortcuts.append(shortcut)

    def _text_box(self) -> QLabel:
        label = plain_label()
        label.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        palette.set_style(label, "background: $TEXT_BOX_BG; border: 1px solid $BORDER; "
                                 "padding: 6px;")
        return label

    @staticmethod
    def _caption(text: str) -> QLabel:
        label = plain_label(text, selectable=False)
        palette.set_style(label, "color: $MUTED_TEXT; font-weight: bold;")
        return label

    # -- the queue ------------------------------------------------------------------------------

    def start(self, client: RestClient, workspace: Workspace, experiment_id: str,
              trace_ids: Sequence[str], title: str = "",
              schemas: Sequence[LabelSchema] | None = None) -> None:
        """Review `trace_ids` (e.g. the current filter's or the selected traces), resuming
        where a reviewer left the same queue."""
        self.client, self.workspace = client, workspace
        fresh = QueueState(workspace.name, workspace.host, experiment_id, title,
                           tuple(dict.fromkeys(trace_ids)))
        self.state = self.store.resume(fresh)
        if self.state.title != title and title:
            self.state = QueueState.from_json({**self.state.to_json(), "title": title})
        self._steps.clear()
        self._left_queued.clear()
        self._cache.clear()
        self._reads.clear()
        self.left.setCurrentIndex(1)
        schemas = tuple(schemas) if schemas is not None else SchemaStore().get(
            workspace.name, experiment_id)
        self._set_schemas([s for s in schemas if s.assessment_kind == "feedback"])
        self.reviewer_row.setVisible(not workspace.reviewer)
        self.title.setText(title or "Review")
        self._load()
        self.setFocus()

    def start_search(self, client: RestClient, workspace: Workspace, experiment_id: str,
                     filters: Sequence[str] = ("",), title: str = "",
                     limit: int = MAX_QUEUE) -> None:
        """Review the traces matching any of `filters` (AND-only filter strings, as
        `core.search.iter_traces` takes them), newest first, at most `limit`; the search runs
        in the background."""
        self.trace_line.setText("Finding the traces to review…")

        def work(token: CancelToken) -> list[str]:
            found = search.search_all(client, [experiment_id], filters, token=token, limit=limit)
            return [info.trace_id for info in found]

        self._runner.start(
            work, lambda ids: self.start(client, workspace, experiment_id, ids, title),
            lambda exc: self.banner.show_error(exc, retry=lambda: self.start_search(
                client, workspace, experiment_id, filters, title, limit)))

    def edit_schemas(self) -> None:
        """Open the label schema editor of this queue's experiment; the form follows a save."""
        if self.state is None:
            return
        state = self.state
        self.schema_dialog = SchemaDialog(state.workspace, state.experiment_id, parent=self)

        def saved() -> None:
            self._set_schemas([s for s in SchemaStore().get(state.workspace, state.experiment_id)
                               if s.assessment_kind == "feedback"])
            self.setFocus()

        self.schema_dialog.accepted.connect(saved)
        self.schema_dialog.open()

    def _set_schemas(self, schemas: Sequence[LabelSchema]) -> None:
        for row in self.rows:
            row.deleteLater()
        self.rows = [LabelRow(s) for s in schemas]
        for row in self.rows:
            self.labels_box.addWidget(row)
        self.comment.setVisible(any(s.comment for s in schemas))

    @property
    def target(self) -> Target:
        assert self.workspace is not None
        return Target(self.workspace.name, self.workspace.host)

    def _save(self, state: QueueState) -> None:
        self.state = state
        self.store.save(state)

    def _load(self) -> None:
        """Show the current trace: from the cache, else fetched in the background."""
        assert self.state is not None and self.client is not None
        self._show_progress()
        trace_id = self.state.current
        for row in self.rows:
            row.clear()
        self.comment.clear()
        self._comment_preset = ""
        self.message.clear()
        self.answered_note.hide()
        self.trace = None  # until it shows, keys have no trace to act on
        self._update_buttons()
        if trace_id is None:
            self.trace_line.setText("The queue is empty.")
            return
        cached = self._cache.get(trace_id)
        if cached is not None:
            self._show(cached, fresh=False)
            return
        self.trace_line.setText(f"Loading {trace_id}…")
        client = self.client

        self._runner.start(lambda token: _fetch(client, trace_id), self._loaded,
                           lambda exc: self.banner.show_error(exc, retry=self._load))

    def _remember(self, fetched: tuple[Trace, float]) -> None:
        trace, read_at = fetched
        trace_id = trace.info.trace_id
        self._cache[trace_id] = trace
        self._cache.move_to_end(trace_id)
        self._keep_read(assessment_state.Read(trace.info, read_at))
        while len(self._cache) > CACHED_TRACES:
            gone, _ = self._cache.popitem(last=False)
            self._reads.pop(gone, None)

    def _keep_read(self, read: assessment_state.Read) -> None:
        known = self._reads.get(read.info.trace_id)
        if known is None or known.read_at <= read.read_at:
            self._reads[read.info.trace_id] = read

    def _loaded(self, fetched: tuple[Trace, float]) -> None:
        self._remember(fetched)
        trace = fetched[0]
        if self.state is not None and trace.info.trace_id == self.state.current:
            self._show(trace, fresh=True)

    def _info_read(self, read: assessment_state.Read) -> None:
        """A re-read of a trace's info: kept for its next showing; the form follows it."""
        if read.info.trace_id in self._cache:
            self._keep_read(read)
        if self.trace is not None and read.info.trace_id == self.trace.info.trace_id:
            self._preselect()

    def _show(self, trace: Trace, fresh: bool) -> None:
        """Show `trace` with its latest read info; one not `fresh` from the server is re-read
        in the background (assessments, tags and state may have changed since)."""
        assert self.client is not None and self.workspace is not None
        self.banner.hide()
        self.trace = trace
        read = self._reads.get(trace.info.trace_id)
        info = read.info if read is not None else trace.info
        self.trace_line.setText(" · ".join(p for p in (
            info.trace_id, fmt.timestamp_ms(info.request_time_ms), info.state,
            fmt.duration_ms(info.duration_ms), info.session and f"session {info.session}",
            info.user and f"user {info.user}") if p))
        self.request.setText(readable(info.request_preview) or "(no request preview)")
        self.response.setText(readable(info.response_preview) or "(no response)")
        messages = conversation(trace)
        self.chat.set_cards(chat_cards(messages) if messages else
                            [("No chat", "No span of this trace holds chat messages.",
                              palette.CARD_SYSTEM)])
        self.spans.clear()
        for i in key_spans(trace):
            span = trace.spans[i]
            status = span.status_message or span.status
            row = QTreeWidgetItem(self.spans, ["  " * trace.depth[i] + span.name,
                                               span.span_type,
                                               fmt.duration_ms(span.duration_ns / 1e6
                                                               if span.duration_ns is not None
                                                               else None), status])
            if span.status == "ERROR":
                for column in range(4):
                    row.setForeground(column, palette.ERROR_TEXT.brush())
        self.earlier.show_trace(info, self.client, self.workspace,
                                read_at=read.read_at if read is not None else 0.0)
        self._preselect()
        self._update_buttons()
        if not fresh:
            self.earlier.refresh()
        self._preload_next()

    def _reviewer(self) -> str:
        assert self.workspace is not None
        return self.workspace.reviewer or self.reviewer.text().strip()

    def _current(self, reread: bool = False) -> list[assessment_state.Current]:
        """The shown trace's assessments as they stand: the earlier-feedback panel's merge, or
        with `reread` its read merged with the outbox as it is now (raises OutboxUnavailable)."""
        earlier = self.earlier.info
        if self.trace is None or earlier is None or earlier.trace_id != self.trace.info.trace_id:
            return []
        if not reread:
            return self.earlier.current
        items = assessment_state.pending_items(self.outbox, self.target, earlier.trace_id)
        return assessment_state.merge(earlier.assessments, items, self.earlier.read_at)

    def _preselect(self) -> None:
        """Select the reviewer's own current answers in the rows they have not changed."""
        if self.trace is None or self.workspace is None:
            return
        current, reviewer = self._current(), self._reviewer()
        own: list[Assessment] = []
        for row in self.rows:
            answer = assessment_state.own_answer(current, reviewer, row.schema.name)
            row.preset(answer.assessment.value if answer is not None else None)
            if answer is not None:
                own.append(answer.assessment)
        rationale = next((a.rationale for a in own if a.rationale), "") or ""
        if self.comment.text() == self._comment_preset and not self.comment.hasFocus():
            self.comment.setText(rationale)
            self._comment_preset = rationale
        self.answered_note.setVisible(bool(own))

    def _preload_next(self) -> None:
        assert self.state is not None and self.client is not None
        position = self.state.position + 1
        if position >= len(self.state.trace_ids):
            return
        trace_id = self.state.trace_ids[position]
        if trace_id in self._cache:
            return
        client = self.client
        self._preload.start(lambda token: _fetch(client, trace_id), self._remember,
                            lambda exc: None)  # shown if opened

    def _show_progress(self) -> None:
        assert self.state is not None
        total = len(self.state.trace_ids)
        position = self.state.position + 1 if total else 0
        self.progress.setText(f"{position} / {total}")
        self.progress.setToolTip(f"{len(self.state.labelled)} answered, "
                                 f"{len(self.state.skipped)} skipped")
        self._update_buttons()

    def _update_buttons(self) -> None:
        """Buttons for what can be done now: nothing to submit or skip without a trace."""
        state = self.state
        shown = state is not None and self.trace is not None and state.current is not None
        self.submit_button.setEnabled(shown)
        self.skip_button.setEnabled(shown)
        self.prev_button.setEnabled(state is not None and state.position > 0)
        self.next_button.setEnabled(state is not None
                                    and state.position + 1 < len(state.trace_ids))
        self.undo_button.setEnabled(bool(self._steps))
        self.schemas_button.setEnabled(state is not None)

    # -- reviewer steps -------------------------------------------------------------------------

    def go(self, delta: int) -> None:
        """Move `delta` traces forward (or back) without assessing them."""
        if self.state is None or not self.state.trace_ids:
            return
        moved = self.state.at(self.state.position + delta)
        if moved.position != self.state.position:
            self._save(moved)
            self._load()

    def _advance(self, state: QueueState) -> None:
        if state.position + 1 >= len(state.trace_ids):
            self._save(state)
            self._show_progress()
            self.message.setText(f"Done: {state.done} of {len(state.trace_ids)} traces "
                                 "reviewed.")
            self.finished.emit()
            return
        self._save(state.at(state.position + 1))
        self._load()

    def submit(self) -> None:
        """Queue the answers given for the current trace (replacing the reviewer's earlier ones)
        and move to the next one."""
        if self.state is None or self.workspace is None or self.state.current is None \
                or self.trace is None or self.trace.info.trace_id != self.state.current:
            return  # nothing shown yet: an answer now would be for a trace not seen
        values = [(row.schema, row.value()) for row in self.rows]
        missing = [s.name for s, v in values if v is None and s.required]
        if missing:
            self.message.setText(f"Give {', '.join(missing)} first (y / n, 1-9), or skip (s).")
            return
        if not any(v is not None for _, v in values):
            self.message.setText("Nothing to submit: answer a question, or skip (s).")
            return
        if not self.workspace.reviewer:
            if not self.reviewer.text().strip():
                self.message.setText("Enter your reviewer id first.")
                self.reviewer.setFocus()
                return
            self.workspace = self.app_model.save_reviewer(self.workspace, self.reviewer.text())
            self.reviewer_row.hide()
        trace_id, comment = self.state.current, self.comment.text().strip()
        changes: list[assessment_state.Change] = []
        try:
            # Read the outbox now: an earlier submit that failed halfway may have left answers
            # queued that the panel has not shown yet (answering them again would add twice).
            current = self._current(reread=True)
            for schema, value in values:
                if value is not None:
                    changes.append(assessment_state.answer(
                        self.outbox, self.target, trace_id, current,
                        self.workspace.reviewer or "", schema.name, value,
                        rationale=comment if schema.comment else None))
        except OutboxUnavailable as exc:
            self._not_recorded(exc, trace_id, changes)
            return
        self.banner.succeeded("outbox")
        changes[:0] = self._left_queued.pop(trace_id, ())
        before = self.state.labelled.get(trace_id)
        item_ids = [c.item.item_id for c in changes if c.item is not None]
        self._steps.append(_Step(trace_id, self.state.position, tuple(changes), submitted=True,
                                 labelled_before=before))
        self.outbox_sender.kick()
        self.setFocus()
        self._advance(self.state.with_label(trace_id, [*(before or ()), *item_ids]))

    def _not_recorded(self, exc: OutboxUnavailable, trace_id: str,
                      recorded: Sequence[assessment_state.Change]) -> None:
        """A submit the outbox could not record: the answers it did record are taken back (the
        submit is all or nothing), the form keeps what was given, the banner says why. Answers
        that cannot be taken back either stay queued, and join the trace's next submit."""
        kept = "Your answers are still in the form: press Retry (or Enter) to submit them again."
        left = [*self._left_queued.pop(trace_id, ()), *recorded]
        queued = bool(left)  # what is taken back may be a delete or a restore to send
        try:
            self._undo_each(left)
        except OutboxUnavailable:
            self._left_queued[trace_id] = tuple(left)
            kept = ("Some of these answers were recorded and will be sent; the rest are still "
                    "in the form: press Retry (or Enter) to submit them again.")
        if queued:
            self.outbox_sender.kick()
        self.banner.show_error(f"{exc} {kept}", retry=self.submit, source="outbox")

    def _undo_each(self, left: list[assessment_state.Change]) -> None:
        """Undo the changes in `left` newest first, removing each once undone: when the outbox
        fails (OutboxUnavailable), `left` holds the ones not undone, so none is undone twice."""
        while left:
            assessment_state.undo(self.outbox, left[-1])
            left.pop()

    def skip(self) -> None:
        """Leave the current trace unassessed and move on."""
        if self.state is None or self.state.current is None:
            return
        self._steps.append(_Step(self.state.current, self.state.position))
        self._advance(self.state.with_skip(self.state.current))

    def undo(self) -> None:
        """Take back the last submit (new answers are withdrawn or deleted, replaced ones
        restored) or skip, and return to that trace."""
        if self.state is None or not self._steps:
            return
        step = self._steps.pop()
        if step.submitted:
            left = list(step.changes)
            try:
                self._undo_each(left)
            except OutboxUnavailable as exc:  # pushed back with only what is still to undo
                self._steps.append(replace(step, changes=tuple(left)))
                if len(left) < len(step.changes):
                    self.outbox_sender.kick()
                self.banner.show_error(f"{exc} Press Undo (u) to try again.", source="outbox")
                return
            state = self.state.without_label(step.trace_id)
            if step.labelled_before is not None:
                state = state.with_label(step.trace_id, step.labelled_before)
            self.outbox_sender.kick()
        else:
            state = self.state.without_skip(step.trace_id)
        self._save(state.at(step.position))
        self._load()

    # -- keys -----------------------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key, text = event.key(), event.text().lower()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.submit()
        elif key in (Qt.Key.Key_Right, Qt.Key.Key_J):
            self.go(1)
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_K):
            self.go(-1)
        elif text in ("y", "n"):
            self._choose("boolean", 0 if text == "y" else 1)
        elif text.isdigit() and text != "0":
            self._choose("category", int(text) - 1)
        elif text == "c":
            self.comment.setFocus()
        elif text == "s":
            self.skip()
        elif text == "u" or event.matches(QKeySequence.StandardKey.Undo):
            self.undo()
        else:
            super().keyPressEvent(event)

    def _choose(self, kind: str, index: int) -> None:
        if self.trace is None:  # still loading: the answer would land on no trace
            return
        row = next((r for r in self.rows if r.schema.kind == kind), None)
        if row is not None and row.choose(index):
            self.message.clear()


def _fetch(client: RestClient, trace_id: str) -> tuple[Trace, float]:
    """The trace, and when its info was read (for merging the outbox's later writes)."""
    read_at = time.time()
    return client.get_trace(trace_id), read_at
