"""The span inspector on a trace logged with the MLflow SDK: a stack trace with a 2,000-character
line and a long input value wrap at the pane's width (no horizontal scrolling), stay plain text,
and copy whole."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QPlainTextEdit

from traceviewer.ui.trace.inspector import Inspector

LONG = "no-space-" * 222  # a 1,998-character word: nothing to break it at but anywhere


@pytest.fixture(scope="module")
def failed_span(sdk):
    """(trace id, span id) of a span that raised with LONG in its message and took LONG as
    input, logged with the SDK."""
    import mlflow

    mlflow.set_experiment(experiment_id=sdk.create_experiment("inspector-wrap"))
    with pytest.raises(ValueError), mlflow.start_span("lookup", span_type="TOOL") as span:
        span.set_inputs({"query": LONG})
        ids = span.trace_id, span.span_id
        raise ValueError(f"<b>lookup failed</b> {LONG}")
    mlflow.flush_trace_async_logging()
    return ids


def test_a_long_stack_trace_and_a_long_value_wrap_and_copy_whole(qtbot, sdk, client,
                                                                 failed_span):
    trace_id, span_id = failed_span
    (event,) = [e for s in sdk.get_trace(trace_id).data.spans if s.span_id == span_id
                for e in s.events]
    stack = event.attributes["exception.stacktrace"].rstrip()
    assert max(len(line) for line in stack.splitlines()) > 2_000
    span = next(s for s in client.get_trace(trace_id).spans if s.span_id == span_id)

    inspector = Inspector()
    qtbot.addWidget(inspector)
    inspector.resize(520, 600)
    inspector.show()
    inspector.show_span(span)
    events = inspector.events
    assert inspector.tabs.currentWidget() is events
    qtbot.waitExposed(events)
    assert isinstance(events, QPlainTextEdit) and events.isReadOnly()  # plain text
    assert stack in events.toPlainText()
    assert events.horizontalScrollBar().maximum() == 0
    # The wrapped line is one line of text still: copying the box gives it back unbroken.
    events.selectAll()
    events.copy()
    assert stack in QGuiApplication.clipboard().text()

    inputs = inspector.inputs
    inspector.tabs.setCurrentWidget(inputs)
    inputs.raw_button.setChecked(True)
    qtbot.waitExposed(inputs.raw)
    assert LONG in inputs.raw.toPlainText()
    assert inputs.raw.horizontalScrollBar().maximum() == 0
