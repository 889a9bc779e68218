"""The trace table read at a glance, against the real server: feedback values instead of names,
failed traces marked in both schemes, thousands separators, Duration sorting longest first on
its first click, and columns as wide as what they show."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.conftest import PROD_EXPERIMENT
from tests.ui.columns import assert_fits, assert_last_takes_the_rest, click_header
from tests.ui.test_browse import load_all, sdk_ids, set_source
from tests.ui.test_palette import _count
from traceviewer.core.model import USER_KEY
from traceviewer.ui.browse.browser import TraceBrowser
from traceviewer.ui.browse.trace_table import COLUMN_NAMES, MAX_FIT_WIDTH, PREVIEW_COLUMNS
from traceviewer.ui.common import palette

WAIT_MS = 60_000
GLANCE = "table-glance"
TOKENS = 12_345
# What a reader sees for each feedback the SDK logs below (name -> (value, cell text)).
FEEDBACK = {"response_is_correct": (False, "response_is_correct: ✗"),
            "grounded": (True, "grounded: ✓"),
            "relevance": (0.75, "relevance: 0.75"),
            "tokens_saved": (1234, "tokens_saved: 1,234"),
            "tone": ("friendly", "tone: friendly")}


@pytest.fixture(scope="module")
def glance(sdk):
    """An experiment with one trace reporting TOKENS tokens and carrying FEEDBACK (logged with
    the SDK); its trace id."""
    import mlflow
    from mlflow.entities import AssessmentSource
    from mlflow.tracing.constant import SpanAttributeKey

    exp_id = sdk.create_experiment(GLANCE)
    mlflow.set_experiment(experiment_id=exp_id)
    with mlflow.start_span("chat") as span:
        span.set_attribute(SpanAttributeKey.CHAT_USAGE, {
            "input_tokens": TOKENS - 45, "output_tokens": 45, "total_tokens": TOKENS})
        trace_id = span.trace_id
    mlflow.flush_trace_async_logging()
    for name, (value, _text) in FEEDBACK.items():
        mlflow.log_feedback(trace_id=trace_id, name=name, value=value,
                            source=AssessmentSource(source_type="HUMAN", source_id="rev-1"))
    return exp_id, trace_id


def sdk_user(info) -> str:
    """The user id of an SDK trace info (the SDK keeps it in the metadata, older traces in a
    tag)."""
    return info.trace_metadata.get(USER_KEY) or info.tags.get(USER_KEY) or ""


def cell(browser: TraceBrowser, row: int, column: str, role=Qt.ItemDataRole.DisplayRole):
    return browser.model.data(browser.model.index(row, COLUMN_NAMES.index(column)), role)


def show_prod(browser: TraceBrowser, client) -> None:
    set_source(browser, client, "ws", client.get_experiment_by_name(PROD_EXPERIMENT))


def test_feedback_column_shows_each_value_and_the_tooltip_lists_them_whole(qtbot, browser,
                                                                           client, sdk, glance):
    exp_id, trace_id = glance
    set_source(browser, client, "ws", client.get_experiment(exp_id))
    assert load_all(qtbot, browser) == [trace_id]
    logged = [a.name for a in sdk.get_trace(trace_id).info.assessments]
    assert sorted(logged) == sorted(FEEDBACK)
    shown = cell(browser, 0, "Feedback")
    assert shown == " · ".join(FEEDBACK[name][1] for name in logged)
    tip = cell(browser, 0, "Feedback", Qt.ItemDataRole.ToolTipRole)
    for name in logged:  # one line each, whole, with who gave it
        assert f"{FEEDBACK[name][1]} (by rev-1)" in tip


def test_token_counts_have_thousands_separators(qtbot, browser, client, sdk, glance):
    exp_id, trace_id = glance
    set_source(browser, client, "ws", client.get_experiment(exp_id))
    load_all(qtbot, browser)
    total = sdk.get_trace(trace_id).info.token_usage["total_tokens"]
    assert total == TOKENS
    assert cell(browser, 0, "Tokens") == f"{total:,}" == "12,345"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_failed_traces_rows_are_painted_in_the_error_colour(qtbot, qapp, browser, client, sdk,
                                                           prod, scheme):
    style, original = qapp.style().name(), qapp.palette()
    palette.apply_scheme(qapp, scheme)
    try:
        show_prod(browser, client)
        load_all(qtbot, browser)
        failed = set(sdk_ids(sdk, prod, "status = 'ERROR'"))
        assert failed
        error_row = palette.ERROR_ROW.color(scheme == "dark")
        for row, info in enumerate(browser.model.rows):
            background = cell(browser, row, "Name", Qt.ItemDataRole.BackgroundRole)
            state = cell(browser, row, "State", Qt.ItemDataRole.ForegroundRole)
            if info.trace_id in failed:
                assert background.color() == error_row
                assert state.color() == palette.ERROR_TEXT.color(scheme == "dark")
            else:
                assert background is None and state is None
        first = next(i for i, t in enumerate(browser.model.rows) if t.trace_id in failed)
        browser.table.scrollTo(browser.model.index(first, 0))
        browser.table.clearSelection()
        qtbot.waitUntil(lambda: _count(browser.table.viewport().grab().toImage(),
                                       error_row.name()) > 2_000, timeout=WAIT_MS)
    finally:
        qapp.setStyle(style)
        qapp.setPalette(original)


def sdk_ordered(sdk, exp_id: str, order: str) -> list[str]:
    return [t.info.trace_id for t in sdk.search_traces(locations=[exp_id], order_by=[order],
                                                       max_results=500, include_spans=False)]


def test_first_click_on_duration_sorts_longest_first_then_shortest(qtbot, browser, client, sdk,
                                                                   prod):
    show_prod(browser, client)
    load_all(qtbot, browser)
    click_header(browser, "Duration")
    assert browser.order_by == ("execution_time_ms DESC",)
    longest_first = load_all(qtbot, browser)
    assert longest_first == sdk_ordered(sdk, prod, "execution_time_ms DESC")
    durations = [t.duration_ms for t in browser.model.rows]
    assert durations == sorted(durations, reverse=True) and durations[0] > durations[-1]
    click_header(browser, "Duration")
    assert browser.order_by == ("execution_time_ms ASC",)
    assert load_all(qtbot, browser) == sdk_ordered(sdk, prod, "execution_time_ms ASC")


def test_first_click_on_another_column_sorts_it_in_its_natural_order(qtbot, browser, client,
                                                                     sdk, prod):
    show_prod(browser, client)
    load_all(qtbot, browser)
    click_header(browser, "User")
    users = [t.user or "" for t in browser.model.rows]
    assert users == sorted(users) and users[0] != users[-1]
    expected = sorted(sdk_user(t.info) for t in sdk.search_traces(
        locations=[prod], max_results=500, include_spans=False))
    assert users == expected


def test_trace_columns_fit_their_content_and_the_last_one_takes_the_rest(qtbot, browser,
                                                                        client, prod_infos):
    show_prod(browser, client)
    load_all(qtbot, browser)
    table, header = browser.table, browser.table.horizontalHeader()
    assert_fits(table, COLUMN_NAMES.index("User"), [sdk_user(i) for i in prod_infos])
    visible = [i for i in range(len(COLUMN_NAMES)) if not table.isColumnHidden(i)]
    last = max(visible, key=header.visualIndex)
    for i in visible:
        if i != last and COLUMN_NAMES[i] not in PREVIEW_COLUMNS:
            assert header.sectionSize(i) == min(max(table.sizeHintForColumn(i),
                                                    header.sectionSizeHint(i)), MAX_FIT_WIDTH)
    assert_last_takes_the_rest(table)
