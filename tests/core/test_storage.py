"""Small JSON state files: atomic writes, cross-process locks and the one damaged-file policy."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from traceviewer.core.errors import ConfigError
from traceviewer.core.review import QueueState, QueueStore, SchemaStore
from traceviewer.core.saved_filters import SavedFilters
from traceviewer.core.storage import JsonFile
from traceviewer.core.workspaces import Workspace, WorkspaceMemory, WorkspaceState, WorkspaceStore

DAMAGED = {
    "garbage": b"\x00\x01 this is not json",
    "truncated": b'{"workspaces": [{"name": "a", "host": "http://h"',
    "non-utf8": b'{"workspaces": ["caf\xe9"]}',
    "wrong shape": b'["a", "b"]',
}


def counter_file(path: Path, *, regenerable: bool = False, timeout: float = 10.0) -> JsonFile:
    """A file holding {"items": [...]}; anything else is damaged."""
    def parse(data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data["items"], list):
            raise ValueError("no list of items")
        return data
    return JsonFile(path, parse, lambda: {"items": []}, what="list of items",
                    regenerable=regenerable, timeout=timeout)


def append(item: Any):
    def fn(data: dict[str, Any]) -> dict[str, Any]:
        data["items"].append(item)
        return data
    return fn


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch, failing):
    file = counter_file(tmp_path / "items.json")
    file.update(append(1))
    before = file.path.read_bytes()

    def broken(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, broken)
    with pytest.raises(OSError, match="No space left"):
        file.update(append(2))
    monkeypatch.undo()
    assert file.path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["items.json"]
    assert file.read() == {"items": [1]}


def test_value_that_is_not_json_writes_nothing(tmp_path):
    file = counter_file(tmp_path / "items.json")
    file.update(append(1))
    with pytest.raises(TypeError):
        file.update(append(object()))
    assert file.read() == {"items": [1]}
    assert [p.name for p in tmp_path.iterdir()] == ["items.json"]


def test_written_file_is_readable_only_by_the_user(tmp_path):
    file = counter_file(tmp_path / "items.json")
    file.write({"items": []})
    assert os.stat(file.path).st_mode & 0o777 == 0o600


@pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
def test_damaged_settings_are_a_config_error_naming_the_file_kept_aside(tmp_path, content):
    store = WorkspaceStore(tmp_path / "workspaces.json")
    store.path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        store.list()
    (aside,) = tmp_path.glob("workspaces.json.corrupt-*")
    message = str(caught.value)
    assert str(store.path) in message and str(aside) in message
    assert "fix or delete it" in message
    assert aside.read_bytes() == content
    assert not store.path.exists()  # moved, not replaced
    assert store.list() == []  # later reads go on without it


def test_damaged_settings_are_not_overwritten_by_a_change(tmp_path):
    store = WorkspaceStore(tmp_path / "workspaces.json")
    store.path.write_bytes(DAMAGED["truncated"])
    with pytest.raises(ConfigError, match="not valid JSON"):
        store.upsert(Workspace("new", "http://127.0.0.1:1"))
    (aside,) = tmp_path.glob("workspaces.json.corrupt-*")
    assert aside.read_bytes() == DAMAGED["truncated"]
    assert not store.path.exists()


@pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
def test_damaged_state_is_kept_aside_with_a_warning_and_starts_empty(tmp_path, caplog, content):
    memory = WorkspaceMemory(tmp_path / "state.json")
    memory.path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="traceviewer.core.storage"):
        assert memory.get("a") == WorkspaceState()
    (aside,) = tmp_path.glob("state.json.corrupt-*")
    assert str(memory.path) in caplog.text and str(aside) in caplog.text
    memory.put("a", WorkspaceState(last_experiment="1"))
    assert memory.get("a").last_experiment == "1"
    assert aside.exists()


def test_every_store_keeps_a_damaged_file_aside(tmp_path):
    filters = SavedFilters("w", tmp_path / "filters.json")
    schemas = SchemaStore(tmp_path / "review_schemas.json")
    queues = QueueStore(tmp_path / "queues")
    queues.save(QueueState("w", "http://h", "1", "q", ("tr-a",)))
    (queue_file,) = queues.directory.glob("*.json")
    for path in (filters.path, schemas.path, queue_file):
        path.write_bytes(DAMAGED["truncated"])
    assert filters.recent() == []
    assert queues.list() == []
    with pytest.raises(ConfigError, match=r"review_schemas\.json is not valid JSON"):
        schemas.get("w", "1")
    kept = sorted(p.name.split(".corrupt-")[0] for p in tmp_path.rglob("*.corrupt-*"))
    assert kept == sorted(["filters.json", "review_schemas.json", queue_file.name])


def test_lock_held_by_a_hung_process_is_a_clear_config_error(tmp_path):
    file = counter_file(tmp_path / "items.json", timeout=0.5)
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time, filelock
            with filelock.FileLock({str(file.lock_path)!r}):
                print("locked", flush=True)
                time.sleep(30)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        start = time.monotonic()
        with pytest.raises(ConfigError, match=r"items\.json is locked by another Trace Viewer"):
            file.update(append(1))
        assert time.monotonic() - start < 5
    finally:
        holder.kill()
        holder.wait()
    assert not file.path.exists()
    file.update(append(1))  # the lock of a dead process is free at once
    assert file.read() == {"items": [1]}


def test_concurrent_updates_from_several_processes_keep_every_change(tmp_path):
    path = tmp_path / "items.json"
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from tests.core.test_storage import append, counter_file
        file = counter_file(Path({str(path)!r}))
        for i in range(25):
            file.update(append(f"{{sys.argv[1]}}-{{i}}"))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(n)]) for n in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0] * 4
    items = counter_file(path).read()["items"]
    assert sorted(items) == sorted(f"{n}-{i}" for n in range(4) for i in range(25))


def cli_command() -> list[str]:
    """The installed `traceviewer` console script next to this Python, else `python -m`."""
    script = Path(sys.executable).with_name("traceviewer")
    return [str(script)] if script.exists() else [sys.executable, "-m", "traceviewer"]


def test_gui_saves_race_cli_workspace_adds_and_every_change_is_kept():
    """50 GUI-side saves of workspace memory and 50 of workspaces (reviewer set on an existing
    one, as `with_reviewer` does), from threads, against 50 `traceviewer workspace add` calls
    from other processes."""
    store = WorkspaceStore()
    n = 50
    for i in range(n):
        store.upsert(Workspace(f"gui-{i}", "http://127.0.0.1:1"))

    def gui_saves(i: int) -> None:
        store.memory.put(f"gui-{i}", WorkspaceState(last_experiment=str(i),
                                                   columns=("name", f"col-{i}")))
        store.upsert(replace(store.get(f"gui-{i}"), reviewer=f"reviewer-{i}"))

    running: list[subprocess.Popen] = []
    failures = []

    def reap(limit: int) -> None:
        while len(running) > limit:
            proc = running.pop(0)
            _, err = proc.communicate(timeout=60)
            if proc.returncode:
                failures.append(err)

    with ThreadPoolExecutor(4) as gui:
        saves = []
        for i in range(n):
            reap(3)  # a few CLI processes at a time (2 cores)
            running.append(subprocess.Popen(
                [*cli_command(), "workspace", "add", f"cli-{i}", "--host",
                 f"http://127.0.0.1:{1000 + i}", "--reviewer", f"cli-{i}@example.com"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                text=True))
            saves.append(gui.submit(gui_saves, i))
        reap(0)
        for save in saves:
            save.result()
    assert failures == []

    workspaces = {w.name: w for w in WorkspaceStore().list()}
    assert sorted(workspaces) == sorted([f"gui-{i}" for i in range(n)]
                                        + [f"cli-{i}" for i in range(n)])
    for i in range(n):
        assert workspaces[f"gui-{i}"].reviewer == f"reviewer-{i}"
        assert workspaces[f"cli-{i}"].host == f"http://127.0.0.1:{1000 + i}"
        assert WorkspaceMemory().get(f"gui-{i}") == WorkspaceState(
            last_experiment=str(i), columns=("name", f"col-{i}"))
    assert json.loads(store.path.read_text())["version"] == 1
