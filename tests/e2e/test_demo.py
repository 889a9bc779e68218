"""`traceviewer demo --no-gui`: a real seeded `mlflow server` that scripts can wait for.

The first run seeds the full demo data set (the slowest test of the suite, a few minutes); the
second run must find the data and serve it again without seeding."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient

from tests.conftest import PROD_EXPERIMENT
from traceviewer.core.workspaces import WorkspaceStore

# The first run seeds the full data set: minutes on a busy machine.
pytestmark = pytest.mark.timeout(1500)

URL_LINE = re.compile(r"^MLflow server: (http://127\.0\.0\.1:\d+)$")
DATABRICKS_LINE = re.compile(r"^Databricks workspace: (http://127\.0\.0\.1:\d+)$")
PLANNED = re.compile(r"production-genai-app: (\d+) chat requests to send")
SEED_TIMEOUT_S = 1200


class Demo:
    """A `traceviewer demo --no-gui` process and the URL it printed."""

    def __init__(self, data_dir: Path, env: dict[str, str], log: Path, *extra: str):
        self.log = log
        script = Path(sys.executable).with_name("traceviewer")
        with open(log, "ab") as err:
            self.proc = subprocess.Popen([str(script), "demo", "--no-gui", "--data-dir",
                                          str(data_dir), *extra], stdout=subprocess.PIPE,
                                         stderr=err, env=env, bufsize=0)  # lines as they come
        try:
            self.url = self.wait_for_line(URL_LINE)
        except BaseException:
            self.stop()  # SIGTERM, so the demo stops its server too
            raise

    def wait_for_line(self, pattern: re.Pattern[str]) -> str:
        """The URL in the next stdout line matching `pattern`."""
        deadline = time.monotonic() + SEED_TIMEOUT_S
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if sel.select(timeout=1.0):
                    line = self.proc.stdout.readline().decode()
                    if not line:
                        break
                    if match := pattern.match(line.strip()):
                        return match.group(1)
        pytest.fail(f"no {pattern.pattern!r} line (exit {self.proc.poll()}); stderr:\n"
                    f"{self.log.read_text()[-3000:]}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory) -> dict[str, str]:
    """Isolated config and data dirs shared by both runs (so the second finds the first's)."""
    base = tmp_path_factory.mktemp("demo-xdg")
    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        env[var] = str(base / var.lower())
    return env


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("demo-data")


@pytest.fixture(scope="module")
def first_run(data_dir, demo_env, tmp_path_factory):
    """The first run (seeds) while the tests use it; yields (Demo, seconds to the URL line)."""
    started = time.monotonic()
    demo = Demo(data_dir, demo_env, tmp_path_factory.mktemp("demo-log") / "first.log")
    yield demo, time.monotonic() - started
    demo.stop()


def _all_traces(url: str, experiment_id: str) -> list:
    client = MlflowClient(tracking_uri=url)
    traces, token = [], None
    while True:
        page = client.search_traces(locations=[experiment_id], max_results=500,
                                    page_token=token, include_spans=False)
        traces += page
        token = page.token
        if not token:
            return traces


def _context(info, key: str) -> str | None:
    """Session or user: tags for the production deployments, metadata for staging's newer
    release (update_current_trace(session_id=, user=))."""
    return info.tags.get(key) or info.trace_metadata.get(key)


def test_first_run_prints_the_url_of_a_healthy_server(first_run):
    demo, seconds = first_run
    print(f"demo seeded and serving after {seconds:.0f} s")
    assert httpx.get(f"{demo.url}/health", timeout=10).text.strip() == "OK"


def test_demo_workspace_points_at_the_server(first_run, demo_env, monkeypatch):
    demo, _ = first_run
    monkeypatch.setenv("XDG_CONFIG_HOME", demo_env["XDG_CONFIG_HOME"])
    ws = WorkspaceStore().get("demo")
    assert (ws.host, ws.auth, ws.default_experiment) == (demo.url, "none", PROD_EXPERIMENT)


def test_sdk_finds_production_like_traces_with_human_feedback(first_run):
    demo, _ = first_run
    experiment = MlflowClient(tracking_uri=demo.url).get_experiment_by_name(PROD_EXPERIMENT)
    traces = [t.info for t in _all_traces(demo.url, experiment.experiment_id)]
    # Every request the seeding sent yielded exactly one trace.
    assert len(traces) == int(PLANNED.search(demo.log.read_text()).group(1)) >= 300
    tagged = [i for i in traces if i.tags.get("mlflow.trace.session")
              and i.tags.get("mlflow.trace.user") and i.tags.get("environment")
              and i.tags.get("app_version")]
    assert len(tagged) >= 300
    assert len({_context(i, "mlflow.trace.session") for i in traces}) >= 40
    assert len({_context(i, "mlflow.trace.user") for i in traces}) >= 10
    assert {i.tags["environment"] for i in traces} == {"production", "staging"}
    assert len({i.tags["app_version"] for i in traces}) >= 2
    week_ago_ms = (time.time() - 7 * 24 * 3600) * 1000
    assert all(i.request_time >= week_ago_ms for i in traces)
    assert {i.state.value for i in traces} == {"OK", "ERROR"}  # none left IN_PROGRESS
    human = [a for i in traces for a in i.assessments
             if a.source.source_type == "HUMAN" and a.name == "response_is_correct"]
    assert len(human) >= 30


def test_big_traces_experiment_holds_1k_and_10k_span_traces(first_run):
    demo, _ = first_run
    experiment = MlflowClient(tracking_uri=demo.url).get_experiment_by_name("big-traces")
    sizes = sorted(json.loads(t.info.trace_metadata["mlflow.trace.sizeStats"])["num_spans"]
                   for t in _all_traces(demo.url, experiment.experiment_id))
    assert sizes == [1_000, 10_000]


def test_sigterm_stops_the_demo_and_its_server(first_run):
    demo, _ = first_run
    assert demo.stop() == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{demo.url}/health", timeout=5)


def test_second_run_reuses_the_seeded_data(first_run, data_dir, demo_env, tmp_path):
    first, _ = first_run
    first.stop()  # both runs share the data dir; only one may serve it
    log = tmp_path / "second.log"
    started = time.monotonic()
    second = Demo(data_dir, demo_env, log)
    try:
        seconds = time.monotonic() - started
        client = MlflowClient(tracking_uri=second.url)
        experiment_id = client.get_experiment_by_name(PROD_EXPERIMENT).experiment_id
        assert len(_all_traces(second.url, experiment_id)) >= 300
        assert "Seeding" not in log.read_text()
        print(f"second run serving after {seconds:.0f} s")
    finally:
        assert second.stop() == 0


def test_gui_run_opens_the_demo_workspace_and_stops_the_server_on_close(
        first_run, data_dir, demo_env, tmp_path, monkeypatch):
    first, _ = first_run
    first.stop()
    png = tmp_path / "demo.png"
    script = Path(sys.executable).with_name("traceviewer")
    # --screenshot closes the window once its data has loaded, like a user closing it.
    result = subprocess.run([str(script), "--screenshot", str(png), "demo", "--data-dir",
                             str(data_dir)], env=demo_env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Seeding" not in result.stderr
    monkeypatch.setenv("XDG_CONFIG_HOME", demo_env["XDG_CONFIG_HOME"])
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{WorkspaceStore().get('demo').host}/health", timeout=5)


@pytest.mark.keyring
def test_databricks_demo_registers_a_signed_in_u2m_workspace_that_connects(
        first_run, data_dir, demo_env, tmp_path, monkeypatch):
    first, _ = first_run
    first.stop()
    env = {k: v for k, v in demo_env.items() if not k.startswith(("TV_DBX_", "DATABRICKS_"))}
    env |= {"TV_DBX_USER": "demo.reviewer@example.com", "TV_DBX_CLIENT_SECRET": "dose-e2e-only"}
    demo = Demo(data_dir, env, tmp_path / "databricks.log", "--databricks")
    try:
        url = demo.wait_for_line(DATABRICKS_LINE)
        monkeypatch.setenv("XDG_CONFIG_HOME", env["XDG_CONFIG_HOME"])
        ws = WorkspaceStore().get("demo-databricks")
        assert (ws.kind, ws.host, ws.auth, ws.default_experiment, ws.reviewer) == (
            "databricks", url, "oauth-u2m", PROD_EXPERIMENT, "demo.reviewer@example.com")
        script = Path(sys.executable).with_name("traceviewer")
        test = subprocess.run([str(script), "workspace", "test", "demo-databricks"], env=env,
                              capture_output=True, text=True, timeout=120)
        assert test.returncode == 0, test.stdout + test.stderr
        assert ("signed in as demo.reviewer@example.com with the OAuth user sign-in (U2M)"
                in test.stdout)
        assert "Connection OK." in test.stdout
        # Spans come from the stand-in's signed storage URLs, as on a real workspace.
        found = subprocess.run([str(script), "traces", "search", "--workspace",
                                "demo-databricks", "--experiment", PROD_EXPERIMENT, "--max",
                                "1", "--format", "json"], env=env, capture_output=True,
                               text=True, timeout=120)
        assert found.returncode == 0, found.stderr
        (row,) = json.loads(found.stdout)
        shown = subprocess.run([str(script), "trace", "show", row["trace_id"], "--workspace",
                                "demo-databricks"], env=env, capture_output=True, text=True,
                               timeout=120)
        assert shown.returncode == 0, shown.stderr
        assert httpx.get(f"{url}/_standin/stats").json()["storage_downloads"] >= 1
    finally:
        assert demo.stop() == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/.well-known/databricks-config", timeout=5)


def test_reset_deletes_the_demo_data_and_seeds_again(first_run, data_dir, demo_env, tmp_path):
    first, _ = first_run
    first.stop()
    (data_dir / "notes.txt").write_text("not the demo's")
    log = tmp_path / "reset.log"
    script = Path(sys.executable).with_name("traceviewer")
    with open(log, "ab") as err:
        proc = subprocess.Popen([str(script), "demo", "--no-gui", "--reset", "--data-dir",
                                 str(data_dir)], stdout=subprocess.DEVNULL, stderr=err,
                                env=demo_env)
    try:
        # An empty store gets every planned request; stop once seeding has shown that.
        deadline = time.monotonic() + 300
        while not PLANNED.search(log.read_text()) and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.5)
        planned = PLANNED.search(log.read_text())
        assert planned and int(planned.group(1)) >= 300
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert (data_dir / "notes.txt").read_text() == "not the demo's"
