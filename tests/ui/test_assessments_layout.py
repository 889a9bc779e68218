"""The Trace tab's assessments panel in the main window (pytest-qt, offscreen) on a seeded trace
of the real server: at the window's default and minimum sizes every button shows its whole
label (its size hint fits its width, and nothing of it is cut off)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSize
from PySide6.QtWidgets import QApplication

from tests.conftest import PROD_EXPERIMENT
from tests.ui.test_main_window import WAIT_MS, connected_window
from traceviewer.core.workspaces import Workspace

DEFAULT_SIZE = QSize(1280, 800)  # the main window's own default


@pytest.mark.parametrize("size", ["default", "minimum"])
def test_assessment_buttons_show_their_whole_labels(qtbot, mlflow_server, sdk, prod, size,
                                                    tmp_path):
    (judged,) = [t for t in sdk.search_traces(locations=[prod], max_results=500,
                                              include_spans=False) if t.info.assessments][:1]
    w = connected_window(qtbot, Workspace("local", mlflow_server.url, reviewer="r@example.com"),
                         PROD_EXPERIMENT)
    w.show()
    assert w.size() == DEFAULT_SIZE
    with qtbot.waitSignal(w.trace_view.trace_shown, timeout=WAIT_MS):
        w.open_trace(judged.info.trace_id)
    panel = w.assessments
    w.trace_view.side.setCurrentWidget(panel)
    if size == "minimum":
        w.resize(1, 1)  # as small as the window lets it be
        qtbot.waitUntil(lambda: w.width() < DEFAULT_SIZE.width())
        # (offscreen, the platform keeps a few pixels of frame above the minimum)
        assert w.width() - w.minimumSize().width() <= 8
    qtbot.waitUntil(lambda: panel.tree.topLevelItemCount() == len(judged.info.assessments))
    QApplication.processEvents()
    buttons = [panel.add_button, panel.expect_button, panel.edit_button,
               panel.override_button, panel.delete_button, panel.undo_button]
    for button in buttons:
        assert button.isVisible()
        assert button.sizeHint().width() <= button.width(), button.text()
        # Not cut off by the pane either: the whole button is on screen in the panel.
        assert button.visibleRegion().boundingRect() == button.rect(), button.text()
        assert panel.rect().contains(button.geometry().translated(
            button.parentWidget().mapTo(panel, button.pos()) - button.pos()))
    panel.grab().save(str(tmp_path / f"assessments-{size}.png"))
