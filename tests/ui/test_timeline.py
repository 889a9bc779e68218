"""Timeline navigation on the seeded 10,000-span trace (pytest-qt, offscreen): selecting a span
brings its bar into view, Ctrl+wheel keeps the span under the cursor in view, the overview
strip's window follows the tree and moves it, Expand all keeps the selected span in place, and
ticks fall at round steps. Span times, parents and order come from the SDK."""

from __future__ import annotations

import math

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from traceviewer.core.cache import TraceCache
from traceviewer.ui.trace.trace_view import TraceView

BIG = "big-traces"
LOAD_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def big(mlflow_server, sdk):
    """The 10k-span trace as the SDK reads it: id, spans by id (parent, start, end in ms since
    the trace start) and each span's place in the fully expanded tree (children by start)."""
    exp = sdk.get_experiment_by_name(BIG).experiment_id
    found = sdk.search_traces(locations=[exp], include_spans=False,
                              filter_string="attributes.client_request_id = 'big-10000'")
    trace_id = found[0].info.trace_id
    spans = sdk.get_trace(trace_id).data.spans
    t0 = min(s.start_time_ns for s in spans)
    times = {s.span_id: (s.parent_id, (s.start_time_ns - t0) / 1e6, (s.end_time_ns - t0) / 1e6)
             for s in spans}
    kids: dict[str | None, list] = {}
    for s in sorted(spans, key=lambda s: s.start_time_ns):
        kids.setdefault(s.parent_id, []).append(s.span_id)
    rank, stack = {}, list(reversed(kids[None]))
    while stack:
        span_id = stack.pop()
        rank[span_id] = len(rank)
        stack.extend(reversed(kids.get(span_id, [])))
    return {"id": trace_id, "times": times, "rank": rank}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """One cache for the module: the trace is downloaded once, then read from the cache."""
    return tmp_path_factory.mktemp("timeline-cache")


@pytest.fixture
def view(qtbot, client, big, cache_dir):
    v = TraceView(cache=TraceCache(cache_dir))
    qtbot.addWidget(v)
    v.resize(1400, 800)
    v.show()
    with qtbot.waitSignal(v.trace_shown, timeout=LOAD_TIMEOUT_MS):
        v.open_trace(client, big["id"])
    qtbot.waitUntil(lambda: len(v.timeline.bars.rows) > 5)
    qtbot.waitUntil(lambda: v.cache.has(client.host, big["id"]), timeout=LOAD_TIMEOUT_MS)
    return v


def span_id(view, node):
    return view.trace.spans[node].span_id


def node_of(view, wanted):
    return next(i for i, s in enumerate(view.trace.spans) if s.span_id == wanted)


def depth(times, sid):
    d = 0
    while times[sid][0] is not None:
        sid, d = times[sid][0], d + 1
    return d


def overlaps(window, start, end):
    return start <= window[1] and end >= window[0]


def top_node(view):
    return view.model.node(view.tree.indexAt(QPoint(1, 1)))


def wheel(widget, pos: QPointF, notches: int, modifiers) -> None:
    event = QWheelEvent(pos, widget.mapToGlobal(pos), QPoint(0, 0), QPoint(0, 120 * notches),
                        Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def test_selecting_a_deep_span_brings_its_bar_into_the_timeline_window(qtbot, view, big):
    times = big["times"]
    total = max(end for _, _, end in times.values())
    view.timeline.bars.set_range(0, total / 100)  # the first 1% of the trace
    deep = max(depth(times, s) for s in times)
    target = max((s for s in times if depth(times, s) == deep), key=lambda s: times[s][1])
    _, start, end = times[target]
    assert start > total / 2  # far outside the window before it is selected

    view.tree.select_node(node_of(view, target))

    qtbot.waitUntil(lambda: node_of(view, target) in view.timeline.bars.rows)
    window = view.timeline.visible_range()
    assert window[0] <= start and end <= window[1]


def bar_point(view, node, x_ms):
    """The plot viewport's pixel at time `x_ms` on `node`'s row."""
    timeline = view.timeline
    row = timeline.bars.rows.index(node)
    return timeline.bars.point_of(x_ms, row + 0.5)


def test_ctrl_wheel_beside_a_bar_zooms_in_keeping_that_bar_in_view(qtbot, view, big):
    times = big["times"]
    rows = view.timeline.bars.rows
    # A short span on a visible row, with empty room after its bar.
    total = max(end for _, _, end in times.values())
    node = next(n for n in rows[3:] if times[span_id(view, n)][2] - times[span_id(view, n)][1]
                < total / 50 and times[span_id(view, n)][2] < total * 0.7)
    _, start, end = times[span_id(view, node)]
    before = view.timeline.visible_range()
    pos = bar_point(view, node, end + (before[1] - before[0]) * 0.25)

    wheel(view.timeline.bars, pos, 12, Qt.KeyboardModifier.ControlModifier)

    after = view.timeline.visible_range()
    assert after[1] - after[0] < (before[1] - before[0]) / 5  # zoomed in
    assert overlaps(after, start, end)


def test_ctrl_wheel_over_a_bar_keeps_that_bar_in_view(qtbot, view, big):
    times = big["times"]
    rows = view.timeline.bars.rows
    node = rows[len(rows) // 2]
    _, start, end = times[span_id(view, node)]
    before = view.timeline.visible_range()

    wheel(view.timeline.bars, bar_point(view, node, (start + end) / 2), 20,
          Qt.KeyboardModifier.ControlModifier)

    after = view.timeline.visible_range()
    assert after[1] - after[0] < (before[1] - before[0]) / 10
    assert overlaps(after, start, end)


def test_shift_wheel_pans_time(qtbot, view):
    timeline = view.timeline
    (x0, x1) = timeline.visible_range()
    timeline.bars.set_range(x0, x0 + (x1 - x0) / 4)
    before = timeline.visible_range()
    centre = QPointF(timeline.bars.rect().center())

    wheel(timeline.bars, centre, -2, Qt.KeyboardModifier.ShiftModifier)

    after = timeline.visible_range()
    assert after[0] > before[0]
    assert after[1] - after[0] == pytest.approx(before[1] - before[0])
    assert view.tree.verticalScrollBar().value() == 0  # rows did not scroll


def test_overview_window_follows_scrolling_and_dragging_it_scrolls_the_tree(qtbot, view, big):
    overview, rank = view.timeline.overview, big["rank"]
    bar = view.tree.verticalScrollBar()
    bar.setValue(bar.maximum() // 2)
    qtbot.waitUntil(lambda: overview.window_ranks[0] == rank[span_id(view, top_node(view))])

    view.timeline.bars.set_range(0, view.model.layout.total_ms / 4)
    window_before = view.timeline.visible_range()
    top_before = rank[span_id(view, top_node(view))]
    rect = overview.window_rect()
    start = rect.center().toPoint()
    dx, dy = 40, 8
    qtbot.mousePress(overview, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(overview, start + QPoint(dx, dy))
    qtbot.mouseRelease(overview, Qt.MouseButton.LeftButton, pos=start + QPoint(dx, dy))

    n = len(rank)
    wanted = top_before + dy / overview.height() * n
    qtbot.waitUntil(lambda: abs(rank[span_id(view, top_node(view))] - wanted) <= 2 * n /
                    overview.height())
    shift = view.timeline.visible_range()[0] - window_before[0]
    assert shift == pytest.approx(dx / overview.width() * view.model.layout.total_ms, rel=0.1)
    qtbot.waitUntil(lambda: overview.window_ranks[0] == rank[span_id(view, top_node(view))])


def test_expand_all_keeps_the_selected_span_where_it_was_on_screen(qtbot, view, big):
    rows = view.timeline.bars.rows
    node = rows[12]
    view.tree.select_node(node)
    y_before = view.tree.visualRect(view.tree.currentIndex()).top()

    view.expand_action.trigger()

    assert span_id(view, view.model.node(view.tree.currentIndex())) == span_id(view, node)
    height = view.tree.rowHeight(view.tree.currentIndex())
    assert abs(view.tree.visualRect(view.tree.currentIndex()).top() - y_before) < height
    # And the tree really changed: a span that was collapsed is shown now.
    assert view.model.layout.n > 5000
    assert all(view.tree.isExpanded(view.model.index_of(a))
               for a in view.model.layout.ancestors(view.model.layout.n - 1))


def test_collapse_all_keeps_the_selected_spans_top_level_row_in_place(qtbot, view, big):
    times = big["times"]
    node = next(n for n in view.timeline.bars.rows[8:] if depth(times, span_id(view, n)) >= 1)
    view.tree.select_node(node)
    y_before = view.tree.visualRect(view.tree.currentIndex()).top()

    view.collapse_action.trigger()

    shown = span_id(view, view.model.node(view.tree.currentIndex()))
    assert times[shown][0] is None  # the root that held the span
    assert view.tree.visualRect(view.tree.currentIndex()).top() <= y_before


def is_round(step_ms):
    """1, 2 or 5 × 10ⁿ of µs, ms, s, min or h."""
    for unit in (1e-3, 1.0, 1e3, 6e4, 3.6e6):
        x = step_ms / unit
        if x >= 1 - 1e-9 or unit == 1e-3:
            mantissa = x / 10 ** math.floor(math.log10(x) + 1e-9)
            if any(abs(mantissa - m) < 1e-6 for m in (1, 2, 5)):
                return True
    return False


@pytest.mark.parametrize(("low", "high"), [(0, 1e6), (0, 2730), (0, 0.04), (1234.5, 1299.9),
                                           (0, 7.2e6), (0, 45_000)])
def test_tick_values_are_round_steps_of_a_time_unit(qtbot, low, high):
    step, ticks = axis_ticks(qtbot, low, high)
    assert is_round(step)
    assert 4 <= len(ticks) <= 16
    assert all(abs(v / step - round(v / step)) < 1e-6 for v, _ in ticks)
    assert all(len(label.split()) <= 2 for _, label in ticks)  # "20 min", never "16 min 40 s"


def test_ticks_over_twenty_minutes_are_labelled_in_whole_minutes(qtbot):
    step, ticks = axis_ticks(qtbot, 0, 1.2e6)
    assert step == 5 * 60_000
    assert [label for _, label in ticks[:4]] == ["0", "5 min", "10 min", "15 min"]


def axis_ticks(qtbot, low: float, high: float):
    """The ticks of a waterfall 800 px wide showing [low, high] ms."""
    from traceviewer.ui.trace.timeline import RIGHT_MARGIN_PX, SpanBars

    bars = SpanBars()
    qtbot.addWidget(bars)
    bars.resize(800 + RIGHT_MARGIN_PX, 300)
    bars.set_range(low, high)
    return bars.ticks()
