"""Starting the GUI: the QApplication, the GUI flags, and `--screenshot`."""

from __future__ import annotations

import os
import signal
import sys
import time
from argparse import Namespace
from pathlib import Path
from typing import cast

from PySide6.QtCore import QThreadPool, QTimer
from PySide6.QtWidgets import QApplication, QWidget

from traceviewer import __version__
from traceviewer.core import filters
from traceviewer.resources import APP_ID
from traceviewer.ui.about import app_icon
from traceviewer.ui.common import palette
from traceviewer.ui.common.banner import ErrorBanner
from traceviewer.ui.common.tasks import activity

SCREENSHOT_TIMEOUT_S = 120
# How long a thread waiting for the GIL lets the one holding it run (Python's default: 5 ms).
# The GUI thread takes the GIL for every call into Python (each model data(), each paint of the
# timeline); while a background task parses a trace, each of those waits up to this long. At
# 1 ms the longest GUI stall while a 100k-span trace opened was 94-106 ms (bench/open_speed.py),
# at 0.2 ms 20-44 ms, and the parse took no longer.
GIL_SWITCH_S = 0.0002


def application() -> QApplication:
    """The QApplication (created once, named so QSettings and the desktop know us)."""
    app = QApplication.instance()
    if app is None:
        sys.setswitchinterval(GIL_SWITCH_S)
        app = QApplication(sys.argv[:1])
        app.setApplicationName("Trace Viewer")
        app.setApplicationVersion(__version__)
        app.setDesktopFileName(APP_ID)  # matches the installed desktop entry (Wayland icon)
        app.setWindowIcon(app_icon())
        palette.apply_forced_scheme(app)  # TRACEVIEWER_COLOR_SCHEME=dark|light
    return cast(QApplication, app)  # the GUI's one instance is always a QApplication


def capture_when_loaded(window: QWidget, path: str, on_saved) -> None:
    """Save `window` as PNG once no background task has run for two consecutive checks."""
    deadline = time.monotonic() + SCREENSHOT_TIMEOUT_S
    quiet = [0]
    timer = QTimer(window, interval=250)

    def check() -> None:
        quiet[0] = quiet[0] + 1 if activity.running == 0 else 0
        if quiet[0] >= 2 or time.monotonic() > deadline:
            timer.stop()
            window.grab().save(path, "PNG")
            on_saved(quiet[0] >= 2)

    timer.timeout.connect(check)
    timer.start()


def finish_background_tasks() -> None:
    """Let tasks still running end before Python shuts down (a worker emitting into a torn-down
    interpreter crashes it); a request stuck on the network is not waited for long."""
    QThreadPool.globalInstance().waitForDone(5_000)


def run_gui(args: Namespace) -> int:
    """Open the main window as the GUI flags say; with --screenshot, save it and exit."""
    if args.filter:
        filters.parse(args.filter)  # BadFilter before any window or task exists
    app = _application_for(args.screenshot)
    from traceviewer.ui.main_window import MainWindow

    window = MainWindow()
    if args.experiment:
        window.open_experiment(args.experiment)
    if args.filter:
        window.set_filter(args.filter)
    if args.trace:
        window.open_trace(args.trace)
    window.load_workspaces(select=args.workspace)
    if getattr(args, "view", None) == "overview":
        window.tabs.setCurrentWidget(window.overview)
    if args.screenshot:  # the same picture whatever layout was remembered
        window.resize(1280, 800)
        window.splitter.setSizes([280, 1000])
    return _run(app, window, window.banner, args.screenshot)


def run_standalone(path: str, screenshot: str | None = None) -> int:
    """`traceviewer open FILE`: a window with just the detail view of a trace file."""
    app = _application_for(screenshot)
    from PySide6.QtWidgets import QMainWindow

    from traceviewer.ui.trace.trace_view import TraceView

    window = QMainWindow()
    view = TraceView()
    window.setCentralWidget(view)
    window.setWindowTitle(f"{Path(path).name} – Trace Viewer")
    window.statusBar().show()
    view.status_message.connect(window.statusBar().showMessage)
    window.resize(1500, 900)
    view.open_file(path)
    return _run(app, window, view.banner, screenshot)


def _application_for(screenshot: str | None) -> QApplication:
    """The QApplication, offscreen for a screenshot; Ctrl+C and SIGTERM close it (and so stop
    a demo server)."""
    if screenshot:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    app = application()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: app.quit())
    # Qt's idle event loop runs no Python, so a timer wakes the interpreter to notice a signal.
    wake = QTimer(app, interval=250)
    wake.timeout.connect(lambda: None)
    wake.start()
    return app


def _run(app: QApplication, window: QWidget, banner: ErrorBanner, screenshot: str | None) -> int:
    """Show `window` and run the event loop; with `screenshot`, save the window as PNG once its
    data has loaded and exit (1 if it did not load or `banner` shows an error)."""
    window.show()
    if not screenshot:
        code = app.exec()
        finish_background_tasks()
        return code
    outcome = {}

    def saved(loaded: bool) -> None:
        outcome["ok"] = loaded and not banner.isVisible()
        if banner.isVisible():
            print(f"traceviewer: {banner.label.text()}", file=sys.stderr)
        window.close()
        app.quit()

    capture_when_loaded(window, screenshot, saved)
    app.exec()
    finish_background_tasks()
    return 0 if outcome.get("ok") else 1
