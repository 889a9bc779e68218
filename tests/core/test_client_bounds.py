"""What one call may hold and how long it may last: an endless answer stops at the call's size
cap and a trickling one (headers or body) at its total deadline, each with a clear typed error,
while a trace may still wait long for its first byte. Fake loopback servers, because a real
`mlflow server` does neither."""

from __future__ import annotations

import time

import pytest

from tests.fakeserver import FakeServer, endless, head, trickle
from traceviewer.core.bounded import MB, ResponseLimits
from traceviewer.core.client import RestClient, RetryPolicy
from traceviewer.core.errors import DeadlineExceeded, ResponseTooLarge, Timeout

FAST = RetryPolicy(attempts=3, total_s=5.0, base_delay_s=0.01, max_delay_s=0.05)
SMALL = ResponseLimits(max_bytes=1 * MB, total_s=2.0)


def _server(handler):
    holder: list[FakeServer] = []
    server = FakeServer(lambda sock, h: handler(sock, h, holder[0].stop_event))
    holder.append(server)
    return server


def test_endless_list_answer_stops_at_the_size_cap_with_a_clear_error():
    with _server(lambda sock, _, stop: endless(sock, stop)) as server, \
            RestClient(server.url, retry=FAST, limits=ResponseLimits(1 * MB, 30.0)) as client, \
            pytest.raises(ResponseTooLarge) as caught:
        client.search_experiments()
    message = str(caught.value)
    assert "larger than 1 MB" in message and "searching experiments" in message
    assert "stopped reading" in message and "MLflow tracking server" in message
    assert len(server.requests) == 1  # not retried: a second try would be as large


def test_announced_oversized_answer_is_refused_before_reading_it():
    def big(sock, _, stop):
        sock.sendall(head("200 OK", {"Content-Length": str(10 * MB)}))
        stop.wait(10)  # never sends the body: the client must not wait for it

    started = time.monotonic()
    with _server(big) as server, RestClient(server.url, retry=FAST, limits=SMALL) as client, \
            pytest.raises(ResponseTooLarge, match="larger than 1 MB"):
        client.version()
    assert time.monotonic() - started < SMALL.total_s


def test_trickled_headers_end_at_the_calls_total_deadline():
    # One byte every 0.2 s: every read is well within the 30 s per-read timeout.
    answer = head("200 OK", {"Content-Length": "2"}) * 100 + b"{}"
    started = time.monotonic()
    with _server(lambda sock, _, stop: trickle(sock, answer, 0.2, stop)) as server, \
            RestClient(server.url, timeout=30.0, retry=FAST, limits=SMALL) as client, \
            pytest.raises(DeadlineExceeded) as caught:
        client.search_experiments()
    elapsed = time.monotonic() - started
    assert SMALL.total_s - 0.1 <= elapsed < SMALL.total_s + 1.5
    assert isinstance(caught.value, Timeout)  # the outbox reads it as transient
    assert "within 2 s" in str(caught.value) and "too slowly" in str(caught.value)


def test_trickled_body_ends_at_the_calls_total_deadline():
    def slow_body(sock, _, stop):
        sock.sendall(head("200 OK", {"Content-Length": "100000"}))
        trickle(sock, b" " * 100000, 0.2, stop)

    started = time.monotonic()
    with _server(slow_body) as server, \
            RestClient(server.url, timeout=30.0, retry=FAST, limits=SMALL) as client, \
            pytest.raises(DeadlineExceeded, match="searching experiments"):
        client.search_experiments()
    assert time.monotonic() - started < SMALL.total_s + 1.5
    assert len(server.requests) == 1


def test_trace_may_wait_past_the_list_deadline_for_its_first_byte():
    document = b'{"trace": {}}'

    def thinks_then_answers(sock, _, stop):
        stop.wait(1.5)  # the server assembling a big trace before its first byte
        sock.sendall(head("200 OK", {"Content-Length": str(len(document))}) + document)

    quick_lists = ResponseLimits(1 * MB, 0.5)
    with _server(thinks_then_answers) as server, \
            RestClient(server.url, timeout=30.0, retry=FAST, limits=quick_lists,
                       trace_limits=ResponseLimits(1 * MB, 20.0)) as client:
        assert bytes(client.get_trace_raw("tr-1")) == document
        with pytest.raises(DeadlineExceeded):
            client.version()  # the same wait is past a list's deadline


def test_endless_trace_stops_at_the_trace_cap():
    with _server(lambda sock, _, stop: endless(sock, stop)) as server, \
            RestClient(server.url, retry=FAST, trace_limits=ResponseLimits(2 * MB, 30.0)
                       ) as client, pytest.raises(ResponseTooLarge, match="larger than 2 MB"):
        client.get_trace_raw("tr-1")


def test_body_progress_reports_what_was_received(client):
    seen: list[tuple[int, int | None]] = []
    resp = client._send("GET", "/version", "reading the server version",
                        progress=lambda got, expected: seen.append((got, expected)))
    assert seen and seen[-1][0] == len(resp.content)
