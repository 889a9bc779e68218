"""The trace detail view on real traces from the test server (pytest-qt, offscreen): the span
tree against the SDK, tree <-> timeline selection, search, exceptions, untrusted text, orphans,
running traces, the on-disk cache and cancelling a load."""

from __future__ import annotations

import os
import threading
import time

import httpx
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QLabel

from tests.ui.waiting import background_work_ended
from traceviewer.core import fmt, trace_loading
from traceviewer.core.client import RestClient
from traceviewer.ui.trace.span_tree import FETCH_CHUNK, MISSING_PARENT, NAME
from traceviewer.ui.trace.trace_view import TraceView

PROD = "/Shared/production-genai-app"
BIG = "big-traces"
UNTRUSTED = "<b>bold</b> & <script>x</script>"
LOAD_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def ids(mlflow_server, sdk):
    """Trace ids of the seeded data the tests need."""
    prod = sdk.get_experiment_by_name(PROD).experiment_id
    big = sdk.get_experiment_by_name(BIG).experiment_id
    chats = sdk.search_traces(locations=[prod], max_results=500, include_spans=False)
    html = next(t for t in chats if t.info.request_preview and UNTRUSTED in
                t.info.request_preview)
    failed = next(t for t in chats if t.info.state == "ERROR")
    judged = next(t for t in chats if t.info.assessments)
    bigs = {t.info.client_request_id: t.info.trace_id
            for t in sdk.search_traces(locations=[big], include_spans=False)}
    return {"html": html.info.trace_id, "error": failed.info.trace_id,
            "judged": judged.info.trace_id, "big1k": bigs["big-1000"],
            "big10k": bigs["big-10000"]}


@pytest.fixture
def view(qtbot):
    v = TraceView()
    qtbot.addWidget(v)
    v.resize(1400, 800)
    v.show()
    return v


def open_and_wait(qtbot, view, client, trace_id, **kwargs):
    with qtbot.waitSignal(view.trace_shown, timeout=LOAD_TIMEOUT_MS) as blocker:
        view.open_trace(client, trace_id, **kwargs)
    assert blocker.args[0].info.trace_id == trace_id
    return blocker.args[0]


def node_of(view, span_id):
    return next(i for i, s in enumerate(view.trace.spans) if s.span_id == span_id)


def current_node(view):
    return view.model.node(view.tree.currentIndex())


# -- the span tree --------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["html", "error", "big1k"])
def test_tree_parent_links_equal_the_sdks(qtbot, view, client, sdk, ids, which):
    open_and_wait(qtbot, view, client, ids[which])
    model = view.model
    ours = {}
    for node, span in enumerate(view.trace.spans):
        parent = model.parent(model.index_of(node))
        ours[span.span_id] = view.trace.spans[model.node(parent)].span_id if \
            parent.isValid() else None
    theirs = {s.span_id: s.parent_id for s in sdk.get_trace(ids[which]).data.spans}
    assert ours == theirs


def test_children_are_listed_in_start_order_with_their_durations(qtbot, view, client, sdk, ids):
    open_and_wait(qtbot, view, client, ids["html"])
    spans = sdk.get_trace(ids["html"]).data.spans
    root = next(s for s in spans if s.parent_id is None)
    kids = sorted((s for s in spans if s.parent_id == root.span_id), key=lambda s: s.start_time_ns)
    top = view.model.index(0, NAME)
    assert top.data() == root.name
    shown = [view.model.index(r, NAME, top).data() for r in range(view.model.rowCount(top))]
    assert shown == [s.name for s in kids]


# -- tree <-> timeline --------------------------------------------------------------------


def test_timeline_rows_line_up_with_the_tree_rows(qtbot, view, client, ids):
    open_and_wait(qtbot, view, client, ids["html"])
    qtbot.waitUntil(lambda: len(view.timeline.bars.rows) > 1)
    tree = view.tree
    for row, node in enumerate(view.timeline.bars.rows):
        index = tree.indexAt(QPoint(5, row * tree.rowHeight(tree.model().index(0, 0)) + 3))
        if not index.isValid():
            break
        assert view.model.node(index) == node


def test_selecting_a_span_in_the_tree_marks_its_bar(qtbot, view, client, ids):
    open_and_wait(qtbot, view, client, ids["html"])
    chat = next(i for i, s in enumerate(view.trace.spans) if s.span_type == "CHAT_MODEL")
    index = view.model.index_of(chat)
    view.tree.setCurrentIndex(index)
    assert view.timeline.bars.selected == chat
    assert view.inspector.span is view.trace.spans[chat]
    assert view.trace.spans[chat].name in index.data(Qt.ToolTipRole)


def test_clicking_a_bar_selects_its_span_in_the_tree(qtbot, view, client, ids):
    open_and_wait(qtbot, view, client, ids["big1k"])
    qtbot.waitUntil(lambda: len(view.timeline.bars.rows) > 5)
    bars, lay = view.timeline.bars, view.model.layout
    row = 4
    node = bars.rows[row]
    assert node != current_node(view)
    middle = bars.point_of((lay.x0[node] + lay.x1[node]) / 2, row + 0.5).toPoint()
    assert bars.rect().contains(middle)
    qtbot.mouseClick(bars, Qt.LeftButton, pos=middle)
    qtbot.waitUntil(lambda: current_node(view) == node)
    assert view.inspector.span is view.trace.spans[node]
    assert bars.selected == node


# -- search -------------------------------------------------------------------------------


def test_search_finds_spans_by_attribute_value_with_next_previous_and_count(
        qtbot, view, client, sdk, ids):
    open_and_wait(qtbot, view, client, ids["big1k"])
    wanted = {s.span_id for s in sdk.get_trace(ids["big1k"]).data.spans
              if s.inputs in ({"query": "q17"}, {"text": "q17"})}
    assert len(wanted) == 3  # the tool call, its retriever and its embedding
    qtbot.keyClicks(view.search, '"q17"')
    qtbot.waitUntil(lambda: view.match_label.text() == "1 of 3", timeout=10_000)
    seen = [view.trace.spans[current_node(view)].span_id]
    view.next_action.trigger()
    assert view.match_label.text() == "2 of 3"
    seen.append(view.trace.spans[current_node(view)].span_id)
    view.next_action.trigger()
    seen.append(view.trace.spans[current_node(view)].span_id)
    assert set(seen) == wanted
    view.next_action.trigger()  # wraps around
    assert view.match_label.text() == "1 of 3"
    view.prev_action.trigger()
    assert view.match_label.text() == "3 of 3"
    assert view.trace.spans[current_node(view)].span_id == seen[2]
    assert set(view.timeline.bars.matches) == {node_of(view, s) for s in wanted}


def test_search_without_match_says_so(qtbot, view, client, ids):
    open_and_wait(qtbot, view, client, ids["html"])
    qtbot.keyClicks(view.search, "no-such-text-anywhere")
    qtbot.waitUntil(lambda: view.match_label.text() == "no match", timeout=10_000)


# -- the inspector --------------------------------------------------------------------------


def test_exception_event_shows_its_stack_trace(qtbot, view, client, sdk, ids):
    open_and_wait(qtbot, view, client, ids["error"])
    failed = next(s for s in sdk.get_trace(ids["error"]).data.spans
                  if s.span_type == "TOOL" and s.events)
    event = failed.events[0]
    view.tree.select_node(node_of(view, failed.span_id))
    inspector = view.inspector
    assert inspector.tabs.tabText(inspector.tabs.currentIndex()) == "Exceptions (1)"
    text = inspector.events.toPlainText()
    assert event.attributes["exception.stacktrace"].rstrip() in text
    assert f"{event.attributes['exception.type']}: {event.attributes['exception.message']}" \
        in text
    assert "Traceback (most recent call last)" in text


def test_html_in_span_content_is_shown_as_literal_text(qtbot, view, client, ids):
    open_and_wait(qtbot, view, client, ids["html"])
    chat = next(i for i, s in enumerate(view.trace.spans) if s.span_type == "CHAT_MODEL")
    view.tree.select_node(chat)
    inspector = view.inspector
    assert inspector.tabs.tabText(0) == "Chat"
    cards = [lab for lab in inspector.chat.findChildren(QLabel) if UNTRUSTED in lab.text()]
    assert len(cards) == 2  # the user's question and the assistant's answer
    assert all(lab.textFormat() == Qt.PlainText for lab in cards)
    assert UNTRUSTED in inspector.outputs.raw.toPlainText()
    assert all(lab.textFormat() == Qt.PlainText for lab in view.findChildren(QLabel)
               if "<" in lab.text())


def test_trace_assessments_are_listed(qtbot, view, client, sdk, ids):
    open_and_wait(qtbot, view, client, ids["judged"])
    expected = sdk.get_trace(ids["judged"]).info.assessments
    assert view.assessments.topLevelItemCount() == len(expected)
    assert {view.assessments.topLevelItem(i).text(0) for i in range(len(expected))} == \
        {a.name for a in expected}


# -- running traces, orphans ------------------------------------------------------------------


def _running_trace_with_orphan(url: str, exp_id: str) -> tuple[str, str]:
    """A request still running as the server sees it: one finished child exported over OTLP,
    its parent not there yet."""
    trace_hex, now = os.urandom(16).hex(), time.time_ns()
    span = {"traceId": trace_hex, "spanId": os.urandom(8).hex(),
            "parentSpanId": os.urandom(8).hex(), "name": "finished_child", "kind": 1,
            "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 5_000_000),
            "status": {"code": 1}}
    body = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": [span]}]}]}
    httpx.post(f"{url}/v1/traces", json=body,
               headers={"x-mlflow-experiment-id": exp_id}).raise_for_status()
    return "tr-" + trace_hex, span["spanId"]


def test_orphans_hang_under_missing_parent_and_running_trace_is_marked(
        qtbot, view, client, mlflow_server, sdk):
    # An experiment of its own: other tests count the seeded experiment's traces.
    exp_id = sdk.create_experiment(f"running-{os.urandom(4).hex()}")
    trace_id, span_hex = _running_trace_with_orphan(mlflow_server.url, exp_id)
    open_and_wait(qtbot, view, client, trace_id)
    model = view.model
    assert model.rowCount() == 1
    missing = model.index(0, NAME)
    assert missing.data() == MISSING_PARENT
    assert model.rowCount(missing) == 1
    assert model.index(0, NAME, missing).data() == "finished_child"
    assert view.trace.spans[0].span_id == span_hex
    assert view.header.in_progress.isVisible()


def test_finished_trace_has_no_running_marker(qtbot, view, client, ids):
    open_and_wait(qtbot, view, client, ids["html"])
    assert not view.header.in_progress.isVisible()
    assert view.model.index(0, NAME).data() != MISSING_PARENT


# -- cache, cancel, files -------------------------------------------------------------------


def test_reopen_comes_from_the_cache_and_works_offline(qtbot, view, fault_proxy, ids):
    with RestClient(fault_proxy.url) as proxied:
        open_and_wait(qtbot, view, proxied, ids["html"])
        assert not view.header.cached.isVisible()
        # Written in the background once the trace is shown.
        qtbot.waitUntil(lambda: view.cache.has(proxied.host, ids["html"]),
                        timeout=LOAD_TIMEOUT_MS)
        fault_proxy.down()
        open_and_wait(qtbot, view, proxied, ids["html"])
        assert view.header.cached.isVisible()
        assert view.header.cached.text().startswith("cached at ")
        assert fault_proxy.forwarded_count("/traces/get") == 1
        # Reload skips the cache: offline, that fails with a message and keeps the trace.
        with qtbot.waitSignal(view.load_failed, timeout=LOAD_TIMEOUT_MS):
            view.reload()
        assert view.banner.isVisible()
        assert view.trace.info.trace_id == ids["html"]


def test_opening_another_trace_cancels_the_previous_load(qtbot, view, client, fault_proxy,
                                                         ids):
    fault_proxy.inject("delay", seconds=2.0, match="/traces/get")
    shown = []
    view.trace_shown.connect(lambda t: shown.append(t.info.trace_id))
    with RestClient(fault_proxy.url) as slow:
        view.open_trace(slow, ids["big1k"])
        with qtbot.waitSignal(view.trace_shown, timeout=LOAD_TIMEOUT_MS):
            view.open_trace(client, ids["html"])
        background_work_ended(qtbot)  # the slow answer has arrived: it must not be shown
        assert fault_proxy.forwarded_count("/traces/get") >= 1
    assert shown == [ids["html"]]
    assert view.trace.info.trace_id == ids["html"]
    assert not view.progress.isVisible()


def test_exported_trace_opens_from_its_file(qtbot, view, client, ids, tmp_path):
    trace = open_and_wait(qtbot, view, client, ids["error"])
    path = tmp_path / "trace.json"
    with qtbot.waitSignal(view.status_message, timeout=LOAD_TIMEOUT_MS):
        view.export_trace(path)
    with qtbot.waitSignal(view.trace_shown, timeout=LOAD_TIMEOUT_MS) as blocker:
        view.open_file(path)
    again = blocker.args[0]
    assert [(s.span_id, s.parent_id, s.name, s.status) for s in again.spans] == \
        [(s.span_id, s.parent_id, s.name, s.status) for s in trace.spans]
    assert again.info.trace_id == ids["error"]


def test_a_huge_trace_is_let_go_when_the_next_load_starts(qtbot, view, client, ids,
                                                          monkeypatch):
    monkeypatch.setattr(trace_loading, "RELEASE_SPANS", 5000)
    open_and_wait(qtbot, view, client, ids["big10k"])
    with qtbot.waitSignal(view.trace_shown, timeout=LOAD_TIMEOUT_MS):
        view.open_trace(client, ids["html"])
        assert view.model.layout is None and view.trace is None  # gone before the load ends
    assert view.trace.info.trace_id == ids["html"]


def test_another_trace_clears_the_view_at_once_and_its_header_shows_before_its_spans(
        qtbot, view, client, sdk, fault_proxy, ids):
    open_and_wait(qtbot, view, client, ids["html"])
    theirs = sdk.get_trace(ids["error"]).info
    fault_proxy.inject("delay", seconds=8.0, match="/traces/get")  # the spans, not the info
    with (RestClient(fault_proxy.url) as slow,
          qtbot.waitSignal(view.trace_shown, timeout=LOAD_TIMEOUT_MS)):
        view.open_trace(slow, ids["error"])
        assert view.trace is None and view.model.rowCount() == 0  # cleared at once
        assert view.header.trace_id.text() == ids["error"]
        assert not view.header.state.isVisible()  # the last trace's state is gone too
        assert view.header.isAncestorOf(view.progress) and view.progress.isVisible()
        qtbot.waitUntil(view.header.state.isVisible, timeout=LOAD_TIMEOUT_MS)
        assert view.trace is None  # the info came first: the spans are still held back
        assert view.header.title.text() == theirs.tags["mlflow.traceName"]
        assert view.header.state.text() == theirs.state.value
        assert fmt.duration_ms(theirs.execution_duration) in view.header.facts.text()
    assert view.trace.info.trace_id == ids["error"]


def test_an_assessments_editor_replaces_the_read_only_list(qtbot, client, ids):
    editor = QLabel("editor")
    view = TraceView(assessments=editor)
    qtbot.addWidget(view)
    open_and_wait(qtbot, view, client, ids["judged"])
    assert view.side.widget(1) is editor
    assert view.side.tabText(1).startswith("Assessments (")


def test_a_node_with_many_children_shows_them_a_chunk_at_a_time(qtbot, view, client, ids):
    open_and_wait(qtbot, view, client, ids["big10k"])
    model, root = view.model, view.model.index(0, NAME)
    total = view.model.layout.child_count[0]
    assert total > 2 * FETCH_CHUNK
    shown = model.rowCount(root)
    assert shown <= 2 * FETCH_CHUNK  # the view may fetch once more on expanding
    view.tree.scrollToBottom()  # the view asks the model for more as it reaches the end
    qtbot.waitUntil(lambda: model.rowCount(root) > shown)
    last = view.model.layout.children(0)[-1]
    view.tree.select_node(last)  # selecting a child not fetched yet fetches up to it
    assert current_node(view) == last
    assert model.rowCount(root) == total


def test_a_failed_export_banner_goes_away_when_the_next_export_succeeds(qtbot, view, client,
                                                                        ids, tmp_path):
    open_and_wait(qtbot, view, client, ids["error"])
    view.export_trace(tmp_path / "no-such-dir" / "trace.json")
    qtbot.waitUntil(view.banner.isVisible, timeout=LOAD_TIMEOUT_MS)
    assert "Could not export" in view.banner.label.text()
    with qtbot.waitSignal(view.status_message, timeout=LOAD_TIMEOUT_MS):
        view.export_trace(tmp_path / "trace.json")
    assert (tmp_path / "trace.json").exists()
    assert view.banner.isHidden()


def test_a_cancelled_load_frees_the_trace_it_replaced_in_the_background(
        qtbot, view, client, fault_proxy, ids, monkeypatch):
    freed = []
    real_discard = trace_loading.discard

    def discard(holder):
        freed.append((holder[0].trace.info.trace_id,
                      threading.current_thread() is threading.main_thread()))
        real_discard(holder)

    monkeypatch.setattr(trace_loading, "discard", discard)
    open_and_wait(qtbot, view, client, ids["html"])
    fault_proxy.inject("delay", seconds=2.0, match="/traces/get")
    with RestClient(fault_proxy.url) as slow:
        view.open_trace(slow, ids["error"])
        view.cancel()
        background_work_ended(qtbot)
    assert view.trace is None
    assert freed == [(ids["html"], False)]  # in chunks on a worker, not on the GUI thread


def test_a_reload_hands_on_the_fresh_info_once(qtbot, view, client, sdk, fault_proxy, ids):
    expected = sorted(a.name for a in sdk.get_trace(ids["judged"]).info.assessments)
    with RestClient(fault_proxy.url) as proxied:
        open_and_wait(qtbot, view, proxied, ids["judged"])
        background_work_ended(qtbot)
        reads = []
        view.info_read.connect(reads.append)
        fault_proxy.inject("delay", seconds=2.0, match="/traces/get")  # the info comes first
        with qtbot.waitSignal(view.trace_shown, timeout=LOAD_TIMEOUT_MS):
            view.reload()
        background_work_ended(qtbot)
    assert [sorted(a.name for a in r.info.assessments) for r in reads] == [expected]
