"""Screenshots of the trace detail view (offscreen) for the README:

    .venv/bin/python bench/trace_screenshots.py [--url URL] [--out docs/screenshots]

Without --url it starts a local `mlflow server` and seeds it with the demo's test profile. Saves
trace-detail.png (a seeded chat trace whose user wrote HTML, with the chat model's conversation
in the inspector) and trace-10k.png (the 10,000-span agent trace of `big-traces`). With
--schemes light,dark it saves that chat trace as trace-view-<scheme>.png in each scheme instead.
With --compare it saves trace-compare.png (the compare view on the two chat traces of one
conversation flow with the most spans that differ in shape) and filter-or-groups.png (the trace
table under a filter of two OR groups) instead."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QEventLoop, QThreadPool, QTimer
from PySide6.QtWidgets import QApplication

from traceviewer.core import filter_groups, filters
from traceviewer.core.cache import TraceCache
from traceviewer.core.cancel import CancelToken
from traceviewer.core.client import RestClient
from traceviewer.core.trace_compare import compare
from traceviewer.core.trace_diff import Status
from traceviewer.ui.common import palette
from traceviewer.ui.trace.compare_view import CompareView
from traceviewer.ui.trace.trace_view import TraceView

UNTRUSTED = "<script>"


def find_traces(client: RestClient) -> tuple[str, str]:
    """(a chat trace with HTML in its request, the 10k-span trace)."""
    prod = client.get_experiment_by_name("/Shared/production-genai-app").experiment_id
    chats, _ = client.search_traces([prod], max_results=500)
    chat = next(t.trace_id for t in chats if t.state == "OK" and t.request_preview
                and UNTRUSTED in t.request_preview)
    big = client.get_experiment_by_name("big-traces").experiment_id
    bigs, _ = client.search_traces([big], filter="attributes.client_request_id = 'big-10000'")
    return chat, bigs[0].trace_id


def settle(ms: int = 300) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def shoot(view: TraceView, client: RestClient, trace_id: str, path: Path, span_type: str | None,
          tab: str | None) -> None:
    loop = QEventLoop()
    view.trace_shown.connect(loop.quit)
    view.open_trace(client, trace_id)
    loop.exec()
    view.trace_shown.disconnect(loop.quit)
    if span_type:
        node = next(i for i, s in enumerate(view.trace.spans) if s.span_type == span_type)
        view.tree.select_node(node)
    if tab:
        tabs = view.inspector.tabs
        tabs.setCurrentIndex(next(i for i in range(tabs.count()) if tabs.tabText(i) == tab))
    settle(600)  # the search, if any, runs after a short typing delay
    while view.match_label.text() == "searching…":
        settle(100)
    view.grab().save(str(path))
    print(f"saved {path}")


def flow_pair(client: RestClient, cache: TraceCache) -> tuple[str, str]:
    """Two OK chat traces of one conversation flow (same trace name and session) with the most
    spans, preferring a pair whose span trees differ in shape."""
    prod = client.get_experiment_by_name("/Shared/production-genai-app").experiment_id
    infos = [t for t in client.search_traces([prod], max_results=500)[0] if t.state == "OK"]
    sizes = {t.trace_id: len(client.get_trace(t.trace_id).spans) for t in infos}
    best: tuple[tuple[bool, int], tuple[str, str]] | None = None
    for i, a in enumerate(infos):
        for b in infos[i + 1:]:
            if (a.name, a.session) != (b.name, b.session):
                continue
            older, newer = sorted((a, b), key=lambda t: t.request_time_ms)
            counts = compare(client, older.trace_id, newer.trace_id, cache,
                             CancelToken()).summary.counts
            score = (counts[Status.ONLY_A] + counts[Status.ONLY_B] > 0,
                     min(sizes[a.trace_id], sizes[b.trace_id]))
            if best is None or score > best[0]:
                best = score, (older.trace_id, newer.trace_id)
    assert best is not None, "no two seeded traces of one conversation flow"
    return best[1]


def shoot_compare(client: RestClient, cache: TraceCache, path: Path) -> None:
    a, b = flow_pair(client, cache)
    view = CompareView(cache=cache)
    view.resize(1600, 900)
    view.show()
    loop = QEventLoop()
    view.compared_shown.connect(loop.quit)
    view.compare(client, a, b)
    loop.exec()
    settle(600)  # the selected pair's text diff comes from the background
    view.grab().save(str(path))
    print(f"saved {path}")


def shoot_filter_groups(client: RestClient, path: Path) -> None:
    """The trace browser under `(state ERROR) OR (a user AND a tag)`, builder shown."""
    from traceviewer.core.app_model import AppModel
    from traceviewer.core.workspaces import Workspace
    from traceviewer.ui.browse.browser import TraceBrowser

    experiment = client.get_experiment_by_name("/Shared/production-genai-app")
    infos, _ = client.search_traces([experiment.experiment_id], max_results=100)
    tagged = next(t for t in infos if t.user and t.tags.get("customer"))
    text = filter_groups.build([
        [filters.status("ERROR")],
        [filters.user(tagged.user), filters.Clause("tags.customer", "=", tagged.tags["customer"])]])
    model = AppModel()
    browser = TraceBrowser(model)
    browser.resize(1500, 760)
    browser.show()
    model.set_workspace(Workspace("demo", client.host))
    model.set_client(client)
    model.set_experiment(experiment, filter_text=text)
    while browser.model.loading or not browser.model.rows:
        settle(200)
    settle(300)
    browser.grab().save(str(path))
    print(f"saved {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a seeded MLflow server (default: start and seed one)")
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--compare", action="store_true",
                        help="save trace-compare.png and filter-or-groups.png")
    parser.add_argument("--schemes", help="comma-separated colour schemes (light, dark): save "
                                          "trace-view-<scheme>.png for each")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):  # no state kept
            os.environ[var] = str(Path(tmp) / var.lower())
        server = None
        if not args.url:
            from traceviewer.demo.server import MlflowServer

            server = MlflowServer(Path(tmp) / "server").start()
            subprocess.run([sys.executable, "-m", "traceviewer.demo.seed", "--tracking-uri",
                            server.url, "--profile", "test"], check=True)
        try:
            with RestClient(args.url or server.url) as client:
                if args.compare:
                    cache = TraceCache(Path(tmp) / "cache")
                    shoot_compare(client, cache, out / "trace-compare.png")
                    shoot_filter_groups(client, out / "filter-or-groups.png")
                    return 0
                chat, big = find_traces(client)
                view = TraceView(cache=TraceCache(Path(tmp) / "cache"))
                view.resize(1600, 900)
                view.show()
                for scheme in args.schemes.split(",") if args.schemes else ():
                    palette.apply_scheme(app, scheme.strip())
                    shoot(view, client, chat, out / f"trace-view-{scheme.strip()}.png",
                          "CHAT_MODEL", "Chat")
                if not args.schemes:
                    shoot(view, client, chat, out / "trace-detail.png", "CHAT_MODEL", "Chat")
                    view.search.setText("timed out")
                    shoot(view, client, big, out / "trace-10k.png", None, None)
        finally:
            QThreadPool.globalInstance().waitForDone()
            if server is not None:
                server.stop()
    app.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
