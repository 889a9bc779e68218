"""Small JSON files of local state: atomic writes, cross-process locks, one damaged-file policy.

Every small store of local state is a `JsonFile`: the workspace settings (`workspaces.json`), the
label schemas (`review_schemas.json`), the UI memory (`state.json`), the saved and recent filters
(`filters.json`) and the review queues (`review-queues/*.json`). (The outbox and the trace cache
have their own stores: SQLite transactions, and a cache whose entries are disposable.)

Writes are atomic: the new content goes to a temp file in the same folder, which is synced and
renamed over the old one (mode 0600), so a crash leaves the old file or the new one, never a
torn one.

Every read-modify-write is one `JsonFile.update(fn)` transaction: take the file's lock, read the
file fresh from disk, apply `fn`, write atomically, release. The lock is a `filelock` lock that
every process of the user shares (plus a thread lock within this process), so the GUI and a
`traceviewer workspace add` in another process never lose each other's changes. A lock held for
more than `LOCK_TIMEOUT` seconds (another process hung) ends the wait with a ConfigError naming
the file.

One policy for a damaged file (not UTF-8, not JSON, truncated, or not the shape its store
expects): it is never overwritten or silently replaced. It is moved aside, in the same folder, to
`<name>.corrupt-<UTC time>`, and the message names the file and where it was kept. Then:

- a file of settings the user made (`regenerable=False`: workspaces, label schemas) makes the read
  that found it raise a ConfigError with that message; later reads start without it;
- a file the app fills in again as it is used (`regenerable=True`: UI memory, filters, review-queue
  progress) gets that message as a logged warning, and the store starts empty at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

from traceviewer.core import paths
from traceviewer.core.errors import ConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")

# Transactions take milliseconds; a lock held this long means the other process is stuck.
LOCK_TIMEOUT = 10.0

# One thread lock per lock file, so threads of this process queue on it instead of polling the
# file lock.
_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


class _Damaged(Exception):
    """The file exists but cannot be used; the argument says why, for the user."""


def _identity(value: Any) -> Any:
    return value


class JsonFile(Generic[T]):
    """One small JSON file, read into a `T` by `parse` and written from one by `dump`.

    `parse` gets the decoded JSON and raises ConfigError, ValueError, TypeError or KeyError when
    it is not the expected shape: the file then counts as damaged (see the module docstring).
    `empty` makes the value of a missing file. `what` names the content in messages."""

    def __init__(self, path: Path, parse: Callable[[Any], T], empty: Callable[[], T], *,
                 what: str, regenerable: bool, dump: Callable[[T], Any] = _identity,
                 timeout: float = LOCK_TIMEOUT) -> None:
        self.path = Path(path)
        self.what = what
        self.regenerable = regenerable
        self.timeout = timeout
        self._parse = parse
        self._empty = empty
        self._dump = dump

    @property
    def lock_path(self) -> Path:
        """The lock file of this file (in the lock dir, named after the file's absolute path)."""
        digest = hashlib.sha256(str(self.path.resolve()).encode()).hexdigest()[:16]
        return paths.lock_dir() / f"{self.path.name}-{digest}.lock"

    def read(self) -> T:
        """The file's current content (`empty()` if there is no file). Takes the lock only when
        the file is damaged, to move it aside."""
        try:
            return self._read()
        except _Damaged:
            with self.locked():
                return self._read_or_set_aside()

    def update(self, fn: Callable[[T], T]) -> T:
        """Under the lock, read the file fresh, and write what `fn` returns for its content.

        `fn` may change its argument in place and return it. If `fn` raises, nothing is written.
        Returns what was written."""
        with self.locked():
            value = fn(self._read_or_set_aside())
            _write_atomic(self.path, self._dump(value))
            return value

    def write(self, value: T) -> None:
        """Replace the content with `value` (under the lock; a damaged file is set aside first,
        never overwritten)."""
        self.update(lambda _old: value)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold this file's lock (against other threads and other processes); ConfigError if
        it stays taken for more than `timeout` seconds."""
        lock_path = self.lock_path
        with _thread_locks_guard:
            thread_lock = _thread_locks.setdefault(str(lock_path), threading.Lock())
        deadline = time.monotonic() + self.timeout
        if not thread_lock.acquire(timeout=self.timeout):
            raise self._lock_timeout(lock_path)
        try:
            import filelock  # here, not at the top: reading a file never needs it

            file_lock = filelock.FileLock(lock_path)
            try:
                file_lock.acquire(timeout=max(0.0, deadline - time.monotonic()))
            except filelock.Timeout:
                raise self._lock_timeout(lock_path) from None
            try:
                yield
            finally:
                file_lock.release()
        finally:
            thread_lock.release()

    def _lock_timeout(self, lock_path: Path) -> ConfigError:
        return ConfigError(
            f"{self.path} is locked by another Trace Viewer process (the app or a `traceviewer` "
            f"command) that has held it for over {self.timeout:g} s: wait for it or close it, "
            f"then try again. If none is running, delete the lock file {lock_path}.")

    def _read(self) -> T:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return self._empty()
        except OSError as exc:
            raise ConfigError(f"Cannot read {self.path}: {exc.strerror}. Check the file's "
                              "permissions.") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Damaged("not UTF-8 text") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise _Damaged(f"not valid JSON ({exc})") from None
        try:
            return self._parse(data)
        except (ConfigError, ValueError, TypeError, KeyError) as exc:
            raise _Damaged(f"not a valid {self.what} ({exc})") from None

    def _read_or_set_aside(self) -> T:
        """Read under the lock; a damaged file is moved aside and reported by the policy."""
        try:
            return self._read()
        except _Damaged as damage:
            aside = _set_aside(self.path)
            message = (f"{self.path} is {damage}. It was moved aside to {aside} and the app "
                       f"goes on without it: fix or delete it (to use it again, fix it and "
                       f"rename it back to {self.path.name}).")
            if not self.regenerable:
                raise ConfigError(message) from None
            log.warning("%s It held only %s, which the app fills in again.", message, self.what)
            return self._empty()


def _set_aside(path: Path) -> Path:
    """Rename a damaged `path` to a free `<name>.corrupt-<UTC time>[-n]` next to it."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    os.rename(path, aside)
    _sync_dir(path.parent)
    return aside


def _write_atomic(path: Path, data: Any) -> None:
    """Replace `path` with `data` as JSON so that a crash at any point leaves either the old or
    the new file, never a torn one; the file is readable by the user only (mode 0600)."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"  # fails before any file is made
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _sync_dir(path.parent)


def _sync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable."""
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
