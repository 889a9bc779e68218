"""The dialogs of human review: one assessment (name, kind, value, rationale), and the label
schemas of a workspace and experiment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from traceviewer.core.errors import ConfigError
from traceviewer.core.model import Assessment
from traceviewer.core.review import (
    KINDS,
    LabelSchema,
    SchemaStore,
    Value,
    format_value,
)
from traceviewer.ui.common import palette
from traceviewer.ui.common.plain import plain_label


class AssessmentDialog(QDialog):
    """Asks for one assessment: name, type, value, rationale (and the reviewer id when unknown)."""

    def __init__(self, title: str, schemas: Sequence[LabelSchema], *, kind: str = "feedback",
                 need_reviewer: bool = False, current: Assessment | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.kind = kind
        self._schemas = {s.name: s for s in schemas if s.assessment_kind == kind}
        self.name = QComboBox()
        self.name.setEditable(True)
        self.name.addItems(list(self._schemas))
        self.type = QComboBox()
        self.type.addItems(KINDS)
        self.boolean = QComboBox()
        self.boolean.addItems(["yes", "no"])
        self.number = QDoubleSpinBox()
        self.number.setRange(-1e9, 1e9)
        self.number.setDecimals(3)
        self.text = QLineEdit()
        self.category = QComboBox()
        self.values = QStackedWidget()
        for widget in (self.boolean, self.number, self.text, self.category):
            self.values.addWidget(widget)
        self.rationale = QPlainTextEdit()
        self.rationale.setPlaceholderText("Why? (optional)")
        self.rationale.setFixedHeight(70)
        self.reviewer = QLineEdit()
        self.reviewer.setPlaceholderText("e.g. alice@example.com")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        # Why the last OK could not be recorded (the dialog is shown again, as it was).
        self.error = plain_label()
        palette.set_style(self.error, "color: $ERROR_TEXT;")
        self.error.hide()

        form = QFormLayout(self)
        form.addRow("Name", self.name)
        form.addRow("Type", self.type)
        form.addRow("Value", self.values)
        form.addRow("Rationale", self.rationale)
        if need_reviewer:
            note = QLabel("Labels are signed with your reviewer id; it is saved with the "
                          "workspace.")
            note.setWordWrap(True)
            form.addRow(note)
            form.addRow("Your reviewer id", self.reviewer)
        else:
            self.reviewer.hide()
        form.addRow(self.error)
        form.addRow(self.buttons)

        self.name.currentTextChanged.connect(self._name_changed)
        self.type.currentIndexChanged.connect(self.values.setCurrentIndex)
        for signal in (self.name.currentTextChanged, self.reviewer.textChanged):
            signal.connect(self._validate)
        self._name_changed(self.name.currentText())
        if current is not None:
            self._fill(current)
        self._validate()

    def _name_changed(self, name: str) -> None:
        schema = self._schemas.get(name)
        if schema is None:
            return
        self.type.setCurrentText(schema.kind)
        self.category.clear()
        self.category.addItems(list(schema.options))

    def _fill(self, a: Assessment) -> None:
        self.name.setCurrentText(a.name)
        value = a.value
        if isinstance(value, bool):
            self.type.setCurrentText("boolean")
            self.boolean.setCurrentIndex(0 if value else 1)
        elif isinstance(value, int | float):
            self.type.setCurrentText("number")
            self.number.setValue(float(value))
        elif self.type.currentText() == "category" and self.category.findText(str(value)) >= 0:
            self.category.setCurrentText(str(value))
        else:
            self.type.setCurrentText("text")
            self.text.setText(format_value(value))
        self.rationale.setPlainText(a.rationale or "")

    def _validate(self) -> None:
        ok = bool(self.name.currentText().strip()) and (
            self.reviewer.isHidden() or bool(self.reviewer.text().strip()))
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)

    def label_name(self) -> str:
        return self.name.currentText().strip()

    def value(self) -> Value:
        """The value entered, typed as the chosen type."""
        kind = self.type.currentText()
        if kind == "boolean":
            return self.boolean.currentIndex() == 0
        if kind == "number":
            number = self.number.value()
            return int(number) if number.is_integer() else number
        if kind == "category":
            return self.category.currentText()
        return self.text.text()

    def rationale_text(self) -> str | None:
        return self.rationale.toPlainText().strip() or None

    def show_again(self, error: str) -> None:
        """Show the dialog again with what was entered and why it could not be recorded."""
        self.error.setText(error)
        self.error.show()
        self.open()


class SchemaDialog(QDialog):
    """Edit the label schemas of one workspace and experiment: name, type, options (comma
    separated, for category labels), required, comment. Saving an empty table restores the
    default (`response_is_correct`, yes/no with a comment)."""

    HEADERS = ("Name", "Type", "Options", "Required", "Comment")

    def __init__(self, workspace: str, experiment_id: str, store: SchemaStore | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Label schemas: the questions reviewers answer")
        self.resize(640, 300)
        self.store = store or SchemaStore()
        self.key = (workspace, experiment_id)
        self.table = QTableWidget(0, len(self.HEADERS))
        self.table.setHorizontalHeaderLabels(list(self.HEADERS))
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(0, 180)
        self.table.verticalHeader().hide()
        self.error = QLabel()
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        palette.set_style(self.error, "color: $ERROR_TEXT;")
        self.error.setWordWrap(True)
        add = QPushButton("Add question")
        remove = QPushButton("Remove question")
        add.clicked.connect(lambda: self.add_row(LabelSchema("", "boolean")))
        remove.clicked.connect(lambda: self.table.removeRow(self.table.currentRow()))
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(remove)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        for schema in self.store.get(*self.key):
            self.add_row(schema)

    def add_row(self, schema: LabelSchema) -> None:
        """Append a row showing `schema`."""
        row = self.table.rowCount()
        self.table.insertRow(row)
        self.table.setItem(row, 0, QTableWidgetItem(schema.name))
        kind = QComboBox()
        kind.addItems(KINDS)
        kind.setCurrentText(schema.kind)
        self.table.setCellWidget(row, 1, kind)
        self.table.setItem(row, 2, QTableWidgetItem(", ".join(schema.options)))
        for column, on in ((3, schema.required), (4, schema.comment)):
            check = QTableWidgetItem()
            check.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled)
            check.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            self.table.setItem(row, column, check)

    def schemas(self) -> list[LabelSchema]:
        """The schemas in the table (ConfigError names a row that is not valid)."""
        out = []
        for row in range(self.table.rowCount()):
            name_item, options_item = self.table.item(row, 0), self.table.item(row, 2)
            name = (name_item.text() if name_item else "").strip()
            if not name:
                continue
            options = options_item.text() if options_item else ""
            kind = cast(QComboBox, self.table.cellWidget(row, 1))
            required, comment = self.table.item(row, 3), self.table.item(row, 4)
            assert required is not None and comment is not None  # set by add_row
            out.append(LabelSchema(
                name, kind.currentText(),
                options=tuple(o.strip() for o in options.split(",") if o.strip()),
                required=required.checkState() == Qt.CheckState.Checked,
                comment=comment.checkState() == Qt.CheckState.Checked))
        return out

    def save(self) -> None:
        """Store the table and close, or say what is wrong."""
        try:
            self.store.set(*self.key, self.schemas())
        except ConfigError as exc:
            self.error.setText(str(exc))
            return
        self.accept()
