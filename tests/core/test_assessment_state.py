"""A trace's assessments as they stand (server read + outbox), and one current answer per
reviewer per question, against the real seeded `mlflow server`, read back by the MLflow SDK."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import PROD_EXPERIMENT, experiment_id
from traceviewer.core import assessment_state as state
from traceviewer.core.client import RestClient
from traceviewer.core.outbox import Outbox, Target

REVIEWER = "dana@example.com"


@pytest.fixture(scope="module")
def trace_ids(mlflow_server, sdk):
    with RestClient(mlflow_server.url) as client:
        infos, _ = client.search_traces([experiment_id(sdk, PROD_EXPERIMENT)], max_results=40)
    return [i.trace_id for i in infos[30:40]]


@pytest.fixture
def target(client):
    return Target("local", client.host)


def unique_name() -> str:
    return f"q-{uuid.uuid4().hex[:10]}"


def human_answers(sdk, trace_id: str, name: str, reviewer: str = REVIEWER) -> list:
    """What the SDK reads: the valid HUMAN assessments of `name` by `reviewer`."""
    return [a for a in sdk.get_trace(trace_id).info.assessments
            if a.name == name and a.valid is not False and a.source.source_type == "HUMAN"
            and a.source.source_id == reviewer]


def current(outbox, target, read) -> list[state.Current]:
    return state.merge(read.info.assessments,
                       state.pending_items(outbox, target, read.info.trace_id), read.read_at)


def test_answer_sent_after_a_read_shows_in_that_stale_read_without_duplicates(
        sdk, client, target, trace_ids):
    outbox, name, trace_id = Outbox(), unique_name(), trace_ids[0]
    stale = state.read_info(client, trace_id)  # e.g. the cached trace of the queue
    change = state.answer(outbox, target, trace_id, current(outbox, target, stale), REVIEWER,
                          name, True)
    # Queued: shown at once, as not sent yet.
    (queued,) = [c for c in current(outbox, target, stale) if c.assessment.name == name]
    assert (queued.assessment.value, queued.queued, queued.assessment.assessment_id) == \
        (True, change.item, "")
    assert outbox.send(client, target).sent == 1
    (sent,) = human_answers(sdk, trace_id, name)

    # The stale read now shows the sent answer with its server id; a fresh read, once.
    for read in (stale, state.read_info(client, trace_id)):
        mine = [c for c in current(outbox, target, read) if c.assessment.name == name]
        assert [(c.assessment.assessment_id, c.assessment.value, c.queued) for c in mine] == \
            [(sent.assessment_id, True, None)]
    own = state.own_answer(current(outbox, target, stale), REVIEWER, name)
    assert own is not None and own.assessment.assessment_id == sent.assessment_id


def test_answering_twice_keeps_one_valid_human_answer_per_reviewer_and_question(
        sdk, client, target, trace_ids):
    outbox, name, trace_id = Outbox(), unique_name(), trace_ids[1]
    stale = state.read_info(client, trace_id)
    state.answer(outbox, target, trace_id, current(outbox, target, stale), REVIEWER, name, True,
                 rationale="looks right")
    outbox.send(client, target)
    # Answered again from the same stale read: replaces the first answer.
    second = state.answer(outbox, target, trace_id, current(outbox, target, stale), REVIEWER,
                          name, False, rationale="")
    assert second.item is not None and second.item.op == "update"
    outbox.send(client, target)
    (answer,) = human_answers(sdk, trace_id, name)
    assert (answer.value, answer.rationale or "") == (False, "")
    # Another reviewer's answer to the same question is theirs: a second assessment.
    state.answer(outbox, target, trace_id, current(outbox, target, stale), "erin@example.com",
                 name, True)
    outbox.send(client, target)
    assert len(human_answers(sdk, trace_id, name)) == 1
    assert [a.value for a in human_answers(sdk, trace_id, name, "erin@example.com")] == [True]

    # The same answer again writes nothing.
    fresh = state.read_info(client, trace_id)
    assert state.answer(outbox, target, trace_id, current(outbox, target, fresh), REVIEWER,
                        name, False, rationale="").item is None


def test_answering_again_before_the_first_is_sent_edits_the_queued_answer(sdk, client, target,
                                                                          trace_ids):
    outbox, name, trace_id = Outbox(), unique_name(), trace_ids[2]
    read = state.read_info(client, trace_id)
    state.answer(outbox, target, trace_id, current(outbox, target, read), REVIEWER, name, True)
    again = state.answer(outbox, target, trace_id, current(outbox, target, read), REVIEWER,
                         name, False)
    (shown,) = [c for c in current(outbox, target, read) if c.assessment.name == name]
    assert (shown.assessment.value, shown.queued) == (False, again.item)
    assert outbox.send(client, target).sent == 2
    assert [a.value for a in human_answers(sdk, trace_id, name)] == [False]


def test_undo_of_a_replaced_answer_restores_the_earlier_one_and_undo_of_a_new_one_removes_it(
        sdk, client, target, trace_ids):
    outbox, name, trace_id = Outbox(), unique_name(), trace_ids[3]
    read = state.read_info(client, trace_id)
    first = state.answer(outbox, target, trace_id, current(outbox, target, read), REVIEWER,
                         name, True, rationale="first look")
    outbox.send(client, target)
    second = state.answer(outbox, target, trace_id, current(outbox, target, read), REVIEWER,
                          name, False, rationale="second look")
    outbox.send(client, target)
    state.undo(outbox, second)  # sent: the earlier value is written back
    outbox.send(client, target)
    (answer,) = human_answers(sdk, trace_id, name)
    assert (answer.value, answer.rationale) == (True, "first look")

    state.undo(outbox, first)  # the new answer is deleted
    outbox.send(client, target)
    assert human_answers(sdk, trace_id, name) == []
    fresh = state.read_info(client, trace_id)
    assert state.own_answer(current(outbox, target, fresh), REVIEWER, name) is None
    assert state.own_answer(current(outbox, target, read), REVIEWER, name) is None


def test_queued_delete_and_override_show_before_they_are_sent(sdk, client, target, trace_ids):
    outbox, name, trace_id = Outbox(), unique_name(), trace_ids[4]
    read = state.read_info(client, trace_id)
    state.answer(outbox, target, trace_id, current(outbox, target, read), REVIEWER, name, 3)
    outbox.send(client, target)
    read = state.read_info(client, trace_id)
    (mine,) = [a for a in read.info.assessments if a.name == name]
    outbox.add_delete(target, trace_id, mine.assessment_id)
    (shown,) = [c for c in current(outbox, target, read) if c.assessment.name == name]
    assert shown.deleted and shown.queued is not None
    assert name not in [a.name for a in state.merged_info(
        read.info, state.pending_items(outbox, target, trace_id), read.read_at).assessments]
    outbox.send(client, target)
    assert human_answers(sdk, trace_id, name) == []
    assert [c for c in current(outbox, target, read) if c.assessment.name == name] == []
