"""The workspace manager: add, edit, duplicate, remove and test workspaces.

Secrets are typed into a masked field and go to the keyring (or, when the user chooses it because
no keyring works, to session memory); the field is never filled back from the keyring. Keyring
reads and writes may block on an unlock prompt, so they run in the background like the
connection test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from traceviewer.core import conntest, keychain
from traceviewer.core.cancel import CancelToken
from traceviewer.core.errors import ConfigError, KeyringUnavailable, TraceViewerError
from traceviewer.core.redact import redact, register_secret
from traceviewer.core.workspaces import Workspace, WorkspaceStore, guess_kind
from traceviewer.ui.tasks import TaskRunner

_STATUS_COLORS = {conntest.OK: "#1e7b34", conntest.WARNING: "#9a6700",
                  conntest.FAILED: "#b3261e", conntest.SKIPPED: "#6e6e6e"}
_SECRET_PLACEHOLDERS = {
    "keyring": "stored in keyring — leave empty to keep",
    "session": "kept for this session only — leave empty to keep",
    None: "not stored — enter it here",
}
_ERROR_STYLE = "color: #b3261e;"


def plain_label(text: str = "", *, style: str = "") -> QLabel:
    """A word-wrapped label that shows text as plain text (never rich text)."""
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setStyleSheet(style)
    return label


class MessageLine(QLabel):
    """One line of feedback under a form: progress and results, or an error in red (secrets
    masked, plain text)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

    def show_message(self, text: str) -> None:
        self.setStyleSheet("")
        self.setText(text)

    def show_error(self, error: str | Exception) -> None:
        text = str(error) if isinstance(error, TraceViewerError | str) else (
            f"{type(error).__name__}: {error}")
        self.setStyleSheet(_ERROR_STYLE)
        self.setText(redact(text))


def save_with_session_fallback(parent: QWidget, runner: TaskRunner,
                               save: Callable[[bool], Any], on_saved: Callable[[Any], None],
                               on_error: Callable[[Exception], None]) -> None:
    """Run `save(session_only)` in the background, first with the keyring. If no keyring is
    usable, ask whether to keep the secret for this session only and, if so, run it again with
    `session_only=True`; if not, report the keyring error. Never a plaintext fallback."""

    def failed(exc: Exception) -> None:
        if not isinstance(exc, KeyringUnavailable):
            on_error(exc)
            return
        box = QMessageBox(QMessageBox.Icon.Warning, "Keyring unavailable",
                          redact(str(exc)), parent=parent)
        box.setObjectName("keyringUnavailableBox")
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setInformativeText("Trace Viewer never writes secrets to a file. You can keep the "
                               "secret in memory until Trace Viewer quits, and enter it again "
                               "next time; the other settings are saved.")
        keep = box.addButton("Keep for this session only", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)

        def answered(_result: int) -> None:
            if box.clickedButton() is keep:
                runner.start(lambda _token: save(True), on_saved, on_error)
            else:
                on_error(exc)
        box.finished.connect(answered)
        box.open()

    runner.start(lambda _token: save(False), on_saved, failed)


class StepList(QTableWidget):
    """The connection test's steps as they arrive: status, check, what was found or what to do
    (wrapped: the advice is the point)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(0, 3, parent)
        self.setHorizontalHeaderLabels(["Status", "Check", "Result"])
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setShowGrid(False)
        self.setWordWrap(True)
        self.verticalHeader().hide()
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header = self.horizontalHeader()
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)

    def add_step(self, step: conntest.Step) -> None:
        row = self.rowCount()
        self.insertRow(row)
        for column, text in enumerate((step.status.upper(), step.title, redact(step.detail))):
            self.setItem(row, column, QTableWidgetItem(text))
        self.item(row, 0).setForeground(QBrush(QColor(_STATUS_COLORS[step.status])))

    def clear(self) -> None:
        self.setRowCount(0)

    def rows(self) -> dict[str, tuple[str, str]]:
        """{check: (status, result)} of the steps shown."""
        return {self.item(r, 1).text(): (self.item(r, 0).text(), self.item(r, 2).text())
                for r in range(self.rowCount())}


class WorkspaceForm(QWidget):
    """The settings of one workspace, and its secret as typed (never read back)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("e.g. prod or local")
        self.kind_box = QComboBox()
        self.kind_box.addItem("MLflow server", "mlflow")
        self.kind_box.addItem("Databricks workspace", "databricks")
        self.host_edit = QLineEdit()
        self.host_edit.setPlaceholderText("http://127.0.0.1:5000 or https://adb-….azuredatabricks"
                                          ".net")
        self.auth_box = QComboBox()
        self.auth_box.addItem("None", "none")
        self.auth_box.addItem("Token (Bearer)", "token")
        self.auth_box.addItem("Username and password (basic)", "basic")
        self.username_edit = QLineEdit()
        self.secret_label = QLabel("Token")
        self.secret_edit = QLineEdit()
        self.secret_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.secret_edit.setObjectName("secretField")
        self.experiment_edit = QLineEdit()
        self.experiment_edit.setPlaceholderText("name or id, e.g. /Shared/production-genai-app")
        self.ca_edit = QLineEdit()
        self.ca_edit.setPlaceholderText("system certificates")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_ca)
        ca_row = QHBoxLayout()
        ca_row.setContentsMargins(0, 0, 0, 0)
        ca_row.addWidget(self.ca_edit, 1)
        ca_row.addWidget(browse)
        self.verify_box = QCheckBox("Verify the server's TLS certificate")
        self.verify_box.setChecked(True)
        self.verify_warning = plain_label(
            "TLS verification is OFF: anyone on the network path can read the credentials and "
            "the traces. Prefer a CA bundle.", style=_ERROR_STYLE)
        self.reviewer_edit = QLineEdit()
        self.reviewer_edit.setPlaceholderText("written as the source of your feedback, "
                                              "e.g. you@example.com")

        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Name", self.name_edit)
        form.addRow("Kind", self.kind_box)
        form.addRow("Host", self.host_edit)
        form.addRow("Authentication", self.auth_box)
        form.addRow("Username", self.username_edit)
        form.addRow(self.secret_label, self.secret_edit)
        form.addRow("Default experiment", self.experiment_edit)
        form.addRow("CA bundle", ca_row)
        form.addRow("", self.verify_box)
        form.addRow("", self.verify_warning)
        form.addRow("Reviewer identity", self.reviewer_edit)
        self._secret_hint = ""

        self.kind_box.currentIndexChanged.connect(self._update_enabled)
        self.auth_box.currentIndexChanged.connect(self._update_enabled)
        self.verify_box.toggled.connect(self._update_enabled)
        self.host_edit.editingFinished.connect(self._guess_kind)
        self.clear()

    def clear(self) -> None:
        self.fill(None)

    def fill(self, ws: Workspace | None, name: str | None = None) -> None:
        """Show `ws` (empty fields for None), named `name` if given; the secret field is
        always emptied."""
        self.name_edit.setText(name if name is not None else ws.name if ws else "")
        self.kind_box.setCurrentIndex(self.kind_box.findData(ws.kind if ws else "mlflow"))
        self.host_edit.setText(ws.host if ws else "")
        self.auth_box.setCurrentIndex(self.auth_box.findData(ws.auth if ws else "none"))
        self.username_edit.setText(ws.username or "" if ws else "")
        self.secret_edit.clear()
        self.experiment_edit.setText(ws.default_experiment or "" if ws else "")
        self.ca_edit.setText(ws.ca_bundle or "" if ws else "")
        self.verify_box.setChecked(ws.verify_tls if ws else True)
        self.reviewer_edit.setText(ws.reviewer or "" if ws else "")
        self._update_enabled()

    def workspace(self) -> Workspace:
        """The workspace the fields describe; ConfigError saying what to fix."""
        auth = self.auth_box.currentData()
        return Workspace(name=self.name_edit.text().strip(), host=self.host_edit.text(),
                         kind=self.kind_box.currentData(), auth=auth,
                         username=self.username_edit.text() if auth == "basic" else None,
                         default_experiment=self.experiment_edit.text(),
                         ca_bundle=self.ca_edit.text(), verify_tls=self.verify_box.isChecked(),
                         reviewer=self.reviewer_edit.text())

    def typed_secret(self) -> str | None:
        """The token or password typed in (None if the field is empty or unused)."""
        if self.auth_box.currentData() == "none" or not self.secret_edit.text():
            return None
        secret = self.secret_edit.text()
        register_secret(secret)
        return secret

    def set_secret_hint(self, text: str) -> None:
        """Say where the stored secret is (the field itself never shows it)."""
        self._secret_hint = text
        self._update_enabled()

    def _update_enabled(self) -> None:
        databricks = self.kind_box.currentData() == "databricks"
        if databricks:
            self.auth_box.setCurrentIndex(self.auth_box.findData("token"))
        self.auth_box.setEnabled(not databricks)
        auth = self.auth_box.currentData()
        self.username_edit.setEnabled(auth == "basic")
        self.secret_edit.setEnabled(auth != "none")
        self.secret_edit.setPlaceholderText(self._secret_hint if auth != "none" else
                                            "not needed without authentication")
        self.secret_label.setText("Password" if auth == "basic" else "Token")
        self.verify_warning.setVisible(not self.verify_box.isChecked())

    def _guess_kind(self) -> None:
        if self.host_edit.text().strip() and guess_kind(self.host_edit.text()) == "databricks":
            self.kind_box.setCurrentIndex(self.kind_box.findData("databricks"))

    def _browse_ca(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "CA bundle", self.ca_edit.text(),
                                              "PEM certificates (*.pem *.crt);;All files (*)")
        if path:
            self.ca_edit.setText(path)


class WorkspaceManager(QDialog):
    """Add, edit, duplicate, remove and test workspaces.

    `workspaces_changed(name)` fires after a save (the saved name) or a removal (""): reload the
    workspace selector and select `name` if it is not empty."""

    workspaces_changed = Signal(str)

    def __init__(self, store: WorkspaceStore | None = None, parent: QWidget | None = None,
                 select: str | None = None):
        super().__init__(parent)
        self.setWindowTitle("Workspaces")
        self.store = store or WorkspaceStore()
        # The workspace being edited (None: a new one), and the one whose stored secret applies
        # when the secret field is left empty (the source of a duplicate).
        self._original: str | None = None
        self._secret_owner: str | None = None
        self._lookup = TaskRunner(self)
        self._writer = TaskRunner(self)
        self._tester = TaskRunner(self)

        self.list = QListWidget()
        self.list.setObjectName("workspaceList")
        self.list.currentTextChanged.connect(self._on_selected)
        self.add_button = QPushButton("Add")
        self.add_button.clicked.connect(self.new_workspace)
        self.duplicate_button = QPushButton("Duplicate")
        self.duplicate_button.clicked.connect(self.duplicate)
        self.remove_button = QPushButton("Remove…")
        self.remove_button.clicked.connect(self.confirm_remove)
        buttons = QHBoxLayout()
        for button in (self.add_button, self.duplicate_button, self.remove_button):
            buttons.addWidget(button)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.list, 1)
        left_layout.addLayout(buttons)

        self.form = WorkspaceForm()
        self.message = MessageLine()
        self.message.setObjectName("workspaceMessage")
        self.save_button = QPushButton("Save")
        self.save_button.setDefault(True)
        self.save_button.clicked.connect(self.save)
        self.test_button = QPushButton("Test connection")
        self.test_button.clicked.connect(self.test_connection)
        actions = QHBoxLayout()
        actions.addStretch(1)
        actions.addWidget(self.test_button)
        actions.addWidget(self.save_button)
        self.steps = StepList()
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.form)
        right_layout.addWidget(self.message)
        right_layout.addLayout(actions)
        right_layout.addWidget(self.steps, 1)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([200, 620])
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 1)
        layout.addWidget(close)
        self.resize(860, 640)
        self.reload(select)

    # The list
    def reload(self, select: str | None = None) -> None:
        """Refill the list from the config and edit `select` (else the first, else a new one)."""
        try:
            names = [ws.name for ws in self.store.list()]
        except ConfigError as exc:
            names = []
            self.message.show_error(exc)
        self.list.blockSignals(True)
        self.list.clear()
        self.list.addItems(names)
        self.list.blockSignals(False)
        target = select if select in names else (names[0] if names else None)
        if target is None:
            self.new_workspace()
        else:
            self.list.setCurrentRow(names.index(target))
            self._on_selected(target)

    def _on_selected(self, name: str) -> None:
        if not name:
            return
        try:
            ws = self.store.get(name)
        except ConfigError as exc:
            self.message.show_error(exc)
            return
        self._edit(ws, original=name, secret_owner=name, name=name)

    def _edit(self, ws: Workspace | None, original: str | None, secret_owner: str | None,
              name: str | None) -> None:
        self._original, self._secret_owner = original, secret_owner
        self.form.fill(ws, name)
        self.steps.clear()
        self._tester.cancel()
        self.message.show_message("")
        self.duplicate_button.setEnabled(original is not None)
        self.remove_button.setEnabled(original is not None)
        self._show_secret_location()

    def _show_secret_location(self) -> None:
        owner = self._secret_owner
        if owner is None:
            self._lookup.cancel()
            self.form.set_secret_hint(_SECRET_PLACEHOLDERS[None])
            return
        self.form.set_secret_hint("checking the keyring…")
        # Only where the secret is comes back to the GUI thread, never the secret itself.
        self._lookup.start(lambda _token: keychain.stored_in(owner),
                           lambda where: self.form.set_secret_hint(
                               (_SECRET_PLACEHOLDERS[where] if owner == self._original
                                else f"copied from '{owner}' — leave empty to keep")
                               if where else _SECRET_PLACEHOLDERS[None]),
                           lambda exc: self.form.set_secret_hint(
                               "keyring unavailable — enter it to keep it for this session"))

    def new_workspace(self) -> None:
        """Start editing a new, empty workspace."""
        self.list.clearSelection()
        self.list.setCurrentRow(-1)
        self._edit(None, original=None, secret_owner=None, name=None)
        self.form.name_edit.setFocus()

    def duplicate(self) -> None:
        """Start editing a copy of the selected workspace (its secret is copied on save)."""
        if self._original is None:
            return
        source = self.store.get(self._original)
        names = {ws.name for ws in self.store.list()}
        copy = next(f"{source.name}-copy{n or ''}" for n in range(len(names) + 1)
                    if f"{source.name}-copy{n or ''}" not in names)
        self.list.setCurrentRow(-1)
        self._edit(source, original=None, secret_owner=source.name if source.needs_secret
                   else None, name=copy)

    # Saving and removing
    def save(self) -> None:
        """Save the form: rename if the name changed, secret to the keyring (or, if the user
        chooses it when no keyring works, session memory)."""
        try:
            ws = self.form.workspace()
        except ConfigError as exc:
            self.message.show_error(exc)
            return
        secret = self.form.typed_secret()
        original, owner = self._original, self._secret_owner
        if ws.needs_secret and secret is None and owner is None:
            what = self.form.secret_label.text().lower()
            self.message.show_error(f"Enter the {what}: it is stored in the OS keyring, never "
                                    "in a file.")
            return

        def write(session_only: bool) -> str:
            copied = secret
            if original is not None and original != ws.name:
                self.store.rename(original, ws.name)
            elif copied is None and owner not in (None, ws.name) and ws.needs_secret:
                copied = keychain.get_secret(owner)
            self.store.save(ws, copied, replace=original is not None,
                            session_only=session_only)
            return ws.name

        self.message.show_message("Saving…")
        self.save_button.setEnabled(False)
        save_with_session_fallback(self, self._writer, write, self._on_saved, self._on_failed)

    def _on_saved(self, name: str) -> None:
        self.save_button.setEnabled(True)
        self.reload(name)
        self.message.show_message(f"Saved workspace '{name}'.")
        self.workspaces_changed.emit(name)

    def _on_failed(self, exc: Exception) -> None:
        self.save_button.setEnabled(True)
        self.message.show_error(exc)

    def confirm_remove(self) -> None:
        """Ask, then remove the selected workspace with its keyring entry."""
        name = self._original
        if name is None:
            return
        box = QMessageBox(QMessageBox.Icon.Question, "Remove workspace",
                          f"Remove workspace '{name}' and its secret from the keyring?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                          self)
        box.setObjectName("confirmRemoveBox")
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)

        def answered(result: int) -> None:
            if result == QMessageBox.StandardButton.Yes:
                self._writer.start(lambda _token: self.store.remove(name),
                                   lambda _none: self._on_removed(name), self._on_failed)
        box.finished.connect(answered)
        box.open()

    def _on_removed(self, name: str) -> None:
        self.reload()
        self.message.show_message(f"Removed workspace '{name}'.")
        self.workspaces_changed.emit("")

    # Connection test
    def test_connection(self) -> None:
        """Run the connection test on the form as it is (saved or not), step by step."""
        try:
            ws = self.form.workspace()
        except ConfigError as exc:
            self.message.show_error(exc)
            return
        secret, owner = self.form.typed_secret(), self._secret_owner

        def run(token: CancelToken) -> list[conntest.Step]:
            stored = secret
            if stored is None and ws.needs_secret and owner is not None:
                stored = keychain.get_secret(owner)
            return conntest.run(ws, stored, token)

        self.steps.clear()
        self.message.show_message(f"Testing {ws.host}…")
        self.test_button.setEnabled(False)
        self._tester.start(run, self._on_tested, self._on_test_failed, self.steps.add_step)

    def _on_tested(self, steps: list[conntest.Step]) -> None:
        self.test_button.setEnabled(True)
        if conntest.passed(steps):
            self.message.show_message("Connection OK.")
        else:
            self.message.show_error("The connection test failed: see the failed steps below.")

    def _on_test_failed(self, exc: Exception) -> None:
        self.test_button.setEnabled(True)
        self.message.show_error(exc)
