"""Workspace settings (atomic, private config file), keyring-only secrets and UI memory."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import uuid

import keyring
import keyring.backends.fail
import keyring.backends.null
import pytest

from tests.keyringtools import unique_name
from traceviewer.core import keychain, paths
from traceviewer.core.errors import AuthError, ConfigError, KeyringUnavailable
from traceviewer.core.redact import redact
from traceviewer.core.workspaces import (
    Workspace,
    WorkspaceMemory,
    WorkspaceState,
    WorkspaceStore,
    open_client,
)


@pytest.fixture
def keyring_backend():
    """Swap the process's keyring backend for a test and put the real one back after."""
    original = keyring.get_keyring()
    yield keyring.set_keyring
    keyring.set_keyring(original)


def test_config_round_trips_and_is_readable_only_by_the_user():
    store = WorkspaceStore()
    ws = Workspace("local", "http://127.0.0.1:5000/", default_experiment="exp", reviewer="a@b.c")
    store.upsert(ws)
    store.upsert(Workspace("Other", "https://mlflow.example.com", auth="basic", username="bob"))
    assert [w.name for w in store.list()] == ["local", "Other"]
    assert store.get("local") == ws
    assert ws.host == "http://127.0.0.1:5000"
    assert store.path.parent == paths.config_dir()
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600


def test_unknown_workspace_names_the_known_ones():
    store = WorkspaceStore()
    store.upsert(Workspace("alpha", "http://127.0.0.1:1"))
    with pytest.raises(ConfigError, match=r"No workspace named 'beta' .*known: alpha"):
        store.get("beta")


def test_save_refuses_to_overwrite_without_replace():
    store = WorkspaceStore()
    store.save(Workspace("a", "http://127.0.0.1:1"))
    with pytest.raises(ConfigError, match="already exists"):
        store.save(Workspace("a", "http://127.0.0.1:2"))
    store.save(Workspace("a", "http://127.0.0.1:2"), replace=True)
    assert store.get("a").host == "http://127.0.0.1:2"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": "bad name", "host": "http://h"}, "not a valid workspace name"),
    ({"name": "a", "host": "ftp://h"}, "not a server URL"),
    ({"name": "a", "host": "https://user:pw@h"}, "not in the URL"),
    ({"name": "a", "host": "http://h", "auth": "basic"}, "needs a username"),
    ({"name": "a", "host": "https://x.cloud.databricks.com", "kind": "databricks"},
     "use pat, oauth-u2m, oauth-m2m or profile"),
    ({"name": "a", "host": "https://x.cloud.databricks.com", "kind": "databricks",
      "auth": "oauth-m2m"}, "needs the client id"),
    ({"name": "a", "host": "https://x.cloud.databricks.com", "kind": "databricks",
      "auth": "profile"}, "needs the profile name"),
    ({"name": "a", "host": "http://h", "kind": "k8s"}, "Unknown workspace kind"),
])
def test_invalid_workspace_settings_say_what_to_fix(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Workspace(**kwargs)


def test_host_without_scheme_means_https():
    assert Workspace("a", "adb-1.azuredatabricks.net", kind="databricks",
                     auth="token").host == "https://adb-1.azuredatabricks.net"


def test_failed_fsync_keeps_previous_config_and_leaves_no_temp_file(monkeypatch):
    store = WorkspaceStore()
    store.upsert(Workspace("first", "http://127.0.0.1:1"))
    before = store.path.read_bytes()

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        store.upsert(Workspace("second", "http://127.0.0.1:2"))
    assert store.path.read_bytes() == before
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["workspaces.json"]


def test_process_killed_before_rename_leaves_previous_config_intact(tmp_path):
    path = tmp_path / "workspaces.json"
    WorkspaceStore(path).upsert(Workspace("first", "http://127.0.0.1:1"))
    before = path.read_bytes()
    # The writer dies (SIGKILL) after writing and syncing the new file, just before the rename.
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from traceviewer.core.workspaces import Workspace, WorkspaceStore
        os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
        WorkspaceStore(Path({str(path)!r})).upsert(Workspace("second", "http://127.0.0.1:2"))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -9
    assert path.read_bytes() == before
    assert [w.name for w in WorkspaceStore(path).list()] == ["first"]


def test_damaged_config_is_a_clear_error():
    store = WorkspaceStore()
    store.path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"not valid JSON.*fix or delete it"):
        store.list()


def test_no_secure_backend_raises_keyring_unavailable(keyring_backend):
    for backend in (keyring.backends.fail.Keyring(), keyring.backends.null.Keyring()):
        keyring_backend(backend)
        with pytest.raises(KeyringUnavailable, match=r"No secure OS keyring.*Start or unlock"):
            keychain.set_secret(unique_name(), "tok-never-stored-1234")


def test_save_with_secret_and_no_keyring_writes_nothing(keyring_backend):
    keyring_backend(keyring.backends.fail.Keyring())
    store = WorkspaceStore()
    with pytest.raises(KeyringUnavailable):
        store.save(Workspace("t", "http://127.0.0.1:1", auth="token"), "tok-abcdef-123456")
    assert store.list() == []


def test_session_secret_opens_client_without_keyring(keyring_backend):
    keyring_backend(keyring.backends.fail.Keyring())
    name = unique_name()
    ws = Workspace(name, "http://127.0.0.1:1", auth="token")
    keychain.remember_for_session(name, "session-token-98765")
    try:
        with open_client(ws) as client:
            assert client.auth.token == "session-token-98765"
        assert "session-token-98765" not in redact("Authorization: Bearer session-token-98765")
    finally:
        keychain.delete_secret(name)
    with pytest.raises(KeyringUnavailable):
        keychain.get_secret(name)


def test_ui_memory_follows_rename_and_remove():
    store = WorkspaceStore()
    store.upsert(Workspace("a", "http://127.0.0.1:1"))
    state = WorkspaceState(last_experiment="7", last_filter="status = 'ERROR'",
                           columns=("name", "time"))
    store.memory.put("a", state)
    store.memory.set_current("a")
    store.rename("a", "b")
    assert store.memory.get("b") == state
    assert store.memory.current == "b"
    assert [w.name for w in store.list()] == ["b"]
    store.remove("b")
    assert store.memory.get("b") == WorkspaceState()
    assert store.memory.current is None


def test_damaged_ui_memory_is_ignored():
    memory = WorkspaceMemory()
    memory.path.write_text("[1, 2")
    assert memory.get("a") == WorkspaceState()
    memory.put("a", WorkspaceState(last_experiment="1"))
    assert json.loads(memory.path.read_text())["workspaces"]["a"]["last_experiment"] == "1"


@pytest.mark.keyring
def test_secret_lives_in_the_keyring_and_moves_with_rename():
    store = WorkspaceStore()
    name, renamed = unique_name(), unique_name()
    token = f"tok-{uuid.uuid4().hex}"
    store.save(Workspace(name, "http://127.0.0.1:1", auth="token"), token)
    try:
        assert keyring.get_password(keychain.SERVICE, name) == token
        assert token not in store.path.read_text()
        store.rename(name, renamed)
        assert keyring.get_password(keychain.SERVICE, name) is None
        assert store.get_secret(renamed) == token
        store.remove(renamed)
        assert keyring.get_password(keychain.SERVICE, renamed) is None
    finally:
        for n in (name, renamed):
            keychain.delete_secret(n)


@pytest.mark.keyring
def test_open_client_without_stored_secret_says_how_to_add_it():
    ws = Workspace(unique_name(), "http://127.0.0.1:1", auth="basic", username="u")
    with pytest.raises(AuthError, match="No password is stored"):
        open_client(ws)


def test_tls_counts_as_unverified_only_with_verification_off_and_no_ca_bundle():
    host = "https://mlflow.example.com"
    assert Workspace("off", host, verify_tls=False).tls_unverified
    assert not Workspace("on", host).tls_unverified
    assert not Workspace("bundle", host, verify_tls=False, ca_bundle="/etc/ca.pem").tls_unverified
