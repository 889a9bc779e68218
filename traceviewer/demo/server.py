"""Start and stop a local `mlflow server` (SQLite store) on a free loopback port.

Used by `traceviewer demo` and by the test fixtures. It runs the server as a child process, so
this module does not import mlflow; it needs the `mlflow` executable of the `demo` extra."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from traceviewer.core.errors import TraceViewerError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mlflow_executable() -> str:
    candidate = Path(sys.executable).with_name("mlflow")
    found = str(candidate) if candidate.exists() else shutil.which("mlflow")
    if not found:
        raise TraceViewerError(
            "The demo needs the mlflow server: install the demo extra "
            "(pip install 'traceviewer[demo]') or run scripts/demo.")
    return found


class MlflowServer:
    """A running `mlflow server` child process; use as a context manager or call stop()."""

    def __init__(self, data_dir: Path, port: int | None = None, extra_args: tuple[str, ...] = ()):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._extra_args = extra_args
        self._proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> MlflowServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        db = self.data_dir / "mlflow.db"
        artifacts = self.data_dir / "artifacts"
        cmd = [mlflow_executable(), "server", *self._extra_args,
               "--backend-store-uri", f"sqlite:///{db}",
               "--default-artifact-root", str(artifacts),
               "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115 (kept open for the child)
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                      start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise TraceViewerError(
                    f"mlflow server exited with code {self._proc.returncode}; "
                    f"see {self.data_dir / 'server.log'}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TraceViewerError(f"mlflow server did not become healthy within {timeout:.0f} s; "
                               f"see {self.data_dir / 'server.log'}")

    def wait(self) -> int | None:
        """Block until the server process exits; its exit code (None if it never started)."""
        return None if self._proc is None else self._proc.wait()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        # The server forks workers: signal the whole process group.
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
