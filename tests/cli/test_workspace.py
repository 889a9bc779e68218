"""`traceviewer workspace ...` against a real Secret Service and real `mlflow server`s."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import keyring
import pytest

from tests.conftest import BASIC_AUTH_ADMIN, PROD_EXPERIMENT
from tests.keyringtools import files_containing, secrets_deleted_afterwards, unique_name
from traceviewer.cli import main
from traceviewer.core import keychain, paths
from traceviewer.core.auth import Auth
from traceviewer.core.redact import RedactingFilter, setup_logging
from traceviewer.core.workspaces import WorkspaceStore


def log_to_this_test() -> None:
    """Point the app's log at this test's isolated log dir (setup_logging keeps the first one)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers
                    if any(isinstance(f, RedactingFilter) for f in h.filters)]:
        root.removeHandler(handler)
        handler.close()
    setup_logging()


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run the real entry point in-process with `stdin` piped in; returns (exit code, out, err)."""
    log_to_this_test()

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err
    return run


@pytest.fixture
def cleanup():
    """Names whose keyring entries are deleted after the test, whatever happened."""
    with secrets_deleted_afterwards() as names:
        yield names


def run_subprocess(*argv: str, stdin: str, env: dict[str, str],
                   wrap: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([*wrap, sys.executable, "-m", "traceviewer", *argv], input=stdin,
                          capture_output=True, text=True, env=env, timeout=120)


def test_add_without_secret_then_list_and_remove(cli):
    code, out, _ = cli("workspace", "add", "local", "--host", "http://127.0.0.1:5000",
                       "--experiment", "exp", "--reviewer", "me@example.com")
    assert code == 0 and "Saved workspace 'local'" in out
    code, out, _ = cli("workspace", "list")
    assert out.splitlines()[0].split() == ["NAME", "KIND", "HOST", "AUTH", "TLS", "EXPERIMENT",
                                           "REVIEWER"]
    assert out.splitlines()[1].split() == ["local", "mlflow", "http://127.0.0.1:5000", "none",
                                           "verified", "exp", "me@example.com"]
    code, out, _ = cli("workspace", "list", "--format", "json")
    assert json.loads(out)[0]["default_experiment"] == "exp"
    assert cli("workspace", "remove", "local")[0] == 0
    code, _, err = cli("workspace", "remove", "local")
    assert code == 2 and "No workspace named 'local'" in err


def test_secret_is_never_a_flag_value(cli):
    with pytest.raises(SystemExit) as exit_info:
        cli("workspace", "add", "w", "--host", "http://h", "--token", "abc")
    assert exit_info.value.code == 2
    code, _, err = cli("workspace", "add", "w", "--host", "http://h", "--username", "u")
    assert code == 2 and "--password-stdin" in err


def test_existing_name_is_refused_before_reading_stdin(cli):
    cli("workspace", "add", "w", "--host", "http://127.0.0.1:1")
    code, _, err = cli("workspace", "add", "w", "--host", "http://127.0.0.1:2")
    assert code == 2 and "--replace" in err


def test_no_keyring_backend_fails_clearly_and_writes_no_secret(isolated_dirs):
    token = f"tok-{uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    proc = run_subprocess("workspace", "add", "prod", "--host", "http://127.0.0.1:5000",
                          "--token-stdin", stdin=token + "\n", env=env)
    assert proc.returncode == 1
    assert "No secure OS keyring is available" in proc.stderr
    assert "Nothing was saved" in proc.stderr
    assert token not in proc.stdout + proc.stderr
    assert files_containing(isolated_dirs, token) == []
    assert WorkspaceStore().list() == []


@pytest.mark.keyring
@pytest.mark.skipif(not shutil.which("gnome-keyring-daemon"), reason="needs gnome-keyring")
def test_locked_keyring_fails_clearly_and_writes_no_secret(isolated_dirs):
    # A Secret Service whose collection is locked, with no prompter to unlock it: keyring
    # reports the dismissed prompt.
    token = f"tok-{uuid.uuid4().hex}"
    keyring_home = isolated_dirs / "locked-keyring"
    keyring_home.mkdir()
    env = {**os.environ, "TV_LOCKED_HOME": str(keyring_home)}
    start = ("XDG_DATA_HOME=$TV_LOCKED_HOME gnome-keyring-daemon --start --components=secrets"
             " >/dev/null 2>&1; exec \"$@\"")
    proc = run_subprocess("workspace", "add", "prod", "--host", "http://127.0.0.1:5000",
                          "--token-stdin", stdin=token, env=env,
                          wrap=("dbus-run-session", "--", "bash", "-c", start, "bash"))
    assert proc.returncode == 1, proc.stderr
    assert "Could not store the secret of workspace 'prod' in the keyring" in proc.stderr
    assert token not in proc.stdout + proc.stderr
    assert files_containing(isolated_dirs, token) == []
    assert WorkspaceStore().list() == []


@pytest.mark.keyring
def test_token_goes_only_to_the_keyring_and_test_succeeds(cli, cleanup, isolated_dirs,
                                                          mlflow_server):
    name = unique_name()
    cleanup.append(name)
    token = f"tok-{uuid.uuid4().hex}"
    code, out, err = cli("workspace", "add", name, "--host", mlflow_server.url, "--token-stdin",
                         "--experiment", PROD_EXPERIMENT, stdin=token + "\n")
    assert code == 0, err
    assert keyring.get_password(keychain.SERVICE, name) == token
    for command in (("workspace", "list"), ("workspace", "list", "--format", "json")):
        assert token not in cli(*command)[1]

    code, out, err = cli("workspace", "test", name)
    assert code == 0, out + err
    assert "[  ok] Credentials accepted" in out
    assert "MLflow 3.17.2" in out
    assert f"'{PROD_EXPERIMENT}'" in out
    traces_line = next(line for line in out.splitlines() if "Traces in the last 24 hours" in line)
    assert traces_line.startswith("[  ok]") and "traces" in traces_line

    # Config, data, cache, log dirs and HOME all live under the isolated base.
    assert {paths.config_dir(), paths.log_dir()} <= set(isolated_dirs.rglob("*"))
    assert files_containing(isolated_dirs, token) == []

    assert cli("workspace", "remove", name)[0] == 0
    assert keyring.get_password(keychain.SERVICE, name) is None


@pytest.mark.keyring
def test_basic_auth_password_path_against_basic_auth_server(cli, cleanup, isolated_dirs,
                                                            basic_auth_server):
    username, password = BASIC_AUTH_ADMIN
    good, bad = unique_name("basic"), unique_name("wrongpw")
    cleanup += [good, bad]
    assert cli("workspace", "add", good, "--host", basic_auth_server.url, "--username", username,
               "--password-stdin", stdin=password)[0] == 0
    assert keyring.get_password(keychain.SERVICE, good) == password
    code, out, err = cli("workspace", "test", good)
    assert code == 0, out + err
    assert "the server accepted the username and password" in out

    wrong = f"wrong-{uuid.uuid4().hex}"
    cli("workspace", "add", bad, "--host", basic_auth_server.url, "--username", username,
        "--password-stdin", stdin=wrong)
    code, out, err = cli("workspace", "test", bad)
    assert code == 1
    assert "[FAIL] Credentials accepted" in out and "was rejected (HTTP 401)" in out
    basic_value = base64.b64encode(f"{username}:{wrong}".encode()).decode()
    for secret in (password, wrong, basic_value):
        assert secret not in out + err
        assert files_containing(isolated_dirs, secret) == []


@pytest.mark.keyring
def test_import_env_puts_token_in_keyring(cli, cleanup, isolated_dirs, monkeypatch,
                                          mlflow_server):
    name = unique_name("env")
    cleanup.append(name)
    token = f"tok-{uuid.uuid4().hex}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", PROD_EXPERIMENT)
    code, out, err = cli("workspace", "import-env", name)
    assert code == 0, err
    assert "auth token" in out and "from environment" in out
    assert WorkspaceStore().get(name).default_experiment == PROD_EXPERIMENT
    assert keyring.get_password(keychain.SERVICE, name) == token
    assert files_containing(isolated_dirs, token) == []


@pytest.mark.keyring
def test_import_databrickscfg_puts_tokens_in_keyring(cli, cleanup, isolated_dirs):
    profile = unique_name("prof")
    cleanup.extend([profile, "sso"])
    token = f"dapi{uuid.uuid4().hex}"
    cfg = Path.home() / ".databrickscfg"
    cfg.write_text(f"[{profile}]\nhost = https://dbc-1.cloud.databricks.com\ntoken = {token}\n"
                   "[sso]\nhost = https://dbc-2.cloud.databricks.com\nauth_type = databricks-cli\n")
    code, out, err = cli("workspace", "import-databrickscfg")
    assert code == 0, err
    assert "Imported workspace 'sso' (databricks, https://dbc-2.cloud.databricks.com, auth " \
           "profile)" in out
    assert f"Imported workspace '{profile}' (databricks" in out
    assert keyring.get_password(keychain.SERVICE, profile) == token
    assert files_containing(isolated_dirs, token) == [cfg]


def test_authorization_header_is_masked_in_the_log():
    log_to_this_test()
    auth = Auth("basic", username="admin", password=f"pw-{uuid.uuid4().hex}")
    logging.getLogger("tests.workspace").warning("request headers: %s", auth.headers())
    logging.getLogger("tests.workspace").warning("login failed for %s", auth.password)
    for handler in logging.getLogger().handlers:
        handler.flush()
    log_text = (paths.log_dir() / "traceviewer.log").read_text()
    assert "request headers: {'Authorization': '****'}" in log_text
    assert auth.password not in log_text
    assert auth.headers()["Authorization"].split()[1] not in log_text
