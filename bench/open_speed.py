"""Benchmark: opening a trace and starting the app, as whole processes, next to what the server
and a bare PySide6 window take. Prints figures; not a test.

    .venv/bin/python bench/open_speed.py [--url URL] [--sizes 1000,10000,100000] [--runs 3]

Without --url it starts a local `mlflow server` in a temporary directory. For each size it uses
the agent-loop trace `big-N` of bench/open_trace_gui.py (logging it if needed), then prints the
medians of `--runs` runs of:
  - the raw `traces/get` download with curl (the server's time), each run just before a cold
    open,
  - `traceviewer --workspace W --trace ID --screenshot` with an empty cache (cold) and with the
    trace cached (warm): the whole process's wall time, and the time from launch until the
    trace's tree and timeline were painted,
  - the longest GUI-thread stall while the detail view opens the trace and reopens it from the
    cache, until painted and then while the caching and freeing it leaves run
    (bench/open_trace_gui.py's measurement, in a fresh process each run),
and startup until the main window's first paint (`traceviewer --workspace W --screenshot`)
next to a bare PySide6 window with a table. The app runs with its own config and cache
directories (a workspace added with `traceviewer workspace add`), its modules compiled to
bytecode first as an installed copy's are.
Targets: cold open <= 1.2x the raw download (10k and 100k), warm open of 10k <= 0.5 s,
startup to first paint <= 3x the bare window, no GUI stall over 50 ms at 100k."""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
WORKSPACE = "bench"


def app_child(launched: float, out: str, argv: list[str]) -> int:
    """Runs the app's own entry point with `argv`, recording (in seconds since `launched`) the
    main window's first paint and the first paint of the trace's tree and timeline."""
    from PySide6.QtCore import QEvent, QObject

    import traceviewer.ui.app as app_module
    from traceviewer.cli import main

    marks: dict[str, float] = {}
    run = app_module._run

    class FirstPaint(QObject):
        def __init__(self, name, widgets):
            super().__init__()
            self.name, self.left = name, set(widgets)
            for widget in widgets:
                widget.installEventFilter(self)

        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.Paint and obj in self.left:
                self.left.discard(obj)
                if not self.left and self.name not in marks:
                    marks[self.name] = time.time() - launched
            return False

    keep = []

    def watched_run(app, window, banner, screenshot):
        keep.append(FirstPaint("first_paint", [window]))

        def shown(view):
            marks.setdefault("trace_shown", time.time() - launched)
            keep.append(FirstPaint("trace_painted",
                                   [view.tree.viewport(), view.timeline.bars]))

        def tab_changed(_index):  # the Trace tab's view is built when first shown
            view = window.tabs.currentWidget()
            if hasattr(view, "trace_shown") and view not in keep:
                keep.append(view)
                view.trace_shown.connect(lambda _trace: shown(view))

        window.tabs.currentChanged.connect(tab_changed)
        return run(app, window, banner, screenshot)

    app_module._run = watched_run
    code = main(argv)
    marks["exit"] = time.time() - launched
    Path(out).write_text(json.dumps(marks))
    return code


def bare_child(launched: float, out: str) -> int:
    """A bare PySide6 window with a table: shown, first paint recorded, grabbed."""
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication, QMainWindow, QTableWidget

    app = QApplication([])
    window = QMainWindow()
    window.setCentralWidget(QTableWidget(20, 5))
    window.resize(1280, 800)
    marks: dict[str, float] = {}

    class Watch(QObject):
        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.Paint and "first_paint" not in marks:
                marks["first_paint"] = time.time() - launched
                QTimer.singleShot(0, lambda: (window.grab(), app.quit()))
            return False

    watch = Watch()
    window.installEventFilter(watch)
    window.show()
    app.exec()
    marks["exit"] = time.time() - launched
    Path(out).write_text(json.dumps(marks))
    return 0


def timed(args: list[str], env: dict[str, str], tmp: Path) -> dict[str, float]:
    """Run a child (app or bare), return its marks and its whole wall time."""
    out = tmp / "marks.json"
    out.unlink(missing_ok=True)
    t0 = time.time()
    proc = subprocess.run([sys.executable, __file__, args[0], repr(t0), str(out), *args[1:]],
                          env=env, capture_output=True, text=True, timeout=900)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{args} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    marks = json.loads(out.read_text())
    marks["wall"] = wall
    return marks


def curl_s(url: str, trace_id: str) -> float:
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{time_total}",
         f"{url}/api/3.0/mlflow/traces/get?trace_id={trace_id}&allow_partial=true"],
        check=True, capture_output=True, text=True, timeout=900)
    return float(out.stdout)


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> int:
    if sys.argv[1:2] == ["--app-child"]:
        return app_child(float(sys.argv[2]), sys.argv[3], sys.argv[4:])
    if sys.argv[1:2] == ["--bare-child"]:
        return bare_child(float(sys.argv[2]), sys.argv[3])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="reuse a running MLflow server instead of starting one")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"
    sys.path.insert(0, str(BENCH))
    from open_trace_gui import find_or_log, open_in_view

    import traceviewer
    from traceviewer.core.client import RestClient
    from traceviewer.demo.server import MlflowServer

    compileall.compile_dir(Path(traceviewer.__file__).parent, quiet=1)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        server = None if args.url else MlflowServer(tmp / "server").start()
        url = args.url or server.url
        home = tmp / "home"
        env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
               "XDG_CACHE_HOME": str(home / "cache"), "XDG_DATA_HOME": str(home / "data"),
               "XDG_STATE_HOME": str(home / "state"), "QT_QPA_PLATFORM": "offscreen",
               "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
        subprocess.run([sys.executable, "-m", "traceviewer", "workspace", "add", WORKSPACE,
                        "--host", url, "--auth", "none"], env=env, check=True,
                       capture_output=True)
        shot = str(tmp / "shot.png")
        try:
            print(f"medians of {args.runs} runs; times in s; 'painted' = launch until the "
                  "trace's tree and timeline are painted, 'process' = the whole "
                  "--screenshot process", flush=True)
            for size in (int(s) for s in args.sizes.split(",")):
                trace_id = find_or_log(url, size)
                raws, cold, warm = [], [], []
                for _ in range(args.runs):  # the server's speed drifts: each cold run beside a curl
                    raws.append(curl_s(url, trace_id))
                    shutil.rmtree(home / "cache", ignore_errors=True)
                    cold.append(timed(["--app-child", "--workspace", WORKSPACE, "--trace",
                                       trace_id, "--screenshot", shot], env, tmp))
                raw = median(raws)
                for _ in range(args.runs):
                    warm.append(timed(["--app-child", "--workspace", WORKSPACE, "--trace",
                                       trace_id, "--screenshot", shot], env, tmp))
                c_paint = median([m["trace_painted"] for m in cold])
                c_wall = median([m["wall"] for m in cold])
                w_paint = median([m["trace_painted"] for m in warm])
                w_wall = median([m["wall"] for m in warm])
                with RestClient(url, timeout=900) as client:
                    body = client.get_trace_raw(trace_id)
                views = [open_in_view(url, body, trace_id, tmp) for _ in range(args.runs)]
                del body
                # Until painted, and then while the background work the load leaves runs.
                s_open, s_reopen = (median([max(v["stall_ms"][i], v["after_stall_ms"][i])
                                            for v in views]) for i in (0, 1))
                print(f"{size:>7,} spans | curl raw download {raw:6.2f}"
                      f" | cold: painted {c_paint:6.2f} ({c_paint / raw:.2f}x raw),"
                      f" process {c_wall:6.2f} ({c_wall / raw:.2f}x)"
                      f" | warm (cache): painted {w_paint:6.2f}, process {w_wall:6.2f}"
                      f" | longest GUI stall: open {s_open:.0f} ms, reopen from cache"
                      f" {s_reopen:.0f} ms", flush=True)
            start = [timed(["--app-child", "--workspace", WORKSPACE, "--screenshot", shot],
                           env, tmp) for _ in range(args.runs)]
            bare = [timed(["--bare-child"], env, tmp) for _ in range(args.runs)]
            s_paint, b_paint = (median([m["first_paint"] for m in start]),
                                median([m["first_paint"] for m in bare]))
            print(f"startup to the first painted window {s_paint:.2f}"
                  f" | bare PySide6 window with a table {b_paint:.2f}"
                  f" ({s_paint / b_paint:.2f}x)"
                  f" | whole --screenshot process {median([m['wall'] for m in start]):.2f}",
                  flush=True)
        finally:
            if server is not None:
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
