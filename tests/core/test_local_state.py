"""Local state under faults: a garbage, truncated or locked outbox, a full disk and a read-only
data folder give clear OutboxUnavailable messages (never a traceback), nothing half-written and
no assessment reported as recorded; a damaged outbox is kept aside and a new one started; a
workspaces.json that is not UTF-8 gets the same "fix or delete it" message as other damage.
Real SQLite files on real (tmpfs) file systems."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from traceviewer.core.errors import ConfigError, OutboxUnavailable
from traceviewer.core.outbox import Outbox, Target
from traceviewer.core.workspaces import WorkspaceStore

TARGET = Target("local", "http://127.0.0.1:5000")
BODY = {"assessment_name": "correct", "source": {"source_type": "HUMAN", "source_id": "bob"},
        "feedback": {"value": True}}


def _add(outbox: Outbox, rationale: str = "") -> None:
    outbox.add_create(TARGET, "tr-1", {**BODY, "rationale": rationale})


def _mount_tmpfs(folder: Path, size: str) -> None:
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs, unmounted afterwards."""
    folder = tmp_path / "disk"
    _mount_tmpfs(folder, "256k")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def test_garbage_outbox_is_moved_aside_named_and_a_new_one_started(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    path.write_bytes(b"this is not a database\n" * 500)
    outbox = Outbox(path)
    (aside,) = tmp_path.glob("outbox.sqlite3.corrupt-*")
    assert aside.read_bytes() == b"this is not a database\n" * 500  # kept as it was
    assert str(aside) in outbox.set_aside and "new outbox" in outbox.set_aside
    _add(outbox)
    assert len(Outbox(path).items()) == 1 and Outbox(path).set_aside is None


def test_truncated_outbox_is_moved_aside_and_a_new_one_started(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    outbox = Outbox(path)
    for _ in range(200):
        _add(outbox, "x" * 2000)
    del outbox  # every connection closed: the WAL is checkpointed into the file
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 2)
    fresh = Outbox(path)
    assert fresh.set_aside and "damaged" in fresh.set_aside
    assert list(tmp_path.glob("outbox.sqlite3.corrupt-*"))
    assert fresh.items() == []
    _add(fresh)
    assert len(fresh.items()) == 1


def test_locked_outbox_is_waited_for_then_a_clear_error_and_nothing_recorded(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    outbox = Outbox(path, busy_timeout_s=0.5)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    started = time.monotonic()
    with pytest.raises(OutboxUnavailable) as caught:
        _add(outbox)
    assert 0.5 <= time.monotonic() - started < 5
    message = str(caught.value)
    assert "locked by another program" in message and "NOT recorded" in message
    other.execute("ROLLBACK")
    other.close()
    assert outbox.items() == []


def test_locked_outbox_released_within_the_wait_records_the_change(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    outbox = Outbox(path, busy_timeout_s=20.0)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(0.3, lambda: (other.execute("ROLLBACK"), other.close()))
    release.start()
    _add(outbox)
    release.join()
    assert len(outbox.items()) == 1


def test_full_disk_says_so_and_half_writes_nothing(small_disk):
    path = small_disk / "outbox.sqlite3"
    outbox = Outbox(path)
    _add(outbox)
    filler = small_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        with pytest.raises(OSError):  # ENOSPC: the disk is full
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    with pytest.raises(OutboxUnavailable) as caught:
        _add(outbox, "y" * 100_000)
    assert "is full" in str(caught.value) and "NOT recorded" in str(caught.value)
    filler.unlink()
    again = Outbox(path)
    assert again.set_aside is None and len(again.items()) == 1  # the old one, whole
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_read_only_data_folder_says_so_and_records_nothing(small_disk):
    path = small_disk / "outbox.sqlite3"
    _add(Outbox(path))
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    with pytest.raises(OutboxUnavailable) as caught:
        _add(Outbox(path))
    message = str(caught.value)
    assert "cannot be written" in message or "read-only" in message
    assert "NOT recorded" in message or "writable" in message
    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert len(Outbox(path).items()) == 1


def test_new_outbox_on_a_read_only_folder_says_so(small_disk):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    with pytest.raises(OutboxUnavailable, match="writable"):
        Outbox(small_disk / "outbox.sqlite3")


def test_workspaces_file_that_is_not_utf8_says_fix_or_delete_it(tmp_path):
    path = tmp_path / "workspaces.json"
    path.write_bytes(b'{"workspaces": {"caf\xe9": {}}}')
    with pytest.raises(ConfigError) as caught:
        WorkspaceStore(path).list()
    message = str(caught.value)
    assert "not UTF-8" in message and "fix or delete it" in message
    (aside,) = tmp_path.glob("workspaces.json.corrupt-*")
    assert str(aside) in message and aside.read_bytes().endswith(b"}}}")
    assert WorkspaceStore(path).list() == []  # later reads go on without it
