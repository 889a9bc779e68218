"""Benchmark: browsing 10,000 traces in the trace table (offscreen). Prints figures; not a test.

    .venv/bin/python bench/browse.py [--url http://127.0.0.1:5000] [--traces 10000]
                                     [--page-sizes 100,500] [--reloads 5]

Without --url it starts a local `mlflow server` in a temporary directory. It makes sure the
experiment `bench-browse-10k` holds --traces small chat traces (three spans each; session, user,
environment tags or metadata; request/response previews; some failures), logging the missing ones
with the MLflow SDK (found again by client request id, so a later run on the same server reuses
them). Then, in a fresh process per page size, with the real `TraceBrowser` shown at 1280x800:
  - first rows: from the first page's `search_traces` returning (the response arrived and was
    decoded) to the table viewport having painted the rows; cold (first query) and warm (the
    median and worst of --reloads reloads). Target <= 0.2 s.
  - 10,000 rows: from the reload to 10,000 rows loaded and painted, scrolling to the bottom and
    asking for more after every page, as a user holding End would.
  - the longest GUI-thread stall during the whole run: a 5 ms heartbeat QTimer notes every gap
    in wall time, the GUI thread's CPU time within it and the time it sat waiting for a CPU
    (on a machine busy with other work a wall gap also counts time other processes ran).
    Target no stall > 50 ms, not counting that wait.
  - peak RSS of that process (VmHWM: the bench process itself loads mlflow).
For comparison it times the same 10,000-trace search by the MLflow SDK
(`mlflow.search_traces(include_spans=False)`: `MlflowClient().search_traces` refuses
max_results > 500) and by `core.search.search_all`."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

EXPERIMENT = "bench-browse-10k"
HEARTBEAT_MS = 5
FIRST_ROWS_TARGET_S = 0.2
STALL_TARGET_MS = 50


# ---- seeding (parent process; imports mlflow) --------------------------------------------------

def _trace_id(turn) -> str:
    """A stable id per planned turn: a rerun after a partial seed overwrites, never duplicates."""
    return "tr-" + hashlib.md5(turn.request_id.encode()).hexdigest()


def _chat_spans(turn) -> list:
    """The three spans of one planned turn of the demo seed, as an app exporting over OTLP
    sends them: root `handle_chat` (inputs and outputs become the previews; trace tags,
    session and user ride on its attributes), a retriever and a chat model span. The server
    builds the trace from them; failed turns end in ERROR."""
    import random

    from mlflow.entities import Span

    from traceviewer.demo import chat_app
    from traceviewer.demo.seed import DEPLOYMENTS, _SpanWriter

    trace_id = _trace_id(turn)
    rng = random.Random(turn.request_id)
    writer = _SpanWriter(trace_id, rng)
    failed = turn.fault in (chat_app.FAULT_TOOL_TIMEOUT, chat_app.FAULT_RATE_LIMIT)
    slow = 10_000 if turn.fault == chat_app.FAULT_SLOW else 0
    deployment = DEPLOYMENTS[turn.deployment]
    tags = {"mlflow.traceName": "handle_chat", "environment": deployment.environment,
            "app_version": deployment.app_version, "deployment_id": deployment.deployment_id,
            "region": deployment.region}
    if deployment.context_in_metadata:  # as update_current_trace(session_id=, user=) records
        context = {"session.id": turn.session_id, "user.id": turn.user_id}
    else:
        tags.update({"mlflow.trace.session": turn.session_id, "mlflow.trace.user": turn.user_id})
        context = {}
    start = turn.time_ms * 1_000_000
    inputs = {"message": turn.message}
    answer = None if failed else f"Here is what I found about: {turn.message}"
    writer.add("handle_chat", "CHAIN", None, start, start, inputs, answer,
               attributes={**context, **{f"mlflow.traceTag.{k}": v for k, v in tags.items()}})
    root = writer.spans[0]["span_id"]
    t = start + rng.randint(1, 5) * 1_000_000
    end = t + rng.randint(20, 200) * 1_000_000
    writer.add("retrieve_documents", "RETRIEVER", root, t, end, {"query": turn.message},
               [{"page_content": "Support hours are 9-17 CET."}])
    tokens = {"input_tokens": rng.randint(200, 1_500), "output_tokens": rng.randint(20, 200)}
    tokens["total_tokens"] = tokens["input_tokens"] + tokens["output_tokens"]
    t, end = end, end + (rng.randint(300, 2_500) + slow) * 1_000_000
    writer.add("chat_completion", "CHAT_MODEL", root, t, end,
               {"messages": [{"role": "user", "content": turn.message}]},
               None if failed else {"choices": [{"message": {"content": answer}}]},
               error="rate limit exceeded" if failed else None,
               attributes={"mlflow.chat.tokenUsage": tokens, "mlflow.llm.model": chat_app.MODEL})
    writer.spans[0]["end_time_unix_nano"] = end
    if failed:
        writer.spans[0]["status"] = dict(writer.spans[-1]["status"])
    return [Span.from_dict(s) for s in writer.spans]


def ensure_traces(url: str, count: int, workers: int = 4, batch: int = 200
                  ) -> tuple[str, int, float]:
    """(experiment id, traces logged now, seconds) after making sure the bench experiment holds
    the `count` planned traces."""
    from concurrent.futures import ThreadPoolExecutor

    from mlflow import MlflowClient
    from mlflow.tracing.client import TracingClient

    from traceviewer.core.client import RestClient
    from traceviewer.core.search import search_all
    from traceviewer.demo.seed import Profile, _experiment_id, plan

    t0 = time.perf_counter()
    experiment_id = _experiment_id(MlflowClient(tracking_uri=url), EXPERIMENT)
    with RestClient(url) as client:
        have = {t.trace_id for t in search_all(client, [experiment_id], page_size=500)}
    profile = Profile(EXPERIMENT, traces=count, sessions=max(1, count // 10), users=18)
    todo = [t for t in plan(profile, int(time.time() * 1000)) if _trace_id(t) not in have]
    tracing = TracingClient(url)

    def log_batch(turns) -> None:
        # One OTLP request for the spans of many traces: the server creates each trace.
        tracing.log_spans(experiment_id, [s for turn in turns for s in _chat_spans(turn)])

    batches = [todo[i:i + batch] for i in range(0, len(todo), batch)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, future in enumerate([pool.submit(log_batch, b) for b in batches], 1):
            future.result()
            if i % 10 == 0:
                print(f"  seeding: {i * batch}/{len(todo)} traces", file=sys.stderr, flush=True)
    return experiment_id, len(todo), time.perf_counter() - t0


def sdk_search(url: str, experiment_id: str, count: int) -> tuple[float, int]:
    """(seconds, traces) for the MLflow SDK's search of `count` traces without spans."""
    import mlflow

    mlflow.set_tracking_uri(url)
    t0 = time.perf_counter()
    found = mlflow.search_traces(locations=[experiment_id], max_results=count,
                                 include_spans=False, return_type="list")
    return time.perf_counter() - t0, len(found)


def core_search(url: str, experiment_id: str, count: int, page_size: int) -> tuple[float, int]:
    """(seconds, traces) for `core.search.search_all` of `count` traces."""
    from traceviewer.core.client import RestClient
    from traceviewer.core.search import search_all

    with RestClient(url) as client:
        t0 = time.perf_counter()
        found = search_all(client, [experiment_id], page_size=page_size, limit=count)
        return time.perf_counter() - t0, len(found)


# ---- the GUI measurement (child process; no mlflow import) -------------------------------------

def _status_mb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    return 0


class TimedSearch:
    """The client as the browser sees it, noting when each `search_traces` call returns (on
    the worker thread, after the response was read and decoded)."""

    def __init__(self, client):
        self._client = client
        self.calls: list[tuple[float, float]] = []  # (start, return) perf_counter seconds

    def search_traces(self, *args, **kwargs):
        t0 = time.perf_counter()
        result = self._client.search_traces(*args, **kwargs)
        self.calls.append((t0, time.perf_counter()))
        return result


class Heartbeat:
    """A 5 ms QTimer on the GUI thread; each gap between two beats is noted as (wall ms,
    GUI-thread CPU ms, ms the GUI thread sat runnable waiting for a CPU), the last two from
    the thread's /proc schedstat. Wall minus the wait is what the stall would be with a free
    core: the GUI thread's own work plus lock (GIL) waits."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self._stat = Path(f"/proc/self/task/{threading.get_native_id()}/schedstat")
        self._timer = QTimer(interval=HEARTBEAT_MS)
        self._timer.timeout.connect(self._beat)
        self.gaps: list[tuple[float, float, float]] = []
        self._last = (0.0, 0, 0)  # perf_counter s, run ns, wait ns

    def _now(self) -> tuple[float, int, int]:
        run_ns, wait_ns, _slices = self._stat.read_text().split()
        return time.perf_counter(), int(run_ns), int(wait_ns)

    def start(self) -> None:
        self._last = self._now()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _beat(self) -> None:
        now = self._now()
        (t0, run0, wait0), self._last = self._last, now
        self.gaps.append(((now[0] - t0) * 1000 - HEARTBEAT_MS, (now[1] - run0) / 1e6,
                          (now[2] - wait0) / 1e6))

    def worst(self) -> tuple[float, float, float]:
        """The gap with the longest stall not counting the wait for a CPU."""
        return max(self.gaps, key=lambda g: g[0] - g[2])


def gui_child(url: str, experiment_id: str, page_size: int, count: int, reloads: int) -> None:
    """Runs in a fresh process; prints one JSON line of figures."""
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import QEvent, QEventLoop, QObject, QTimer

    from traceviewer.core.client import RestClient
    from traceviewer.ui.app import application
    from traceviewer.ui.browse.browser import TraceBrowser

    app = application()  # as the app sets it up
    browser = TraceBrowser()
    browser.page_size = page_size
    browser.resize(1280, 800)
    browser.show()
    app.processEvents()
    client = RestClient(url)
    timed = TimedSearch(client)

    def set_source(client, experiment) -> None:
        browser.app_model.set_client(client)
        browser.app_model.set_experiment(experiment)
    experiment = client.get_experiment(experiment_id)
    model, table = browser.model, browser.table
    rss_start = _status_mb("VmRSS")

    class PaintProbe(QObject):
        """Quits `loop` once the viewport has painted with more than `rows` rows; `painted`
        is the time that paint (and the rest of that window update) finished."""

        def __init__(self) -> None:
            super().__init__()
            self.rows: int | None = None
            self.painted = 0.0
            self.loop = QEventLoop()

        def arm(self, rows: int) -> None:
            self.rows, self.painted = rows, 0.0

        def eventFilter(self, obj, event) -> bool:
            if (event.type() == QEvent.Type.Paint and self.rows is not None
                    and model.rowCount() > self.rows):
                self.rows = None
                QTimer.singleShot(0, self._done)  # runs once this paint has completed
            return False

        def _done(self) -> None:
            self.painted = time.perf_counter()
            self.loop.quit()

    probe = PaintProbe()
    table.viewport().installEventFilter(probe)

    heartbeat = Heartbeat()
    heartbeat.start()

    def wait_painted(rows: int, start) -> float:
        probe.arm(rows)
        start()
        if probe.rows is not None:
            QTimer.singleShot(300_000, probe.loop.quit)  # a stuck load ends the bench
            probe.loop.exec()
        if not probe.painted:
            raise SystemExit(f"rows never painted: {browser.status.text()} "
                             f"{browser.banner.isVisible() and browser.banner.label.text()}")
        return probe.painted

    # First rows: cold (first query of this process), then warm reloads.
    first_rows = []
    for i in range(1 + reloads):
        timed.calls.clear()
        if i == 0:
            painted = wait_painted(0, lambda: set_source(timed, experiment))
        else:
            painted = wait_painted(0, browser.reload)
        first_rows.append((painted - timed.calls[0][1], timed.calls[0][1] - timed.calls[0][0]))
        app.processEvents()
    first_stall = heartbeat.worst()
    heartbeat.gaps.clear()

    # 10,000 rows: scroll to the bottom and ask for more after every page.
    def more(_n: int) -> None:
        if len(model.rows) < count:
            table.scrollToBottom()
            model.fetchMore()

    model.page_loaded.connect(more)
    timed.calls.clear()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    painted = wait_painted(count - 1, browser.reload)
    load_s, load_cpu = painted - t0, time.process_time() - cpu0
    heartbeat.stop()
    model.page_loaded.disconnect(more)
    requests = len(timed.calls)
    request_s = sum(b - a for a, b in timed.calls)
    gaps = heartbeat.gaps
    print(json.dumps({
        "page_size": page_size, "rows": len(model.rows),
        "first_rows": first_rows, "first_stall": first_stall,
        "load_s": load_s, "load_cpu_s": load_cpu, "requests": requests, "request_s": request_s,
        "stall": heartbeat.worst(), "worst_cpu": max(gaps, key=lambda g: g[1]),
        "worst_wall": sorted(g[0] for g in gaps)[-5:], "beats": len(gaps),
        "rss_start_mb": rss_start, "rss_end_mb": _status_mb("VmRSS"),
        "peak_rss_mb": _status_mb("VmHWM")}), flush=True)
    client.close()
    # PySide6 6.12 can abort in interpreter teardown after a long run ("bool_dealloc"); the
    # figures are out, so skip the teardown.
    os._exit(0)


def run_child(url: str, experiment_id: str, page_size: int, count: int, reloads: int,
              home: Path) -> dict:
    # The browser remembers nothing here (no workspace), but keep its user dirs apart anyway.
    env = {**os.environ, **{k: str(home / k.lower()) for k in (
        "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")}}
    out = subprocess.run([sys.executable, __file__, "--child", url, experiment_id,
                          str(page_size), str(count), str(reloads)],
                         capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(f"the GUI process failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(r: dict) -> None:
    cold, *warm = r["first_rows"]
    warm_s = [w[0] for w in warm] or [cold[0]]
    ok = "ok" if max(warm_s) <= FIRST_ROWS_TARGET_S else "MISSED"
    print(f"page size {r['page_size']}:")
    print(f"  first rows painted after the response: cold {cold[0] * 1000:.0f} ms, warm median "
          f"{statistics.median(warm_s) * 1000:.0f} ms, worst {max(warm_s) * 1000:.0f} ms of "
          f"{len(warm_s)} (target <= {FIRST_ROWS_TARGET_S * 1000:.0f} ms: {ok}); "
          f"the request itself {statistics.median(w[1] for w in r['first_rows']) * 1000:.0f} ms")
    print(f"  {r['rows']:,} rows loaded and painted in {r['load_s']:.2f} s "
          f"(process CPU {r['load_cpu_s']:.2f} s; {r['requests']} requests, "
          f"{r['request_s']:.2f} s inside search_traces on the worker thread)")
    wall, cpu, wait = r["stall"]
    stall_ok = "ok" if wall - wait <= STALL_TARGET_MS else "MISSED"
    print(f"  longest GUI-thread stall while loading: {wall - wait:.0f} ms not counting "
          f"{wait:.0f} ms waiting for a CPU ({wall:.0f} ms wall; {cpu:.0f} ms GUI-thread CPU) "
          f"(target <= {STALL_TARGET_MS} ms: {stall_ok})")
    wall, cpu, wait = r["worst_cpu"]
    print(f"  most GUI-thread CPU in one gap: {cpu:.0f} ms ({wall:.0f} ms wall); longest wall "
          f"gaps {', '.join(f'{g:.0f}' for g in r['worst_wall'])} ms over {r['beats']} beats; "
          f"while showing first rows {r['first_stall'][0] - r['first_stall'][2]:.0f} ms "
          f"({r['first_stall'][0]:.0f} ms wall)")
    print(f"  RSS {r['rss_start_mb']} MB before loading, {r['rss_end_mb']} MB with "
          f"{r['rows']:,} rows, peak {r['peak_rss_mb']} MB")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        url, experiment_id, page_size, count, reloads = sys.argv[2:7]
        gui_child(url, experiment_id, int(page_size), int(count), int(reloads))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="reuse a running MLflow server instead of starting one")
    parser.add_argument("--traces", type=int, default=10_000)
    parser.add_argument("--page-sizes", default="100,500")
    parser.add_argument("--reloads", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.page_sizes.split(",")]

    from traceviewer.demo.server import MlflowServer

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        server = None if args.url else MlflowServer(Path(tmp) / "server").start()
        url = args.url or server.url
        try:
            experiment_id, logged, seconds = ensure_traces(url, args.traces)
            print(f"experiment {EXPERIMENT} ({experiment_id}): {args.traces:,} traces; "
                  f"logged {logged:,} now in {seconds:.1f} s"
                  + (f" ({logged / seconds:.0f} traces/s)" if logged else " (reused)"))
            results = [run_child(url, experiment_id, size, args.traces, args.reloads, Path(tmp))
                       for size in sizes]
            for r in results:
                report(r)
            sdk_s, sdk_n = sdk_search(url, experiment_id, args.traces)
            print(f"MLflow SDK mlflow.search_traces(max_results={args.traces}, "
                  f"include_spans=False, return_type='list'): {sdk_n:,} traces in {sdk_s:.2f} s")
            for size in sizes:
                core_s, core_n = core_search(url, experiment_id, args.traces, size)
                print(f"core.search.search_all, page size {size}: {core_n:,} traces in "
                      f"{core_s:.2f} s (no GUI)")
            best = min(results, key=lambda r: r["load_s"])
            print(f"fastest to {args.traces:,} rows: page size {best['page_size']}")
        finally:
            if server is not None:
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
