"""Cooperative cancellation for long core operations (paging, export, parsing big traces).

A `CancelToken` is handed to work running in the background; the work calls `check()` between
steps and reports progress through `progress()`. The UI's task runner cancels the token when a
newer request supersedes the work ("latest request wins"); the command line passes a token that
is never cancelled."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from traceviewer.core.errors import Cancelled


class CancelToken:
    def __init__(self, on_progress: Callable[[Any], None] | None = None):
        self._event = threading.Event()
        self._on_progress = on_progress

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise `Cancelled` if the work should stop."""
        if self._event.is_set():
            raise Cancelled("cancelled")

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`, or raise `Cancelled` as soon as the work is cancelled (a retry's
        back-off must not keep a superseded task alive)."""
        if self._event.wait(max(0.0, seconds)):
            raise Cancelled("cancelled")

    def progress(self, value: Any) -> None:
        """Report progress (any value the caller's UI understands, e.g. (done, total))."""
        if self._on_progress is not None and not self._event.is_set():
            self._on_progress(value)
