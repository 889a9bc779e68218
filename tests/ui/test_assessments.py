"""The outbox status widget and the label dialog, without a server: what waits is visible with
its reason, and items refused or not saved wait for the user to retry or discard them."""

from __future__ import annotations

from PySide6.QtWidgets import QDialogButtonBox

from traceviewer.core.model import Assessment
from traceviewer.core.outbox import Outbox, Target
from traceviewer.core.review import DEFAULT_SCHEMAS, LabelSchema, SchemaStore, assessment_body
from traceviewer.demo.server import free_port
from traceviewer.ui.review.dialogs import AssessmentDialog, SchemaDialog
from traceviewer.ui.review.outbox_status import OutboxSender, OutboxStatus


def test_unreachable_server_shows_pending_labels_with_the_error_and_keeps_them(qtbot):
    sender = OutboxSender()
    status = OutboxStatus(sender)
    qtbot.addWidget(status)
    assert status.label.text() == "All assessments sent"
    target = Target("", f"http://127.0.0.1:{free_port()}")
    sender.outbox.add_create(target, "tr-" + "1" * 32, assessment_body("x", True, "a@b.c"))

    with qtbot.waitSignal(sender.flushed, timeout=20_000):
        sender.kick()

    assert status.label.text().startswith("Outbox: 1 pending — ")
    assert "Could not connect" in status.label.text()
    assert sender.timer.isActive()  # it will try again on its own
    sender.timer.stop()


def test_refused_label_waits_in_the_details_until_the_user_discards_it(qtbot):
    sender = OutboxSender()
    status = OutboxStatus(sender)
    qtbot.addWidget(status)
    # The workspace the label was for no longer exists: parked, with the reason.
    item = sender.outbox.add_create(Target("gone", "http://127.0.0.1:9"), "tr-" + "2" * 32,
                                    assessment_body("x", True, "a@b.c"))
    with qtbot.waitSignal(sender.flushed, timeout=20_000):
        sender.kick()
    assert "1 refused or not saved" in status.label.text() and "No workspace named 'gone'" in \
        status.label.text()

    status.details_button.click()
    row = status.dialog.list.topLevelItem(0)
    assert [row.text(0), row.text(2)] == ["refused or not saved", item.trace_id]
    assert "No workspace named 'gone'" in row.text(5)
    status.dialog.discard_button.click()
    assert status.dialog.list.topLevelItemCount() == 0
    assert Outbox().items() == []
    assert Outbox().get(item.item_id).state == "discarded"  # kept as a record, not dropped
    assert status.label.text() == "All assessments sent"


def test_label_dialog_types_values_by_schema_and_needs_a_reviewer_when_unknown(qtbot):
    schemas = (LabelSchema("tone", "category", options=("friendly", "rude")),
               LabelSchema("score", "number"))
    dialog = AssessmentDialog("Add feedback", schemas, need_reviewer=True)
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(QDialogButtonBox.Ok)
    assert dialog.type.currentText() == "category" and not ok.isEnabled()
    dialog.category.setCurrentText("rude")
    dialog.reviewer.setText("dave@example.com")
    assert ok.isEnabled() and dialog.value() == "rude"
    dialog.name.setCurrentText("score")
    dialog.number.setValue(3)
    assert dialog.value() == 3 and isinstance(dialog.value(), int)
    dialog.name.setCurrentText("free_text_label")
    dialog.type.setCurrentText("text")
    dialog.text.setText("<b>not markup</b>")
    assert dialog.value() == "<b>not markup</b>"

    current = Assessment.from_json({"assessment_id": "a-1", "assessment_name": "tone",
                                    "feedback": {"value": "friendly"}, "rationale": "kind"})
    editing = AssessmentDialog("Edit tone", schemas, current=current)
    qtbot.addWidget(editing)
    assert editing.reviewer.isHidden()
    assert (editing.value(), editing.rationale_text()) == ("friendly", "kind")


def test_schema_dialog_saves_labels_per_experiment_and_refuses_a_category_without_options(
        qtbot):
    dialog = SchemaDialog("local", "7")
    qtbot.addWidget(dialog)
    assert dialog.schemas() == list(DEFAULT_SCHEMAS)  # the seed's response_is_correct
    dialog.add_row(LabelSchema("tone", "category", options=("x",), required=False))
    dialog.table.item(1, 2).setText("")  # options cleared: not a valid category label
    dialog.save()
    assert "lists no options" in dialog.error.text() and not dialog.result()
    assert SchemaStore().get("local", "7") == DEFAULT_SCHEMAS

    dialog.table.item(1, 2).setText("friendly, neutral ,rude")
    dialog.save()
    assert dialog.result() == dialog.DialogCode.Accepted
    tone = LabelSchema("tone", "category", options=("friendly", "neutral", "rude"),
                       required=False)
    assert SchemaStore().get("local", "7") == (DEFAULT_SCHEMAS[0], tone)
    assert SchemaStore().get("local", "8") == DEFAULT_SCHEMAS


def test_a_damaged_outbox_moved_aside_at_start_is_named_in_the_status_and_details(qtbot):
    from traceviewer.core import paths

    path = paths.data_dir() / "outbox.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not an outbox\n" * 100)
    sender = OutboxSender()
    status = OutboxStatus(sender)
    qtbot.addWidget(status)
    (aside,) = path.parent.glob("outbox.sqlite3.corrupt-*")
    assert "moved aside" in status.label.text() and "sent" not in status.label.text()
    assert status.details_button.isVisibleTo(status)
    status.details_button.click()
    assert status.dialog.set_aside.isVisibleTo(status.dialog)
    assert str(aside) in status.dialog.set_aside.text()
    assert status.dialog.list.topLevelItemCount() == 0
