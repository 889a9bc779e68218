"""Screenshots of the trace detail view (offscreen) for the README:

    .venv/bin/python bench/trace_screenshots.py [--url URL] [--out docs/screenshots]

Without --url it starts a local `mlflow server` and seeds it with the demo's test profile. Saves
trace-detail.png (a seeded chat trace whose user wrote HTML, with the chat model's conversation
in the inspector) and trace-10k.png (the 10,000-span agent trace of `big-traces`). With
--schemes light,dark it saves that chat trace as trace-view-<scheme>.png in each scheme instead."""

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

from traceviewer.core.cache import TraceCache
from traceviewer.core.client import RestClient
from traceviewer.ui.common import palette
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
    view.grab().save(str(path))
    print(f"saved {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a seeded MLflow server (default: start and seed one)")
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--schemes", help="comma-separated colour schemes (light, dark): save "
                                          "trace-view-<scheme>.png for each")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        if not args.url:
            from traceviewer.demo.server import MlflowServer

            server = MlflowServer(Path(tmp) / "server").start()
            subprocess.run([sys.executable, "-m", "traceviewer.demo.seed", "--tracking-uri",
                            server.url, "--profile", "test"], check=True)
        try:
            with RestClient(args.url or server.url) as client:
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
