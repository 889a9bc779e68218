"""Waiting for events in GUI tests, instead of sleeping for a guessed time."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QThreadPool


def background_work_ended(qtbot, timeout_ms: int = 60_000) -> None:
    """Wait until no background task runs any more (cancelled ones included: a superseded load
    ends once its late answer has arrived), then deliver what the tasks sent to the GUI
    thread, so a test can check that a stale result was dropped rather than still queued."""
    pool = QThreadPool.globalInstance()
    qtbot.waitUntil(lambda: pool.activeThreadCount() == 0, timeout=timeout_ms)
    QCoreApplication.processEvents()
