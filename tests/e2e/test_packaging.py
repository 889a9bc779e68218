"""The Linux package: `packaging/build-deb` builds the PyInstaller bundle and a .deb; installed
into a scratch root, its launcher runs without the checkout or the venv.

Slow (a full PyInstaller build, a few minutes on 2 cores): select with `-m slow` or leave out
with `-m "not slow"`. The bundle is built once per module."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from tests.conftest import PROD_EXPERIMENT, experiment_id
from traceviewer import __version__
from traceviewer.core import tls
from traceviewer.resources import APP_ID, ICON_SIZES, REQUIRED

ROOT = Path(__file__).resolve().parents[2]
MAX_INSTALLED_MIB = 200

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@dataclass(frozen=True)
class Installed:
    deb: Path
    root: Path  # the scratch root the .deb was unpacked into

    @property
    def launcher(self) -> Path:
        return self.root / "usr" / "bin" / "traceviewer"

    def field(self, name: str) -> str:
        return subprocess.run(["dpkg-deb", "--field", str(self.deb), name], check=True,
                              capture_output=True, text=True).stdout.strip()

    def run(self, *args: str) -> subprocess.CompletedProcess:
        """Run the installed launcher as a user would: no venv, no checkout on any path."""
        env = {key: value for key, value in os.environ.items()
               if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "SSL_CERT_FILE",
                              "SSL_CERT_DIR", "QT_PLUGIN_PATH", "LD_LIBRARY_PATH")}
        env["PATH"] = "/usr/bin:/bin"
        env["QT_QPA_PLATFORM"] = "offscreen"
        return subprocess.run([str(self.launcher), *args], cwd=self.root, env=env,
                              capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    out = tmp_path_factory.mktemp("deb")
    started = time.monotonic()
    build = subprocess.run([str(ROOT / "packaging" / "build-deb"), str(out)],
                           env={**os.environ, "PYTHON": sys.executable},
                           capture_output=True, text=True, timeout=840)
    assert build.returncode == 0, build.stderr[-4000:]
    deb = Path(build.stdout.strip().splitlines()[-1])
    root = out / "root"
    subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    print(f"\nbuild-deb: {time.monotonic() - started:.0f} s; {build.stderr.splitlines()[-1]}")
    return Installed(deb, root)


def test_deb_installs_bundle_launcher_desktop_entry_icons_and_metainfo(installed):
    assert installed.field("Package") == "traceviewer"
    assert installed.field("Version") == __version__
    assert installed.launcher.is_symlink()
    assert installed.launcher.resolve() == installed.root / "opt/traceviewer/traceviewer"
    share = installed.root / "usr" / "share"
    desktop = (share / "applications" / f"{APP_ID}.desktop").read_text()
    assert "Exec=traceviewer" in desktop and "Icon=traceviewer" in desktop
    assert (share / "metainfo" / f"{APP_ID}.metainfo.xml").is_file()
    assert (share / "icons/hicolor/scalable/apps/traceviewer.svg").is_file()
    for size in ICON_SIZES:
        assert (share / f"icons/hicolor/{size}x{size}/apps/traceviewer.png").is_file()


def test_installed_size_is_under_the_target(installed):
    installed_mib = int(installed.field("Installed-Size")) / 1024
    print(f"\ninstalled size {installed_mib:.0f} MiB, "
          f".deb {installed.deb.stat().st_size / 2**20:.0f} MiB")
    assert installed_mib < MAX_INSTALLED_MIB


def test_bundle_leaves_out_the_demo_server_stack_and_unused_qt(installed):
    internal = installed.root / "opt" / "traceviewer" / "_internal"
    assert (internal / "traceviewer" / "resources" / "icons").is_dir()  # span-type icons
    for absent in ("mlflow", "fastapi", "pandas", "PySide6/QtQml.abi3.so",
                   "PySide6/Qt/lib/libQt6Quick.so.6", "PySide6/Qt/lib/libQt6Network.so.6",
                   "PySide6/Qt/plugins/platforms/libqeglfs.so", "PySide6/Qt/translations"):
        assert not (internal / absent).exists(), absent
    dangling = [path for path in internal.rglob("*") if path.is_symlink() and not path.exists()]
    assert dangling == []


def test_installed_launcher_prints_the_version(installed):
    result = installed.run("--version")
    assert (result.returncode, result.stdout) == (0, f"traceviewer {__version__}\n"), \
        result.stderr


def test_installed_app_renders_a_real_trace_in_the_detail_view(installed, sdk, tmp_path):
    # The span tree and the timeline (pyqtgraph, numpy) on a trace the demo app recorded.
    [trace] = sdk.search_traces(locations=[experiment_id(sdk, PROD_EXPERIMENT)], max_results=1)
    trace_file = tmp_path / "trace.json"
    trace_file.write_text(trace.to_json())
    png = tmp_path / "trace.png"
    result = installed.run("open", str(trace_file), "--screenshot", str(png))
    assert result.returncode == 0, result.stderr
    image = QImage(str(png))
    assert (image.width(), image.height()) == (1500, 900)
@pytest.mark.keyring
def test_installed_launcher_passes_its_self_test(installed):
    result = installed.run("--self-test")
    assert result.returncode == 0, result.stdout + result.stderr
    # The checks ran on the installed copy (its resources), not the checkout's; certificates
    # are the operating system's, through the bundled truststore.
    bundle = installed.root / "opt" / "traceviewer" / "_internal"
    assert f"bundled resources: {len(REQUIRED)} files in {bundle / 'resources'}" in result.stdout
    assert f"{tls.TRUST_STORE} (" in result.stdout and "via truststore" in result.stdout
    assert "self-test passed" in result.stdout
