"""Sessions and users folded from pages of traces; turns read from previews."""

from __future__ import annotations

import json

from traceviewer.core import filters as flt
from traceviewer.core.aggregate import Aggregator, Turn, narrow, readable
from traceviewer.core.model import SESSION_KEY, USER_KEY, TraceInfo


def info(trace_id: str, t: int, session: str | None = None, user: str | None = None,
         state: str = "OK", where: str = "tags", request: str | None = None,
         **extra) -> TraceInfo:
    context = {k: v for k, v in ((SESSION_KEY, session), (USER_KEY, user)) if v}
    return TraceInfo.from_json({
        "trace_id": trace_id, "request_time": t, "state": state,
        "execution_duration": "0.250s",
        "tags" if where == "tags" else "trace_metadata": context,
        "request_preview": request, **extra})


def test_session_and_user_are_read_from_tags_or_metadata():
    agg = Aggregator()
    agg.add([info("a", 10, "s1", "u1", where="tags"), info("b", 20, "s1", "u1", where="meta")])
    assert agg.by_session["s1"].traces == 2
    assert agg.by_user["u1"].traces == 2


def test_counts_errors_time_span_and_distinct_sessions():
    agg = Aggregator()
    agg.add([info("c", 30, "s2", "u1", state="ERROR"), info("b", 20, "s1", "u1"),
             info("a", 10, "s1", "u1", state="ERROR")])
    s1, s2 = agg.by_session["s1"], agg.by_session["s2"]
    assert (s1.traces, s1.errors, s1.first_ms, s1.last_ms, s1.user) == (2, 1, 10, 20, "u1")
    assert (s2.traces, s2.errors) == (1, 1)
    u = agg.by_user["u1"]
    assert (u.traces, u.errors, u.last_seen_ms, u.sessions) == (3, 2, 30, {"s1", "s2"})


def test_traces_without_session_or_user_are_counted_apart():
    agg = Aggregator()
    update = agg.add([info("a", 1), info("b", 2, user="u"), info("c", 3, session="s")])
    assert (update.traces, update.without_session, update.without_user) == (3, 2, 2)
    assert list(agg.by_session) == ["s"] and list(agg.by_user) == ["u"]


def test_streamed_newest_first_sessions_arrive_newest_first():
    agg = Aggregator()
    first = agg.add([info("d", 40, "s3"), info("c", 30, "s1")])
    second = agg.add([info("b", 20, "s2"), info("a", 10, "s1")])
    assert [s.session for s in first.sessions] == ["s3", "s1"]
    assert [s.session for s in second.sessions] == ["s2", "s1"]
    assert list(agg.by_session) == ["s3", "s1", "s2"]


def test_update_holds_copies_that_later_pages_do_not_change():
    agg = Aggregator()
    update = agg.add([info("b", 20, "s", "u")])
    agg.add([info("a", 10, "s", "u", state="ERROR")])
    assert (update.sessions[0].traces, update.sessions[0].errors) == (1, 0)
    assert update.users[0].traces == 1
    assert agg.by_session["s"].traces == 2


def test_first_request_is_the_oldest_turns_words():
    agg = Aggregator()
    agg.add([info("b", 20, "s", request=json.dumps({"message": "and my order?"})),
             info("a", 10, "s", request=json.dumps({"message": "what is my balance?"}))])
    assert agg.by_session["s"].first_request == "what is my balance?"


def test_readable_takes_the_words_out_of_json_previews():
    assert readable('{"message": "hi <b>there</b>"}') == "hi <b>there</b>"
    assert readable('"Your balance is $42"') == "Your balance is $42"
    chat = {"messages": [{"role": "system", "content": "be nice"},
                         {"role": "user", "content": "hello"}]}
    assert readable(json.dumps(chat)) == "hello"
    # Previews cut at the server's limit, or shaped otherwise, stay as they are.
    assert readable('{"message": "cut off') == '{"message": "cut off'
    assert readable('{"a": "x", "b": "y"}') == '{"a": "x", "b": "y"}'
    assert readable(None) == ""


def test_turn_carries_state_duration_and_feedback():
    feedback = {"assessment_id": "a-1", "assessment_name": "response_is_correct",
                "trace_id": "t", "source": {"source_type": "HUMAN", "source_id": "x"},
                "feedback": {"value": False}}
    turn = Turn.from_info(info("t", 5, "s", state="ERROR", request='{"message": "q"}',
                               assessments=[feedback]))
    assert (turn.request, turn.response, turn.state, turn.duration_ms, turn.feedback) == \
        ("q", "", "ERROR", 250, "response_is_correct=false")


def test_narrow_ands_a_session_onto_every_filter_in_both_places():
    got = narrow(["status = 'OK'", "tags.env = 'prod'"], flt.session("s'1"))
    tag, meta = flt.alternatives([flt.session("s'1")])
    assert got == [f"status = 'OK' AND {tag}", f"status = 'OK' AND {meta}",
                   f"tags.env = 'prod' AND {tag}", f"tags.env = 'prod' AND {meta}"]
    assert narrow([""], flt.user("u")) == flt.alternatives([flt.user("u")])
