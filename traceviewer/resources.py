"""Where the app's own files (icons, desktop entry, AppStream metadata) live: `resources/` next
to the package in a checkout, or inside the bundle of an installed (PyInstaller) build."""

from __future__ import annotations

import sys
from pathlib import Path

ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
APP_ID = "io.github.traceviewer.TraceViewer"

# Every file an installed app must carry; the self-test checks them.
REQUIRED = (
    "traceviewer.svg",
    *(f"icons/traceviewer-{size}.png" for size in ICON_SIZES),
    f"{APP_ID}.desktop",
    f"{APP_ID}.metainfo.xml",
)


def resources_dir() -> Path:
    """The directory holding the app's resources (it may be missing in a broken install)."""
    bundle = getattr(sys, "_MEIPASS", None)  # set by PyInstaller's bootloader
    if bundle is not None:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def icon_paths() -> list[Path]:
    """The app icon's PNG renderings, smallest first."""
    return [resources_dir() / "icons" / f"traceviewer-{size}.png" for size in ICON_SIZES]


def missing() -> list[str]:
    """The required resource files that are absent, relative to `resources_dir()`."""
    root = resources_dir()
    return [name for name in REQUIRED if not (root / name).is_file()]
