"""A retry's back-off wait ends as soon as its task is cancelled or its client closed: a
superseded search must not sit out a server's Retry-After."""

from __future__ import annotations

import threading
import time

import pytest

from tests.conftest import PROD_EXPERIMENT, experiment_id
from traceviewer.core.cancel import CancelToken
from traceviewer.core.client import RestClient, RetryPolicy
from traceviewer.core.errors import Cancelled

RETRY_AFTER_S = 30.0
PATIENT = RetryPolicy(attempts=3, total_s=300.0)


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)


def _search_in_thread(client: RestClient, exp_id: str, token: CancelToken | None) -> dict:
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = client.search_traces([exp_id], token=token)
        except Exception as exc:  # handed to the test thread
            outcome["error"] = exc
        outcome["ended"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    outcome["thread"] = thread
    return outcome


@pytest.mark.parametrize("how", ["token", "close"])
def test_cancel_during_a_retry_after_wait_returns_promptly(fault_proxy, sdk, how):
    exp_id = experiment_id(sdk, PROD_EXPERIMENT)
    fault_proxy.inject("status", status=429, retry_after=RETRY_AFTER_S, match="/traces/search")
    token = CancelToken()
    client = RestClient(fault_proxy.url, retry=PATIENT)
    try:
        outcome = _search_in_thread(client, exp_id, token if how == "token" else None)
        wait_until(lambda: fault_proxy.received_count("/traces/search") == 1)
        cancelled_at = time.monotonic()
        token.cancel() if how == "token" else client.close()
        outcome["thread"].join(timeout=5.0)
        assert not outcome["thread"].is_alive(), "still waiting out Retry-After"
        assert isinstance(outcome.get("error"), Cancelled)
        assert outcome["ended"] - cancelled_at < 1.0
        assert fault_proxy.received_count("/traces/search") == 1  # no retry after the cancel
    finally:
        client.close()
