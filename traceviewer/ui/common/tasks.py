"""The one mechanism for background work in the GUI.

`TaskRunner.start(fn, on_done, on_error, on_progress)` runs `fn(token)` on Qt's global thread
pool and delivers the result, the error or progress back on the GUI thread. A runner holds one
slot: starting a new task cancels the previous one and its late results are dropped, so typing
into a filter or clicking through traces never queues a backlog or shows stale data.

Widgets are only touched in the callbacks, which always run on the GUI thread."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from traceviewer.core.cancel import CancelToken
from traceviewer.core.errors import Cancelled

log = logging.getLogger(__name__)


class _Relay(QObject):
    """Carries results from a worker thread to the GUI thread (queued signal delivery)."""

    done = Signal(int, object)
    failed = Signal(int, object)
    progressed = Signal(int, object)


class _Job(QRunnable):
    def __init__(self, relay: _Relay, generation: int, fn: Callable[[CancelToken], Any],
                 token: CancelToken):
        super().__init__()
        self._relay, self._generation, self._fn, self._token = relay, generation, fn, token

    def run(self) -> None:
        try:
            result = self._fn(self._token)
        except Cancelled:
            self._relay.failed.emit(self._generation, Cancelled("cancelled"))
        except Exception as exc:  # every failure reaches the user through on_error
            log.warning("background task failed: %s", exc, exc_info=True)
            self._relay.failed.emit(self._generation, exc)
        else:
            self._relay.done.emit(self._generation, result)


class Activity(QObject):
    """Counts background tasks in flight across the app; `idle` fires when none is left.

    Used for the busy indicator and by `--screenshot`, which waits until data has loaded."""

    busy_changed = Signal(bool)
    idle = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.running = 0

    def _started(self) -> None:
        self.running += 1
        if self.running == 1:
            self.busy_changed.emit(True)

    def _finished(self) -> None:
        self.running -= 1
        if self.running == 0:
            self.busy_changed.emit(False)
            self.idle.emit()


activity = Activity()


class TaskRunner(QObject):
    """One slot of background work: latest request wins."""

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._relay = _Relay()
        self._relay.done.connect(self._on_done)
        self._relay.failed.connect(self._on_failed)
        self._relay.progressed.connect(self._on_progress)
        self._generation = 0
        self._token: CancelToken | None = None
        self._callbacks: tuple[Callable | None, Callable | None, Callable | None] = (None,) * 3
        # A runner destroyed with a task in flight (its window closed) ends that task for
        # `activity` too; the flag outlives the Python wrapper in the closure.
        self._in_flight = in_flight = [False]
        self.destroyed.connect(lambda *_: in_flight[0] and activity._finished())

    @property
    def busy(self) -> bool:
        return self._token is not None

    def start(self, fn: Callable[[CancelToken], Any], on_done: Callable[[Any], None],
              on_error: Callable[[Exception], None] | None = None,
              on_progress: Callable[[Any], None] | None = None) -> CancelToken:
        """Cancel the task in flight (if any) and run `fn(token)` in the background."""
        self.cancel()
        self._generation += 1
        generation = self._generation
        token = CancelToken(lambda value: self._relay.progressed.emit(generation, value))
        self._token = token
        self._callbacks = (on_done, on_error, on_progress)
        activity._started()
        self._in_flight[0] = True
        self.busy_changed.emit(True)
        QThreadPool.globalInstance().start(_Job(self._relay, generation, fn, token))
        return token

    def cancel(self) -> None:
        """Cancel the task in flight; its result, error and progress are dropped."""
        if self._token is not None:
            self._token.cancel()
            self._token = None
            self._callbacks = (None,) * 3
            self._in_flight[0] = False
            activity._finished()
            self.busy_changed.emit(False)

    def _deliver(self, generation: int, index: int, value: Any) -> None:
        if generation != self._generation or self._token is None:
            return
        callback = self._callbacks[index]
        self._token = None
        self._callbacks = (None,) * 3
        self._in_flight[0] = False
        # The callback may start the next step of a chain; count this task as finished only
        # afterwards so that `activity.idle` does not fire between two steps.
        try:
            if callback is not None and not isinstance(value, Cancelled):
                callback(value)
        finally:
            activity._finished()
            if self._token is None:
                self.busy_changed.emit(False)

    @Slot(int, object)
    def _on_done(self, generation: int, result: Any) -> None:
        self._deliver(generation, 0, result)

    @Slot(int, object)
    def _on_failed(self, generation: int, exc: Exception) -> None:
        self._deliver(generation, 1, exc)

    @Slot(int, object)
    def _on_progress(self, generation: int, value: Any) -> None:
        if generation == self._generation and self._callbacks[2] is not None:
            self._callbacks[2](value)
