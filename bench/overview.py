"""Benchmark: the Overview tab on 10,000 traces (offscreen). Prints figures; not a test.

    .venv/bin/python bench/overview.py [--url http://127.0.0.1:5000] [--traces 10000]
                                       [--runs 3] [--group-by tag:environment]

Without --url it starts a local `mlflow server` in a temporary directory and makes sure the
experiment `bench-browse-10k` holds --traces chat traces (bench/browse.py seeds them over OTLP
and reuses them on a later run). Then, in a fresh process per path, with the real `OverviewView`
shown at 1280x900 over all time, grouped by --group-by:
  - metrics: the server's trace metrics endpoint (`POST /api/3.0/mlflow/traces/metrics`);
  - search: client-side aggregation of search pages (what a Databricks workspace gets).
For each it prints the time from the request to the first chart painted (partial numbers) and to
the final numbers painted: cold (empty cache) and the median of --runs later reloads (which show
the cached numbers at once, then refresh), and the longest GUI-thread stall of the whole run
after the tab is shown (a 5 ms heartbeat; not counting time the thread waited for a CPU; the
first paint of the shown tab is timed on its own). Target: no stall > 50 ms."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from browse import EXPERIMENT, STALL_TARGET_MS, Heartbeat, ensure_traces

PATHS = ("metrics", "search")


def gui_child(url: str, experiment_id: str, path: str, group_by: str, runs: int) -> None:
    """Runs in a fresh process; prints one JSON line of figures."""
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import QEventLoop, QTimer

    from traceviewer.core.app_model import AppModel
    from traceviewer.core.client import RestClient
    from traceviewer.ui.app import application
    from traceviewer.ui.overview.overview_view import ALL_TIME, OverviewView

    app = application()
    model = AppModel()
    view = OverviewView(model)
    view.path = path
    view.range_box.setCurrentText(ALL_TIME)
    view.group_box.setCurrentText(group_by)
    view.resize(1280, 900)
    client = RestClient(url)
    heartbeat = Heartbeat()

    def once() -> tuple[float, float, int]:
        """(s to the first chart of fresh numbers, s to the final numbers, traces)."""
        marks: dict[str, float] = {}
        loop = QEventLoop()

        def shown(result) -> None:
            if result is None or result.from_cache or result.empty:
                return
            key = "final" if result.complete else "first"

            def drawn() -> None:
                # The charts draw in turns of the event loop; a mark once the last is painted.
                if view.charts.drawing:
                    QTimer.singleShot(0, drawn)
                    return
                marks.setdefault(key, time.perf_counter())
                if key == "final":
                    loop.quit()

            QTimer.singleShot(0, drawn)

        view.numbers_changed.connect(shown)
        t0 = time.perf_counter()
        view.reload()
        loop.exec()
        view.numbers_changed.disconnect(shown)
        app.processEvents()
        final = marks["final"] - t0
        first = marks.get("first", marks["final"]) - t0
        return first, final, sum(c.traces for c in view.result.totals)

    # Showing the tab paints its five empty charts at once: timed on its own; the heartbeat
    # measures what follows (connecting, then filling in).
    t0 = time.perf_counter()
    view.show()
    app.processEvents()
    shown_ms = (time.perf_counter() - t0) * 1000
    heartbeat.start()
    model.set_client(client)
    model.set_experiment(client.get_experiment(experiment_id))  # the first reload starts here
    view.runner.cancel()
    view.cache.directory.mkdir(parents=True, exist_ok=True)
    for f in view.cache.directory.glob("*.json"):
        f.unlink()  # cold: nothing cached
    cold = once()
    warm = [once() for _ in range(runs)]
    heartbeat.stop()
    wall, cpu, wait = heartbeat.worst()
    print(json.dumps({"path": view.result.path, "cold": cold, "warm": warm,
                      "stall": [wall, cpu, wait], "beats": len(heartbeat.gaps),
                      "show_ms": shown_ms}), flush=True)
    client.close()
    # PySide6 6.12 can abort in interpreter teardown after a long run ("bool_dealloc", as
    # bench/browse.py notes); the figures are out, so skip the teardown.
    os._exit(0)


def run_child(url: str, experiment_id: str, path: str, group_by: str, runs: int,
              home: Path) -> dict:
    env = {**os.environ, **{k: str(home / path / k.lower()) for k in (
        "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")}}
    out = subprocess.run([sys.executable, __file__, "--child", url, experiment_id, path,
                          group_by, str(runs)], capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(f"the GUI process failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(r: dict) -> None:
    first_cold, final_cold, traces = r["cold"]
    firsts = [w[0] for w in r["warm"]] or [first_cold]
    finals = [w[1] for w in r["warm"]] or [final_cold]
    wall, cpu, wait = r["stall"]
    ok = "ok" if wall - wait <= STALL_TARGET_MS else "MISSED"
    print(f"{r['path']}: {traces:,} traces")
    print(f"  first chart: cold {first_cold * 1000:.0f} ms, median of reloads "
          f"{statistics.median(firsts) * 1000:.0f} ms")
    print(f"  final numbers: cold {final_cold * 1000:.0f} ms, median of reloads "
          f"{statistics.median(finals) * 1000:.0f} ms (max {max(finals) * 1000:.0f} ms)")
    print(f"  longest GUI-thread stall: {wall - wait:.0f} ms not counting {wait:.0f} ms waiting "
          f"for a CPU ({wall:.0f} ms wall, {cpu:.0f} ms GUI-thread CPU; {r['beats']} beats) "
          f"(target <= {STALL_TARGET_MS} ms: {ok}); showing the empty tab before it "
          f"{r['show_ms']:.0f} ms")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        url, experiment_id, path, group_by, runs = sys.argv[2:7]
        gui_child(url, experiment_id, path, group_by, int(runs))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="reuse a running MLflow server instead of starting one")
    parser.add_argument("--traces", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--group-by", default="tag:environment")
    args = parser.parse_args()

    from traceviewer.demo.server import MlflowServer

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        server = None if args.url else MlflowServer(Path(tmp) / "server").start()
        url = args.url or server.url
        try:
            experiment_id, logged, seconds = ensure_traces(url, args.traces)
            print(f"experiment {EXPERIMENT} ({experiment_id}): {args.traces:,} traces; "
                  f"logged {logged:,} now in {seconds:.1f} s; grouped by {args.group_by}")
            for path in PATHS:
                report(run_child(url, experiment_id, path, args.group_by, args.runs,
                                 Path(tmp)))
        finally:
            if server is not None:
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
