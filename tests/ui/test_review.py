"""Labelling in the GUI (pytest-qt, offscreen) against the real seeded `mlflow server`: what the
assessments panel and the review queue write is read back by the MLflow SDK."""

from __future__ import annotations

import uuid

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox

from tests.conftest import PROD_EXPERIMENT, experiment_id
from traceviewer.core import filters as flt
from traceviewer.core.client import RestClient
from traceviewer.core.model import SESSION_KEY
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
    again.activateWindow()  # the review keys follow the focus
    qtbot.waitUntil(again.isActiveWindow)
    again.start(client, ws, infos[0].experiment_id, ids, "twenty", schemas)
    assert again.state == saved and again.state.position == 19
    assert again.state.done == 20 and again.progress.text() == "20 / 20"
    qtbot.keyClick(again, Qt.Key_Left)
    assert again.progress.text() == "19 / 20"


def test_a_queue_is_built_from_a_filter_in_the_background(qtbot, client, sender, infos,
                                                          mlflow_server, sdk):
    session = next(i.session for i in infos if i.session)
    # The SDK's traces of the session (kept as a tag or as metadata), newest first.
    found = {t.info.trace_id: t.info.request_time for prefix in ("tags", "metadata")
             for t in sdk.search_traces(
                 locations=[infos[0].experiment_id], max_results=500, include_spans=False,
                 filter_string=f"{prefix}.`{SESSION_KEY}` = '{session}'")}
    expected = sorted(found, key=lambda trace_id: (-found[trace_id], trace_id))
    panel = ReviewPanel(sender)
    qtbot.addWidget(panel)
    panel.start_search(client, workspace(mlflow_server.url, REVIEWER), infos[0].experiment_id,
                       flt.alternatives([flt.session(session)]), title=f"session {session}")
    qtbot.waitUntil(lambda: panel.state is not None and panel.trace is not None,
                    timeout=20_000)
    assert list(panel.state.trace_ids) == expected and len(expected) > 1
    assert panel.progress.text() == f"1 / {len(expected)}"
    assert panel.title.text() == f"session {session}"


def answers(sdk, trace_id: str, name: str, reviewer: str = REVIEWER) -> list:
    """The valid HUMAN assessments of `name` by `reviewer`, as the SDK reads them."""
    return [a for a in labels(sdk, trace_id, name) if a.valid is not False
            and a.source.source_type == "HUMAN" and a.source.source_id == reviewer]


def queue_panel(qtbot, sender, client, ws, experiment: str, ids: list[str],
                schemas: list[LabelSchema]) -> ReviewPanel:
    panel = ReviewPanel(sender)
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    panel.activateWindow()
    qtbot.waitUntil(panel.isActiveWindow)
    panel.start(client, ws, experiment, ids, "again", schemas)
    return panel


def wait_shown(qtbot, panel: ReviewPanel, trace_id: str) -> None:
    qtbot.waitUntil(lambda: panel.trace is not None and panel.trace.info.trace_id == trace_id,
                    timeout=20_000)


def test_a_revisited_trace_preselects_the_reviewers_answer_and_answering_again_replaces_it(
        qtbot, sdk, client, sender, infos, mlflow_server):
    import mlflow
    from mlflow.entities import AssessmentSource

    ids, name = [i.trace_id for i in infos[30:32]], f"again-{uuid.uuid4().hex[:8]}"
    panel = queue_panel(qtbot, sender, client, workspace(mlflow_server.url, REVIEWER),
                        infos[0].experiment_id, ids, [LabelSchema(name, "boolean")])
    (row,) = panel.rows
    wait_shown(qtbot, panel, ids[0])
    assert row.group.checkedId() == -1  # not answered yet
    qtbot.keyClick(panel, Qt.Key_Y)
    qtbot.keyClick(panel, Qt.Key_Return)
    wait_shown(qtbot, panel, ids[1])
    sent_all(qtbot, sender)
    assert [a.value for a in answers(sdk, ids[0], name)] == [True]

    # Back to the first trace (shown from the panel's cache, read before the answer): the
    # reviewer's answer is selected, and answering again replaces it.
    qtbot.keyClick(panel, Qt.Key_Left)
    wait_shown(qtbot, panel, ids[0])
    assert row.group.checkedId() == 0
    assert panel.answered_note.isVisible()
    qtbot.keyClick(panel, Qt.Key_N)
    qtbot.keyClick(panel, Qt.Key_Return)
    sent_all(qtbot, sender)
    assert [a.value for a in answers(sdk, ids[0], name)] == [False]
    assert len(labels(sdk, ids[0], name)) == 1  # updated, not joined by a second one

    # An answer given elsewhere while the second trace sat in the cache shows when it is
    # shown again (re-read in the background), and Enter keeps it: still one answer.
    wait_shown(qtbot, panel, ids[1])
    qtbot.keyClick(panel, Qt.Key_Left)
    wait_shown(qtbot, panel, ids[0])
    mlflow.log_feedback(trace_id=ids[1], name=name, value=True,
                        source=AssessmentSource(source_type="HUMAN", source_id=REVIEWER))
    qtbot.keyClick(panel, Qt.Key_Right)
    wait_shown(qtbot, panel, ids[1])
    qtbot.waitUntil(lambda: row.group.checkedId() == 0, timeout=20_000)
    qtbot.keyClick(panel, Qt.Key_Return)
    sent_all(qtbot, sender)
    assert [a.value for a in answers(sdk, ids[1], name)] == [True]

    # Undo of the replacing answer (back on the first trace) restores the first one.
    panel.go(-1)
    wait_shown(qtbot, panel, ids[0])
    qtbot.keyClick(panel, Qt.Key_Y)
    qtbot.keyClick(panel, Qt.Key_Return)
    sent_all(qtbot, sender)
    qtbot.keyClick(panel, Qt.Key_U)
    sent_all(qtbot, sender)
    assert [a.value for a in answers(sdk, ids[0], name)] == [False]


def test_review_keys_work_wherever_the_focus_is_in_the_panel(qtbot, sdk, client, sender, infos,
                                                             mlflow_server):
    ids, name = [i.trace_id for i in infos[32:35]], f"keys-{uuid.uuid4().hex[:8]}"
    panel = queue_panel(qtbot, sender, client, workspace(mlflow_server.url, REVIEWER),
                        infos[0].experiment_id, ids, [LabelSchema(name, "boolean")])
    wait_shown(qtbot, panel, ids[0])
    # The reviewer clicks into the chat pane: → still moves on, y answers the trace shown.
    qtbot.mouseClick(panel.chat.viewport(), Qt.LeftButton)
    panel.chat.setFocus()
    qtbot.waitUntil(panel.chat.hasFocus)
    qtbot.keyClick(panel.chat, Qt.Key_Right)
    wait_shown(qtbot, panel, ids[1])
    qtbot.keyClick(panel.chat, Qt.Key_Y)
    assert panel.rows[0].value() is True
    # Letters typed into the comment stay there.
    qtbot.keyClick(panel.chat, Qt.Key_C)
    qtbot.keyClicks(panel.comment, "no, yes")
    assert panel.comment.text() == "no, yes" and panel.rows[0].value() is True
    qtbot.keyClick(panel.comment, Qt.Key_Return)
    wait_shown(qtbot, panel, ids[2])
    sent_all(qtbot, sender)
    assert [(a.value, a.rationale) for a in answers(sdk, ids[1], name)] == [(True, "no, yes")]
    assert answers(sdk, ids[0], name) == []


def test_review_tab_without_a_queue_says_how_to_start_one_and_offers_no_submit(qtbot, sender):
    panel = ReviewPanel(sender)
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    for button in (panel.submit_button, panel.skip_button, panel.next_button,
                   panel.prev_button, panel.undo_button):
        assert not button.isEnabled(), button.text()
    assert panel.no_queue.isVisible()
    assert "Review…" in panel.no_queue.text() and "Ctrl+R" in panel.no_queue.text()
    for key in (Qt.Key_Return, Qt.Key_S, Qt.Key_Right, Qt.Key_Y):
        qtbot.keyClick(panel, key)  # nothing to act on, nothing fails
    assert panel.state is None and Outbox().items() == []


def test_a_trace_shown_from_the_cache_shows_assessments_added_since_and_its_row_follows(
        qtbot, sdk, mlflow_server):
    import mlflow
    from mlflow.entities import AssessmentSource

    from traceviewer.core.cache import TraceCache
    from traceviewer.core.export import feedback_summary
    from traceviewer.ui.main_window import MainWindow

    WorkspaceStore().upsert(Workspace("local", mlflow_server.url, reviewer=REVIEWER))
    w = MainWindow()
    qtbot.addWidget(w)
    w.open_experiment(PROD_EXPERIMENT)
    w.load_workspaces(select="local")
    model = w.browser.model
    qtbot.waitUntil(lambda: w.browser.experiment is not None and len(model.rows) > 36
                    and not model.loading, timeout=60_000)
    trace_id, name = model.rows[36].trace_id, f"elsewhere-{uuid.uuid4().hex[:8]}"
    w.open_trace(trace_id)
    qtbot.waitUntil(lambda: w.trace_view.trace is not None
                    and TraceCache().has(w.app_model.client.host, trace_id), timeout=30_000)

    # Given elsewhere while the trace sits in the cache.
    mlflow.log_feedback(trace_id=trace_id, name=name, value=True,
                        source=AssessmentSource(source_type="HUMAN", source_id="frank"))
    shown = []
    w.trace_view.trace_shown.connect(shown.append)
    w.open_trace(trace_id)
    qtbot.waitUntil(lambda: bool(shown), timeout=30_000)
    assert w.trace_view.header.cached.isVisibleTo(w.trace_view)  # the spans: from the cache
    qtbot.waitUntil(lambda: any(r[0] == name for r in rows(w.assessments)), timeout=20_000)
    (row,) = [r for r in rows(w.assessments) if r[0] == name]
    assert row[1:5] == ["feedback", "yes", "", "HUMAN frank"]
    (fresh,) = [t for t in model.rows if t.trace_id == trace_id]
    assert f"{name}=true" in feedback_summary(fresh)
    assert [a.name for a in sdk.get_trace(trace_id).info.assessments].count(name) == 1
