"""The palette (ui/common/palette.py): light and dark values follow the application's QPalette,
span-type colours stay readable (WCAG contrast) on both, widgets that keep colours repaint after
a palette change, and no colour literal is left in the ui outside the palette."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage

from traceviewer.core.model import Span, Trace, TraceInfo
from traceviewer.core.trace_layout import TreeLayout
from traceviewer.ui.common import palette
from traceviewer.ui.common.banner import ErrorBanner
from traceviewer.ui.trace.header import TraceHeader
from traceviewer.ui.trace.span_tree import STYLES, SpanTreeModel
from traceviewer.ui.trace.timeline import Timeline

UI = Path(__file__).resolve().parents[2] / "traceviewer" / "ui"
BAR_VS_BACKGROUND = 3.0
TEXT_ON_BAR = 4.5


@pytest.fixture
def scheme(qapp):
    """Switch the application to "dark" or "light"; the original palette comes back after."""
    style, original = qapp.style().name(), qapp.palette()

    def switch(name: str) -> None:
        palette.apply_scheme(qapp, name)
        qapp.processEvents()

    yield switch
    qapp.setStyle(style)
    qapp.setPalette(original)
    qapp.processEvents()


def luminance(colour: QColor) -> float:
    """WCAG relative luminance."""
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in colour.getRgbF()[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio of two colours (1 to 21)."""
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_palette_answers_dark_values_under_a_dark_qpalette_and_light_under_a_light_one(scheme):
    scheme("dark")
    assert palette.is_dark()
    assert palette.SPAN_LLM.hex() == palette.SPAN_LLM.dark
    assert palette.ERROR_TEXT.color() == QColor(palette.ERROR_TEXT.dark)
    assert palette.style_sheet("color: $MUTED_TEXT") == f"color: {palette.MUTED_TEXT.dark}"
    scheme("light")
    assert not palette.is_dark()
    assert palette.SPAN_LLM.hex() == palette.SPAN_LLM.light
    assert palette.style_sheet("background: $bg", bg=palette.CHIP_OK) == (
        f"background: {palette.CHIP_OK.light}")


def test_color_scheme_env_var_forces_the_scheme_of_the_application():
    code = ("from traceviewer.ui.app import application; from traceviewer.ui.common import "
            "palette; application(); print(palette.is_dark())")
    for scheme, dark in (("dark", "True"), ("light", "False")):
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", TRACEVIEWER_COLOR_SCHEME=scheme)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True, timeout=60)
        assert out.stdout.strip() == dark, out.stderr


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_span_type_colours_are_readable_on_their_background(dark):
    background = palette.TIMELINE_BG.color(dark)
    families = [(s.icon, s.color) for s in STYLES] + [("error", palette.SPAN_ERROR)]
    label = palette.BAR_LABEL.color(dark)  # the text on a bar and the glyph of the icon
    for name, role in families:
        bar = role.color(dark)
        assert contrast(bar, background) >= BAR_VS_BACKGROUND, name
        assert contrast(label, bar) >= TEXT_ON_BAR, name
        # A running span's faded bar carries its label in the text colour.
        assert contrast(palette.TEXT.color(dark), palette.faded(role, dark)) >= TEXT_ON_BAR, name
    # Labels beside a bar, the axis text and the missing-parent node sit on the background.
    for role in (palette.SECONDARY_TEXT, palette.AXIS_TEXT, palette.SPAN_MISSING):
        assert contrast(role.color(dark), background) >= TEXT_ON_BAR
    # The tree's icons sit on the palette's base colour (the forced dark one is the same).
    if dark:
        assert palette.dark_palette().base().color() == background


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_a_failed_traces_row_is_readable_and_stands_off_the_table(dark):
    row = palette.ERROR_ROW.color(dark)
    for text in (palette.TEXT, palette.ERROR_TEXT):  # its cells, and its state cell
        assert contrast(text.color(dark), row) >= TEXT_ON_BAR, text
    # A red tint, not the table's base colour (the forced dark palette's is TIMELINE_BG).
    assert row != palette.TIMELINE_BG.color(dark)
    assert row.red() > max(row.green(), row.blue())


def test_dark_values_of_span_types_are_lighter_than_the_light_ones():
    for style in STYLES:
        assert luminance(style.color.color(True)) > luminance(style.color.color(False))


def _layout() -> TreeLayout:
    t0 = 1_700_000_000_000_000_000
    info = TraceInfo.from_json({"trace_id": "tr-1", "state": "OK",
                                "request_time": "2023-11-14T22:13:20Z"})
    spans = [Span(span_id="a1", parent_id=None, name="chat model", span_type="LLM",
                  start_ns=t0, end_ns=t0 + 2_000_000_000, status="OK")]
    return TreeLayout(Trace.build(info, spans))


def _count(image: QImage, colour: str) -> int:
    """How many pixels of `image` have exactly `colour`."""
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    pixels = np.frombuffer(image.constBits(), dtype=np.uint32, count=image.sizeInBytes() // 4)
    return int(np.count_nonzero((pixels & 0xFFFFFF) == (QColor(colour).rgb() & 0xFFFFFF)))


def test_timeline_and_chips_repaint_in_the_new_scheme_after_a_palette_change(qtbot, scheme):
    scheme("light")
    timeline, header, banner, model = Timeline(), TraceHeader(), ErrorBanner(), SpanTreeModel()
    for widget in (timeline, header, banner):
        qtbot.addWidget(widget)
    layout = _layout()
    model.set_layout(layout)
    timeline.resize(400, 200)
    timeline.show()
    timeline.set_layout(layout)
    timeline.set_rows([0], 24)
    header.show_trace(layout, cached_at=None)
    header.show()
    banner.show_error("it failed")
    qtbot.waitExposed(timeline)

    def painted(role: palette.Role, dark: bool) -> None:
        image = timeline.grab().toImage()
        assert _count(image, role.hex(dark)) > 500, role  # the bar
        assert _count(image, palette.TIMELINE_BG.hex(dark)) > 10_000  # the background

    painted(palette.SPAN_LLM, False)
    assert palette.CHIP_OK.light in header.state.styleSheet()
    light_icon = model.data(model.index(0, 0), 1).pixmap(16).toImage()

    scheme("dark")
    painted(palette.SPAN_LLM, True)
    assert _count(timeline.grab().toImage(), palette.SPAN_LLM.light) == 0
    assert palette.CHIP_OK.dark in header.state.styleSheet()
    assert _count(header.state.grab().toImage(), palette.CHIP_OK.dark) > 50
    assert palette.ERROR_BG.dark in banner.styleSheet()
    dark_icon = model.data(model.index(0, 0), 1).pixmap(16).toImage()
    assert dark_icon != light_icon
    assert _count(dark_icon, palette.SPAN_LLM.dark) > 20

    scheme("light")
    painted(palette.SPAN_LLM, False)


# Colour literals: hex in strings, named colours in style sheets and Qt's global colours.
_HEX = re.compile(r"#[0-9a-fA-F]{3}(?:[0-9a-fA-F]{3})?(?:[0-9a-fA-F]{2})?\b")
_NAMED_CSS = re.compile(r"\b(?:color|background(?:-color)?|border[a-z-]*)\s*:[^;$}]*?"
                        r"\b(?:white|black|gray|grey|red|green|blue|yellow|orange)\b", re.I)
_CODE = re.compile(r"\bQt\.(?:GlobalColor\.)?(?:white|black|gray|darkGray|lightGray|red|"
                   r"darkRed|green|darkGreen|blue|darkBlue|cyan|magenta|yellow)\b"
                   r"|\bQColor\(\s*(?:\d|[\"'])|setBackground\(\s*[\"']")


def colour_literals(source: str) -> list[str]:
    """The colour literals in a module's source (strings and code, not comments)."""
    found = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.STRING:
            found += _HEX.findall(token.string) + _NAMED_CSS.findall(token.string)
    code = "".join(line.split("#", 1)[0] + "\n" for line in source.splitlines())
    return found + _CODE.findall(code)


def test_colour_literal_check_finds_the_kinds_it_should():
    assert colour_literals('s = "color: #5f6368"\nb = QBrush(Qt.gray)\n'
                           'c = QColor("white")\nd = "background: white;"\n') == [
        "#5f6368", "background: white", "Qt.gray", 'QColor("']
    assert colour_literals('s = "#labelForm { background: $PANEL_BG; }"  # #fff\n') == []


def test_no_colour_literal_in_the_ui_outside_the_palette():
    offenders = {}
    for path in sorted(UI.rglob("*.py")):
        if path.name == "palette.py" and path.parent.name == "common":
            continue
        found = colour_literals(path.read_text(encoding="utf-8"))
        if found:
            offenders[str(path.relative_to(UI))] = found
    assert offenders == {}
