"""Benchmark: opening big traces. Prints figures; not part of the test run.

    .venv/bin/python bench/open_trace.py [--url http://127.0.0.1:5000] [--repeats 5]

Without --url it starts a local `mlflow server` in a temporary directory. It logs one
10,000-span agent-loop trace (the demo seed's `big-traces` shape), then measures, on that trace:
  - fetch + parse by our core (`RestClient.get_trace`) and by `MlflowClient().get_trace`,
  - parse-only time (bytes already in memory -> `Trace`) for 10k spans and for a 100k-span
    payload synthesized from the real one (ten renamed copies of the subtree under one root),
    and for both with shuffled key order (the first span's keys reversed; every span's keys
    in a random order): these must stay within 1.5x of the usual shape,
  - peak RSS of a fresh process that parses the 100k-span payload (with and without touching
    every span's inputs)."""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient
from mlflow.tracing.client import TracingClient

from traceviewer.core.client import RestClient
from traceviewer.core.otlp import parse_trace
from traceviewer.core.search import find_by_client_request_id
from traceviewer.demo.seed import seed_big_trace
from traceviewer.demo.server import MlflowServer

EXPERIMENT = "bench-open-trace"
SPANS = 10_000


def log_big_trace(url: str) -> str:
    """Log a 10,000-span trace as the demo seed does; return its id."""
    client = MlflowClient(tracking_uri=url)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    exp_id = experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT)
    seed_big_trace(TracingClient(url), exp_id, SPANS, time.time_ns())
    with RestClient(url) as ours:
        # The seed marks its big traces with client request id big-<spans>: take the newest.
        return find_by_client_request_id(ours, [exp_id], f"big-{SPANS}")[0].trace_id


def wait_for_spans(client: RestClient, trace_id: str, timeout: float = 120.0) -> bytes:
    """The REST get response once all spans have arrived."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            raw = client.get_trace_raw(trace_id)
            if len(json.loads(raw)["trace"]["spans"]) >= SPANS:
                return raw
        except Exception:
            if time.monotonic() > deadline:
                raise
        time.sleep(1.0)


def median_time(fn, repeats: int) -> tuple[float, float]:
    """Median wall-clock and CPU seconds of `fn()` (CPU time is the steadier figure on a
    machine busy with other work)."""
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def synthesize(raw: bytes, copies: int) -> bytes:
    """A REST get payload with `copies` renamed copies of every non-root span (same root)."""
    doc = json.loads(raw)
    spans = doc["trace"]["spans"]
    root = next(s for s in spans if not s.get("parent_span_id"))
    out = [root]
    for c in range(copies):
        def ren(span_id: str, c: int = c) -> str:
            b = bytearray(base64.b64decode(span_id))
            b[0] ^= c + 1
            return base64.b64encode(bytes(b)).decode()
        for s in spans:
            if s is root:
                continue
            copy = dict(s, span_id=ren(s["span_id"]))
            if s["parent_span_id"] != root["span_id"]:
                copy["parent_span_id"] = ren(s["parent_span_id"])
            out.append(copy)
    doc["trace"]["spans"] = out
    return json.dumps(doc).encode()


def shuffled_keys(raw: bytes, every: bool) -> bytes:
    """The payload with the first span's keys reversed, or (`every`) each span's keys in a
    random order (seeded): shapes whose batch cuts do not match the first span's."""
    doc = json.loads(raw)
    spans = doc["trace"]["spans"]
    rng = random.Random(14)
    for i, span in enumerate(spans if every else spans[:1]):
        keys = list(span)
        rng.shuffle(keys) if every else keys.reverse()
        spans[i] = {k: span[k] for k in keys}
    return json.dumps(doc).encode()


# Memory figures come from /proc/self/status in the child: ru_maxrss would carry over the
# benchmark's own (much larger) peak, because Linux keeps it across exec.
RSS_CHILD = """
import gc, sys
from traceviewer.core.otlp import parse_trace

def mb(field):
    for line in open('/proc/self/status'):
        if line.startswith(field + ':'):
            return int(line.split()[1]) // 1024

data = open(sys.argv[1], 'rb').read()
if sys.argv[2] == 'baseline':
    print(0, mb('VmHWM'), mb('VmRSS'))
    sys.exit()
trace = parse_trace(data)
del data
if sys.argv[2] == 'touch':
    for s in trace.spans:
        s.inputs
gc.collect()
print(len(trace.spans), mb('VmHWM'), mb('VmRSS'))
"""


def memory_mb(path: Path, mode: str) -> tuple[int, int, int]:
    """(spans, peak MB, MB still held at the end) of a fresh process parsing `path`."""
    out = subprocess.run([sys.executable, "-c", RSS_CHILD, str(path), mode], check=True,
                         capture_output=True, text=True).stdout.split()
    return int(out[0]), int(out[1]), int(out[2])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="reuse a running MLflow server instead of starting one")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        server = None if args.url else MlflowServer(Path(tmp) / "server").start()
        url = args.url or server.url
        try:
            t0 = time.perf_counter()
            trace_id = log_big_trace(url)
            client = RestClient(url)
            raw = wait_for_spans(client, trace_id)
            print(f"logged {SPANS:,}-span trace {trace_id} in {time.perf_counter() - t0:.1f} s; "
                  f"REST payload {len(raw) / 1e6:.1f} MB")

            sdk = MlflowClient(tracking_uri=url)
            ours, _ = median_time(lambda: client.get_trace(trace_id), args.repeats)
            theirs, _ = median_time(lambda: sdk.get_trace(trace_id), args.repeats)
            print(f"fetch+parse 10k spans, median of {args.repeats}: "
                  f"traceviewer {ours:.3f} s, MlflowClient().get_trace {theirs:.3f} s "
                  f"({theirs / ours:.1f}x)")

            big = synthesize(raw, 10)
            n100 = len(parse_trace(big).spans)
            for label, payload, target, repeats in (
                    (f"{SPANS:,} spans", raw, 0.3, args.repeats),
                    (f"{n100:,} spans", big, 3.0, max(1, args.repeats // 2))):
                wall, cpu = median_time(lambda p=payload: parse_trace(p), repeats)
                _, floor = median_time(lambda p=payload: json.loads(p), repeats)
                print(f"parse only (bytes -> Trace), {label} ({len(payload) / 1e6:.0f} MB): "
                      f"{wall:.3f} s wall, {cpu:.3f} s CPU (target <= {target:g} s); "
                      f"json.loads alone {floor:.3f} s CPU")
                for shape, every in (("first span's keys reversed", False),
                                     ("every span's keys shuffled", True)):
                    odd = shuffled_keys(payload, every)
                    odd_wall, odd_cpu = median_time(lambda p=odd: parse_trace(p), repeats)
                    print(f"  {shape}: {odd_wall:.3f} s wall, {odd_cpu:.3f} s CPU = "
                          f"{odd_cpu / cpu:.2f}x the usual shape's CPU (target <= 1.5x)")

            path = Path(tmp) / "big.json"
            path.write_bytes(big)
            _, base, _ = memory_mb(path, "baseline")
            for mode in ("lazy", "touch"):
                n, peak, held = memory_mb(path, mode)
                what = "inputs of every span decoded" if mode == "touch" else "as opened"
                print(f"memory parsing {n:,} spans ({what}): peak RSS {peak} MB, {held} MB held "
                      f"after (a process holding just the payload bytes: {base} MB)")
            client.close()
        finally:
            if server is not None:
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
