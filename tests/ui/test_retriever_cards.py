"""A RETRIEVER span's documents in the span inspector (pytest-qt, offscreen): one card per
document as the SDK reads the span's outputs back, content and metadata as plain text (HTML
shown literally, never rendered)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from traceviewer.ui.trace.inspector import Inspector

DOCUMENTS = [
    {"id": "kb/<i>refunds</i>.md#0", "page_content": "Refunds <b>within 30 days</b> & "
     "<script>alert(1)</script>", "metadata": {"doc_uri": "kb/refunds.md", "score": 0.91,
                                               "owner": "<a href='x'>support</a>"}},
    {"page_content": "Shipping takes 3-5 days.", "metadata": {"doc_uri": "kb/shipping.md"}},
]


@pytest.fixture(scope="module")
def retrieval(sdk):
    """(trace id, span id) of a RETRIEVER span logged with the SDK, DOCUMENTS its outputs."""
    import mlflow

    mlflow.set_experiment(experiment_id=sdk.create_experiment("retriever-cards"))
    with mlflow.start_span("retrieve", span_type="RETRIEVER") as span:
        span.set_inputs({"query": "refund"})
        span.set_outputs(DOCUMENTS)
        ids = span.trace_id, span.span_id
    mlflow.flush_trace_async_logging()
    return ids


def test_retriever_documents_show_as_plain_text_cards_with_content_and_metadata(
        qtbot, sdk, client, retrieval):
    trace_id, span_id = retrieval
    (logged,) = [s for s in sdk.get_trace(trace_id).data.spans if s.span_id == span_id]
    documents = logged.outputs
    span = next(s for s in client.get_trace(trace_id).spans if s.span_id == span_id)

    inspector = Inspector()
    qtbot.addWidget(inspector)
    inspector.resize(520, 600)
    inspector.show()
    inspector.show_span(span)

    names = [inspector.tabs.tabText(i) for i in range(inspector.tabs.count())]
    assert f"Documents ({len(documents)})" in names
    inspector.tabs.setCurrentWidget(inspector.documents)
    qtbot.waitExposed(inspector.documents)
    labels = inspector.documents.findChildren(QLabel)
    assert labels and all(label.textFormat() == Qt.TextFormat.PlainText for label in labels)
    texts = [label.text() for label in labels]
    for number, doc in enumerate(documents, 1):
        title = next(t for t in texts if t.startswith(f"#{number}"))
        assert (doc.get("id") or doc["metadata"]["doc_uri"]) in title
        body = texts[texts.index(title) + 1]
        assert body.startswith(doc["page_content"])  # the markup as typed
        for key, value in doc["metadata"].items():
            assert f"{key}: {value}" in body.splitlines()
    first = labels[texts.index(next(t for t in texts if t.startswith("#1")))]
    assert "score 0.91" in first.text()
