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


# Beside "Sign in with Databricks": where the saved workspace's sign-in (refresh token) is.
SIGN_IN_STATUS = {
    "keyring": "signed in (kept in the OS keyring)",
    "session": "signed in for this session only",
    None: "not signed in yet",
}

_ERROR_STYLE = "color: $ERROR_TEXT;"

# The auth choices of each workspace kind: (label, Workspace.auth).
_AUTH_ITEMS = {
    "mlflow": [("None", "none"), ("Token (Bearer)", "token"),
               ("Username and password (basic)", "basic")],
    "databricks": [("Sign in with Databricks (OAuth U2M)", "oauth-u2m"),
                   ("Personal access token", "pat"),
                   ("Service principal (OAuth M2M: client id and secret)", "oauth-m2m"),
                   ("~/.databrickscfg profile", "profile")],
}
# The same way of signing in under the other kind ("token" is a Databricks PAT's older name).
_AUTH_COUNTERPART = {("databricks", "token"): "pat", ("mlflow", "pat"): "token"}
# Auth kinds whose secret the user types in (Workspace.enters_secret).
ENTERS_SECRET = frozenset({"token", "basic", "pat", "oauth-m2m"})
_SECRET_LABELS = {"basic": "Password", "oauth-m2m": "Client secret"}


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
        self._set_auth_items("mlflow")
        self.username_edit = QLineEdit()
        self.client_id_edit = QLineEdit()
        self.client_id_edit.setPlaceholderText("the service principal's application id")
        self.profile_edit = QLineEdit()
        self.profile_edit.setPlaceholderText("a profile name in ~/.databrickscfg, e.g. DEFAULT")
        self.sign_in_button = QPushButton("Sign in with Databricks")
        self.sign_in_button.setObjectName("signInButton")
        self.sign_in_button.setToolTip("Save the workspace and sign in in your browser; the "
                                       "sign-in is kept in the OS keyring")
        self.sign_in_status = plain_label("")
        sign_in_row = self._sign_in_row = QHBoxLayout()
        sign_in_row.setContentsMargins(0, 0, 0, 0)
        sign_in_row.addWidget(self.sign_in_button)
        sign_in_row.addWidget(self.sign_in_status, 1)
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

        form = self._layout = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Name", self.name_edit)
        form.addRow("Kind", self.kind_box)
        form.addRow("Host", self.host_edit)
        form.addRow("Authentication", self.auth_box)
        form.addRow("Username", self.username_edit)
        form.addRow("Client id", self.client_id_edit)
        form.addRow("Profile", self.profile_edit)
        form.addRow(self.secret_label, self.secret_edit)
        form.addRow("", sign_in_row)
        form.addRow("Default experiment", self.experiment_edit)
        form.addRow("CA bundle", ca_row)
        form.addRow("", self.verify_box)
        form.addRow("", self.verify_warning)
        form.addRow("Reviewer identity", self.reviewer_edit)
        self._secret_hint = ""

        self.kind_box.currentIndexChanged.connect(self._kind_changed)
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
        kind = ws.kind if ws else "mlflow"
        self.kind_box.blockSignals(True)
        self.kind_box.setCurrentIndex(self.kind_box.findData(kind))
        self.kind_box.blockSignals(False)
        self._set_auth_items(kind, ws.auth if ws else "none")
        self.host_edit.setText(ws.host if ws else "")
        self.username_edit.setText(ws.username or "" if ws else "")
        self.client_id_edit.setText(ws.client_id or "" if ws else "")
        self.profile_edit.setText(ws.profile or "" if ws else "")
        self.sign_in_status.setText("")
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
                         client_id=self.client_id_edit.text() if auth == "oauth-m2m" else None,
                         profile=self.profile_edit.text() if auth == "profile" else None,
                         default_experiment=self.experiment_edit.text(),
                         ca_bundle=self.ca_edit.text(), verify_tls=self.verify_box.isChecked(),
                         reviewer=self.reviewer_edit.text())

    def typed_secret(self) -> str | None:
        """The token, password or client secret typed in (None if the field is empty or
        unused: a browser sign-in gets its own)."""
        if self.auth_box.currentData() not in ENTERS_SECRET or not self.secret_edit.text():
            return None
        secret = self.secret_edit.text()
        register_secret(secret)
        return secret

    def set_secret_hint(self, text: str) -> None:
        """Say where the stored secret is (the field itself never shows it)."""
        self._secret_hint = text
        self._update_enabled()

    def set_sign_in_status(self, text: str) -> None:
        """Say whether this Databricks workspace is signed in (beside the sign-in button)."""
        self.sign_in_status.setText(text)

    def _set_auth_items(self, kind: str, auth: str | None = None) -> None:
        """The auth choices of `kind`, selecting `auth` (or its counterpart of the other kind:
        a token is a personal access token on Databricks; else the kind's first choice)."""
        wanted = auth if auth is not None else self.auth_box.currentData()
        wanted = _AUTH_COUNTERPART.get((kind, wanted), wanted)
        items = _AUTH_ITEMS[kind]
        self.auth_box.blockSignals(True)
        self.auth_box.clear()
        for label, value in items:
            self.auth_box.addItem(label, value)
        index = self.auth_box.findData(wanted)
        self.auth_box.setCurrentIndex(max(index, 0))
        self.auth_box.blockSignals(False)

    def _kind_changed(self) -> None:
        self._set_auth_items(self.kind_box.currentData())
        self._update_enabled()

    def _update_enabled(self) -> None:
        auth = self.auth_box.currentData()
        browser = auth in ("oauth-u2m", "profile")
        for widget, shown in ((self.username_edit, auth == "basic"),
                              (self.client_id_edit, auth == "oauth-m2m"),
                              (self.profile_edit, auth == "profile")):
            widget.setEnabled(shown)
            self._layout.setRowVisible(widget, shown)
        enters = auth in ENTERS_SECRET
        self.secret_edit.setEnabled(enters)
        self._layout.setRowVisible(self.secret_edit, not browser)
        self.secret_edit.setPlaceholderText(self._secret_hint if enters else
                                            "not needed without authentication")
        self.secret_label.setText(_SECRET_LABELS.get(auth, "Token"))
        self.sign_in_button.setEnabled(browser)
        self._layout.setRowVisible(self._sign_in_row, browser)
        self.verify_warning.setVisible(not self.verify_box.isChecked())

    def _guess_kind(self) -> None:
        if self.host_edit.text().strip() and guess_kind(self.host_edit.text()) == "databricks":
            self.kind_box.setCurrentIndex(self.kind_box.findData("databricks"))

    def _browse_ca(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "CA bundle", self.ca_edit.text(),
                                              "PEM certificates (*.pem *.crt);;All files (*)")
        if path:
            self.ca_edit.setText(path)
