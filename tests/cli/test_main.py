"""The `traceviewer` entry point: version, usage errors, every command group registered."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from traceviewer import __version__
from traceviewer.cli import COMMAND_MODULES, main


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"traceviewer {__version__}"


def test_installed_console_script_prints_the_version():
    script = Path(sys.executable).with_name("traceviewer")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True,
                            timeout=60)
    assert (result.returncode, result.stdout.strip()) == (0, f"traceviewer {__version__}")


@pytest.mark.parametrize("argv", [
    ["--no-such-flag"],
    ["no-such-command"],
    ["--workspace"],
    ["demo", "--port", "eighty"],
    ["demo", "--bogus"],
    ["workspace"],
])
def test_bad_flags_print_usage_and_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("usage: traceviewer")
    assert "error:" in captured.err


@pytest.mark.parametrize("command", COMMAND_MODULES)
def test_every_command_module_is_a_subcommand_with_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: traceviewer {command}")


def test_demo_refuses_a_port_in_use(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["demo", "--no-gui", "--port", str(port)]) == 2
    assert f"Port {port} is in use" in capsys.readouterr().err


def test_a_broken_gui_filter_exits_with_its_message_and_no_traceback(tmp_path):
    # It used to race Qt's teardown and print "Signal source has been deleted" in half the runs.
    script = Path(sys.executable).with_name("traceviewer")
    for _ in range(5):
        result = subprocess.run([str(script), "--filter", "'broken", "--screenshot",
                                 str(tmp_path / "x.png")], capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr and "RuntimeError" not in result.stderr
        assert result.stderr.strip() == ("traceviewer: Unterminated ' quote starting at "
                                         "character 1.")


def test_a_runner_with_a_task_in_flight_at_exit_prints_no_traceback():
    # A window left alive when Python exits destroys its runners after `activity` is gone.
    code = """
import threading
from traceviewer.ui.app import application
from traceviewer.ui.common.tasks import TaskRunner
app = application()
release = threading.Event()
runners = [TaskRunner() for _ in range(20)]
for runner in runners:
    runner.start(lambda token: release.wait(0.5), lambda _: None)
raise SystemExit(3)
"""
    for _ in range(3):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                timeout=120, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
        assert result.returncode == 3
        assert "Traceback" not in result.stderr, result.stderr
