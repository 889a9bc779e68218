"""`traceviewer --self-test` and the one version source (the packaged app is tested in
tests/e2e/test_packaging.py)."""

from __future__ import annotations

import importlib.metadata
import io
import shutil
import subprocess
import sys
from xml.etree import ElementTree

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from traceviewer import __version__, resources, selftest
from traceviewer.ui.about import AboutDialog


def run_selftest() -> tuple[int, str]:
    out = io.StringIO()
    return selftest.run(out), out.getvalue()


def test_version_is_one_source_for_metadata_cli_and_about(qtbot):
    assert importlib.metadata.version("traceviewer") == __version__
    shown = subprocess.run([sys.executable, "-m", "traceviewer", "--version"],
                           capture_output=True, text=True, check=True).stdout
    assert shown.strip() == f"traceviewer {__version__}"
    dialog = AboutDialog()
    qtbot.addWidget(dialog)
    assert dialog.version_label.text() == f"Version {__version__}"
    # Software centres show the newest <release> of the AppStream metadata.
    metainfo = ElementTree.parse(resources.resources_dir() / f"{resources.APP_ID}.metainfo.xml")
    assert metainfo.find("releases/release").get("version") == __version__


def test_about_dialog_shows_plain_text_and_copies_details(qtbot):
    dialog = AboutDialog()
    qtbot.addWidget(dialog)
    assert dialog.details_label.textFormat() == Qt.TextFormat.PlainText
    dialog.copy_details()
    copied = QGuiApplication.clipboard().text()
    assert copied.startswith(f"Trace Viewer {__version__}\nPython ")
    assert "Qt " in copied


@pytest.mark.keyring
def test_selftest_passes_in_a_working_install(qtbot):
    code, output = run_selftest()
    assert code == 0, output
    assert output.count("\nok    ") + output.startswith("ok    ") == len(selftest.CHECKS)
    assert output.endswith(f"self-test passed: {len(selftest.CHECKS)} checks\n")


def test_selftest_names_a_missing_resource_and_fails(qtbot, tmp_path, monkeypatch):
    broken = tmp_path / "resources"
    shutil.copytree(resources.resources_dir(), broken)
    (broken / "icons" / "traceviewer-48.png").unlink()
    monkeypatch.setattr(resources, "resources_dir", lambda: broken)
    code, output = run_selftest()
    assert code == 1
    assert f"FAIL  bundled resources: missing: {broken}/icons/traceviewer-48.png;" in output
    assert "self-test failed:" in output


def test_selftest_names_a_missing_span_type_icon(qtbot, tmp_path, monkeypatch):
    from traceviewer.ui.trace import span_tree

    icons = tmp_path / "icons"
    shutil.copytree(span_tree.ICONS, icons)
    (icons / "span-llm.svg").unlink()
    monkeypatch.setattr(span_tree, "ICONS", icons)
    code, output = run_selftest()
    assert code == 1
    assert f"FAIL  bundled resources: missing: {icons}/span-llm.svg;" in output


def test_selftest_fails_without_a_secure_keyring(qtbot, monkeypatch):
    import keyring
    from keyring.backends import fail

    monkeypatch.setattr(keyring.core, "_keyring_backend", fail.Keyring())
    code, output = run_selftest()
    assert code == 1
    assert "FAIL  keyring backend: No secure OS keyring is available" in output


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Secret Service is Linux's")
def test_selftest_says_why_the_secret_service_is_unusable(qtbot, monkeypatch):
    import keyring
    from keyring.backends import fail

    monkeypatch.setattr(keyring.core, "_keyring_backend", fail.Keyring())
    monkeypatch.setitem(sys.modules, "secretstorage", None)  # as if a build left it out
    code, output = run_selftest()
    assert code == 1
    assert "Secret Service: secretstorage does not import: ModuleNotFoundError" in output


def test_selftest_reports_a_crashing_check_as_a_failure(qtbot, monkeypatch):
    def broken() -> str:
        raise OSError("disk on fire")

    monkeypatch.setattr(selftest, "CHECKS", (("broken", broken),))
    code, output = run_selftest()
    assert (code, output) == (1, "FAIL  broken: OSError: disk on fire\n"
                                 "self-test failed: 1 of 1 checks\n")
