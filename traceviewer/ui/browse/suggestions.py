"""Suggestions in the filter builder's key and value boxes: a `QCompleter` over our own list model,
filled from `core.suggestions.ValueCounts` (the loaded pages and a background sample), most
frequent first. Filling the model is a dictionary lookup on the GUI thread; the sample itself
runs through the browser's `TaskRunner`, so typing never waits for it."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtWidgets import QComboBox, QCompleter, QLineEdit

from traceviewer.core.suggestions import ValueCounts

# Fields whose values (or keys) the experiment's traces tell: free text where a hint helps.
SUGGESTED_FIELDS = frozenset({"user", "session", "name", "tags", "metadata", "feedback",
                              "expectation"})
MODEL_LIMIT = 1000  # values per field handed to a completer (it filters them as you type)
DROPDOWN_LIMIT = 20  # values in the value box's own dropdown


class ValueListModel(QAbstractListModel):
    """A plain list of strings, in the order given (most frequent first)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.values: list[str] = []

    def set_values(self, values: list[str]) -> None:
        if values == self.values:
            return
        self.beginResetModel()
        self.values = list(values)
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()  # noqa: B008
                 ) -> int:
        return 0 if parent.isValid() else len(self.values)

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or role not in (Qt.ItemDataRole.DisplayRole,
                                                Qt.ItemDataRole.EditRole):
            return None
        return self.values[index.row()]


def _completer(parent: QObject, model: ValueListModel) -> QCompleter:
    completer = QCompleter(model, parent)
    completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    completer.setFilterMode(Qt.MatchFlag.MatchContains)
    completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
    completer.setModelSorting(QCompleter.ModelSorting.UnsortedModel)  # keep frequency order
    completer.setMaxVisibleItems(12)
    return completer


class _ListCompleter(QCompleter):
    """Completes the last item of a comma-separated list (IN values)."""

    def splitPath(self, path: str) -> list[str]:
        return [path.rsplit(",", 1)[-1].strip()]

    def pathFromIndex(self, index: QModelIndex | QPersistentModelIndex) -> str:
        widget = self.widget()
        text = widget.text() if isinstance(widget, QLineEdit) else ""
        head = text.rsplit(",", 1)[0] + ", " if "," in text else ""
        return head + str(index.data())


class Suggestions(QObject):
    """The completers of one builder row: keys for keyed fields, values for the field.
    `wanted` fires when one of its boxes takes the focus: the browser samples the experiment
    then (once per experiment), so an unused builder costs the server nothing."""

    wanted = Signal()

    def __init__(self, parent: QObject, counts: ValueCounts | None = None) -> None:
        super().__init__(parent)
        self.counts = counts
        self.keys = ValueListModel(self)
        self.values = ValueListModel(self)
        self._key_prefix: str | None = None
        self._field: str | None = None
        self._list = False
        self.key_completer = _completer(self, self.keys)
        self.value_completer = _completer(self, self.values)
        self.list_completer = _ListCompleter(self.values, self)
        self.list_completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.list_completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.list_completer.setModelSorting(QCompleter.ModelSorting.UnsortedModel)
        self._value_edit: QLineEdit | None = None
        self._value_box: QComboBox | None = None

    def attach(self, key_edit: QLineEdit, value_edit: QLineEdit) -> None:
        key_edit.setCompleter(self.key_completer)
        for edit in (key_edit, value_edit):
            edit.installEventFilter(self)
        self._value_edit = value_edit
        box = value_edit.parent()
        self._value_box = box if isinstance(box, QComboBox) else None
        self._install()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.FocusIn:
            self.wanted.emit()
        return super().eventFilter(watched, event)

    def _install(self) -> None:
        if self._value_box is not None:  # a combo box's line edit takes the combo's completer
            self._value_box.setCompleter(self.list_completer if self._list
                                         else self.value_completer)
        elif self._value_edit is not None:
            self._value_edit.setCompleter(self.list_completer if self._list
                                          else self.value_completer)

    def set_counts(self, counts: ValueCounts | None) -> None:
        self.counts = counts
        self.refresh()

    def point_at(self, key_prefix: str | None, field: str | None, list_values: bool) -> None:
        """Suggest keys under `key_prefix` and values of `field` (None: nothing)."""
        changed_mode = list_values != self._list
        self._key_prefix, self._field, self._list = key_prefix, field, list_values
        if changed_mode:
            self._install()
        self.refresh()

    def refresh(self) -> None:
        counts = self.counts
        keys = counts.keys(self._key_prefix, limit=MODEL_LIMIT) \
            if counts is not None and self._key_prefix else []
        values = counts.values(self._field, limit=MODEL_LIMIT) \
            if counts is not None and self._field else []
        self.keys.set_values(keys)
        self.values.set_values(values)
        self._fill_dropdown(values[:DROPDOWN_LIMIT])

    def _fill_dropdown(self, values: list[str]) -> None:
        """The value box's own dropdown lists the most frequent values (choice fields keep
        their choices): its arrow opens something."""
        box = self._value_box
        if box is None or self._field is None:
            return
        current = [box.itemText(i) for i in range(box.count())]
        if current == values or (current and not set(current) <= set(self.values.values)):
            return  # already filled, or the field's own choices / time presets
        text = box.currentText()
        box.blockSignals(True)
        box.clear()
        box.addItems(values)
        box.setEditText(text)
        box.blockSignals(False)
