"""A tiny HTTP server on loopback for faults a real `mlflow server` cannot produce (endless or
trickling answers, redirects). Each test gives it a handler that writes the raw response."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Callable

Handler = Callable[[socket.socket, bytes], None]


class FakeServer:
    """Serves each connection on its own thread: reads the request head (and records it), then
    calls `handler(sock, head)`. `requests` holds every request head received."""

    def __init__(self, handler: Handler):
        self.requests: list[bytes] = []
        self.stop_event = threading.Event()
        outer = self

        class _Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                head = b""
                while b"\r\n\r\n" not in head:
                    data = self.request.recv(65536)
                    if not data:
                        return
                    head += data
                outer.requests.append(head)
                with contextlib.suppress(OSError):  # the client gave up: what the test wanted
                    handler(self.request, head)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self._server.shutdown()
        self._server.server_close()


def head(status: str, headers: dict[str, str] | None = None) -> bytes:
    """A response head: status line and headers."""
    lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def endless(sock: socket.socket, stop: threading.Event, status: str = "200 OK",
            headers: dict[str, str] | None = None) -> None:
    """A response head, then a body that never ends (until the client hangs up or `stop`)."""
    sock.sendall(head(status, {"Content-Type": "application/json", **(headers or {})}))
    chunk = b" " * 65536
    while not stop.is_set():
        sock.sendall(chunk)


def trickle(sock: socket.socket, data: bytes, every_s: float, stop: threading.Event) -> None:
    """Send `data` one byte every `every_s` seconds (each read of the client gets a byte well
    within any per-read timeout)."""
    for byte in data:
        if stop.wait(every_s):
            return
        sock.sendall(bytes([byte]))
