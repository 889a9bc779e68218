"""Bounded HTTP answers: what one call may hold in memory and how long it may last in total.

A per-read timeout alone lets a server that trickles a byte every half second hold a call
forever, and an endless body fills memory. Every call of `RestClient` (and of the Databricks
storage client) therefore runs `within(deadline)`: each socket read and write of the pooled
connections waits at most until that deadline (`bound_reads` wraps httpcore's network backend),
headers included; and `read_body` streams the body, checking its size and the deadline on every
chunk."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from traceviewer.core.cancel import CancelToken
from traceviewer.core.errors import DeadlineExceeded, ResponseTooLarge

MB = 1024 * 1024
# What a page of experiments, trace infos or an error may hold: far more than any real one.
LIST_MAX_BYTES = 64 * MB
LIST_TOTAL_S = 120.0
# A trace's spans: the largest trace the app opens. The first byte may take TRACE_WAIT_S (the
# server assembles a big trace first); the total leaves the transfer 20 minutes after that.
TRACE_MAX_BYTES = 2048 * MB
TRACE_TOTAL_S = 1800.0

# (received bytes, expected bytes from Content-Length or None), after every chunk of a body.
Progress = Callable[[int, int | None], None]

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "traceviewer_http_deadline", default=None)


@dataclass(frozen=True, slots=True)
class ResponseLimits:
    """What one call may take: the bytes its answer may hold (decoded) and the seconds the
    whole call (retries, the server's thinking, the transfer) may last."""

    max_bytes: int = LIST_MAX_BYTES
    total_s: float = LIST_TOTAL_S


LISTS = ResponseLimits()
TRACES = ResponseLimits(TRACE_MAX_BYTES, TRACE_TOTAL_S)


@contextmanager
def within(deadline: float) -> Iterator[None]:
    """Socket reads and writes of clients set up by `bound_reads` end by `deadline`
    (time.monotonic()) in this thread's context."""
    reset = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(reset)


def past(deadline: float) -> bool:
    """True when `deadline` has come (with a little slack: a socket timeout set to the time
    left may fire a hair early)."""
    return time.monotonic() >= deadline - 0.05


def read_body(resp: httpx.Response, limits: ResponseLimits, deadline: float, host: str,
              what: str, *, token: CancelToken | None = None,
              progress: Progress | None = None) -> bytes:
    """Read the streamed body of `resp` into it (so `resp.content`, `.text` and `.json()` work)
    and return it. Raises ResponseTooLarge past `limits.max_bytes` and DeadlineExceeded past
    `deadline`, checked on every chunk; `token` cancels between chunks. The body grows in one
    bytearray (returned as it is: no second copy of a 2 GB trace), `progress` is told each
    chunk."""
    expected = _content_length(resp)
    if expected is not None and expected > limits.max_bytes:
        resp.close()
        raise too_large(host, what, limits)
    body = bytearray()
    for chunk in resp.iter_bytes():
        body += chunk
        if len(body) > limits.max_bytes:
            resp.close()
            raise too_large(host, what, limits)
        if past(deadline):
            resp.close()
            raise too_slow(host, what, limits)
        if token is not None:
            token.check()
        if progress is not None:
            progress(len(body), expected)
    # httpx keeps a read body here; a bytearray reads the same through .content/.text/.json.
    resp._content = body  # type: ignore[assignment]
    return body  # type: ignore[return-value]


def too_large(host: str, what: str, limits: ResponseLimits) -> ResponseTooLarge:
    return ResponseTooLarge(
        f"The answer of {host} while {what} is larger than {_size(limits.max_bytes)}, the most "
        "Trace Viewer reads for it, so it stopped reading: check that the host URL points at "
        "an MLflow tracking server (a proxy or a faulty server may send endless data).")


def too_slow(host: str, what: str, limits: ResponseLimits) -> DeadlineExceeded:
    return DeadlineExceeded(
        f"{host} did not finish answering within {limits.total_s:g} s while {what} (it sent "
        "its answer too slowly, or not at all), so Trace Viewer gave up: check the server and "
        "your network, then try again.")


def bound_reads(client: httpx.Client) -> httpx.Client:
    """Make every socket read, write and connect of `client` (its transport and its proxy
    mounts) wait at most until the deadline of the current `within` block; returns `client`."""
    for transport in (client._transport, *client._mounts.values()):
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is not None and not isinstance(backend, _DeadlineBackend):
            pool._network_backend = _DeadlineBackend(backend)  # type: ignore[union-attr]
    return client


def _bounded(timeout: float | None, expired: type[Exception]) -> float | None:
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the call's total time is up")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream):
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(
            ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend):
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_tcp(
            host, port, _bounded(timeout, httpcore.ConnectTimeout), local_address,
            socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None
                            ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_unix_socket(
            path, _bounded(timeout, httpcore.ConnectTimeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _content_length(resp: httpx.Response) -> int | None:
    try:
        return int(resp.headers["content-length"])
    except (KeyError, ValueError):
        return None


def _size(n: int) -> str:
    return f"{n / MB:g} MB" if n >= MB else f"{n:,} bytes"
