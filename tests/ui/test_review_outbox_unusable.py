"""A label the outbox cannot record (a database locked by another program, as
tests/core/test_local_state.py locks it) is never shown as recorded: the Trace tab's assessments
panel and the review queue keep what was typed, a banner says what to do, and once the outbox
works again the same input reaches the real seeded `mlflow server` (read back by the SDK). A
review submit or undo the outbox fails halfway through is finished when tried again, never done
twice; the outbox status and details say what failed, as plain text."""

from __future__ import annotations

import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QDialogButtonBox

from tests.ui.test_review import (
    REVIEWER,
    answers,
    infos,  # noqa: F401 (a fixture)
    labels,
    queue_panel,
    rows,
    sent_all,
    wait_shown,
    workspace,
)
from traceviewer.core.outbox import Outbox, Target
from traceviewer.core.review import LabelSchema, assessment_body
from traceviewer.core.workspaces import Workspace
from traceviewer.ui.review.assessments import AssessmentsPanel
from traceviewer.ui.review.outbox_status import OutboxSender, OutboxStatus


@pytest.fixture
def sender(qtbot):
    sender = OutboxSender(Outbox(busy_timeout_s=0.3))
    yield sender
    sender.timer.stop()


@contextmanager
def locked(outbox: Outbox) -> Iterator[None]:
    """The outbox database held by another program's exclusive transaction."""
    other = sqlite3.connect(outbox.path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


@contextmanager
def locked_after_first(outbox: Outbox, method: str) -> Iterator[None]:
    """The outbox locked by another program right after its first `method` call succeeded, so
    the writes after it in the same step fail."""
    with pytest.MonkeyPatch.context() as patch, ExitStack() as stack:
        real = getattr(outbox, method)

        def then_locked(*args, **kwargs):
            result = real(*args, **kwargs)
            stack.enter_context(locked(outbox))
            return result

        patch.setattr(outbox, method, then_locked)
        yield


def test_label_the_outbox_cannot_record_stays_in_the_dialog_with_a_banner_then_is_sent(
        qtbot, sdk, client, sender, infos, mlflow_server):  # noqa: F811
    panel = AssessmentsPanel(sender)
    qtbot.addWidget(panel)
    panel.show()
    info, name = infos[35], f"locked-{uuid.uuid4().hex[:8]}"
    panel.show_trace(info, client, workspace(mlflow_server.url, REVIEWER),
                     [LabelSchema(name, "text")])
    before = rows(panel)

    with locked(sender.outbox):
        panel.add_button.click()
        dialog = panel.dialog
        dialog.text.setText("<b>right</b> answer")
        dialog.rationale.setPlainText("checked by hand")
        dialog.buttons.button(QDialogButtonBox.Ok).click()

        assert dialog.isVisible()  # shown again, as typed
        assert (dialog.value(), dialog.rationale_text()) == ("<b>right</b> answer",
                                                             "checked by hand")
        assert dialog.error.isVisible() and "NOT recorded" in dialog.error.text()
        banner = panel.banner.label.text()
        assert panel.banner.isVisible() and "NOT recorded" in banner
        assert "locked by another program" in banner and "close other" in banner
        assert "saved" not in banner.lower() and "saved" not in dialog.error.text().lower()
        assert rows(panel) == before and not panel.undo_button.isEnabled()
    assert Outbox().items() == []

    dialog.buttons.button(QDialogButtonBox.Ok).click()  # the outbox works again
    assert not dialog.isVisible() and not panel.banner.isVisible()
    sent_all(qtbot, sender)
    (label,) = labels(sdk, info.trace_id, name)
    assert (label.value, label.rationale) == ("<b>right</b> answer", "checked by hand")


def test_delete_and_undo_the_outbox_cannot_record_say_so_and_change_nothing(
        qtbot, sdk, client, sender, infos, mlflow_server):  # noqa: F811
    import mlflow
    from mlflow.entities import AssessmentSource

    info, name = infos[36], f"locked-{uuid.uuid4().hex[:8]}"
    given = mlflow.log_feedback(trace_id=info.trace_id, name=name, value=True,
                                source=AssessmentSource(source_type="HUMAN",
                                                        source_id=REVIEWER))
    panel = AssessmentsPanel(sender)
    qtbot.addWidget(panel)
    panel.show()
    panel.show_trace(client.get_trace_info(info.trace_id), client,
                     workspace(mlflow_server.url, REVIEWER))
    (row,) = [r for r in rows(panel) if r[0] == name]
    for i in range(panel.tree.topLevelItemCount()):
        if panel.tree.topLevelItem(i).data(0, Qt.UserRole) == given.assessment_id:
            panel.tree.setCurrentItem(panel.tree.topLevelItem(i))

    with locked(sender.outbox):
        panel.delete_button.click()
        panel.confirm_box.done(panel.confirm_box.StandardButton.Yes)
        assert panel.banner.isVisible() and "NOT recorded" in panel.banner.label.text()
        assert [r for r in rows(panel) if r[0] == name] == [row]  # not shown as deleted
        assert not panel.undo_button.isEnabled()

    panel.delete_button.click()
    panel.confirm_box.done(panel.confirm_box.StandardButton.Yes)
    assert not panel.banner.isVisible() and panel.undo_button.isEnabled()
    with locked(sender.outbox):
        panel.undo_button.click()
        assert panel.banner.isVisible() and "NOT recorded" in panel.banner.label.text()
        assert panel.undo_button.isEnabled()  # still there to try again
    panel.undo_button.click()
    sent_all(qtbot, sender)
    assert [a.value for a in answers(sdk, info.trace_id, name)] == [True]


def test_review_submit_the_outbox_cannot_record_keeps_the_answers_and_retry_sends_them(
        qtbot, sdk, client, sender, infos, mlflow_server):  # noqa: F811
    ids, name = [i.trace_id for i in infos[37:39]], f"locked-{uuid.uuid4().hex[:8]}"
    panel = queue_panel(qtbot, sender, client, workspace(mlflow_server.url, REVIEWER),
                        infos[0].experiment_id, ids, [LabelSchema(name, "boolean")])
    (row,) = panel.rows
    wait_shown(qtbot, panel, ids[0])

    with locked(sender.outbox):
        qtbot.keyClick(panel, Qt.Key_N)
        qtbot.keyClick(panel, Qt.Key_C)
        qtbot.keyClicks(panel.comment, "refund <i>missing</i>")
        qtbot.keyClick(panel.comment, Qt.Key_Return)

        banner = panel.banner.label.text()
        assert panel.banner.isVisible() and "NOT recorded" in banner
        assert "locked by another program" in banner and "still in the form" in banner
        assert "saved" not in banner.lower() and panel.message.text() == ""
        assert panel.state.current == ids[0] and panel.progress.text() == "1 / 2"
        assert row.group.checkedId() == 1 and panel.comment.text() == "refund <i>missing</i>"
        assert panel.state.labelled == {} and not panel.undo_button.isEnabled()
    assert Outbox().items() == []

    panel.banner.retry_button.click()
    wait_shown(qtbot, panel, ids[1])
    sent_all(qtbot, sender)
    (answer,) = answers(sdk, ids[0], name)
    assert (answer.value, answer.rationale) == (False, "refund <i>missing</i>")


def test_review_retry_after_a_submit_recorded_halfway_leaves_one_answer_per_question(
        qtbot, sdk, client, sender, infos, mlflow_server):  # noqa: F811
    ids, tag = [i.trace_id for i in infos[33:35]], uuid.uuid4().hex[:8]
    correct, tone = f"correct-{tag}", f"tone-{tag}"
    panel = queue_panel(qtbot, sender, client, workspace(mlflow_server.url, REVIEWER),
                        infos[0].experiment_id, ids,
                        [LabelSchema(correct, "boolean"),
                         LabelSchema(tone, "category", options=("friendly", "rude"))])
    wait_shown(qtbot, panel, ids[0])

    # The first answer is recorded, the second is not, and taking the first back fails too.
    with locked_after_first(sender.outbox, "add_create"):
        qtbot.keyClick(panel, Qt.Key_Y)
        qtbot.keyClick(panel, Qt.Key_2)
        qtbot.keyClick(panel, Qt.Key_Return)
        banner = panel.banner.label.text()
        assert "NOT recorded" in banner and "Some of these answers were recorded" in banner
        assert panel.state.current == ids[0] and not panel.undo_button.isEnabled()

    panel.banner.retry_button.click()
    wait_shown(qtbot, panel, ids[1])
    sent_all(qtbot, sender)
    assert [a.value for a in answers(sdk, ids[0], correct)] == [True]
    assert [a.value for a in answers(sdk, ids[0], tone)] == ["rude"]

    qtbot.keyClick(panel, Qt.Key_U)  # the submit is undone whole, the first answer too
    wait_shown(qtbot, panel, ids[0])
    sent_all(qtbot, sender)
    assert answers(sdk, ids[0], correct) == [] and answers(sdk, ids[0], tone) == []


def test_review_undo_that_failed_halfway_undoes_each_change_once(
        qtbot, sdk, client, sender, infos, mlflow_server):  # noqa: F811
    import mlflow
    from mlflow.entities import AssessmentSource

    ids, tag = [i.trace_id for i in infos[35:37]], uuid.uuid4().hex[:8]
    correct, tone = f"correct-{tag}", f"tone-{tag}"
    mlflow.log_feedback(trace_id=ids[0], name=correct, value=False,
                        source=AssessmentSource(source_type="HUMAN", source_id=REVIEWER))
    # A workspace that is not saved: its writes are never sent (no client for it), so they
    # stay unsent and Undo withdraws them, as it does before a send.
    ws = Workspace(f"unsaved-{tag}", mlflow_server.url, reviewer=REVIEWER)
    panel = queue_panel(qtbot, sender, client, ws, infos[0].experiment_id, ids,
                        [LabelSchema(correct, "boolean"),
                         LabelSchema(tone, "category", options=("friendly", "rude"))])
    (row, _) = panel.rows
    wait_shown(qtbot, panel, ids[0])
    qtbot.waitUntil(lambda: row.group.checkedId() == 1)  # the earlier "no"
    qtbot.keyClick(panel, Qt.Key_Y)  # an update of the earlier answer
    qtbot.keyClick(panel, Qt.Key_1)  # a new answer
    qtbot.keyClick(panel, Qt.Key_Return)
    wait_shown(qtbot, panel, ids[1])

    with locked_after_first(sender.outbox, "withdraw"):  # the new answer is withdrawn, only
        qtbot.keyClick(panel, Qt.Key_U)
        assert "Press Undo (u) to try again" in panel.banner.label.text()
        assert panel.state.current == ids[1] and panel.undo_button.isEnabled()

    qtbot.keyClick(panel, Qt.Key_U)
    wait_shown(qtbot, panel, ids[0])
    # Nothing is left to send (a second undo of the withdrawn answer would queue a delete
    # waiting forever for it), so the sender stops trying.
    qtbot.waitUntil(lambda: not sender.busy and not sender.timer.isActive(), timeout=20_000)
    assert Outbox().items() == []
    qtbot.waitUntil(lambda: row.group.checkedId() == 1)
    assert [a.value for a in answers(sdk, ids[0], correct)] == [False]
    assert answers(sdk, ids[0], tone) == []


def parked(qtbot, sender: OutboxSender, workspace_name: str):
    """An item parked because its workspace does not exist (the reason names it)."""
    item = sender.outbox.add_create(Target(workspace_name, "http://127.0.0.1:9"),
                                    "tr-" + uuid.uuid4().hex, assessment_body("x", True, "a@b.c"))
    with qtbot.waitSignal(sender.flushed, timeout=20_000):
        sender.kick()
    return item


def test_outbox_details_say_what_failed_in_the_dialog_instead_of_raising(qtbot, sender):
    status = OutboxStatus(sender)
    qtbot.addWidget(status)
    item = parked(qtbot, sender, "gone")
    status.details_button.click()
    dialog = status.dialog
    assert dialog.list.topLevelItemCount() == 1 and dialog.error.isHidden()

    with locked(sender.outbox):
        dialog.retry_button.click()
        assert dialog.error.isVisible() and "locked by another program" in dialog.error.text()
        assert dialog.list.topLevelItemCount() == 1  # still what was read last
        dialog.discard_button.click()
        assert "locked by another program" in dialog.error.text()
    dialog.refresh()
    assert dialog.error.isHidden()

    Outbox().discard(item.item_id)  # another program (`traceviewer outbox discard`) did it
    dialog.retry_button.click()
    assert dialog.error.isVisible() and "nothing to retry" in dialog.error.text()
    assert dialog.error.textFormat() == Qt.PlainText
    assert dialog.list.topLevelItemCount() == 0


def test_outbox_status_tooltip_shows_markup_in_an_error_literally(qtbot, sender):
    status = OutboxStatus(sender)
    qtbot.addWidget(status)
    parked(qtbot, sender, "<b>x</b>")
    text = status.label.text()
    assert "1 refused or not saved" in text and "No workspace named '<b>x</b>'" in text
    shown = QTextDocument()
    shown.setHtml(status.label.toolTip())
    assert shown.toPlainText() == text


@pytest.fixture
def read_only_outbox(tmp_path):
    """An empty outbox on a tmpfs, which the test remounts read-only."""
    folder = tmp_path / "disk"
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")
    outbox = Outbox(folder / "outbox.sqlite3")
    yield outbox, folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_read_only_outbox_still_shows_the_trace_and_says_why_nothing_is_recorded(
        qtbot, sdk, client, infos, mlflow_server, read_only_outbox):  # noqa: F811
    outbox, folder = read_only_outbox
    info = infos[39]
    ws = workspace(mlflow_server.url, REVIEWER)
    sender = OutboxSender(outbox)
    status = OutboxStatus(sender)
    panel = AssessmentsPanel(sender)
    for widget in (status, panel):
        qtbot.addWidget(widget)
    panel.show()
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)

    panel.show_trace(client.get_trace_info(info.trace_id), client, ws,
                     [LabelSchema("quality", "text")])
    assert sorted(r[0] for r in rows(panel)) == sorted(
        a.name for a in sdk.get_trace(info.trace_id).info.assessments)
    assert panel.banner.isVisible() and "must be writable" in panel.banner.label.text()
    panel.add_button.click()
    panel.dialog.text.setText("kept")
    panel.dialog.buttons.button(QDialogButtonBox.Ok).click()
    assert panel.dialog.isVisible() and panel.dialog.value() == "kept"
    assert "NOT recorded" in panel.dialog.error.text()
    sender.kick()  # a send pass on an unreadable outbox ends, to look again later
    qtbot.waitUntil(lambda: not sender.busy and sender.timer.isActive(), timeout=20_000)
    assert status.label.text() == "The outbox cannot be used now (see the tooltip)"
    assert "must be writable" in status.label.toolTip()
    sender.timer.stop()
