"""`printable`: control and bidi characters in untrusted text become visible escapes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from traceviewer.core.terminal import BIDI_CONTROLS, neutralize_bidi, printable


def test_escape_sequences_show_as_text():
    assert printable("a\x1b]0;pwned\x07b\x1b[2J") == "a\\x1b]0;pwned\\x07b\\x1b[2J"


def test_newline_tab_and_carriage_return_keep_a_table_cell_on_one_line():
    assert printable("a\nb\tc\rd") == "a\\nb\\tc\\rd"


def test_del_and_c1_controls_are_escaped():
    assert printable("\x7f\x9b31m\x85") == "\\x7f\\x9b31m\\x85"


def test_bidi_controls_are_shown_as_code_points():
    assert printable("tr-abc\u202efdp.exe") == "tr-abc<U+202E>fdp.exe"
    assert printable("\u2066x\u2069\u200e\u200f\u061c") == (
        "<U+2066>x<U+2069><U+200E><U+200F><U+061C>")


def test_ordinary_text_in_any_script_is_unchanged():
    text = "Grüße, 你好, مرحبا, emoji 🎉 and <b>html</b> & 'quotes'"
    assert printable(text) == text


@given(st.text())
def test_output_never_holds_a_control_or_bidi_character(text):
    out = printable(text)
    assert not any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f or c in BIDI_CONTROLS for c in out)


def test_gui_text_shows_bidi_and_controls_as_the_cli_does():
    text = "tr-abc\u202efdp.exe\x1b[2J\nnext"
    assert neutralize_bidi(text) == printable(text)


def test_multiline_gui_text_keeps_newlines_and_tabs_but_not_bidi():
    assert neutralize_bidi("a\u202eb\nc\td\x07", one_line=False) == "a<U+202E>b\nc\td\\x07"
