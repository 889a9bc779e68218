"""The sessions view: the traces of a search grouped by session, newest session first, and the
selected session read as a conversation, oldest turn first.

Trace content is untrusted: every text is painted as plain text."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QListView,
    QSplitter,
    QStackedWidget,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from traceviewer.core import filters as flt
from traceviewer.core.aggregate import SessionSummary, Turn, Update, narrow
from traceviewer.core.cancel import CancelToken
from traceviewer.core.fmt import duration_ms, number, plural, timestamp_ms
from traceviewer.core.search import MAX_PAGE_SIZE, TraceSearcher, search_all
from traceviewer.ui.common import palette as ui_palette
from traceviewer.ui.common.tasks import TaskRunner
from traceviewer.ui.summaries.summary_view import (
    SummaryColumn,
    SummaryLoader,
    SummaryModel,
    empty_label,
    empty_text,
)

ONE_LINE = 160  # characters of a first request shown in the sessions table
TURN_TEXT = 2000  # characters of a request or response painted in a turn


def _line(text: str, limit: int = ONE_LINE) -> str:
    return " ".join(text.split())[:limit]


SESSION_COLUMNS = [
    SummaryColumn("Last activity", lambda s: timestamp_ms(s.last_ms),
                  sort_value=lambda s: s.last_ms),
    SummaryColumn("Session", lambda s: s.session, tooltip=lambda s: s.session),
    SummaryColumn("User", lambda s: s.user or ""),
    SummaryColumn("Turns", lambda s: number(s.traces), lambda s: s.traces, align_right=True),
    SummaryColumn("Errors", lambda s: number(s.errors) if s.errors else "", lambda s: s.errors,
                  align_right=True),
    SummaryColumn("Started with", lambda s: _line(s.first_request),
                  tooltip=lambda s: s.first_request[:TURN_TEXT]),
]


class TurnModel(QAbstractListModel):
    """The turns of one session; the delegate reads the `Turn` from the UserRole."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.turns: list[Turn] = []

    def set_turns(self, turns: list[Turn]) -> None:
        self.beginResetModel()
        self.turns = turns
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.turns)

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        turn = self.turns[index.row()]
        if role == Qt.ItemDataRole.UserRole:
            return turn
        if role == Qt.ItemDataRole.DisplayRole:  # for accessibility and copy
            return f"{turn.request}\n{turn.response}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{turn.trace_id}\nDouble-click or Enter to open the trace"
        return None


def _header(turn: Turn) -> str:
    parts = [timestamp_ms(turn.time_ms), turn.state, duration_ms(turn.duration_ms)]
    return "  ·  ".join(p for p in parts if p)


class TurnDelegate(QStyledItemDelegate):
    """Paints a turn as a card: time, state, duration and feedback, then what the user asked
    and what the app answered, word-wrapped plain text."""

    PAD = 8
    GAP = 4
    MARGIN = 4

    def _fonts(self, option: QStyleOptionViewItem) -> tuple[QFont, QFont]:
        small = QFont(option.font)
        small.setPointSizeF(max(6.0, option.font.pointSizeF() - 1))
        bold = QFont(small)
        bold.setBold(True)
        return small, bold

    def _blocks(self, turn: Turn, option: QStyleOptionViewItem) -> list[tuple[str, QFont, str]]:
        """(text, font, role) from top to bottom; role picks the colour."""
        small, bold = self._fonts(option)
        response = turn.response or ("(no response: the request failed)"
                                     if turn.state == "ERROR" else "(no response)")
        blocks = [(_header(turn), small, "state"),
                  ("User", bold, "label"), (turn.request[:TURN_TEXT] or "(empty)", option.font,
                                            "text"),
                  ("Assistant", bold, "label"), (response[:TURN_TEXT], option.font, "text")]
        if turn.feedback:
            blocks.insert(1, (f"Feedback: {turn.feedback}", small, "feedback"))
        return blocks

    def _text_width(self, option: QStyleOptionViewItem) -> int:
        view = self.parent()
        width = view.viewport().width() if isinstance(view, QListView) else option.rect.width()
        return max(100, width - 2 * (self.PAD + self.MARGIN))

    def sizeHint(self, option: QStyleOptionViewItem,
                 index: QModelIndex | QPersistentModelIndex) -> QSize:
        turn: Turn = index.data(Qt.ItemDataRole.UserRole)
        width = self._text_width(option)
        height = 2 * (self.PAD + self.MARGIN)
        for text, font, _role in self._blocks(turn, option):
            height += self._height(text, font, width) + self.GAP
        return QSize(width, height)

    @staticmethod
    def _height(text: str, font: QFont, width: int) -> int:
        return QFontMetrics(font).boundingRect(
            QRect(0, 0, width, 100_000), Qt.TextFlag.TextWordWrap, text).height()

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        turn: Turn = index.data(Qt.ItemDataRole.UserRole)
        palette = option.palette
        card = option.rect.adjusted(self.MARGIN, self.MARGIN, -self.MARGIN, -self.MARGIN)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(palette.color(QPalette.ColorRole.Highlight) if selected
                       else palette.color(QPalette.ColorRole.Mid))
        painter.setBrush(palette.color(QPalette.ColorRole.AlternateBase) if selected
                         else palette.color(QPalette.ColorRole.Base))
        painter.drawRoundedRect(card, 6, 6)
        painter.setClipRect(card)
        colours = {
            "state": ui_palette.ERROR_TEXT.color() if turn.state == "ERROR"
            else palette.color(QPalette.ColorRole.PlaceholderText),
            "feedback": ui_palette.FEEDBACK_TEXT.color(),
            "label": palette.color(QPalette.ColorRole.PlaceholderText),
            "text": palette.color(QPalette.ColorRole.Text),
        }
        width = card.width() - 2 * self.PAD
        y = card.top() + self.PAD
        for text, font, role in self._blocks(turn, option):
            height = self._height(text, font, width)
            painter.setFont(font)
            painter.setPen(colours[role])
            painter.drawText(QRect(card.left() + self.PAD, y, width, height),
                             Qt.TextFlag.TextWordWrap, text)
            y += height + self.GAP
        painter.restore()


def _load_turns(client: TraceSearcher, experiment_ids: list[str], filters: list[str],
                session: str, token: CancelToken) -> list[Turn]:
    infos = search_all(client, experiment_ids, narrow(filters, flt.session(session)),
                       order_by=["timestamp_ms ASC"], page_size=MAX_PAGE_SIZE, token=token)
    return [Turn.from_info(info) for info in infos]


class SessionsView(QWidget):
    """Sessions of the current experiment and filter; the selected one as a conversation."""

    open_trace = Signal(str)  # trace id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._client: TraceSearcher | None = None
        self._experiment_ids: list[str] = []
        self._filters: list[str] = []
        self._without_session = 0
        self._title = ""
        self.loader = SummaryLoader()
        self.model = SummaryModel(SESSION_COLUMNS, key=lambda s: s.session, parent=self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.summary = QLabel()
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.summary.setContentsMargins(4, 0, 4, 2)
        self.sessions_empty = empty_label()
        self.sessions_stack = QStackedWidget()
        self.sessions_stack.addWidget(self.table)
        self.sessions_stack.addWidget(self.sessions_empty)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.summary)
        left_layout.addWidget(self.sessions_stack, 1)

        self.turn_model = TurnModel(self)
        self.turns = QListView()
        self.turns.setModel(self.turn_model)
        self.turns.setItemDelegate(TurnDelegate(self.turns))
        self.turns.setResizeMode(QListView.ResizeMode.Adjust)
        self.turns.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.turns.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.turns.activated.connect(self._activated)
        self.conversation_title = QLabel()
        self.conversation_title.setTextFormat(Qt.TextFormat.PlainText)
        self.conversation_title.setWordWrap(True)
        self.conversation_title.setContentsMargins(4, 0, 4, 2)
        self.conversation_title.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse)
        self.turns_empty = empty_label()
        self.turns_stack = QStackedWidget()
        self.turns_stack.addWidget(self.turns)
        self.turns_stack.addWidget(self.turns_empty)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.conversation_title)
        right_layout.addWidget(self.turns_stack, 1)

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.loader)
        layout.addWidget(splitter, 1)

        self._turns_runner = TaskRunner(self)
        self.loader.updated.connect(self._merge)
        self.loader.state_changed.connect(lambda _state: self._update_sessions_state())
        self.table.selectionModel().currentRowChanged.connect(
            lambda current, _previous: self._select(current.row()))
        self._show_turns_message("Select a session to read its conversation.")
        self._update_sessions_state()

    def load(self, client: TraceSearcher, experiment_ids: list[str], filters: list[str]) -> None:
        """Group the traces matching any of `filters` (AND-only strings) by session."""
        self._reset()
        self._client, self._experiment_ids, self._filters = client, list(experiment_ids), \
            list(filters)
        self.loader.load(client, experiment_ids, filters)

    def clear(self) -> None:
        """Forget the experiment: cancel loads, empty both panes."""
        self._reset()
        self._client = None
        self.loader.clear()

    def _reset(self) -> None:
        self._turns_runner.cancel()
        self._without_session = 0
        self.model.clear()
        self.turn_model.set_turns([])
        self.conversation_title.clear()
        self._show_turns_message("Select a session to read its conversation.")

    def _merge(self, update: Update) -> None:
        self._without_session = update.without_session
        self.model.merge(update.sessions)
        self._update_sessions_state()

    def _update_sessions_state(self) -> None:
        sessions = len(self.model.rows)
        text = f"{plural(sessions, 'session')}, newest first" if sessions else ""
        if self._without_session:
            text += f" · {plural(self._without_session, 'trace')} without a session"
        self.summary.setText(text.lstrip(" ·"))
        if sessions:
            self.sessions_stack.setCurrentWidget(self.table)
            return
        self.sessions_empty.setText(empty_text(self.loader.state, self.loader.traces, "sessions",
                                               "a session id (mlflow.trace.session)"))
        self.sessions_stack.setCurrentWidget(self.sessions_empty)

    def _select(self, row: int) -> None:
        if row < 0 or self._client is None:
            return
        summary: SessionSummary = self.model.rows[row]
        self._title = f"Session {summary.session}" + (f" · {summary.user}" if summary.user
                                                         else "")
        self.conversation_title.setText(self._title)
        self.turn_model.set_turns([])
        self._show_turns_message("Loading the conversation…")
        client, ids, texts = self._client, self._experiment_ids, self._filters
        self._turns_runner.start(
            lambda token: _load_turns(client, ids, texts, summary.session, token),
            self._show_turns, self._turns_failed)

    def _show_turns(self, turns: list[Turn]) -> None:
        self.turn_model.set_turns(turns)
        self.conversation_title.setText(
            f"{self._title} · {plural(len(turns), 'turn')}, oldest first")
        if turns:
            self.turns_stack.setCurrentWidget(self.turns)
        else:
            self._show_turns_message("This session has no traces matching the filter any more.")

    def _turns_failed(self, exc: Exception) -> None:
        self.loader.banner.show_error(f"Could not load the conversation: {exc}",
                                      retry=lambda: self._select(self.table.currentIndex().row()))
        self._show_turns_message("Could not load the conversation.")

    def _show_turns_message(self, text: str) -> None:
        self.turns_empty.setText(text)
        self.turns_stack.setCurrentWidget(self.turns_empty)

    def _activated(self, index: QModelIndex) -> None:
        if index.isValid():
            self.open_trace.emit(self.turn_model.turns[index.row()].trace_id)
