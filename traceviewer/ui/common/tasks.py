"""The one mechanism for background work in the GUI.

`TaskRunner.start(fn, on_done, on_error, on_progress)` runs `fn(token)` on Qt's global thread
pool and delivers the result, the error or progress back on the GUI thread. A runner holds one
slot: starting a new task cancels the previous one and its late results are dropped, so typing
into a filter or clicking through traces never queues a backlog or shows stale data.

`WriteRunner` is for changes (saving a workspace, writing a file): writes never cancel each
other and always report. A failure no caller handles reaches `activity.unhandled_failure`,
which the main window shows in its banner.

Widgets are only touched in the callbacks, which always run on the GUI thread."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from traceviewer.core.cancel import CancelToken
from traceviewer.core.errors import Cancelled

log = logging.getLogger(__name__)

# Background work mostly waits on the network: a trace downloading for half a minute, a search
# page, a slow server. Qt's pool has as many threads as cores (two on a small laptop), so one
# download and one page would hold back every other task (a trace's header, its assessments).
POOL_THREADS = 16


def _pool() -> QThreadPool:
    pool = QThreadPool.globalInstance()
    if pool.maxThreadCount() < POOL_THREADS:
        pool.setMaxThreadCount(POOL_THREADS)
    return pool


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
            self._send("failed", Cancelled("cancelled"))
        except Exception as exc:  # every failure reaches the user through on_error
            log.warning("background task failed: %s", exc, exc_info=True)
            self._send("failed", exc)
        else:
            self._send("done", result)

    def _send(self, signal: str, value: Any) -> None:
        try:
            getattr(self._relay, signal).emit(self._generation, value)
        except RuntimeError:  # the runner was destroyed (a window closed, the app exiting)
            self._token.cancel()


class Activity(QObject):
    """Counts background tasks in flight across the app; `idle` fires when none is left.

    Used for the busy indicator and by `--screenshot`, which waits until data has loaded."""

    busy_changed = Signal(bool)
    idle = Signal()
    unhandled_failure = Signal(object)  # an Exception of a task started without on_error

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


def _finish_if_alive() -> None:
    """A runner destroyed with a task in flight ends it for `activity`, unless Python's exit has
    already deleted `activity` itself."""
    if shiboken6.isValid(activity):
        activity._finished()


def _call(callback: Callable[[Any], None] | None, value: Any, failed: bool) -> None:
    """Deliver a task's result or failure; a failure nobody handles still reaches the user."""
    if isinstance(value, Cancelled):
        return
    if callback is not None:
        callback(value)
    elif failed:
        activity.unhandled_failure.emit(value)


class _Runner(QObject):
    """Receives a relay's results on the GUI thread (bound slots: a lambda would run in the
    worker's thread) and hands them to `_deliver`."""

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._relay = _Relay()
        self._relay.done.connect(self._on_done)
        self._relay.failed.connect(self._on_failed)

    def _deliver(self, generation: int, index: int, value: Any) -> None:
        raise NotImplementedError

    @Slot(int, object)
    def _on_done(self, generation: int, result: Any) -> None:
        self._deliver(generation, 0, result)

    @Slot(int, object)
    def _on_failed(self, generation: int, exc: Exception) -> None:
        self._deliver(generation, 1, exc)


class TaskRunner(_Runner):
    """One slot of background work: latest request wins."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._relay.progressed.connect(self._on_progress)
        self._generation = 0
        self._token: CancelToken | None = None
        self._callbacks: tuple[Callable | None, Callable | None, Callable | None] = (None,) * 3
        # A runner destroyed with a task in flight (its window closed) ends that task for
        # `activity` too; the flag outlives the Python wrapper in the closure.
        self._in_flight = in_flight = [False]

        def finish_in_flight(*_: object) -> None:
            if in_flight[0]:
                _finish_if_alive()

        self.destroyed.connect(finish_in_flight)

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
        _pool().start(_Job(self._relay, generation, fn, token))
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
            _call(callback, value, failed=index == 1)
        finally:
            activity._finished()
            if self._token is None:
                self.busy_changed.emit(False)

    @Slot(int, object)
    def _on_progress(self, generation: int, value: Any) -> None:
        if generation == self._generation and self._callbacks[2] is not None:
            self._callbacks[2](value)


class WriteRunner(_Runner):
    """Background writes (Anki's `CollectionOp`, where `TaskRunner` is its `QueryOp`): each write
    runs to its end and always reports, and starting one never cancels another in flight. A
    failure without `on_error` goes to `activity.unhandled_failure`."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._generation = 0
        self._pending: dict[int, tuple[Callable | None, Callable | None]] = {}
        self._in_flight = in_flight = [0]  # outlives the Python wrapper, as in TaskRunner

        def finish_in_flight(*_: object) -> None:
            for _task in range(in_flight[0]):
                _finish_if_alive()

        self.destroyed.connect(finish_in_flight)

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def start(self, fn: Callable[[CancelToken], Any], on_done: Callable[[Any], None],
              on_error: Callable[[Exception], None] | None = None) -> None:
        """Run `fn(token)` in the background, beside any write in flight."""
        self._generation += 1
        self._pending[self._generation] = (on_done, on_error)
        activity._started()
        self._in_flight[0] += 1
        if len(self._pending) == 1:
            self.busy_changed.emit(True)
        _pool().start(
            _Job(self._relay, self._generation, fn, CancelToken()))

    def _deliver(self, generation: int, index: int, value: Any) -> None:
        callbacks = self._pending.pop(generation, None)
        if callbacks is None:
            return
        self._in_flight[0] -= 1
        try:
            _call(callbacks[index], value, failed=index == 1)
        finally:
            activity._finished()
            if not self._pending:
                self.busy_changed.emit(False)
