"""Expand to errors in the span tree on a trace logged with the MLflow SDK (pytest-qt,
offscreen): exactly the ancestors of the ERROR spans (by the SDK's span status) are expanded,
plus those of the selected span, which stays selected and on screen."""

from __future__ import annotations

import pytest

from traceviewer.ui.trace.trace_view import TraceView

LOAD_TIMEOUT_MS = 60_000


def _ancestors(parents: dict[str, str | None], span_id: str) -> set[str]:
    out, parent = set(), parents[span_id]
    while parent is not None:
        out.add(parent)
        parent = parents[parent]
    return out


@pytest.fixture(scope="module")
def failing(sdk):
    """A trace logged with the SDK: an agent whose retrieval went fine three levels down and
    whose tool failed (caught) under a step, plus a failed sibling step; returns its id, the
    parents and ERROR spans as the SDK reads them back, and the deep span that did not fail."""
    import mlflow
    from mlflow.entities import SpanStatusCode

    mlflow.set_experiment(experiment_id=sdk.create_experiment("expand-to-errors"))
    with mlflow.start_span("agent", span_type="AGENT") as root:
        with mlflow.start_span("retrieve", span_type="RETRIEVER"), \
                mlflow.start_span("embed", span_type="EMBEDDING"), \
                mlflow.start_span("tokenize") as deep:
            deep_id = deep.span_id
        with mlflow.start_span("plan"), pytest.raises(TimeoutError), \
                mlflow.start_span("tool", span_type="TOOL"):
            raise TimeoutError("tool timed out")
        with pytest.raises(ValueError), mlflow.start_span("answer"):
            raise ValueError("no answer")
        trace_id = root.trace_id
    mlflow.flush_trace_async_logging()
    spans = sdk.get_trace(trace_id).data.spans
    parents = {s.span_id: s.parent_id for s in spans}
    errors = {s.span_id for s in spans if s.status.status_code == SpanStatusCode.ERROR}
    assert len(errors) == 2 and deep_id not in errors
    return trace_id, parents, errors, deep_id


def test_expand_to_errors_expands_exactly_the_error_ancestors_and_keeps_the_selection(
        qtbot, client, failing):
    trace_id, parents, errors, selected = failing
    view = TraceView()
    qtbot.addWidget(view)
    view.resize(1400, 800)
    view.show()
    with qtbot.waitSignal(view.trace_shown, timeout=LOAD_TIMEOUT_MS):
        view.open_trace(client, trace_id)
    spans = view.trace.spans
    node = next(i for i, s in enumerate(spans) if s.span_id == selected)
    view.tree.expandAll()
    view.tree.select_node(node)
    messages = []
    view.status_message.connect(messages.append)

    view.errors_action.trigger()

    expanded = {spans[i].span_id for i in range(len(spans))
                if view.tree.isExpanded(view.model.index_of(i))}
    wanted = {a for s in [*errors, selected] for a in _ancestors(parents, s)}
    assert expanded == wanted
    assert view.model.node(view.tree.currentIndex()) == node  # still the selected span
    rect = view.tree.visualRect(view.tree.currentIndex())
    assert rect.isValid() and view.tree.viewport().rect().contains(rect.center())
    for error in errors:  # each error span's row is shown
        assert view.tree.visualRect(view.model.index_of(
            next(i for i, s in enumerate(spans) if s.span_id == error))).isValid()
    (message,) = messages
    assert message.startswith(f"{len(errors)} span") and message.endswith(" failed.")
