"""The first-run screen, shown while no workspace exists: start the demo, import what the user
already has (MLflow environment variables, ~/.databrickscfg), or add a workspace by hand."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from traceviewer.core.errors import ConfigError
from traceviewer.core.imports import (
    Imported,
    databrickscfg_path,
    from_databrickscfg,
    from_environment,
)
from traceviewer.core.workspaces import WorkspaceStore
from traceviewer.ui.common.plain import plain_label
from traceviewer.ui.common.tasks import WriteRunner
from traceviewer.ui.workspaces.form import MessageLine
from traceviewer.ui.workspaces.keyring_fallback import save_with_session_fallback
from traceviewer.ui.workspaces.workspace_manager import WorkspaceManager


class FirstRunScreen(QWidget):
    """Three ways to a first workspace.

    `demo_requested` asks for the local demo server; `workspaces_changed(name)` fires once a
    workspace was imported or added (reload the workspaces and open `name`)."""

    demo_requested = Signal()
    workspaces_changed = Signal(str)

    def __init__(self, store: WorkspaceStore | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.store = store or WorkspaceStore()
        self._writer = WriteRunner(self)
        self._env: Imported | None = None
        self._profiles: list[Imported] = []

        title = QLabel("Welcome to Trace Viewer")
        font = QFont(title.font())
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setBold(True)
        title.setFont(font)
        intro = plain_label("Browse the traces of your GenAI app and review them. Connect to an "
                            "MLflow tracking server or a Databricks workspace to begin. Tokens "
                            "and passwords are kept in your OS keyring only.")

        self.demo_button = QPushButton("Start the demo")
        self.demo_button.clicked.connect(self.demo_requested)
        self.env_button = QPushButton("Import from environment")
        self.env_button.clicked.connect(self.import_environment)
        self.cfg_button = QPushButton("Import from Databricks CLI")
        self.cfg_button.clicked.connect(self.import_databrickscfg)
        self.add_button = QPushButton("Add a workspace…")
        self.add_button.clicked.connect(self.open_manager)
        self.env_detail = plain_label()
        self.cfg_detail = plain_label()
        choices = QGridLayout()
        choices.setHorizontalSpacing(16)
        choices.setVerticalSpacing(14)
        rows = [
            (self.demo_button, plain_label("A local MLflow server with a seeded chat app: try "
                                           "every view without an account.")),
            (self.env_button, self.env_detail),
            (self.cfg_button, self.cfg_detail),
            (self.add_button, plain_label("Enter a server URL and credentials by hand.")),
        ]
        for row, (button, detail) in enumerate(rows):
            button.setMinimumWidth(220)
            choices.addWidget(button, row, 0, Qt.AlignmentFlag.AlignTop)
            choices.addWidget(detail, row, 1)
        choices.setColumnStretch(1, 1)
        self.message = MessageLine()
        self.message.setObjectName("firstRunMessage")

        card = QFrame()
        card.setObjectName("firstRunCard")
        # A fixed width lets the wrapped explanations take the height they need.
        card.setFixedWidth(720)
        layout = QVBoxLayout(card)
        layout.setSpacing(16)
        layout.addWidget(title)
        layout.addWidget(intro)
        layout.addLayout(choices)
        layout.addWidget(self.message)
        # Centred with stretches, not an alignment flag: an aligned widget gets its size hint,
        # which is too short for the wrapped explanations.
        centred = QHBoxLayout()
        centred.addStretch(1)
        centred.addWidget(card)
        centred.addStretch(1)
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        outer.addLayout(centred)
        outer.addStretch(2)
        self.refresh()

    def refresh(self) -> None:
        """Look again at the environment and ~/.databrickscfg (cheap: reads no keyring)."""
        try:
            self._env = from_environment()
        except ConfigError as exc:
            self._env = None
            self.env_detail.setText(str(exc))
        else:
            ws = self._env.workspace
            experiment = (f", experiment {ws.default_experiment}" if ws.default_experiment
                          else "")
            self.env_detail.setText(f"Found {ws.host} ({ws.kind}, auth {ws.auth}{experiment}) "
                                    "in MLFLOW_TRACKING_URI / DATABRICKS_HOST.")
        self.env_button.setEnabled(self._env is not None)

        path = databrickscfg_path()
        shown = f"~/{path.relative_to(Path.home())}" if path.is_relative_to(Path.home()) else path
        try:
            self._profiles, skipped = from_databrickscfg(path)
        except ConfigError:
            self._profiles, skipped = [], []
            self.cfg_detail.setText(f"No profiles: {shown} does not exist or cannot be read.")
        else:
            names = ", ".join(found.workspace.name for found in self._profiles) or "none"
            skips = f" ({len(skipped)} skipped: {skipped[0].reason})" if skipped else ""
            self.cfg_detail.setText(f"Profiles in {shown}: {names}{skips}.")
        self.cfg_button.setEnabled(bool(self._profiles))

    def import_environment(self) -> None:
        """Save the workspace the environment describes, its secret in the keyring."""
        if self._env is not None:
            self._import([self._env])

    def import_databrickscfg(self) -> None:
        """Save every profile of ~/.databrickscfg, its secrets in the keyring."""
        self._import(self._profiles)

    def _import(self, found: list[Imported]) -> None:
        def write(session_only: bool) -> str:
            for item in found:
                self.store.save(item.workspace, item.secret, session_only=session_only)
            return found[0].workspace.name

        self.message.show_message("Importing…")
        save_with_session_fallback(self, self._writer, write, self._on_imported,
                                   self.message.show_error)

    def _on_imported(self, name: str) -> None:
        self.message.show_message(f"Added workspace '{name}'.")
        self.workspaces_changed.emit(name)

    def open_manager(self) -> WorkspaceManager:
        """Open the workspace manager on a new workspace; its saves are forwarded."""
        manager = WorkspaceManager(self.store, self)
        manager.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        manager.workspaces_changed.connect(self.workspaces_changed)
        manager.open()
        return manager
