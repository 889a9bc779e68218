"""The demo chat app's HTTP contract, against a real `mlflow server`."""

from __future__ import annotations

from fastapi.testclient import TestClient

from traceviewer.demo import chat_app


def test_feedback_for_an_experiment_that_does_not_exist_is_a_404(mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    app = chat_app.create_app(chat_app.Deployment("dev", "1.0", "d-1", "eu-west-1"),
                              experiment_name="no-such-experiment")
    response = TestClient(app).post("/chat_feedback", params={"client_request_id": "req-1"},
                                    json={"is_correct": True})
    assert response.status_code == 404
    assert "no-such-experiment" in response.json()["detail"]
