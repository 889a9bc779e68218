"""The filter builder: groups of rows (field / operator / value), ANDed within a group, the
groups ORed, beside the exact filter string.

Groups write the string through `core.filter_groups.build`; a hand-edited string is parsed back
into groups with `core.filter_groups.parse`. Invalid input is flagged here with its position
before anything reaches the server, and so is a filter needing more server queries than
`filter_groups.MAX_QUERIES` (the builder says what a filter with OR costs). Value and key boxes
suggest what the experiment holds (`ui.browse.suggestions`); Enter in any field applies."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QFontDatabase, QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from traceviewer.core import filter_groups, filters
from traceviewer.core.errors import BadFilter
from traceviewer.core.filters import FIELDS, TIME_PRESETS, Clause, ValueKind
from traceviewer.core.suggestions import ValueCounts
from traceviewer.ui.browse.suggestions import SUGGESTED_FIELDS, Suggestions
from traceviewer.ui.common import palette


def value_text(value: filters.Value) -> str:
    """How a clause value reads in a row's value editor."""
    if value is None:
        return ""
    if isinstance(value, tuple):
        return ", ".join(value)
    return str(value)


def value_from_text(kind: ValueKind, text: str) -> filters.Value:
    """The clause value a row's editor text stands for (numbers parsed, lists split)."""
    text = text.strip()
    if kind is ValueKind.NONE:
        return None
    if kind is ValueKind.LIST:
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if kind in (ValueKind.NUMBER, ValueKind.TIME) and text:
        try:
            return int(text)
        except ValueError:
            try:
                return float(text) if kind is ValueKind.NUMBER else text
            except ValueError:
                return text
    return text


class FilterRow(QWidget):
    """One condition. Keyed fields (tags, metadata, feedback…) get a key box."""

    changed = Signal()
    remove_requested = Signal(object)
    apply_requested = Signal()  # Enter in any of the row's fields

    def __init__(self, clause: Clause | None = None, parent: QWidget | None = None,
                 counts: ValueCounts | None = None) -> None:
        super().__init__(parent)
        self.field_box = QComboBox()
        for spec in FIELDS:
            self.field_box.addItem(spec.label, spec.name)
            self.field_box.setItemData(self.field_box.count() - 1, spec.help,
                                       Qt.ItemDataRole.ToolTipRole)
        self.key_edit = QLineEdit()
        self.key_edit.setPlaceholderText("key")
        self.key_edit.setFixedWidth(160)
        self.field_box.setFixedWidth(170)
        self.op_box = QComboBox()
        self.op_box.setFixedWidth(110)
        self.value_box = QComboBox()
        self.value_box.setEditable(True)
        self.value_box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.value_box.setMinimumWidth(180)
        self.suggestions = Suggestions(self, counts)
        remove = QToolButton()
        remove.setText("✕")
        remove.setToolTip("Remove this condition")
        remove.clicked.connect(lambda: self.remove_requested.emit(self))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for w in (self.field_box, self.key_edit, self.op_box):
            layout.addWidget(w)
        layout.addWidget(self.value_box, 1)
        layout.addWidget(remove)
        self.field_box.currentIndexChanged.connect(self._field_changed)
        self.op_box.currentIndexChanged.connect(self._op_changed)
        self.key_edit.textChanged.connect(self.changed)
        self.key_edit.textChanged.connect(lambda _t: self._suggest())
        self.value_box.currentTextChanged.connect(self.changed)
        value_edit = self.value_box.lineEdit()
        assert value_edit is not None  # the box is editable
        self.key_edit.returnPressed.connect(self.apply_requested)
        value_edit.returnPressed.connect(self.apply_requested)
        self.suggestions.attach(self.key_edit, value_edit)
        for box in (self.field_box, self.op_box):
            box.installEventFilter(self)
        self._exact: tuple[Clause, tuple[str, str, str, str]] | None = None
        self._field_changed()
        if clause is not None:
            self.set_clause(clause)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Enter on the field or operator box applies, as in the text boxes."""
        if (event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent)
                and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)):
            self.apply_requested.emit()
            return True
        return super().eventFilter(watched, event)

    def _spec(self) -> filters.FieldSpec:
        return FIELDS[self.field_box.currentIndex()]

    def _suggest(self) -> None:
        """Point the key and value suggestions at the row's field (and key)."""
        spec = self._spec()
        key = self.key_edit.text().strip()
        field = (f"{spec.name}.{key}" if key else "") if spec.keyed else spec.name
        kind = spec.value_kind(self.op_box.currentText())
        suggested = spec.name in SUGGESTED_FIELDS and kind in (ValueKind.TEXT, ValueKind.LIST,
                                                               ValueKind.ASSESSMENT)
        self.suggestions.point_at(spec.name if spec.keyed else None,
                                  field if suggested else None,
                                  list_values=kind is ValueKind.LIST)

    def _field_changed(self) -> None:
        spec = self._spec()
        self.key_edit.setVisible(spec.keyed)
        self.key_edit.setPlaceholderText(f"{spec.label.lower()} name")
        self.op_box.blockSignals(True)
        self.op_box.clear()
        self.op_box.addItems(filter_groups.ops(spec))
        self.op_box.blockSignals(False)
        self._op_changed()

    def _op_changed(self) -> None:
        spec = self._spec()
        kind = spec.value_kind(self.op_box.currentText())
        text = self.value_box.currentText()
        self.value_box.blockSignals(True)
        self.value_box.clear()
        if kind is ValueKind.TIME:
            self.value_box.addItems(TIME_PRESETS)
        elif spec.choices:
            self.value_box.addItems(spec.choices)
        self.value_box.setEditText(text if kind is not ValueKind.TIME or text else "24h")
        self.value_box.blockSignals(False)
        self.value_box.setVisible(kind is not ValueKind.NONE)
        placeholder = {ValueKind.LIST: "a, b, c", ValueKind.TIME: "24h, 7d, 2026-11-25 or ms",
                       ValueKind.NUMBER: "number"}.get(kind, "value")
        line_edit = self.value_box.lineEdit()
        assert line_edit is not None  # the box is editable
        line_edit.setPlaceholderText(placeholder)
        self.value_box.setToolTip(spec.help or spec.label)
        self._suggest()
        self.changed.emit()

    def set_clause(self, clause: Clause) -> None:
        spec, key = filters.split_field(clause.field)
        for w in (self.field_box, self.op_box, self.key_edit, self.value_box):
            w.blockSignals(True)
        self.field_box.setCurrentIndex(FIELDS.index(spec))
        for w in (self.field_box,):
            w.blockSignals(False)
        self._field_changed()
        for w in (self.op_box, self.key_edit, self.value_box):
            w.blockSignals(True)
        self.key_edit.setText(key or "")
        self.op_box.setCurrentText(clause.op)
        for w in (self.op_box, self.key_edit, self.value_box):
            w.blockSignals(False)
        self._op_changed()
        self.value_box.setEditText(value_text(clause.value))
        self._exact = (clause, self._texts())

    def _texts(self) -> tuple[str, str, str, str]:
        return (self.field_box.currentText(), self.key_edit.text(), self.op_box.currentText(),
                self.value_box.currentText())

    def clause(self) -> Clause:
        """The row's condition; a clause set by `set_clause` comes back exactly (values the
        editor text cannot express, like list items holding commas, survive) until edited."""
        if self._exact is not None and self._exact[1] == self._texts():
            return self._exact[0]
        spec = self._spec()
        op = self.op_box.currentText()
        field = f"{spec.name}.{self.key_edit.text().strip()}" if spec.keyed else spec.name
        return Clause(field, op, value_from_text(spec.value_kind(op),
                                                 self.value_box.currentText()))


class FilterGroup(QFrame):
    """One group of the builder: rows that must all hold."""

    remove_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("filterGroup")
        palette.set_style(self, "#filterGroup { border: 1px solid $BORDER; border-radius: 4px; }")
        self.rows: list[FilterRow] = []
        self.title = QLabel("All of:")
        palette.set_style(self.title, "color: $SECONDARY_TEXT;")
        self.add_button = QToolButton()
        self.add_button.setText("+ AND")
        self.add_button.setToolTip("Add a condition to this group (all must hold)")
        remove = QToolButton()
        remove.setText("✕ Group")
        remove.setToolTip("Remove this group and its conditions")
        remove.clicked.connect(lambda: self.remove_requested.emit(self))
        self.remove_button = remove
        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(self.title)
        head.addStretch(1)
        head.addWidget(self.add_button)
        head.addWidget(remove)
        self.rows_box = QVBoxLayout()
        self.rows_box.setSpacing(4)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 6)
        layout.setSpacing(4)
        layout.addLayout(head)
        layout.addLayout(self.rows_box)


class FilterBuilder(QWidget):
    """Groups of rows plus the editable, copyable filter string; emits `applied(groups)`, a
    list of lists of clauses (the groups ORed; [] for every trace)."""

    applied = Signal(list)
    suggestions_wanted = Signal()  # a key or value box took the focus

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.groups: list[FilterGroup] = []
        self.counts: ValueCounts | None = None
        self.groups_box = QVBoxLayout()
        self.groups_box.setSpacing(2)
        add = QPushButton("+ Condition")
        add.setToolTip("Add a condition to the last group (all conditions of a group must hold)")
        add.clicked.connect(lambda: self.add_row())
        add_group = QPushButton("+ OR group")
        add_group.setToolTip("Add a group of conditions as an alternative: a trace matching "
                             "any group is shown (each alternative is a server query)")
        add_group.clicked.connect(lambda: self.add_row(group=self.add_group()))
        self.text = QLineEdit()
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setPlaceholderText("MLflow filter string, e.g. tags.`mlflow.trace.user` = 'u1'"
                                     " OR status = 'ERROR' — editable; Enter applies")
        self.text.setClearButtonEnabled(True)
        self.text.returnPressed.connect(self.apply_text)
        self.text.textEdited.connect(lambda _t: self.show_error(None))
        apply = QPushButton("Apply")
        apply.setDefault(True)
        apply.setToolTip("Search with this filter (Enter)")
        apply.clicked.connect(self.apply)
        clear = QPushButton("Clear")
        clear.setToolTip("Remove every condition")

        def clear_all() -> None:
            self.set_groups([])
            self.apply()

        clear.clicked.connect(clear_all)
        self.cost = QLabel()
        self.cost.setTextFormat(Qt.TextFormat.PlainText)
        palette.set_style(self.cost, "color: $MUTED_TEXT;")
        self.cost.setToolTip("MLflow filters have no OR: each alternative (and a session or "
                             "user, which live in tags or metadata) is a query of its own; the "
                             "results are merged in order, each trace once")
        self.cost.hide()
        self.error = QLabel()
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        palette.set_style(self.error, "color: $ERROR_TEXT;")
        self.error.setWordWrap(True)
        self.error.hide()
        line = QHBoxLayout()
        line.addWidget(QLabel("Filter:"))
        line.addWidget(self.text, 1)
        for w in (add, add_group, apply, clear):
            line.addWidget(w)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(line)
        layout.addLayout(self.groups_box)
        layout.addWidget(self.cost)
        layout.addWidget(self.error)
        QShortcut(QKeySequence("Ctrl+L"), self).activated.connect(self.text.setFocus)

    @property
    def rows(self) -> list[FilterRow]:
        """Every row, group by group."""
        return [row for group in self.groups for row in group.rows]

    def set_counts(self, counts: ValueCounts | None) -> None:
        """Suggest values from `counts` in every row's key and value boxes."""
        self.counts = counts
        for row in self.rows:
            row.suggestions.set_counts(counts)
            row._suggest()

    def add_group(self) -> FilterGroup:
        group = FilterGroup()
        group.add_button.clicked.connect(lambda: self.add_row(group=group))
        group.remove_requested.connect(self._remove_group)
        if self.groups:
            self.groups_box.addWidget(_or_label())
        self.groups.append(group)
        self.groups_box.addWidget(group)
        self._relabel()
        return group

    def add_row(self, clause: Clause | None = None,
                group: FilterGroup | None = None) -> FilterRow:
        if group is None:
            group = self.groups[-1] if self.groups else self.add_group()
        row = FilterRow(clause, counts=self.counts)
        row.changed.connect(self._rows_changed)
        row.remove_requested.connect(self._remove_row)
        row.apply_requested.connect(self.apply)
        row.suggestions.wanted.connect(self.suggestions_wanted)
        group.rows.append(row)
        group.rows_box.addWidget(row)
        self._rows_changed()
        return row

    def _remove_row(self, row: FilterRow) -> None:
        group = next(g for g in self.groups if row in g.rows)
        group.rows.remove(row)
        row.deleteLater()
        if not group.rows:
            self._remove_group(group)
            return
        self._rows_changed()

    def _remove_group(self, group: FilterGroup) -> None:
        self._clear_layout()
        kept = [g for g in self.groups if g is not group]
        group.deleteLater()
        self.groups = []
        for g in kept:
            if self.groups:
                self.groups_box.addWidget(_or_label())
            self.groups.append(g)
            self.groups_box.addWidget(g)
        self._relabel()
        self._rows_changed()

    def _clear_layout(self) -> None:
        """Take the groups out of the layout (kept) and delete the OR labels between them."""
        while self.groups_box.count():
            item = self.groups_box.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None and not isinstance(widget, FilterGroup):
                widget.deleteLater()

    def _relabel(self) -> None:
        several = len(self.groups) > 1
        for n, group in enumerate(self.groups, 1):
            group.title.setText(f"Group {n}: all of" if several else "All of:")
            group.remove_button.setVisible(several)

    def set_groups(self, groups: list[list[Clause]]) -> None:
        """Replace the groups (and the string) with `groups`."""
        self._clear_layout()
        for group in self.groups:
            group.deleteLater()
        self.groups = []
        for clauses in groups:
            group = self.add_group()
            for clause in clauses:
                self.add_row(clause, group)
        self._rows_changed()

    def set_clauses(self, clauses: list[Clause]) -> None:
        """One group of `clauses` (none: every trace)."""
        self.set_groups([clauses] if clauses else [])

    def group_clauses(self) -> list[list[Clause]]:
        """The groups' clauses (empty groups left out)."""
        return [c for c in ([row.clause() for row in g.rows] for g in self.groups) if c]

    def clauses(self) -> list[Clause]:
        """The first group's clauses (the whole filter unless it has OR groups)."""
        groups = self.group_clauses()
        return groups[0] if groups else []

    def _rows_changed(self) -> None:
        try:
            groups = self.group_clauses()
            self.text.setText(filter_groups.build(groups))
            self._show_cost(groups)
            self.show_error(None)
        except BadFilter as exc:
            self.show_error(exc)

    def _show_cost(self, groups: list[list[Clause]]) -> None:
        text = filter_groups.cost_text(groups)
        self.cost.setText(text)
        self.cost.setVisible(bool(text))

    def apply_text(self) -> None:
        """Parse the hand-written string into groups, then apply it."""
        try:
            groups = filter_groups.parse(self.text.text())
        except BadFilter as exc:
            self.show_error(exc)
            return
        self.set_groups(groups)
        self.apply()

    def apply(self) -> None:
        try:
            groups = self.group_clauses()
            filter_groups.build(groups)
            filter_groups.checked_server_filters(groups)
        except BadFilter as exc:
            self.show_error(exc)
            return
        self.show_error(None)
        self.applied.emit(groups)

    def show_error(self, exc: BadFilter | None) -> None:
        """Flag the filter string with `exc` (its position gets the cursor); None clears."""
        if exc is None:
            self.error.hide()
            palette.set_style(self.text, "")
            return
        self.error.setText(f"Invalid filter: {exc}")
        self.error.show()
        palette.set_style(self.text, "border: 1px solid $ERROR_TEXT;")
        if exc.position is not None:
            self.text.setCursorPosition(exc.position)


def _or_label() -> QLabel:
    label = QLabel("OR")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    palette.set_style(label, "color: $SECONDARY_TEXT; font-weight: bold;")
    return label
