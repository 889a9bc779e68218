"""A fault-injecting HTTP proxy for tests: sits on a loopback port in front of a real server and
misbehaves on request, so client code meets real sockets failing in real ways.

    with FaultProxy(mlflow_server.url) as proxy:
        proxy.inject("status", status=503, retry_after=0.1, times=2)
        client = RestClient(proxy.url)
        ...
        assert proxy.forwarded_count("/traces/search") == 1

Fault kinds (each for the next `times` requests whose path contains `match`):
  "delay"         wait `seconds`, then forward normally
  "status"        answer `status` (with Retry-After if given) without forwarding
  "drop_before"   close the connection before forwarding (the server never sees the request)
  "drop_after"    forward, then close without answering (the server acted; the answer is lost)
  "truncate"      forward, then send only the first half of the body, with a Content-Length that
                  matches it (valid HTTP, cut-off JSON); keep_length=True announces the full
                  length and then closes mid-body (an HTTP-level truncation)
`down()` refuses connections (closes the listening socket); `up()` listens on the same port again.
With `tls=` (a server-side ssl.SSLContext) it terminates TLS, for certificate tests.
Loopback only; bounded in connections, request size and socket time."""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_MAX_HEAD = 64 * 1024
_MAX_BODY = 64 * 1024 * 1024
_MAX_CONNECTIONS = 64
_SOCKET_TIMEOUT = 30.0
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te",
               "proxy-connection", "upgrade", "trailer"}
_KINDS = {"delay", "status", "drop_before", "drop_after", "truncate"}


@dataclass
class Fault:
    kind: str
    times: int = 1
    match: str = ""
    status: int = 503
    retry_after: float | None = None
    seconds: float = 0.0
    keep_length: bool = False


@dataclass(frozen=True)
class Seen:
    """One request the proxy received: what it did with it."""

    method: str
    path: str
    fault: str | None  # the fault applied, None if forwarded normally
    forwarded: bool


@dataclass
class _Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    close: bool = field(default=False)


class FaultProxy:
    """The proxy; start it (or use `with`), point a client at `url`, inject faults."""

    def __init__(self, upstream: str, tls: ssl.SSLContext | None = None):
        parts = urlsplit(upstream)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("FaultProxy forwards to loopback servers only")
        self._upstream = (parts.hostname, parts.port or 80)
        self._tls = tls
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.seen: list[Seen] = []
        self._slots = threading.BoundedSemaphore(_MAX_CONNECTIONS)
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._clients: set[socket.socket] = set()
        self.port = 0
        self.url = ""

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._listen()
        self.url = f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"
        return self

    def stop(self) -> None:
        self.down()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def down(self) -> None:
        """Refuse new connections (and cut open ones) until `up()`."""
        listener, self._listener = self._listener, None
        if listener is not None:
            _close(listener)
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=5)
            self._accept_thread = None
        with self._lock:
            clients, self._clients = list(self._clients), set()
        for conn in clients:
            _close(conn)

    def up(self) -> None:
        """Accept connections again, on the same port."""
        if self._listener is None:
            self._listen()

    # -- faults ------------------------------------------------------------------------------

    def inject(self, kind: str, times: int = 1, match: str = "", **options: object) -> None:
        """Apply a fault to the next `times` requests whose path contains `match`."""
        if kind not in _KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {sorted(_KINDS)}")
        with self._lock:
            self._faults.append(Fault(kind, times, match, **options))  # type: ignore[arg-type]

    def clear(self) -> None:
        """Forget pending faults and the record of seen requests."""
        with self._lock:
            self._faults.clear()
            self.seen.clear()

    def forwarded_count(self, match: str = "") -> int:
        """How many requests whose path contains `match` reached the server."""
        with self._lock:
            return sum(1 for s in self.seen if s.forwarded and match in s.path)

    def received_count(self, match: str = "") -> int:
        """How many requests whose path contains `match` reached the proxy."""
        with self._lock:
            return sum(1 for s in self.seen if match in s.path)

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.match in path:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # -- serving -----------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(_MAX_CONNECTIONS)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._accept_thread = threading.Thread(target=self._accept, args=(listener,),
                                               name="faultproxy-accept", daemon=True)
        self._accept_thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # listener closed by down()/stop()
            if not self._slots.acquire(timeout=_SOCKET_TIMEOUT):
                _close(conn)
                continue
            conn.settimeout(_SOCKET_TIMEOUT)
            threading.Thread(target=self._serve, args=(conn,), name="faultproxy-conn",
                             daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        sock, reader = conn, None
        try:
            if self._tls is not None:
                sock = self._tls.wrap_socket(conn, server_side=True)
            with self._lock:
                self._clients.add(sock)
            reader = sock.makefile("rb")
            while (request := _read_request(reader)) is not None:
                if not self._handle(sock, request) or request.close:
                    break
        except (OSError, ValueError):
            pass  # the client went away, failed the TLS handshake or sent garbage: hang up
        finally:
            if reader is not None:
                reader.close()
            _close(sock)
            with self._lock:
                self._clients.discard(sock)
            self._slots.release()

    def _handle(self, conn: socket.socket, req: _Request) -> bool:
        """Serve one request; False when the connection must end."""
        fault = self._take_fault(urlsplit(req.target).path)
        kind = fault.kind if fault else None
        forwarded = kind not in ("status", "drop_before")
        with self._lock:
            self.seen.append(Seen(req.method, urlsplit(req.target).path, kind, forwarded))
        if fault is None:
            conn.sendall(_response(*self._forward(req)))
            return True
        if fault.kind == "delay":
            time.sleep(fault.seconds)
            conn.sendall(_response(*self._forward(req)))
            return True
        if fault.kind == "status":
            extra = [] if fault.retry_after is None else [("Retry-After", f"{fault.retry_after:g}")]
            body = (b'{"error_code": "TEMPORARILY_UNAVAILABLE", '
                    b'"message": "injected by FaultProxy"}')
            conn.sendall(_response(fault.status, "Injected", [
                ("Content-Type", "application/json"), *extra], body))
            return True
        if fault.kind == "drop_before":
            return False
        status, reason, headers, body = self._forward(req)
        if fault.kind == "drop_after":
            return False
        cut = body[: len(body) // 2]
        if fault.keep_length:
            raw = _response(status, reason, headers, body)
            conn.sendall(raw[: len(raw) - len(body) + len(cut)])
        else:
            conn.sendall(_response(status, reason, headers, cut))
        return False

    def _forward(self, req: _Request) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """Send the request upstream; return its complete response (status, reason, headers,
        body) to relay."""
        upstream = http.client.HTTPConnection(*self._upstream, timeout=_SOCKET_TIMEOUT)
        try:
            upstream.putrequest(req.method, req.target, skip_host=True,
                                skip_accept_encoding=True)
            for name, value in req.headers:
                if name.lower() not in _HOP_BY_HOP:
                    upstream.putheader(name, value)
            upstream.putheader("Content-Length", str(len(req.body)))
            upstream.endheaders(req.body)
            resp = upstream.getresponse()
            body = resp.read()
            headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP]
            return resp.status, resp.reason, headers, body
        finally:
            upstream.close()


def _read_request(reader) -> _Request | None:
    line = reader.readline(_MAX_HEAD)
    if not line:
        return None
    method, target, version = line.decode("latin-1").split()
    headers: list[tuple[str, str]] = []
    size = len(line)
    while (line := reader.readline(_MAX_HEAD)) not in (b"\r\n", b"\n", b""):
        size += len(line)
        if size > _MAX_HEAD:
            raise ValueError("request head too large")
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    lookup = {k.lower(): v for k, v in headers}
    if "chunked" in lookup.get("transfer-encoding", "").lower():
        raise ValueError("chunked request bodies are not supported")
    length = int(lookup.get("content-length", "0"))
    if length > _MAX_BODY:
        raise ValueError("request body too large")
    body = reader.read(length) if length else b""
    close = lookup.get("connection", "").lower() == "close" or version == "HTTP/1.0"
    return _Request(method, target, headers, body, close)


def _response(status: int, reason: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers),
             f"Content-Length: {len(body)}", "Connection: keep-alive"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
