"""The one palette of the ui: every colour the app paints is a named role here, with a light and
a dark value. Which value applies follows the application's QPalette (dark when its window
colour is dark: the OS scheme, or `TRACEVIEWER_COLOR_SCHEME=dark|light` to force one, see
`apply_forced_scheme`). Changing a colour is changing one line of this module.

Widgets that keep colours (style sheets, brushes, pens) read them again when the scheme changes:
`set_style` for a style sheet ("color: $MUTED_TEXT"), `follow` for anything else."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from string import Template
from typing import ClassVar, cast

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget

SCHEME_ENV = "TRACEVIEWER_COLOR_SCHEME"


@dataclass(frozen=True, slots=True)
class Role:
    """One colour of the ui, as "#rrggbb" (or "#aarrggbb") for a light and a dark scheme."""

    light: str
    dark: str

    def hex(self, dark: bool | None = None) -> str:
        """The value for the current scheme (or for `dark` when given)."""
        return self.dark if (is_dark() if dark is None else dark) else self.light

    def color(self, dark: bool | None = None) -> QColor:
        return QColor(self.hex(dark))

    def brush(self, dark: bool | None = None) -> QBrush:
        return QBrush(self.color(dark))


# Text --------------------------------------------------------------------------------------
TEXT = Role("#202124", "#e8eaed")
SECONDARY_TEXT = Role("#3c4043", "#c4c7c5")  # facts under a title, labels beside bars
MUTED_TEXT = Role("#5f6368", "#9aa0a6")  # placeholders, hints, superseded rows
ERROR_TEXT = Role("#b3261e", "#f2b8b5")
WARNING_TEXT = Role("#9a6700", "#e3b341")
OK_TEXT = Role("#1e7b34", "#7ee2a8")
FEEDBACK_TEXT = Role("#6b4e00", "#e9c46a")  # a session turn's feedback line

# Surfaces ----------------------------------------------------------------------------------
ERROR_BG = Role("#fdecea", "#3d1f1d")  # the error banner
ERROR_BORDER = Role("#f5c2c0", "#7a3430")
PANEL_BG = Role("#f6f8fa", "#24272b")  # the review label form
BORDER = Role("#d0d7de", "#43484f")
TEXT_BOX_BG = Role("#ffffff", "#1b1c1f")  # request/response boxes in review
ACCENT = Role("#0969da", "#4493f8")  # a chosen label button
ON_ACCENT = Role("#ffffff", "#0d1117")

# Chips (trace state and markers in the trace header) ---------------------------------------
CHIP_OK = Role("#e6f4ea", "#1f3d2a")
CHIP_ERROR = Role("#fce8e6", "#4a2422")
CHIP_WARNING = Role("#fef7e0", "#45391a")  # in progress, partial
CHIP_INFO = Role("#e8f0fe", "#1f3152")  # cached

# Tables: a failed trace's row, its state cell in ERROR_TEXT (both texts >= 4.5:1 on it)
ERROR_ROW = CHIP_ERROR

# Cards (chat messages by role, retrieved documents) -----------------------------------------
CARD_USER = Role("#e8f0fe", "#1f3152")
CARD_ASSISTANT = Role("#e6f4ea", "#1f3d2a")
CARD_SYSTEM = Role("#f1f3f4", "#2f3134")
CARD_TOOL = Role("#fef7e0", "#45391a")
CARD_DOCUMENT = Role("#f8f9fa", "#2a2c2f")

# Search matches in the span tree (row backgrounds, translucent) ----------------------------
MATCH_ROW = Role("#6effdd57", "#8c7a6400")
CURRENT_MATCH_ROW = Role("#c8ffbe28", "#d09a7000")

# Timeline ----------------------------------------------------------------------------------
TIMELINE_BG = Role("#ffffff", "#1e1f22")
AXIS = Role("#5f6368", "#9aa0a6")
AXIS_TEXT = SECONDARY_TEXT
CRITICAL_PATH = Role("#202124", "#f1f3f4")  # outline of the bars on the critical path
SELECTED = Role("#1a73e8", "#8ab4f8")
MATCH = Role("#f9ab00", "#fdd663")

# Span-type families (core.trace_layout numbers them): bar and icon colours. Light values are
# dark enough for white text, dark values light enough for near-black text (WCAG >= 4.5:1), and
# both stand off their timeline background by >= 3:1 (tests/ui/test_palette.py checks).
SPAN_UNKNOWN = Role("#646a73", "#a7acb4")
SPAN_CHAIN = Role("#3461c1", "#86a8f0")
SPAN_AGENT = Role("#8140a0", "#c49ae0")
SPAN_LLM = Role("#b04f00", "#f2a05c")
SPAN_RETRIEVER = Role("#1c7636", "#6cc987")
SPAN_TOOL = Role("#0b6e71", "#5cc4c7")
SPAN_RERANKER = Role("#686812", "#c7c75c")
SPAN_PARSER = Role("#8f5329", "#d9a07a")
SPAN_EMBEDDING = Role("#a8366a", "#ee90b7")
SPAN_ERROR = Role("#c5221f", "#f28b82")
SPAN_MISSING = MUTED_TEXT  # the "missing parent" node
BAR_LABEL = Role("#ffffff", "#111214")  # text on a bar, and the glyph of a span-type icon
OPEN_FADE = 0.55  # a still-running span's bar: its colour this far towards the background

# Trace compare: one colour per status of an aligned pair (its two duration bars and its
# status text); the rows of A and B share the bar's colour, A above and B below.
DIFF_SAME = Role("#a7acb4", "#646a73")  # muted: the differences stand out
DIFF_CHANGED = Role("#9a6700", "#e3b341")
DIFF_ONLY_A = Role("#c5221f", "#f28b82")
DIFF_ONLY_B = Role("#1e7b34", "#7ee2a8")

# Overview charts: one colour per group (cycled), distinct in both schemes; the compare table
# marks the best group's cell and a worse one's difference.
SERIES = (SPAN_CHAIN, SPAN_LLM, SPAN_RETRIEVER, SPAN_AGENT, SPAN_TOOL, SPAN_EMBEDDING,
          SPAN_RERANKER, SPAN_PARSER, SPAN_UNKNOWN)
BEST_CELL = CHIP_OK
WORSE_CELL = CHIP_WARNING


def faded(role: Role, dark: bool | None = None) -> QColor:
    """The colour of a still-running span's bar: `role` blended towards the timeline
    background (its label is drawn in TEXT)."""
    a, b = role.color(dark), TIMELINE_BG.color(dark)
    return QColor.fromRgbF(*(x + (y - x) * OPEN_FADE for x, y in zip(
        (a.redF(), a.greenF(), a.blueF()), (b.redF(), b.greenF(), b.blueF()), strict=True)))


# The scheme ----------------------------------------------------------------------------------

def is_dark() -> bool:
    """Whether the application's palette is a dark one (its window colour is dark)."""
    if QGuiApplication.instance() is None:
        return False
    return QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128


def dark_palette() -> QPalette:
    """A dark QPalette for the Fusion style (Qt's offscreen platform has no OS dark mode)."""
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#2b2d31", QPalette.ColorRole.WindowText: TEXT.dark,
        QPalette.ColorRole.Base: TIMELINE_BG.dark, QPalette.ColorRole.AlternateBase: "#26282c",
        QPalette.ColorRole.ToolTipBase: "#3a3d42", QPalette.ColorRole.ToolTipText: TEXT.dark,
        QPalette.ColorRole.PlaceholderText: MUTED_TEXT.dark, QPalette.ColorRole.Text: TEXT.dark,
        QPalette.ColorRole.Button: "#34373c", QPalette.ColorRole.ButtonText: TEXT.dark,
        QPalette.ColorRole.BrightText: "#ff8a80", QPalette.ColorRole.Light: "#4a4d53",
        QPalette.ColorRole.Midlight: "#3e4146", QPalette.ColorRole.Mid: "#50545a",
        QPalette.ColorRole.Dark: "#1a1b1e", QPalette.ColorRole.Shadow: "#0c0d0e",
        QPalette.ColorRole.Highlight: "#3d6fd1", QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: SELECTED.dark, QPalette.ColorRole.LinkVisited: "#c58af9",
    }
    for role, value in colours.items():
        palette.setColor(role, QColor(value))
    disabled = QPalette.ColorGroup.Disabled
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text,
                 QPalette.ColorRole.ButtonText):
        palette.setColor(disabled, role, QColor("#6f737a"))
    palette.setColor(disabled, QPalette.ColorRole.Highlight, QColor("#3a3d42"))
    return palette


def apply_scheme(app: QApplication, scheme: str) -> None:
    """Force "dark" or "light": the Fusion style with a dark palette or its own light one."""
    if scheme not in ("dark", "light"):
        raise ValueError(f"{SCHEME_ENV} must be dark or light, not {scheme!r}")
    app.setStyle("Fusion")
    app.setPalette(dark_palette() if scheme == "dark" else app.style().standardPalette())


def apply_forced_scheme(app: QApplication) -> None:
    """Honour TRACEVIEWER_COLOR_SCHEME=dark|light (screenshots, tests); unset: the OS's."""
    scheme = os.environ.get(SCHEME_ENV, "").strip().lower()
    if scheme:
        apply_scheme(app, scheme)


class _Watcher(QObject):
    """Emits `changed` when the application's palette or the OS colour scheme changes."""

    changed = Signal()
    instance: ClassVar[_Watcher | None] = None

    def __init__(self, app: QGuiApplication):
        super().__init__(app)
        app.paletteChanged.connect(self.changed)
        app.styleHints().colorSchemeChanged.connect(self.changed)


def _watcher() -> _Watcher:
    app = cast(QGuiApplication, QGuiApplication.instance())  # colours need a GUI application
    watcher = _Watcher.instance
    if watcher is None or watcher.parent() is not app:
        watcher = _Watcher.instance = _Watcher(app)
    return watcher


def follow(callback: Callable[[], None]) -> None:
    """Call `callback` now and whenever the palette changes. It must be a method of a QObject:
    the connection ends with the object."""
    callback()
    _watcher().changed.connect(callback)


def style_sheet(template: str, **roles: Role) -> str:
    """`template` with each `$ROLE` (a role of this module, or one of `roles` by its keyword)
    replaced by that role's colour now."""
    named = {name: role for name, role in globals().items() if isinstance(role, Role)}
    return Template(template).substitute({name: role.hex() for name, role in
                                          (named | roles).items()})


class _Restyler(QObject):
    """Keeps a widget's style sheet in the current scheme (a child of the widget)."""

    def __init__(self, widget: QWidget):
        super().__init__(widget)
        self.setObjectName("paletteRestyler")
        self.template = ""
        self.roles: dict[str, Role] = {}
        _watcher().changed.connect(self.apply)

    def apply(self) -> None:
        cast(QWidget, self.parent()).setStyleSheet(style_sheet(self.template, **self.roles))


def set_style(widget: QWidget, template: str, **roles: Role) -> None:
    """Set `widget`'s style sheet from a template naming roles ("color: $MUTED_TEXT", or
    "background: $bg" with bg=CHIP_OK) and set it again whenever the scheme changes. An empty
    template clears the style sheet."""
    restyler = widget.findChild(_Restyler, "paletteRestyler",
                                Qt.FindChildOption.FindDirectChildrenOnly)
    if restyler is None:
        restyler = _Restyler(widget)
    restyler.template, restyler.roles = template, roles
    restyler.apply()
