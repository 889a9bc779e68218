"""The durable outbox against the real seeded `mlflow server`: writes are stored first, sent once,
refused ones parked with the reason, and everything readable back through the MLflow SDK."""

from __future__ import annotations

import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import uuid

import pytest

from tests.conftest import PROD_EXPERIMENT, experiment_id
from traceviewer.core.client import RestClient
from traceviewer.core.outbox import SUBMISSION_KEY, Outbox, Target
from traceviewer.core.review import assessment_body
from traceviewer.demo.server import free_port

REVIEWER = "alice@example.com"


@pytest.fixture(scope="module")
def trace_ids(mlflow_server, sdk):
    """A few seeded production traces."""
    with RestClient(mlflow_server.url) as client:
        infos, _ = client.search_traces([experiment_id(sdk, PROD_EXPERIMENT)], max_results=10)
    return [i.trace_id for i in infos]


@pytest.fixture
def target(client):
    return Target("local", client.host)


def unique_name() -> str:
    """A label name no other test uses, so counting assessments by name is exact."""
    return f"label-{uuid.uuid4().hex[:10]}"


def labels(sdk, trace_id: str, name: str) -> list:
    return [a for a in sdk.get_trace(trace_id).info.assessments if a.name == name]


def test_label_is_stored_before_it_is_sent_and_the_sdk_reads_it_back(sdk, client, target,
                                                                     trace_ids):
    outbox, name = Outbox(), unique_name()
    item = outbox.add_create(target, trace_ids[0],
                             assessment_body(name, False, REVIEWER, rationale="wrong balance"))
    # Stored, not yet sent: a crash now loses nothing.
    assert [i.item_id for i in Outbox().items()] == [item.item_id]
    assert labels(sdk, trace_ids[0], name) == []

    report = outbox.send(client, target)

    assert (report.sent, report.parked, report.failed) == (1, 0, 0)
    (label,) = labels(sdk, trace_ids[0], name)
    assert (label.source.source_type, label.source.source_id) == ("HUMAN", REVIEWER)
    assert (label.value, label.rationale) == (False, "wrong balance")
    assert label.metadata[SUBMISSION_KEY] == item.submission_id
    assert outbox.get(item.item_id).assessment_id == label.assessment_id
    assert outbox.status() == outbox.status(target)
    assert (outbox.status().pending, outbox.status().parked) == (0, 0)


def test_edits_and_deletes_go_through_the_outbox_and_reach_the_sdk(sdk, client, target,
                                                                   trace_ids):
    outbox, name = Outbox(), unique_name()
    created = outbox.add_create(target, trace_ids[1], assessment_body(name, 3, REVIEWER))
    # Queued before the create was sent: the edit waits for it and then targets its id.
    outbox.add_update(target, trace_ids[1], {"feedback": {"value": 5}, "rationale": "better"},
                      after=created)
    assert outbox.send(client, target).sent == 2
    (label,) = labels(sdk, trace_ids[1], name)
    assert (label.value, label.rationale) == (5, "better")

    outbox.add_delete(target, trace_ids[1], label.assessment_id)
    assert outbox.send(client, target).sent == 1
    assert labels(sdk, trace_ids[1], name) == []


def test_override_keeps_the_old_label_as_invalid_history(sdk, client, target, trace_ids):
    outbox, name = Outbox(), unique_name()
    first = outbox.add_create(target, trace_ids[2], assessment_body(name, True, REVIEWER))
    outbox.send(client, target)
    old_id = outbox.get(first.item_id).assessment_id
    outbox.add_create(target, trace_ids[2],
                      assessment_body(name, False, REVIEWER, rationale="on second look",
                                      overrides=old_id))
    outbox.send(client, target)
    by_id = {a.assessment_id: a for a in labels(sdk, trace_ids[2], name)}
    assert len(by_id) == 2
    assert by_id[old_id].valid is False
    (new,) = [a for a in by_id.values() if a.assessment_id != old_id]
    assert (new.overrides, new.valid, new.value) == (old_id, True, False)


def test_refused_label_is_parked_with_the_reason_until_retried_or_discarded(client, target):
    outbox = Outbox()
    missing = "tr-" + "0" * 32
    item = outbox.add_create(target, missing, assessment_body(unique_name(), True, REVIEWER))

    report = outbox.send(client, target)

    assert (report.sent, report.parked) == (0, 1)
    parked = outbox.get(item.item_id)
    assert parked.state == "parked"
    assert missing in parked.last_error and "no longer exists" in parked.last_error
    assert outbox.status() == outbox.status(target)
    assert (outbox.status().pending, outbox.status().parked) == (0, 1)
    assert outbox.status().last_error == parked.last_error
    # Parked items are not re-sent on their own ...
    assert outbox.send(client, target, force=True).parked == 0
    # ... only when the user asks; discarding keeps the record, marked as such.
    assert outbox.retry(item.item_id).state == "pending"
    assert outbox.send(client, target).parked == 1
    assert outbox.discard(item.item_id).state == "discarded"
    assert outbox.items() == []


def test_unreachable_server_keeps_the_label_pending_and_backs_off():
    outbox = Outbox()
    target = Target("", f"http://127.0.0.1:{free_port()}")
    item = outbox.add_create(target, "tr-" + "1" * 32, assessment_body("x", True, REVIEWER))
    with RestClient(target.host, timeout=2) as down:
        report = outbox.send(down, target)
        assert (report.sent, report.failed) == (0, 1)
        waiting = outbox.get(item.item_id)
        assert waiting.state == "pending" and "Could not connect" in waiting.last_error
        assert waiting.next_attempt > waiting.created
        # Backing off: a routine pass does not hammer the server; a flush (force) tries again.
        assert outbox.send(down, target).failed == 0
        assert outbox.send(down, target, force=True).failed == 1
    assert outbox.status().pending == 1 and "Could not connect" in outbox.status().last_error


def test_two_senders_at_once_send_each_label_exactly_once(sdk, mlflow_server, target,
                                                          trace_ids):
    outbox, name = Outbox(), unique_name()
    for i in range(6):
        outbox.add_create(target, trace_ids[3], assessment_body(name, i, REVIEWER))

    def sender():
        with RestClient(mlflow_server.url) as c:
            Outbox().send(c, target)

    threads = [threading.Thread(target=sender) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(a.value for a in labels(sdk, trace_ids[3], name)) == [0, 1, 2, 3, 4, 5]
    assert outbox.items() == []


def test_withdrawing_an_unsent_label_drops_it_and_the_edits_queued_after_it(sdk, client, target,
                                                                            trace_ids):
    outbox, name = Outbox(), unique_name()
    created = outbox.add_create(target, trace_ids[4], assessment_body(name, True, REVIEWER))
    edit = outbox.add_update(target, trace_ids[4], {"rationale": "x"}, after=created)
    assert outbox.withdraw(created)
    assert outbox.get(edit.item_id).state == "discarded"
    assert outbox.send(client, target).sent == 0
    assert labels(sdk, trace_ids[4], name) == []
    # Once sent, withdrawing is refused: the caller queues a delete instead.
    sent = outbox.add_create(target, trace_ids[4], assessment_body(name, True, REVIEWER))
    outbox.send(client, target)
    assert not outbox.withdraw(sent)


def test_outbox_file_is_private_and_uses_a_synchronous_wal_journal():
    outbox = Outbox()
    assert stat.S_IMODE(outbox.path.stat().st_mode) == 0o600
    with sqlite3.connect(outbox.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# -- faults: a proxy in front of the real server ---------------------------------------------


def test_connection_dropped_after_the_server_saved_the_label_gives_exactly_one(sdk, fault_proxy,
                                                                              trace_ids):
    outbox, name = Outbox(), unique_name()
    target = Target("", fault_proxy.url)
    outbox.add_create(target, trace_ids[5], assessment_body(name, True, REVIEWER))
    fault_proxy.inject("drop_after", match="/assessments")
    with RestClient(fault_proxy.url) as client:
        report = outbox.send(client, target)
        # The server saved it, but the answer was lost: the client cannot know.
        assert (report.sent, report.failed) == (0, 1)
        assert len(labels(sdk, trace_ids[5], name)) == 1
        assert "connection" in outbox.status().last_error.lower()

        assert outbox.send(client, target, force=True).sent == 1

    # The retry looked for the submission id instead of writing again.
    assert len(labels(sdk, trace_ids[5], name)) == 1
    assert fault_proxy.forwarded_count("/assessments") == 1
    assert outbox.items() == []


def test_labels_given_while_the_server_is_down_are_sent_when_it_returns(sdk, fault_proxy,
                                                                        trace_ids):
    outbox, name = Outbox(), unique_name()
    target = Target("", fault_proxy.url)
    fault_proxy.down()
    for value in (1, 2, 3):
        outbox.add_create(target, trace_ids[6], assessment_body(name, value, REVIEWER))
    with RestClient(fault_proxy.url, timeout=2) as client:
        assert outbox.send(client, target).failed == 1  # stops at the first: the server is away
        assert outbox.status().pending == 3
        fault_proxy.up()
        reports = outbox.flush()

    assert reports[target].sent == 3
    assert sorted(a.value for a in labels(sdk, trace_ids[6], name)) == [1, 2, 3]
    assert outbox.items() == []


_SENDER = """
import sys, time
from traceviewer.core.client import RestClient
from traceviewer.core.outbox import Outbox, Target
from traceviewer.core.review import assessment_body
url, trace_id, name = sys.argv[1:4]
outbox, target = Outbox(), Target("", url)
for value in (1, 2, 3):
    outbox.add_create(target, trace_id, assessment_body(name, value, "alice@example.com"))
print("queued", flush=True)
with RestClient(url) as client:
    outbox.send(client, target)
time.sleep(600)
"""


def test_labels_pending_when_the_app_is_killed_are_sent_once_on_the_next_start(sdk, fault_proxy,
                                                                               trace_ids):
    name = unique_name()
    # The first label's request is held by the proxy: the process dies with it in flight.
    fault_proxy.inject("delay", match="/assessments", seconds=2.0)
    child = subprocess.Popen([sys.executable, "-c", _SENDER, fault_proxy.url, trace_ids[7], name],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "queued"
        deadline = time.monotonic() + 30
        while fault_proxy.received_count("/assessments") == 0:
            assert time.monotonic() < deadline, "the sender never sent"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    # The proxy forwards the held request: wait until the server has the first label.
    deadline = time.monotonic() + 30
    while len(labels(sdk, trace_ids[7], name)) < 1:
        assert time.monotonic() < deadline, "the held label never reached the server"
        time.sleep(0.05)

    assert Outbox().status().pending == 3
    reports = Outbox().flush()  # what the app does when it starts

    assert reports[Target("", fault_proxy.url)].sent == 3
    assert sorted(a.value for a in labels(sdk, trace_ids[7], name)) == [1, 2, 3]
    assert Outbox().items() == []
