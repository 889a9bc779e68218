"""The workspace manager: add, edit, duplicate, remove and test workspaces.

Secrets are typed into a masked field and go to the keyring (or, when the user chooses it because
no keyring works, to session memory); the field is never filled back from the keyring. Keyring
reads and writes may block on an unlock prompt, so they run in the background like the
connection test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from traceviewer.core import conntest, keychain
from traceviewer.core.cancel import CancelToken
from traceviewer.core.errors import ConfigError
from traceviewer.core.workspaces import Workspace, WorkspaceStore, sign_in, signs_in_browser
from traceviewer.ui.common.tasks import TaskRunner, WriteRunner
from traceviewer.ui.workspaces.form import (
    SECRET_PLACEHOLDERS,
    SIGN_IN_STATUS,
    MessageLine,
    StepList,
    WorkspaceForm,
)
from traceviewer.ui.workspaces.keyring_fallback import save_with_session_fallback


class WorkspaceManager(QDialog):
    """Add, edit, duplicate, remove and test workspaces.

    `workspaces_changed(name)` fires after a save (the saved name) or a removal (""): reload the
    workspace selector and select `name` if it is not empty."""

    workspaces_changed = Signal(str)
    _sign_in_url = Signal(str)

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
        self._writer = WriteRunner(self)
        self._tester = TaskRunner(self)
        self._signer = WriteRunner(self)
        self._sign_in_cancel: CancelToken | None = None
        # The form as it was filled (None: never saved, like a duplicate), to tell edits.
        self._filled: tuple[object, ...] | None = None
        self._asking = False  # the "unsaved edits" question is open

        self.list = QListWidget()
        self.list.setObjectName("workspaceList")
        self.list.currentTextChanged.connect(self._on_list_changed)
        self.add_button = QPushButton("Add")
        self.add_button.clicked.connect(lambda: self.ask_before_leaving(self.new_workspace))
        self.duplicate_button = QPushButton("Duplicate")
        self.duplicate_button.clicked.connect(lambda: self.ask_before_leaving(self.duplicate))
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
        self.form.sign_in_button.clicked.connect(self.sign_in)
        self.message = MessageLine()
        self.message.setObjectName("workspaceMessage")
        self.save_button = QPushButton("Save")
        self.save_button.setDefault(True)
        self.save_button.clicked.connect(lambda: self.save())
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
        self._sign_in_url.connect(self._show_sign_in_url)
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
            self._show_in_list(target)
            self._on_selected(target)

    def _on_list_changed(self, name: str) -> None:
        """The user picked another workspace in the list: edits of this one are saved or
        discarded first, as the user says (Cancel stays here)."""
        if not name or not self.has_unsaved_edits():
            self._on_selected(name)
            return
        self._show_in_list(self._original)  # until the user has answered

        def go() -> None:
            self._show_in_list(name)
            self._on_selected(name)
        self.ask_before_leaving(go)

    def _show_in_list(self, name: str | None) -> None:
        self.list.blockSignals(True)
        items = self.list.findItems(name, Qt.MatchFlag.MatchExactly) if name else []
        if items:
            self.list.setCurrentItem(items[0])
        else:
            self.list.setCurrentRow(-1)
            self.list.clearSelection()
        self.list.blockSignals(False)

    # Unsaved edits
    def _form_state(self) -> tuple[object, ...]:
        form = self.form
        return (tuple(edit.text() for edit in form.findChildren(QLineEdit)),
                tuple(box.currentData() for box in form.findChildren(QComboBox)),
                tuple(box.isChecked() for box in form.findChildren(QCheckBox)))

    def has_unsaved_edits(self) -> bool:
        """The form differs from the workspace it shows (or shows one never saved)."""
        return self._filled is None or self._form_state() != self._filled

    def ask_before_leaving(self, then: Callable[[], None]) -> None:
        """Run `then` (which leaves the form) now if nothing is unsaved; else ask Save /
        Discard / Cancel without blocking: Save runs `then` once the save worked, Discard
        runs it at once, Cancel keeps editing."""
        if not self.has_unsaved_edits():
            then()
            return
        if self._asking:
            return
        name = self.form.name_edit.text().strip() or "the new workspace"
        box = QMessageBox(QMessageBox.Icon.Warning, "Unsaved changes",
                          f"Save the changes to '{name}'?",
                          QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                          | QMessageBox.StandardButton.Cancel, self)
        box.setObjectName("unsavedEditsBox")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setInformativeText("Discarding loses what was typed, a secret included.")
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        box.setEscapeButton(QMessageBox.StandardButton.Cancel)
        self._asking = True

        def answered(result: int) -> None:
            self._asking = False
            if result == QMessageBox.StandardButton.Save:
                self.save(then=then)
            elif result == QMessageBox.StandardButton.Discard:
                then()
        box.finished.connect(answered)
        box.open()

    def reject(self) -> None:
        """Close and Esc (and the window's close button) ask about unsaved edits first."""
        self.ask_before_leaving(super().reject)

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
        self._filled = self._form_state()
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
            self.form.set_secret_hint(SECRET_PLACEHOLDERS[None])
            self.form.set_sign_in_status(SIGN_IN_STATUS[None])
            return
        self.form.set_secret_hint("checking the keyring…")
        self.form.set_sign_in_status("checking the keyring…")

        def found(where: str | None) -> None:
            self.form.set_secret_hint(
                (SECRET_PLACEHOLDERS[where] if owner == self._original
                 else f"copied from '{owner}' — leave empty to keep")
                if where else SECRET_PLACEHOLDERS[None])
            self.form.set_sign_in_status(SIGN_IN_STATUS[where if owner == self._original
                                                        else None])

        def unavailable(_exc: Exception) -> None:
            self.form.set_secret_hint("keyring unavailable — enter it to keep it for this session")
            self.form.set_sign_in_status("keyring unavailable — sign in to stay signed in for "
                                         "this session")

        # Only where the secret is comes back to the GUI thread, never the secret itself.
        self._lookup.start(lambda _token: keychain.stored_in(owner), found, unavailable)

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
        # A refresh token is not copied: each sign-in keeps its own (they rotate).
        self._edit(source, original=None, secret_owner=source.name if source.enters_secret
                   else None, name=copy)
        self._filled = None  # a copy is unsaved until it is saved

    # Saving and removing
    def save(self, then: Callable[[], None] | None = None) -> None:
        """Save the form: rename if the name changed, secret to the keyring (or, if the user
        chooses it when no keyring works, session memory); `then` runs once it is saved."""
        try:
            ws = self.form.workspace()
        except ConfigError as exc:
            self.message.show_error(exc)
            return
        secret = self.form.typed_secret()
        original, owner = self._original, self._secret_owner
        if ws.enters_secret and secret is None and owner is None:
            what = self.form.secret_label.text().lower()
            self.message.show_error(f"Enter the {what}: it is stored in the OS keyring, never "
                                    "in a file.")
            return

        def write(session_only: bool) -> str:
            copied = secret
            if original is not None and original != ws.name:
                self.store.rename(original, ws.name)
            elif copied is None and owner not in (None, ws.name) and ws.enters_secret:
                copied = keychain.get_secret(owner)
            self.store.save(ws, copied, replace=original is not None,
                            session_only=session_only)
            return ws.name

        self.message.show_message("Saving…")
        self.save_button.setEnabled(False)
        save_with_session_fallback(self, self._writer, write,
                                   lambda name: self._on_saved(name, then), self._on_failed)

    def _on_saved(self, name: str, then: Callable[[], None] | None = None) -> None:
        self.save_button.setEnabled(True)
        self.reload(name)
        self.message.show_message(f"Saved workspace '{name}'.")
        self.workspaces_changed.emit(name)
        if then is not None:
            then()

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
            if stored is None and ws.enters_secret and owner is not None:
                stored = keychain.get_secret(owner)
            return conntest.run(ws, stored, token)

        self.steps.clear()
        self.message.show_message(f"Testing {ws.host}…")
        self.test_button.setEnabled(False)
        self._tester.start(run, self._on_tested, self._on_test_failed, self.steps.add_step)

    def _on_tested(self, steps: list[conntest.Step]) -> None:
        self.test_button.setEnabled(True)
        user = conntest.signed_in_user(steps)
        if conntest.passed(steps) and user:
            ws = self.form.workspace()
            text = (f"Connection OK: signed in as {user} with the "
                    f"{conntest.secret_word(ws)}.")
            if not self.form.reviewer_edit.text().strip():
                # The signed-in user is who the feedback is from (the seed's source_id).
                self.form.reviewer_edit.setText(user)
                text += " Reviewer identity set to that user: save to keep it."
            self.message.show_message(text)
        elif conntest.passed(steps):
            self.message.show_message("Connection OK.")
        else:
            self.message.show_error("The connection test failed: see the failed steps below.")

    def _on_test_failed(self, exc: Exception) -> None:
        self.test_button.setEnabled(True)
        self.message.show_error(exc)

    # Databricks browser sign-in
    def sign_in(self) -> None:
        """"Sign in with Databricks": save the form, then run the OAuth U2M sign-in in the
        system browser in the background; the refresh token goes to the keyring (or, when the
        user chooses it because no keyring works, to session memory), never to a file."""
        try:
            ws = self.form.workspace()
        except ConfigError as exc:
            self.message.show_error(exc)
            return
        if not signs_in_browser(ws):
            self.message.show_error("Only a Databricks workspace with \"Sign in with Databricks "
                                    "(OAuth U2M)\" or a browser-sign-in profile signs in here.")
            return
        original = self._original
        cancel = self._sign_in_cancel = CancelToken(self._on_sign_in_url)
        saved: list[str] = []  # the form was saved (the sign-in may still fail or be retried)

        def write(session_only: bool) -> tuple[str, str | None]:
            if not saved:
                if original is not None and original != ws.name:
                    self.store.rename(original, ws.name)
                self.store.save(ws, None, replace=original is not None)
                saved.append(ws.name)
            user = sign_in(ws, on_url=cancel.progress, token=cancel, session_only=session_only)
            if user and not ws.reviewer:
                self.store.upsert(replace(ws, reviewer=user))
            return ws.name, user

        def failed(exc: Exception) -> None:
            self._sign_in_cancel = None
            if saved:
                self.reload(saved[0])  # edit what was saved
                self.workspaces_changed.emit(saved[0])
            self.form.sign_in_button.setEnabled(True)
            self.message.show_error(exc)

        self.message.show_message("Opening the Databricks sign-in page in your browser…")
        self.form.sign_in_button.setEnabled(False)
        save_with_session_fallback(self, self._signer, write, self._on_signed_in, failed)

    def cancel_sign_in(self) -> None:
        """Stop waiting for the browser."""
        if self._sign_in_cancel is not None:
            self._sign_in_cancel.cancel()

    def done(self, result: int) -> None:
        """Closing the dialog stops a sign-in that waits for the browser."""
        self.cancel_sign_in()
        super().done(result)

    def _on_sign_in_url(self, url: str) -> None:
        # Called on the sign-in's thread: hand the URL to the GUI thread.
        self._sign_in_url.emit(url)

    def _show_sign_in_url(self, url: str) -> None:
        self.message.show_message("Waiting for the sign-in in your browser. If no browser "
                                  f"opened, visit: {url}")

    def _on_signed_in(self, result: tuple[str, str | None]) -> None:
        name, user = result
        self._sign_in_cancel = None
        self.reload(name)
        self.message.show_message(f"Signed in to '{name}'" + (f" as {user}" if user else "")
                                  + "; the sign-in is kept in the OS keyring.")
        self.workspaces_changed.emit(name)
