"""Fixtures shared by every test: isolated on-disk state, Qt offscreen, and a real seeded
`mlflow server` (session-scoped: started once, seeded by the demo's own seeding code)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The SDK used for comparisons must not talk to anything but the test server.
os.environ.pop("MLFLOW_TRACKING_URI", None)

from traceviewer.demo.server import MlflowServer

PROD_EXPERIMENT = "/Shared/production-genai-app"
BIG_EXPERIMENT = "big-traces"


def pytest_collection_modifyitems(config, items):
    """Tests marked `keyring` need a real Secret Service; scripts/test starts one and sets
    TV_SECRET_SERVICE=1. Without it they are skipped, saying how to run them."""
    if os.environ.get("TV_SECRET_SERVICE"):
        return
    skip = pytest.mark.skip(reason="needs a real Secret Service: run scripts/test (it starts "
                                   "gnome-keyring in dbus-run-session, TV_SECRET_SERVICE=1)")
    for item in items:
        if "keyring" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """End the test process without Python's teardown of the Qt objects the GUI tests left:
    PySide6 6.12 can crash there ("shared QObject was deleted directly"), after every result
    is written, turning a green run red."""
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(config.hook_exit_status)


def pytest_sessionfinish(session, exitstatus):
    session.config.hook_exit_status = int(exitstatus)


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path_factory, monkeypatch):
    """Every test gets its own config, data, cache and log dirs (and HOME)."""
    base = tmp_path_factory.mktemp("xdg")
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "HOME"):
        path = base / var.lower()
        path.mkdir()
        monkeypatch.setenv(var, str(path))
    # (mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI: no test may see another's.)
    for var in ("MLFLOW_TRACKING_URI", "DATABRICKS_HOST", "DATABRICKS_TOKEN",
                "MLFLOW_TRACKING_TOKEN",
                "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(var, raising=False)
    return base


@pytest.fixture(scope="session", autouse=True)
def background_tasks_end():
    """Background tasks still running when the session ends finish before Python shuts down
    (a worker thread emitting into a torn-down interpreter crashes it)."""
    yield
    from traceviewer.ui.app import finish_background_tasks

    finish_background_tasks()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on a free loopback port with a temporary SQLite store, seeded with
    the demo's chat app (the small profile) and its big-trace experiment."""
    data = tmp_path_factory.mktemp("mlflow")
    with MlflowServer(data) as server:
        subprocess.run(
            [sys.executable, "-m", "traceviewer.demo.seed", "--tracking-uri", server.url,
             "--profile", "test"],
            check=True, timeout=900)
        yield server


@pytest.fixture(scope="session")
def sdk(mlflow_server):
    """The MLflow SDK pointed at the test server (for side-by-side comparisons only)."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(mlflow_server.url)
    return MlflowClient(tracking_uri=mlflow_server.url)


@pytest.fixture(scope="session")
def prod(sdk) -> str:
    """The id of the seeded production experiment."""
    return experiment_id(sdk, PROD_EXPERIMENT)


@pytest.fixture(scope="module")
def prod_infos(sdk, prod):
    """Every trace of the production experiment as the SDK sees it, newest first (read once
    per module: other modules add feedback)."""
    return [t.info for t in sdk.search_traces(locations=[prod], max_results=500,
                                              include_spans=False)]


@pytest.fixture
def client(mlflow_server):
    """Our RestClient on the test server."""
    from traceviewer.core.client import RestClient

    with RestClient(mlflow_server.url) as c:
        yield c


@pytest.fixture
def fault_proxy(mlflow_server):
    """A tests/faultproxy.py FaultProxy in front of the real server: point a client at
    `fault_proxy.url`, then `fault_proxy.inject(...)` faults."""
    from tests.faultproxy import FaultProxy

    with FaultProxy(mlflow_server.url) as proxy:
        yield proxy


BASIC_AUTH_ADMIN = ("admin", "tv-admin-Pw-8271")


@pytest.fixture(scope="session")
def basic_auth_server(tmp_path_factory):
    """A real `mlflow server --app-name basic-auth` (empty store), admin BASIC_AUTH_ADMIN.

    MLflow 3.17.2 ships no admin password (and refuses the old `password1234`), needs Flask-WTF
    and a Flask secret key, and keeps its user database where its config file says."""
    data = tmp_path_factory.mktemp("mlflow-basic-auth")
    config = data / "basic_auth.ini"
    config.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{data / 'basic_auth.db'}\n"
        f"admin_username = {BASIC_AUTH_ADMIN[0]}\nadmin_password = {BASIC_AUTH_ADMIN[1]}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_AUTH_CONFIG_PATH", str(config))
        env.setenv("MLFLOW_FLASK_SERVER_SECRET_KEY", "tv-test-only")
        server = MlflowServer(data / "server", extra_args=("--app-name", "basic-auth")).start()
    try:
        yield server
    finally:
        server.stop()


def experiment_id(sdk, name: str) -> str:
    return sdk.get_experiment_by_name(name).experiment_id


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def databricks_standin(mlflow_server):
    """A Databricks workspace stand-in (traceviewer.demo.databricks) in front of the test
    server: PAT and OAuth sign-in with its default credentials (`.credentials`), OAuth access
    tokens living 5 s, signed storage URLs 10 s, all spans in artifact storage. Tests that need
    other options start their own DatabricksStandIn(mlflow_server.url, ...)."""
    from traceviewer.demo.databricks import DatabricksStandIn

    with DatabricksStandIn(mlflow_server.url, token_lifetime=5, url_lifetime=10) as standin:
        yield standin
