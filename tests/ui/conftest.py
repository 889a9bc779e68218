"""Fixtures of the GUI tests."""

from __future__ import annotations

import pytest

from traceviewer.core.app_model import AppModel
from traceviewer.core.workspaces import WorkspaceMemory
from traceviewer.ui.browse.browser import TraceBrowser


@pytest.fixture
def browser(qtbot):
    """A shown trace browser with its own app model (no workspace yet)."""
    widget = TraceBrowser(AppModel(memory=WorkspaceMemory()))
    qtbot.addWidget(widget)
    widget.resize(1200, 700)
    widget.show()
    yield widget
    widget.model.reset(None)  # no fetch may outlive the test's client
