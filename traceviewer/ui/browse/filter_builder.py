"""The filter builder: rows of field / operator / value, ANDed, beside the exact filter string.

Rows write the string through `core.filters.build`; a hand-edited string is parsed back into
rows with `core.filters.parse`. Invalid input is flagged here with its position before anything
reaches the server."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from traceviewer.core import filters
from traceviewer.core.errors import BadFilter
from traceviewer.core.filters import FIELDS, Clause, ValueKind
from traceviewer.ui.common import palette

TIME_PRESETS = ("1h", "24h", "7d", "30d")


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

    def __init__(self, clause: Clause | None = None, parent=None):
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
        self.value_box.currentTextChanged.connect(self.changed)
        self._exact: tuple[Clause, tuple[str, str, str, str]] | None = None
        self._field_changed()
        if clause is not None:
            self.set_clause(clause)

    def _spec(self) -> filters.FieldSpec:
        return FIELDS[self.field_box.currentIndex()]

    def _field_changed(self) -> None:
        spec = self._spec()
        self.key_edit.setVisible(spec.keyed)
        self.key_edit.setPlaceholderText(f"{spec.label.lower()} name")
        self.op_box.blockSignals(True)
        self.op_box.clear()
        self.op_box.addItems(spec.ops)
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


class FilterBuilder(QWidget):
    """Rows plus the editable, copyable filter string; emits `applied(list[Clause])`."""

    applied = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[FilterRow] = []
        self.rows_box = QVBoxLayout()
        self.rows_box.setSpacing(4)
        add = QPushButton("+ Condition")
        add.setToolTip("Add a condition (all conditions must hold)")
        add.clicked.connect(lambda: self.add_row())
        self.text = QLineEdit()
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setPlaceholderText("MLflow filter string, e.g. tags.`mlflow.trace.user` = 'u1'"
                                     " — editable; Enter applies")
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
            self.set_clauses([])
            self.apply()

        clear.clicked.connect(clear_all)
        self.error = QLabel()
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        palette.set_style(self.error, "color: $ERROR_TEXT;")
        self.error.setWordWrap(True)
        self.error.hide()
        line = QHBoxLayout()
        line.addWidget(QLabel("Filter:"))
        line.addWidget(self.text, 1)
        for w in (add, apply, clear):
            line.addWidget(w)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(line)
        layout.addLayout(self.rows_box)
        layout.addWidget(self.error)
        QShortcut(QKeySequence("Ctrl+L"), self).activated.connect(self.text.setFocus)

    def add_row(self, clause: Clause | None = None) -> FilterRow:
        row = FilterRow(clause)
        row.changed.connect(self._rows_changed)
        row.remove_requested.connect(self._remove_row)
        self.rows.append(row)
        self.rows_box.addWidget(row)
        self._rows_changed()
        return row

    def _remove_row(self, row: FilterRow) -> None:
        self.rows.remove(row)
        row.deleteLater()
        self._rows_changed()

    def set_clauses(self, clauses: list[Clause]) -> None:
        """Replace the rows (and the string) with `clauses`."""
        for row in self.rows:
            row.deleteLater()
        self.rows = []
        for clause in clauses:
            self.add_row(clause)
        self._rows_changed()

    def clauses(self) -> list[Clause]:
        return [row.clause() for row in self.rows]

    def _rows_changed(self) -> None:
        try:
            self.text.setText(filters.build(self.clauses()))
            self.show_error(None)
        except BadFilter as exc:
            self.show_error(exc)

    def apply_text(self) -> None:
        """Parse the hand-written string into rows, then apply it."""
        try:
            clauses = filters.parse(self.text.text())
        except BadFilter as exc:
            self.show_error(exc)
            return
        self.set_clauses(clauses)
        self.apply()

    def apply(self) -> None:
        try:
            clauses = self.clauses()
            filters.build(clauses)
        except BadFilter as exc:
            self.show_error(exc)
            return
        self.show_error(None)
        self.applied.emit(clauses)

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
