"""Benchmark: comparing two 10,000-span traces span by span. Prints figures; not part of the test
run.

    .venv/bin/python bench/trace_diff.py [--url http://127.0.0.1:5000] [--repeats 5]

Without --url it starts a local `mlflow server` in a temporary directory. It logs two 10,000-span
agent-loop traces (the demo seed's `big-traces` shape), reads both through our client, and
measures `core.trace_diff.diff` (median of the repeats) for: the two traces, a trace against
itself, and the first against a copy of the second with every 10th span's outputs changed, every
50th span's status failed and 100 leaves removed. Beside each diff: what the compare view adds
on top of it, `core.trace_compare.prepare` (merged trees, bars, summary) and showing the result in
`CompareView` (model reset, expansion, first difference selected, painted offscreen)."""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from mlflow.tracing.client import TracingClient
from PySide6.QtWidgets import QApplication

from traceviewer.core import trace_compare, trace_diff
from traceviewer.core.client import RestClient
from traceviewer.core.model import OUTPUTS_KEY, Trace
from traceviewer.core.search import iter_traces
from traceviewer.demo.seed import seed_big_trace
from traceviewer.demo.server import MlflowServer
from traceviewer.ui.trace.compare_view import CompareView

SPANS = 10_000
EXPERIMENT = "bench-trace-diff"


def log_two(url: str) -> tuple[str, str]:
    from mlflow import MlflowClient

    sdk = MlflowClient(url)
    found = sdk.get_experiment_by_name(EXPERIMENT)
    exp_id = found.experiment_id if found else sdk.create_experiment(EXPERIMENT)
    for k in range(2):
        seed_big_trace(TracingClient(url), exp_id, SPANS, time.time_ns() + k)
    with RestClient(url) as ours:
        infos = [i for page in iter_traces(ours, [exp_id]) for i in page][:2]
    return infos[0].trace_id, infos[1].trace_id


def mutated(trace: Trace) -> Trace:
    leaves = [i for i in range(len(trace.spans)) if trace.first_child[i] == -1][:100]
    drop = set(leaves)
    spans = []
    for i, span in enumerate(trace.spans):
        if i in drop:
            continue
        if i % 10 == 0:
            span = replace(span, attributes={**span.attributes, OUTPUTS_KEY: f"changed {i}"})
        if i % 50 == 0:
            span = replace(span, status="ERROR")
        spans.append(span)
    return Trace.build(trace.info, spans)


def median_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(url: str, repeats: int) -> None:
    a_id, b_id = log_two(url)
    with RestClient(url) as client:
        a, b = client.get_trace(a_id), client.get_trace(b_id)
    c = mutated(b)
    print(f"spans: A {len(a.spans):,}, B {len(b.spans):,}, B' {len(c.spans):,}")
    app = QApplication.instance() or QApplication([])
    view = CompareView()
    view.resize(1600, 900)
    view.show()

    def show(compared: trace_compare.Compared) -> None:
        view.show_compared(compared)
        view.repaint()
        app.processEvents()

    for label, other in (("A vs A", a), ("A vs B", b), ("A vs B' (mutated)", c)):
        seconds = median_s(lambda other=other: trace_diff.diff(a, other), repeats)
        result = trace_diff.diff(a, other)
        prepare_s = median_s(lambda result=result: trace_compare.prepare(result), repeats)
        compared = trace_compare.prepare(result)
        show_s = median_s(lambda compared=compared: show(compared), repeats)
        print(f"{label:20} diff median {seconds * 1000:5.0f} ms | prepare {prepare_s * 1000:5.0f}"
              f" ms | show {show_s * 1000:5.0f} ms  "
              + ", ".join(f"{v:,} {k}" for k, v in result.counts().items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.url:
        run(args.url, args.repeats)
        return
    with tempfile.TemporaryDirectory() as tmp, MlflowServer(Path(tmp)) as server:
        run(server.url, args.repeats)


if __name__ == "__main__":
    main()
