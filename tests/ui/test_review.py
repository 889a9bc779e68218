"""Labelling in the GUI (pytest-qt, offscreen) against the real seeded `mlflow server`: what the
assessments panel and the review queue write is read back by the MLflow SDK."""

from __future__ import annotations

import uuid

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox

from tests.conftest import PROD_EXPERIMENT, experiment_id
from traceviewer.core import filters as flt
from traceviewer.core import search
from traceviewer.core.client import RestClient
from traceviewer.core.outbox import Outbox
from traceviewer.core.review import LabelSchema, QueueStore
from traceviewer.core.workspaces import Workspace, WorkspaceStore
from traceviewer.ui.review.assessments import AssessmentsPanel
from traceviewer.ui.review.outbox_status import OutboxSender
from traceviewer.ui.review.review_panel import ReviewPanel

REVIEWER = "carol@example.com"


@pytest.fixture(scope="module")
def infos(mlflow_server, sdk):
    with RestClient(mlflow_server.url) as client:
        found, _ = client.search_traces([experiment_id(sdk, PROD_EXPERIMENT)], max_results=40)
    return found


@pytest.fixture
def sender(qtbot):
    sender = OutboxSender()
    yield sender
    sender.timer.stop()


def workspace(url: str, reviewer: str | None = None) -> Workspace:
    ws = Workspace("local", url, reviewer=reviewer)
    WorkspaceStore().save(ws, replace=True)
    return ws


def sent_all(qtbot, sender: OutboxSender) -> None:
    qtbot.waitUntil(lambda: not sender.busy and not Outbox().items(), timeout=20_000)


def labels(sdk, trace_id: str, name: str) -> list:
    return [a for a in sdk.get_trace(trace_id).info.assessments if a.name == name]


def rows(panel: AssessmentsPanel) -> list[list[str]]:
    tree = panel.tree
    return [[tree.topLevelItem(i).text(c) for c in range(tree.columnCount())]
            for i in range(tree.topLevelItemCount())]


def select(panel: AssessmentsPanel, assessment_id: str) -> None:
    for i in range(panel.tree.topLevelItemCount()):
        item = panel.tree.topLevelItem(i)
        if item.data(0, Qt.UserRole) == assessment_id:
            panel.tree.setCurrentItem(item)
            return
    raise AssertionError(f"{assessment_id} is not shown")


def test_label_added_in_the_gui_asks_for_the_reviewer_and_reaches_the_sdk(qtbot, sdk, client,
                                                                           sender, infos,
                                                                           mlflow_server):
    panel = AssessmentsPanel(sender)
    qtbot.addWidget(panel)
    info, name = infos[0], f"gui-{uuid.uuid4().hex[:8]}"
    panel.show_trace(info, client, workspace(mlflow_server.url),
                     [LabelSchema(name, "boolean")])

    panel.add_button.click()
    dialog = panel.dialog
    assert dialog.isVisible() and dialog.reviewer.isVisible()  # first label: who is this?
    assert dialog.label_name() == name and dialog.type.currentText() == "boolean"
    dialog.boolean.setCurrentText("no")
    dialog.rationale.setPlainText("balance is <b>wrong</b>")
    assert not dialog.buttons.button(QDialogButtonBox.Ok).isEnabled()
    dialog.reviewer.setText(REVIEWER)
    dialog.buttons.button(QDialogButtonBox.Ok).click()

    # Shown at once as not sent yet, then as the server has it.
    sent_all(qtbot, sender)
    (label,) = labels(sdk, info.trace_id, name)
    assert (label.source.source_type, label.source.source_id) == ("HUMAN", REVIEWER)
    assert (label.value, label.rationale) == (False, "balance is <b>wrong</b>")
    assert WorkspaceStore().get("local").reviewer == REVIEWER
    qtbot.waitUntil(lambda: any(r[0] == name and r[5] for r in rows(panel)))
    (row,) = [r for r in rows(panel) if r[0] == name]
    assert row[1:5] == ["feedback", "no", "balance is <b>wrong</b>", f"HUMAN {REVIEWER}"]


def test_edit_override_delete_and_undo_in_the_gui_are_visible_to_the_sdk(qtbot, sdk, client,
                                                                         sender, infos,
                                                                         mlflow_server):
    panel = AssessmentsPanel(sender)
    qtbot.addWidget(panel)
    info, name = infos[1], f"gui-{uuid.uuid4().hex[:8]}"
    panel.show_trace(info, client, workspace(mlflow_server.url, REVIEWER),
                     [LabelSchema(name, "number")])
    assert not panel.dialog  # the reviewer is known: no question
    panel.add_button.click()
    assert panel.dialog.reviewer.isHidden()
    panel.dialog.number.setValue(2)
    panel.dialog.accept()
    sent_all(qtbot, sender)
    (first,) = labels(sdk, info.trace_id, name)
    qtbot.waitUntil(lambda: any(r[0] == name and r[5] for r in rows(panel)))

    select(panel, first.assessment_id)
    panel.edit_button.click()
    assert panel.dialog.number.value() == 2
    panel.dialog.number.setValue(4)
    panel.dialog.rationale.setPlainText("on reflection")
    panel.dialog.accept()
    sent_all(qtbot, sender)
    (edited,) = labels(sdk, info.trace_id, name)
    assert (edited.assessment_id, edited.value, edited.rationale) == \
        (first.assessment_id, 4, "on reflection")

    qtbot.waitUntil(lambda: [r[2] for r in rows(panel) if r[0] == name] == ["4"])
    select(panel, first.assessment_id)
    panel.override_button.click()
    panel.dialog.number.setValue(1)
    panel.dialog.accept()
    sent_all(qtbot, sender)
    by_id = {a.assessment_id: a for a in labels(sdk, info.trace_id, name)}
    assert by_id[first.assessment_id].valid is False
    (newer,) = [a for a in by_id.values() if a.assessment_id != first.assessment_id]
    assert (newer.overrides, newer.value) == (first.assessment_id, 1)
    qtbot.waitUntil(lambda: "overridden" in [r[6] for r in rows(panel) if r[0] == name])

    # Undo the override: the old label is valid again.
    panel.undo_button.click()
    sent_all(qtbot, sender)
    (restored,) = labels(sdk, info.trace_id, name)
    assert (restored.assessment_id, restored.valid) == (first.assessment_id, True)

    qtbot.waitUntil(lambda: len([r for r in rows(panel) if r[0] == name]) == 1)
    select(panel, first.assessment_id)
    panel.delete_button.click()
    panel.confirm_box.button(QMessageBox.No).click()  # asked first; No keeps it
    assert Outbox().items() == []
    panel.delete_button.click()
    panel.confirm_box.button(QMessageBox.Yes).click()
    sent_all(qtbot, sender)
    assert labels(sdk, info.trace_id, name) == []

    panel.undo_button.click()  # the delete is undone: the label is back
    sent_all(qtbot, sender)
    (back,) = labels(sdk, info.trace_id, name)
    assert (back.value, back.rationale, back.source.source_id) == (4, "on reflection", REVIEWER)


def test_a_queue_of_20_traces_is_walked_with_the_keyboard_only(qtbot, sdk, client, sender,
                                                               infos, mlflow_server):
    ids = [i.trace_id for i in infos[10:30]]
    name = f"queue-{uuid.uuid4().hex[:8]}"
    schemas = [LabelSchema(name, "boolean"),
               LabelSchema("tone", "category", options=("friendly", "neutral", "rude"),
                           required=False, comment=False)]
    ws = workspace(mlflow_server.url, REVIEWER)
    panel = ReviewPanel(sender)
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    finished = []
    panel.finished.connect(lambda: finished.append(True))
    panel.start(client, ws, infos[0].experiment_id, ids, "twenty", schemas)

    def shown(position: int) -> None:
        qtbot.waitUntil(lambda: panel.trace is not None
                        and panel.trace.info.trace_id == ids[position], timeout=20_000)
        assert panel.progress.text() == f"{position + 1} / 20"

    expected: dict[str, tuple[bool, str | None]] = {}
    for position in range(20):
        shown(position)
        if position == 3:
            qtbot.keyClick(panel, Qt.Key_S)  # skip ...
            shown(4)
            qtbot.keyClick(panel, Qt.Key_U)  # ... and take it back
            shown(3)
        answer = position % 3 != 0
        qtbot.keyClick(panel, Qt.Key_Y if answer else Qt.Key_N)
        if position == 5:
            qtbot.keyClick(panel, Qt.Key_2)  # tone: neutral
            qtbot.keyClick(panel, Qt.Key_C)
            assert panel.comment.hasFocus()
            qtbot.keyClicks(panel.comment, "slow but right")
            qtbot.keyClick(panel.comment, Qt.Key_Return)
            expected[ids[position]] = (answer, "slow but right")
            continue
        if position == 7:
            qtbot.keyClick(panel, Qt.Key_Return)  # a mistake ...
            shown(8)
            qtbot.keyClick(panel, Qt.Key_U)  # ... undone: back to 8 / 20 and withdrawn
            shown(7)
            answer = not answer
            qtbot.keyClick(panel, Qt.Key_Y if answer else Qt.Key_N)
        qtbot.keyClick(panel, Qt.Key_Return)
        expected[ids[position]] = (answer, None)
    assert finished == [True] and "Done: 20 of 20" in panel.message.text()

    sent_all(qtbot, sender)
    for trace_id, (value, rationale) in expected.items():
        (label,) = labels(sdk, trace_id, name)  # exactly one each: the undone one is gone
        assert (label.value, label.rationale, label.source.source_id) == \
            (value, rationale, REVIEWER)
    tones = [a for a in sdk.get_trace(ids[5]).info.assessments if a.name == "tone"]
    assert [t.value for t in tones] == ["neutral"]

    # Resumable: the same queue opens where the reviewer left it, with what was labelled.
    (saved,) = QueueStore().list()
    again = ReviewPanel(sender)
    qtbot.addWidget(again)
    again.show()
    qtbot.waitExposed(again)
    again.start(client, ws, infos[0].experiment_id, ids, "twenty", schemas)
    assert again.state == saved and again.state.position == 19
    assert again.state.done == 20 and again.progress.text() == "20 / 20"
    qtbot.keyClick(again, Qt.Key_Left)
    assert again.progress.text() == "19 / 20"


def test_a_queue_is_built_from_a_filter_in_the_background(qtbot, client, sender, infos,
                                                          mlflow_server):
    session = next(i.session for i in infos if i.session)
    expected = [i.trace_id for i in search.search_all(
        client, [infos[0].experiment_id], flt.alternatives([flt.session(session)]))]
    panel = ReviewPanel(sender)
    qtbot.addWidget(panel)
    panel.start_search(client, workspace(mlflow_server.url, REVIEWER), infos[0].experiment_id,
                       flt.alternatives([flt.session(session)]), title=f"session {session}")
    qtbot.waitUntil(lambda: panel.state is not None and panel.trace is not None,
                    timeout=20_000)
    assert list(panel.state.trace_ids) == expected and len(expected) > 1
    assert panel.progress.text() == f"1 / {len(expected)}"
    assert panel.title.text() == f"session {session}"
