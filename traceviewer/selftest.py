"""`traceviewer --self-test`: checks that an installed app has what it needs at run time (Qt
platform plugins, offscreen rendering and fonts, image formats, the keyring backend, TLS
certificates, its resources and modules). Prints one line per check; exit 1 if any fails.

Each check returns a short detail on success and raises on failure with a message that says
what is missing and, where possible, how to fix it."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from collections.abc import Callable
from pathlib import Path

# The packages the import-linter contracts keep free of mlflow: all of them ship in the app.
APP_PACKAGES = ("traceviewer.core", "traceviewer.ui", "traceviewer.cli")
NATIVE_PLATFORM = {"linux": "xcb", "win32": "windows", "darwin": "cocoa"}


class CheckFailed(Exception):
    """A self-test check found a problem; the message says what and how to fix it."""


def _plugin_dirs() -> list[Path]:
    from PySide6.QtCore import QLibraryInfo

    dirs = [Path(p) for p in os.environ.get("QT_PLUGIN_PATH", "").split(os.pathsep) if p]
    dirs.append(Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)))
    return dirs


def _find_plugin(kind: str, name: str) -> Path:
    for directory in _plugin_dirs():
        for path in sorted((directory / kind).glob(f"*q{name}.*")):
            if path.suffix in (".so", ".dll", ".dylib"):
                return path
    searched = ", ".join(str(d / kind) for d in _plugin_dirs())
    raise CheckFailed(f"Qt {kind} plugin '{name}' not found (searched {searched}); "
                      "the installation is incomplete, reinstall Trace Viewer")


def check_platform_plugins() -> str:
    """The offscreen and the native display platform plugins load (their libraries resolve)."""
    from PySide6.QtCore import QPluginLoader

    names = ["offscreen"]
    native = NATIVE_PLATFORM.get(sys.platform)
    if native:
        names.append(native)
    for name in names:
        loader = QPluginLoader(str(_find_plugin("platforms", name)))
        if not loader.load():
            # On Linux the usual cause is a missing system library, e.g. libxcb-cursor0.
            raise CheckFailed(f"Qt platform plugin '{name}' does not load: "
                              f"{loader.errorString()}; install the missing system library")
    return ", ".join(names)


def _application():
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        # Render without a display, whatever the session has: this is a check, not a window.
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        app = QApplication([sys.argv[0] if sys.argv else "traceviewer"])
    return app


def check_render() -> str:
    """A real window (the About dialog) renders offscreen, with fonts available."""
    from PySide6.QtGui import QFontDatabase

    _application()
    families = QFontDatabase.families()
    if not families:
        raise CheckFailed("no fonts found; install a font package (e.g. fonts-dejavu-core) "
                          "and fontconfig")
    from traceviewer.ui.about import AboutDialog

    dialog = AboutDialog()
    image = dialog.grab().toImage()
    dialog.deleteLater()
    if image.isNull() or image.width() == 0:
        raise CheckFailed("the About dialog rendered an empty image")
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7)
               for y in range(0, image.height(), 7)}
    if len(colours) < 3:
        raise CheckFailed("the About dialog rendered blank (no icon or text painted)")
    return f"About dialog {image.width()}x{image.height()} px, {len(families)} font families"


def check_image_formats() -> str:
    """The PNG and SVG image formats load the app icon."""
    from PySide6.QtGui import QImage, QImageReader

    from traceviewer import resources

    _application()
    supported = {bytes(f.data()).decode() for f in QImageReader.supportedImageFormats()}
    for fmt in ("png", "svg"):
        if fmt not in supported:
            raise CheckFailed(f"Qt image format '{fmt}' is not available "
                              f"(the imageformats plugin is missing); reinstall Trace Viewer")
    for path in (resources.resources_dir() / "traceviewer.svg", resources.icon_paths()[-1]):
        if QImage(str(path)).isNull():
            raise CheckFailed(f"cannot load the app icon {path}")
    return "png, svg"


def check_keyring() -> str:
    """A secure keyring backend (Secret Service, KWallet, Keychain, Credential Locker) is found."""
    from traceviewer.core.errors import KeyringUnavailable
    from traceviewer.core.keychain import secure_backend

    try:
        backend = secure_backend()
    except KeyringUnavailable as exc:
        reason = _secret_service_problem() if sys.platform.startswith("linux") else ""
        raise CheckFailed(f"{exc} Secret Service: {reason}" if reason else str(exc)) from None
    return f"{backend.name} ({type(backend).__module__})"


def _secret_service_problem() -> str:
    """Why keyring's Secret Service backend is unusable: its library does not import (a frozen
    build can miss a piece of it) or D-Bus has no Secret Service."""
    try:
        import secretstorage  # noqa: F401
    except Exception as exc:  # keyring hides this cause behind "SecretStorage required"
        return f"secretstorage does not import: {type(exc).__name__}: {exc}"
    from keyring.backends import SecretService

    try:
        SecretService.Keyring.priority  # noqa: B018  (the property probes D-Bus)
    except Exception as exc:
        return str(exc)
    return ""


def check_tls() -> str:
    """The trust store every HTTPS connection verifies against (the OS's, core.tls) loads."""
    from traceviewer.core import tls
    from traceviewer.core.errors import TraceViewerError

    try:
        found = tls.describe()
    except (TraceViewerError, OSError, ImportError) as exc:
        raise CheckFailed(f"the OS trust store cannot be used: {exc}") from None
    if "(0 CA certificates" in found:
        raise CheckFailed(f"no CA certificates in {found}")
    return found


def check_resources() -> str:
    """The app icon, desktop entry, AppStream metadata and span-type icons are present."""
    from traceviewer import resources
    from traceviewer.ui.trace import span_tree

    names = (*(style.icon for style in span_tree.STYLES), "missing")  # "missing": orphans' node
    span_icons = [span_tree.ICONS / f"span-{name}.svg" for name in names]
    absent = [str(resources.resources_dir() / name) for name in resources.missing()]
    absent += [str(path) for path in span_icons if not path.is_file()]
    if absent:
        raise CheckFailed(f"missing: {', '.join(absent)}; reinstall Trace Viewer")
    return (f"{len(resources.REQUIRED)} files in {resources.resources_dir()}, "
            f"{len(span_icons)} span-type icons")


def check_modules() -> str:
    """Every app module imports (a frozen build can miss dynamically imported ones)."""
    names = ["pyqtgraph", *APP_PACKAGES]
    for package in APP_PACKAGES:
        path = importlib.import_module(package).__path__
        names += [info.name for info in pkgutil.walk_packages(path, f"{package}.")]
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # any import failure is what this check reports
            raise CheckFailed(
                f"module {name} does not import: {type(exc).__name__}: {exc}") from None
    return f"{len(names)} modules"


CHECKS: tuple[tuple[str, Callable[[], str]], ...] = (
    ("Qt platform plugins", check_platform_plugins),
    ("offscreen rendering", check_render),
    ("image formats", check_image_formats),
    ("keyring backend", check_keyring),
    ("TLS certificates", check_tls),
    ("bundled resources", check_resources),
    ("app modules", check_modules),
)


def run(out=None) -> int:
    """Run every check, print one line each and a summary; 0 if all pass, else 1."""
    out = out or sys.stdout
    failed = 0
    for name, check in CHECKS:
        try:
            line = f"ok    {name}: {check()}"
        except Exception as exc:  # a crashing check is a failed check, reported like one
            failed += 1
            message = str(exc) if isinstance(exc, CheckFailed) else f"{type(exc).__name__}: {exc}"
            line = f"FAIL  {name}: {message}"
        print(line, file=out, flush=True)
    if failed:
        print(f"self-test failed: {failed} of {len(CHECKS)} checks", file=out)
        return 1
    print(f"self-test passed: {len(CHECKS)} checks", file=out)
    return 0
