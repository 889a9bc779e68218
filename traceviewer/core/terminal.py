"""Untrusted text made safe for a terminal: control and bidi characters shown, not obeyed.

Trace names, tags, previews, ids and server error messages come from whoever wrote the trace or
runs the server. Printed raw, an ESC sequence can set the window title, clear the screen or
plant a hyperlink, and a bidi override can make `tr-abc` read as something else. `printable`
shows each such character as a visible escape instead (`\\x1b`, `\\n`, `<U+202E>`), so a table
row or a message stays one honest line. JSON, JSONL and CSV output keep the data exact."""

from __future__ import annotations

import re

# Bidi embeddings, overrides and isolates, the marks, and the Arabic letter mark.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
                          "\u200e\u200f\u061c")
# C0 controls (tab and newline too: one cell is one line), DEL, C1 controls, then bidi.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f" + "".join(sorted(BIDI_CONTROLS)) + "]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"<U+{code:04X}>"


# _UNSAFE, keeping newline and tab: text shown on several lines (a label, a tooltip).
_UNSAFE_MULTILINE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f"
                               + "".join(sorted(BIDI_CONTROLS)) + "]")


def neutralize_bidi(text: object, *, one_line: bool = True) -> str:
    """`text` for a GUI: bidi controls (which reorder what follows: `tr-abc` read backwards)
    and C0/C1 controls and DEL shown as the visible escapes `printable` uses. With
    `one_line=False`, newlines and tabs stay (multi-line labels and tooltips)."""
    text = text if isinstance(text, str) else str(text)
    return (_UNSAFE if one_line else _UNSAFE_MULTILINE).sub(_escape, text)


def printable(text: object) -> str:
    """`text` (any value, as `str()` shows it) with every C0/C1 control, DEL and bidi control
    replaced by a visible escape; other text, including non-Latin scripts, is unchanged."""
    return _UNSAFE.sub(_escape, text if isinstance(text, str) else str(text))
