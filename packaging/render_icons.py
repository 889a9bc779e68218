"""Render resources/traceviewer.svg to the committed app icons: PNGs at the usual sizes (Linux
hicolor theme, Qt window icon), a multi-size .ico (Windows) and .icns (macOS).

Run after editing the SVG: .venv/bin/python packaging/render_icons.py"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
RESOURCES = Path(__file__).resolve().parent.parent / "resources"


def render(renderer: QSvgRenderer, size: int) -> QImage:
    """One square ARGB rendering of the SVG at `size` pixels."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    return image


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QGuiApplication(sys.argv[:1])  # noqa: F841  (QPainter needs a GUI application)
    renderer = QSvgRenderer(str(RESOURCES / "traceviewer.svg"))
    if not renderer.isValid():
        print("resources/traceviewer.svg is not a valid SVG", file=sys.stderr)
        return 1
    out = RESOURCES / "icons"
    out.mkdir(exist_ok=True)
    pngs = {}
    for size in SIZES:
        path = out / f"traceviewer-{size}.png"
        if not render(renderer, size).save(str(path)):
            print(f"could not write {path}", file=sys.stderr)
            return 1
        pngs[size] = path
    largest = Image.open(pngs[512])
    largest.save(out / "traceviewer.ico", sizes=[(s, s) for s in (16, 24, 32, 48, 64, 128, 256)],
                 append_images=[Image.open(pngs[s]) for s in (16, 24, 32, 48, 64, 128, 256)])
    largest.save(out / "traceviewer.icns",
                 append_images=[Image.open(pngs[s]) for s in (16, 32, 64, 128, 256)])
    print(f"wrote {len(pngs)} PNGs, traceviewer.ico and traceviewer.icns to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
