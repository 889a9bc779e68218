"""A label the outbox cannot record (a database locked by another program, as
tests/core/test_local_state.py locks it) is never shown as recorded: the Trace tab's assessments
panel and the review queue keep what was typed, a banner says what to do, and once the outbox
works again the same input reaches the real seeded `mlflow server` (read back by the SDK)."""

from __future__ import annotations

import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from PySide6.QtCore import Qt
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
from traceviewer.core.outbox import Outbox
from traceviewer.core.review import LabelSchema
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


@pytest.fixture
def read_only_outbox(tmp_path):
    """An outbox holding one unsent label on a tmpfs then mounted read-only."""
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
        qtbot, client, infos, mlflow_server, read_only_outbox):  # noqa: F811
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
    assert [r[0] for r in rows(panel)] == [a.name for a in
                                           client.get_trace_info(info.trace_id).assessments]
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
