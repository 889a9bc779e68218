"""The workspace form: host, kind, auth and secret, TLS, reviewer id; and the step-by-step
connection test with its results."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from traceviewer.core import conntest
from traceviewer.core.errors import TraceViewerError
from traceviewer.core.redact import redact, register_secret
from traceviewer.core.workspaces import Workspace, guess_kind
from traceviewer.ui.common import palette
from traceviewer.ui.common.plain import plain_label

_STATUS_COLORS = {conntest.OK: palette.OK_TEXT, conntest.WARNING: palette.WARNING_TEXT,
                  conntest.FAILED: palette.ERROR_TEXT, conntest.SKIPPED: palette.MUTED_TEXT}


SECRET_PLACEHOLDERS = {
    "keyring": "stored in keyring — leave empty to keep",
    "session": "kept for this session only — leave empty to keep",
    None: "not stored — enter it here",
}


_ERROR_STYLE = "color: $ERROR_TEXT;"


class MessageLine(QLabel):
    """One line of feedback under a form: progress and results, or an error in red (secrets
    masked, plain text)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

    def show_message(self, text: str) -> None:
        palette.set_style(self, "")
        self.setText(text)

    def show_error(self, error: str | Exception) -> None:
        text = str(error) if isinstance(error, TraceViewerError | str) else (
            f"{type(error).__name__}: {error}")
        palette.set_style(self, _ERROR_STYLE)
        self.setText(redact(text))


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
        texts = (step.status.upper(), step.title, redact(step.detail))
        items = [QTableWidgetItem(text) for text in texts]
        for column, item in enumerate(items):
            self.setItem(row, column, item)
        items[0].setForeground(_STATUS_COLORS[step.status].brush())

    def clear(self) -> None:
        self.setRowCount(0)

    def rows(self) -> dict[str, tuple[str, str]]:
        """{check: (status, result)} of the steps shown."""
        return {self._text(r, 1): (self._text(r, 0), self._text(r, 2))
                for r in range(self.rowCount())}

    def _text(self, row: int, column: int) -> str:
        item = self.item(row, column)
        return item.text() if item else ""


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
            "the traces. Prefer a CA bundle.")
        palette.set_style(self.verify_warning, _ERROR_STYLE)
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
