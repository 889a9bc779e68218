"""Benchmark: opening big traces in the detail view (offscreen). Prints figures; not a test.

    .venv/bin/python bench/open_trace_gui.py [--url URL] [--sizes 1000,10000,100000]

Without --url it starts a local `mlflow server` in a temporary directory. It logs one agent-loop
trace per size with the demo's seeding code (or reuses one logged before, found by its client
request id `big-N`), then for each trace:
  - fetches it with `RestClient.get_trace_raw` and with `MlflowClient().get_trace` (comparison),
  - in a fresh process: hands the response bytes to `TraceView.open_trace` and times until the
    tree and the timeline are painted; then reopens it from the on-disk cache the same way;
    a 5 ms heartbeat QTimer on the GUI thread records the longest stall, until painted and then
    while the background work a load leaves (caching the trace, freeing the previous one)
    runs; prints peak RSS.
Targets: 10k spans <= 0.5 s, 100k <= 5 s, cache reopen of 10k <= 0.3 s, no stall > 100 ms,
100k spans under 1 GB RSS."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXPERIMENT = "bench-open-trace-gui"
HEARTBEAT_MS = 5


class BytesClient:
    """A RestClient whose trace download hands back response bytes already in memory: the
    view's loader then measures parsing, caching, layout and painting, not the network. The
    rest (the trace's info and assessments, read beside the spans) goes to the server."""

    def __init__(self, url: str, raw: bytes):
        from traceviewer.core.client import RestClient

        self._client, self._raw = RestClient(url), raw

    def get_trace_raw(self, trace_id: str, token=None, progress=None) -> bytes:
        return self._raw

    def __getattr__(self, name: str):
        return getattr(self._client, name)


def peak_rss_mb() -> int:
    """This process's peak RSS. On Linux from VmHWM: ru_maxrss of a child counts its parent's
    RSS at fork time (the parent holds the SDK's copy of the trace)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(kb) // 1024


def gui_child(url: str, raw_path: str, trace_id: str, cache_dir: str) -> None:
    """Runs in a fresh process: open from bytes, then from the cache; print one JSON line."""
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import QElapsedTimer, QEvent, QEventLoop, QObject, QThreadPool, QTimer

    from traceviewer.core.cache import TraceCache
    from traceviewer.ui.app import application
    from traceviewer.ui.trace.trace_view import TraceView

    app = application()  # as the app sets it up
    view = TraceView(cache=TraceCache(Path(cache_dir)))
    view.resize(1600, 1000)
    view.show()
    app.processEvents()
    client = BytesClient(url, Path(raw_path).read_bytes())

    # Worst gap between heartbeats, in wall time and in GUI-thread CPU time. On a loaded machine
    # the wall gap also counts the time other processes ran; the CPU gap is the GUI thread's own
    # longest stretch of work (waits for the GIL, bounded by the loader's short holds, excluded).
    clock, worst, cpu = QElapsedTimer(), [0, 0.0], [0.0]
    heartbeat = QTimer(interval=HEARTBEAT_MS)

    def beat() -> None:
        worst[0] = max(worst[0], clock.restart() - HEARTBEAT_MS)
        now = time.thread_time()
        worst[1] = max(worst[1], now - cpu[0])
        cpu[0] = now

    heartbeat.timeout.connect(beat)

    class PaintWatch(QObject):
        """Quits `loop` once the tree and the timeline have both painted after `arm()`."""

        def __init__(self, widgets):
            super().__init__()
            self.widgets, self.painted, self.loop = set(widgets), set(), None
            for widget in widgets:
                widget.installEventFilter(self)

        def arm(self, loop: QEventLoop) -> None:
            self.painted, self.loop = set(), loop

        def eventFilter(self, obj, event):
            if event.type() == QEvent.Paint and self.loop is not None:
                self.painted.add(obj)
                if self.painted == self.widgets:
                    QTimer.singleShot(0, self.loop.quit)  # after this paint is done
                    self.loop = None
            return False

    watch = PaintWatch([view.tree.viewport(), view.timeline.bars])

    def until_background_done() -> tuple[float, int]:
        """Keep the event loop and the heartbeat running until the work a load leaves behind
        (caching the trace, freeing the previous one) is done; its duration and longest stall."""
        worst[:] = [0, 0.0]
        t0 = time.perf_counter()
        idle = QEventLoop()
        poll = QTimer(interval=20)
        poll.timeout.connect(lambda: view.cache.has(client.host, trace_id) and
                             QThreadPool.globalInstance().activeThreadCount() == 0 and
                             idle.quit())
        QTimer.singleShot(500, poll.start)  # background work starts after the first paint
        idle.exec()
        poll.stop()
        heartbeat.stop()
        return time.perf_counter() - t0, worst[0]

    def timed_open(use_cache: bool) -> tuple[float, float, int, float, float, int]:
        loop = QEventLoop()
        view.trace_shown.connect(lambda _: watch.arm(loop))
        view.load_failed.connect(loop.quit)
        worst[:] = [0, 0.0]
        clock.start()
        heartbeat.start()
        t0, c0 = time.perf_counter(), time.process_time()
        cpu[0] = time.thread_time()
        view.open_trace(client, trace_id, use_cache=use_cache)
        loop.exec()  # until the tree and the timeline have painted the new trace
        elapsed, cpu_s = time.perf_counter() - t0, time.process_time() - c0
        view.trace_shown.disconnect()
        view.load_failed.disconnect(loop.quit)
        if view.trace is None or len(view.trace.spans) == 0:
            raise SystemExit(f"open failed: {view.banner.label.text()}")
        painted = worst[0], worst[1] * 1000
        return elapsed, cpu_s, *painted, *until_background_done()

    first = timed_open(use_cache=False)
    # As when the user comes back to the trace later: the first one is freed by then.
    cached = timed_open(use_cache=True)
    if not view.header.cached.isVisible():
        raise SystemExit("the reopen did not come from the cache")
    rss_mb = peak_rss_mb()
    print(json.dumps({"spans": len(view.trace.spans), "open": first[:2], "cached": cached[:2],
                      "stall_ms": [first[2], cached[2]],
                      "stall_cpu_ms": [round(first[3]), round(cached[3])],
                      "after_s": [round(first[4], 2), round(cached[4], 2)],
                      "after_stall_ms": [first[5], cached[5]], "rss_mb": rss_mb}))


def find_or_log(url: str, num_spans: int) -> str:
    """The id of this size's bench trace, logging it with the demo's seeding code if needed."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.tracing.client import TracingClient

    from traceviewer.demo.seed import seed_big_trace

    sdk = MlflowClient(tracking_uri=url)
    exp = sdk.get_experiment_by_name(EXPERIMENT)
    exp_id = exp.experiment_id if exp else sdk.create_experiment(EXPERIMENT)
    request_id = f"big-{num_spans}"  # as seed_big_trace names it
    found = sdk.search_traces(locations=[exp_id], include_spans=False,
                              filter_string=f"attributes.client_request_id = '{request_id}'")
    if found:
        return found[0].info.trace_id
    mlflow.set_tracking_uri(url)
    seed_big_trace(TracingClient(url), exp_id, num_spans, time.time_ns() - 3600 * 10**9)
    found = sdk.search_traces(locations=[exp_id], include_spans=False,
                              filter_string=f"attributes.client_request_id = '{request_id}'")
    return found[0].info.trace_id


def open_in_view(url: str, raw: bytes, trace_id: str, tmp: Path) -> dict:
    """Open the trace (its response bytes `raw`) in the detail view in a fresh process, then
    reopen it from the cache; the figures of `gui_child` (times, longest GUI stalls, RSS)."""
    raw_path = tmp / f"{trace_id}.json"
    raw_path.write_bytes(raw)
    cache_dir = tmp / f"cache-{trace_id}"
    out = subprocess.run([sys.executable, __file__, "--child", url, str(raw_path), trace_id,
                          str(cache_dir)], check=True, capture_output=True, text=True)
    raw_path.unlink()
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_size(url: str, num_spans: int, tmp: Path) -> None:
    from mlflow import MlflowClient

    from traceviewer.core.client import RestClient

    t0 = time.perf_counter()
    trace_id = find_or_log(url, num_spans)
    logged = time.perf_counter() - t0
    with RestClient(url, timeout=600) as client:  # a loaded server takes long over 100k spans
        t0 = time.perf_counter()
        raw = client.get_trace_raw(trace_id)
        ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    MlflowClient(tracking_uri=url).get_trace(trace_id)
    theirs = time.perf_counter() - t0
    r = open_in_view(url, raw, trace_id, tmp)
    print(f"{r['spans']:>7,} spans ({len(raw) / 1e6:5.1f} MB; logged/found in {logged:5.1f} s)"
          f" | download {ours:6.2f} s, MlflowClient().get_trace {theirs:6.2f} s"
          f" | bytes -> tree+timeline painted {r['open'][0]:6.3f} s"
          f" (process CPU {r['open'][1]:.3f} s)"
          f" | reopen from cache {r['cached'][0]:6.3f} s (process CPU {r['cached'][1]:.3f} s)"
          f" | longest GUI stall (open, reopen) {r['stall_ms']} ms"
          f" (GUI-thread CPU {r['stall_cpu_ms']} ms)"
          f" | then in the background (caching, freeing) for {r['after_s']} s,"
          f" longest stall {r['after_stall_ms']} ms"
          f" | peak RSS {r['rss_mb']} MB",
          flush=True)


def main() -> int:
    if sys.argv[1:2] == ["--child"]:
        gui_child(*sys.argv[2:6])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="reuse a running MLflow server instead of starting one")
    parser.add_argument("--sizes", default="1000,10000,100000",
                        help="span counts, comma-separated")
    args = parser.parse_args()
    os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"
    from traceviewer.demo.server import MlflowServer

    with tempfile.TemporaryDirectory() as tmp:
        server = None if args.url else MlflowServer(Path(tmp) / "server").start()
        try:
            for size in (int(s) for s in args.sizes.split(",")):
                bench_size(args.url or server.url, size, Path(tmp))
        finally:
            if server is not None:
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
