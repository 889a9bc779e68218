"""The layering rules of ARCHITECTURE.md, checked on the real package."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Run in a fresh interpreter: the test process itself has Qt and mlflow loaded already.
_LOADED_FORBIDDEN = """
import importlib, json, pkgutil, sys
forbidden = sys.argv[1].split(",")
found = {}
for package_name in sys.argv[2:]:
    package = importlib.import_module(package_name)
    names = [package_name] + [m.name for m in pkgutil.walk_packages(package.__path__,
                                                                      package_name + ".")]
    for name in names:
        before = set(sys.modules)
        importlib.import_module(name)
        for new in set(sys.modules) - before:
            top = "traceviewer.ui" if new.startswith("traceviewer.ui") else new.split(".")[0]
            if top in forbidden:
                found.setdefault(top, name)
print(json.dumps(found))
"""
QT = "PySide6,shiboken6,pyqtgraph"


def forbidden_loaded(forbidden: str, *packages: str) -> dict[str, str]:
    """Import every module of `packages` in a fresh interpreter; {forbidden module: the first
    module whose import loaded it}."""
    result = subprocess.run([sys.executable, "-c", _LOADED_FORBIDDEN, forbidden, *packages],
                            capture_output=True, text=True, timeout=120, check=True)
    return json.loads(result.stdout)


def test_importing_every_core_module_loads_no_qt_no_mlflow_and_no_ui():
    assert forbidden_loaded(f"{QT},mlflow,traceviewer.ui", "traceviewer.core") == {}


def test_the_import_check_reports_a_qt_import():
    # The same check on a package that does import Qt must name it, or the test above is void.
    assert "PySide6" in forbidden_loaded(QT, "traceviewer.ui")


def test_import_linter_contracts_are_kept():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache"], capture_output=True, text=True,
                            timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stdout + result.stderr
