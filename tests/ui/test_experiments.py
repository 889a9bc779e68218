"""The experiments list against the real server: a long experiment name is elided in the
middle (its start and its end stay readable) and shown whole on hover."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QStyleOptionViewItem

from traceviewer.ui.browse.experiments import ExperimentsPanel

WAIT_MS = 60_000
LONG_NAME = "/Shared/team-search-quality/" + "nightly-evaluation-" * 4 + "chat-assistant-v2"


def test_a_long_experiment_name_elides_in_the_middle_and_shows_whole_on_hover(qtbot, sdk,
                                                                             client):
    if sdk.get_experiment_by_name(LONG_NAME) is None:
        sdk.create_experiment(LONG_NAME)
    panel = ExperimentsPanel()
    qtbot.addWidget(panel)
    panel.resize(280, 400)
    panel.show()
    panel.set_client(client)
    qtbot.waitUntil(lambda: any(e.name == LONG_NAME for e in panel.model.rows), timeout=WAIT_MS)
    row = next(i for i, e in enumerate(panel.model.rows) if e.name == LONG_NAME)
    index = panel.model.index(row, 0)
    assert panel.model.data(index) == sdk.get_experiment_by_name(LONG_NAME).name

    # What the view paints in the cell: the text elided as its style option says.
    option = QStyleOptionViewItem()
    panel.view.initViewItemOption(option)
    panel.view.itemDelegate().initStyleOption(option, index)
    width = panel.view.visualRect(index).width()
    painted = option.fontMetrics.elidedText(option.text, option.textElideMode, width)
    assert option.textElideMode == Qt.TextElideMode.ElideMiddle
    assert "…" in painted and painted != LONG_NAME
    head, tail = painted.split("…")
    assert LONG_NAME.startswith(head) and LONG_NAME.endswith(tail)
    assert len(head) >= 5 and len(tail) >= 5

    tip = panel.model.data(index, Qt.ItemDataRole.ToolTipRole)
    assert LONG_NAME in tip
