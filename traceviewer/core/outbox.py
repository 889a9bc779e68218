"""The durable outbox: every assessment write is stored in SQLite before it is sent.

A write (create, update or delete of an assessment) is committed to a WAL database with
`synchronous=FULL` (fsync'd) and only then sent. Sending is retried with backoff across network
loss and restarts. Creates carry a client-generated submission id in the assessment's metadata;
once an attempt has started (even one interrupted by a crash), the next attempt first looks for
that id on the trace, so an ambiguous failure never writes twice. Items the server refuses
(401/403, 404 trace deleted, 400) are parked with the reason until the user retries or discards
them; nothing is dropped silently.

Items are keyed by target (workspace name + host; workspace "" for a bare `--host`), so a flush
can send everything pending for every workspace and host. Each send claims its item with a
lease, so a GUI and a CLI flushing at the same time never send the same item twice; the lease
names the sending process, so the lease of a killed process does not hold its item back.

Local faults are clear `OutboxUnavailable` errors, never a traceback, and never a write reported
as recorded: a damaged database (garbage, truncated) is moved aside to
`outbox.sqlite3.corrupt-<time>` (kept, named in `Outbox.set_aside` and the log) and a new one is
started; a database locked by another program is waited for `busy_timeout_s`; a full disk or a
read-only data folder says so. Each change is one SQLite transaction, so nothing is
half-written.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from traceviewer.core import paths
from traceviewer.core.errors import (
    ConfigError,
    ConnectionFailed,
    NotFound,
    OutboxUnavailable,
    ServerError,
    Timeout,
    TraceViewerError,
)
from traceviewer.core.redact import redact

if TYPE_CHECKING:
    from traceviewer.core.cancel import CancelToken
    from traceviewer.core.client import RestClient
    from traceviewer.core.model import Assessment

log = logging.getLogger(__name__)

SUBMISSION_KEY = "traceviewer.submission_id"
# How long a write waits for another program's lock on the database before saying so.
BUSY_TIMEOUT_S = 30.0
# SQLite's primary result codes (the low byte of an extended code).
_BUSY, _LOCKED, _PERM, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = (
    5, 6, 3, 8, 10, 11, 13, 14, 26)
# Longer than the client's request timeout, so a live sender never loses its lease mid-request.
LEASE_SECONDS = 180.0
MAX_BACKOFF_SECONDS = 300.0
KEEP_SENT_SECONDS = 30 * 24 * 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    submission_id TEXT NOT NULL UNIQUE,
    workspace TEXT NOT NULL,
    host TEXT NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('create', 'update', 'delete')),
    trace_id TEXT NOT NULL,
    assessment_id TEXT,
    depends_on TEXT,
    payload TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'parked', 'sent', 'discarded')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    lease_until REAL NOT NULL DEFAULT 0,
    lease_pid INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    error_time REAL NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS items_by_state ON items (state, workspace, host, id);
"""


@dataclass(frozen=True, slots=True)
class Target:
    """Where items go: a configured workspace (by name) at a host, or a bare host (name "")."""

    workspace: str
    host: str

    def __str__(self) -> str:
        return f"{self.workspace} ({self.host})" if self.workspace else self.host


@dataclass(frozen=True, slots=True)
class Item:
    """One queued write."""

    item_id: int
    submission_id: str
    target: Target
    op: str
    trace_id: str
    assessment_id: str | None
    depends_on: str | None
    payload: Mapping[str, Any]
    state: str
    attempts: int
    next_attempt: float
    last_error: str | None
    error_time: float
    created: float
    finished: float | None = None  # when it was sent, parked for good or discarded

    @property
    def name(self) -> str | None:
        """The assessment name of a create (None for updates and deletes)."""
        return self.payload.get("assessment_name")


@dataclass(frozen=True, slots=True)
class Status:
    """What the UI and `outbox status` show."""

    pending: int
    parked: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class SendReport:
    """Outcome of one pass over a target's due items."""

    sent: int = 0
    parked: int = 0
    failed: int = 0
    last_error: str | None = None


class _Damaged(Exception):
    """The outbox file is not a sound SQLite database (garbage, truncated)."""


def _move_aside(path: Path) -> Path:
    """Rename a damaged database (and its -wal and -shm files) to a free
    `<name>.corrupt-<UTC time>[-n]` next to it; returns the new name of the database."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside, n = path.with_name(f"{path.name}.corrupt-{stamp}"), 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.rename(side, aside.with_name(aside.name + suffix))
    os.rename(path, aside)
    return aside


def is_transient(exc: Exception) -> bool:
    """True when retrying later may succeed (network, timeouts, 408/429/5xx)."""
    if isinstance(exc, ConnectionFailed | Timeout):
        return True
    if isinstance(exc, ServerError):
        return exc.status is None or exc.status in (408, 429) or exc.status >= 500
    return False


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with jitter, capped: 2, 4, 8, ... up to five minutes."""
    return min(MAX_BACKOFF_SECONDS, 2.0 ** min(attempts, 9)) * random.uniform(0.5, 1.0)


class Outbox:
    """The outbox database. Cheap to construct; safe to use from several threads and processes
    (each call opens its own connection; writes take SQLite's write lock)."""

    def __init__(self, path: Path | None = None, busy_timeout_s: float | None = None):
        try:
            self.path = Path(path) if path else paths.data_dir() / "outbox.sqlite3"
        except OSError as exc:
            raise OutboxUnavailable(
                f"The data folder for the outbox cannot be made ({exc.strerror or exc}): it "
                "must be writable by you (check its permissions, or whether the disk is "
                "mounted read-only).") from None
        self.busy_timeout_s = BUSY_TIMEOUT_S if busy_timeout_s is None else busy_timeout_s
        # The message about a damaged database this outbox set aside, if it did.
        self.set_aside: str | None = None
        try:
            self._open()
        except _Damaged as damage:
            try:
                aside = _move_aside(self.path)
            except OSError as exc:
                raise self._unwritable(exc.strerror or str(exc)) from None
            self.set_aside = (f"The outbox {self.path} was damaged ({damage}). It was moved "
                              f"aside to {aside} (kept, with any changes it held) and a new "
                              "outbox was started.")
            log.warning("%s", self.set_aside)
            self._open()

    def _open(self) -> None:
        """Create or check the database; _Damaged when it is not a readable outbox."""
        try:
            with self._connect(checking=True) as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
                problems = [r[0] for r in db.execute("PRAGMA quick_check")]
                if problems != ["ok"]:
                    raise _Damaged(f"SQLite's check found: {'; '.join(problems[:3])}")
                db.execute("DELETE FROM items WHERE state IN ('sent', 'discarded') AND "
                           "finished < ?", (time.time() - KEEP_SENT_SECONDS,))
            self.path.chmod(0o600)
        except OSError as exc:
            raise self._unwritable(exc.strerror or str(exc)) from None

    @contextmanager
    def _connect(self, checking: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection; every SQLite failure in the block leaves as OutboxUnavailable (or, for
        `checking` at open, _Damaged when the file is not a sound database)."""
        try:
            db = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._unavailable(exc, checking) from None
        try:
            db.row_factory = sqlite3.Row
            # FULL: each commit is fsync'd, so a queued label survives a crash or power loss.
            db.execute("PRAGMA synchronous=FULL")
            yield db
        except sqlite3.Error as exc:
            raise self._unavailable(exc, checking) from None
        finally:
            db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                with suppress(sqlite3.Error):  # a failed COMMIT may have ended it already
                    db.execute("ROLLBACK")
                raise
            try:
                db.execute("COMMIT")
            except sqlite3.Error:
                with suppress(sqlite3.Error):
                    db.execute("ROLLBACK")  # nothing half-written
                raise

    def _unavailable(self, exc: sqlite3.Error, checking: bool = False) -> Exception:
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        if code in (_CORRUPT, _NOTADB) or (code == 0 and "malformed" in str(exc)):
            if checking:
                return _Damaged(str(exc))
            return OutboxUnavailable(
                f"The outbox {self.path} is damaged ({exc}): restart Trace Viewer, which moves "
                "it aside (keeping it) and starts a new one.")
        if code in (_BUSY, _LOCKED):
            return OutboxUnavailable(
                f"The outbox {self.path} is locked by another program (waited "
                f"{self.busy_timeout_s:g} s): close other Trace Viewer windows or commands that "
                "may hang on it, then try again.")
        if code == _FULL or (code == _IOERR and self._disk_full()):
            return OutboxUnavailable(f"The disk holding the outbox {self.path} is full: free "
                                     "some space, then try again.")
        if code in (_READONLY, _CANTOPEN, _PERM):
            return self._unwritable(str(exc))
        return OutboxUnavailable(f"The outbox {self.path} could not be read or written "
                                 f"({exc}): check the disk, then try again.")

    def _disk_full(self) -> bool:
        # SQLite reports a WAL write that met ENOSPC as a plain I/O error: ask the disk.
        try:
            return shutil.disk_usage(self.path.parent).free < 1024 * 1024
        except OSError:
            return False

    def _unwritable(self, reason: str) -> OutboxUnavailable:
        return OutboxUnavailable(
            f"The outbox {self.path} cannot be written ({reason}): the folder "
            f"{self.path.parent} must be writable by you (check its permissions, or whether the "
            "disk is mounted read-only).")

    # -- queueing ---------------------------------------------------------------------------

    def _insert(self, target: Target, op: str, trace_id: str, payload: Mapping[str, Any],
                assessment_id: str | None = None, depends_on: str | None = None,
                submission_id: str | None = None) -> Item:
        submission_id = submission_id or uuid.uuid4().hex
        try:
            with self._write() as db:
                cur = db.execute(
                    "INSERT INTO items (submission_id, workspace, host, op, trace_id,"
                    " assessment_id, depends_on, payload, state, created)"
                    " VALUES (?,?,?,?,?,?,?,?,'pending',?)",
                    (submission_id, target.workspace, target.host, op, trace_id, assessment_id,
                     depends_on, json.dumps(dict(payload)), time.time()))
                return self._item(db, cur.lastrowid)
        except OutboxUnavailable as exc:
            raise OutboxUnavailable(f"The assessment change ({op} on trace {trace_id}) was NOT "
                                    f"recorded, so it will not be sent: {exc}") from None

    def add_create(self, target: Target, trace_id: str, body: Mapping[str, Any]) -> Item:
        """Queue a new assessment (`body` as the REST `assessment` object); its metadata gets
        the submission id that makes retries exactly-once."""
        submission_id = uuid.uuid4().hex
        payload = dict(body)
        payload["metadata"] = {**payload.get("metadata", {}), SUBMISSION_KEY: submission_id}
        return self._insert(target, "create", trace_id, payload, submission_id=submission_id)

    def add_update(self, target: Target, trace_id: str, fields: Mapping[str, Any],
                   assessment_id: str | None = None, after: Item | None = None) -> Item:
        """Queue an update of `fields` of an assessment, given by id or, while its create is
        still queued, by that create item (`after`)."""
        assessment_id, depends_on = self._resolve_ref(assessment_id, after)
        return self._insert(target, "update", trace_id, fields, assessment_id, depends_on)

    def add_delete(self, target: Target, trace_id: str, assessment_id: str | None = None,
                   after: Item | None = None) -> Item:
        """Queue a delete of an assessment, given by id or by its queued create (`after`)."""
        assessment_id, depends_on = self._resolve_ref(assessment_id, after)
        return self._insert(target, "delete", trace_id, {}, assessment_id, depends_on)

    def _resolve_ref(self, assessment_id: str | None,
                     after: Item | None) -> tuple[str | None, str | None]:
        if after is None:
            if not assessment_id:
                raise ValueError("an assessment id or a queued create is needed")
            return assessment_id, None
        current = self.get(after.item_id)
        if current.state == "sent":
            return current.assessment_id, None
        return None, current.submission_id

    def withdraw(self, item: Item) -> bool:
        """Discard a create that has not been sent (undo before it left); False when it is
        already sent or being sent, in which case queue a delete instead."""
        with self._write() as db:
            cur = db.execute(
                "UPDATE items SET state='discarded', finished=?, last_error='withdrawn by the user'"
                " WHERE id=? AND state IN ('pending', 'parked') AND attempts=0 AND lease_until<?",
                (time.time(), item.item_id, time.time()))
            if cur.rowcount:
                self._discard_dependents(db, item.submission_id)
            return bool(cur.rowcount)

    # -- reading ----------------------------------------------------------------------------

    @staticmethod
    def _to_item(row: sqlite3.Row) -> Item:
        return Item(item_id=row["id"], submission_id=row["submission_id"],
                    target=Target(row["workspace"], row["host"]), op=row["op"],
                    trace_id=row["trace_id"], assessment_id=row["assessment_id"],
                    depends_on=row["depends_on"], payload=json.loads(row["payload"]),
                    state=row["state"], attempts=row["attempts"], next_attempt=row["next_attempt"],
                    last_error=row["last_error"], error_time=row["error_time"],
                    created=row["created"], finished=row["finished"])

    def _item(self, db: sqlite3.Connection, item_id: int | None) -> Item:
        row = db.execute("SELECT * FROM items WHERE id=?", (item_id,)).fetchone()
        if row is None:
            raise NotFound(f"Outbox item {item_id} does not exist; "
                           "see `traceviewer outbox status`.")
        return self._to_item(row)

    def get(self, item_id: int) -> Item:
        """One item by id (NotFound if unknown)."""
        with self._connect() as db:
            return self._item(db, item_id)

    def items(self, states: tuple[str, ...] = ("pending", "parked"),
              target: Target | None = None, trace_id: str | None = None) -> list[Item]:
        """Items in the given states, oldest first, optionally for one target or trace."""
        sql = f"SELECT * FROM items WHERE state IN ({','.join('?' * len(states))})"
        args: list[Any] = list(states)
        if target is not None:
            sql += " AND workspace=? AND host=?"
            args += [target.workspace, target.host]
        if trace_id is not None:
            sql += " AND trace_id=?"
            args.append(trace_id)
        with self._connect() as db:
            return [self._to_item(r) for r in db.execute(sql + " ORDER BY id", args)]

    def status(self, target: Target | None = None) -> Status:
        """Pending and parked counts and the most recent error among unsent items."""
        items = self.items(target=target)
        errors = [i for i in items if i.last_error]
        last = max(errors, key=lambda i: (i.error_time, i.item_id)).last_error if errors else None
        return Status(pending=sum(i.state == "pending" for i in items),
                      parked=sum(i.state == "parked" for i in items), last_error=last)

    def targets(self) -> list[Target]:
        """Every target with pending items."""
        with self._connect() as db:
            rows = db.execute("SELECT DISTINCT workspace, host FROM items WHERE state='pending'"
                              " ORDER BY workspace, host").fetchall()
        return [Target(r["workspace"], r["host"]) for r in rows]

    # -- user decisions on parked items -----------------------------------------------------

    def retry(self, item_id: int) -> Item:
        """Put a parked (or backing-off) item back in line to be sent at the next flush."""
        with self._write() as db:
            item = self._item(db, item_id)
            if item.state not in ("pending", "parked"):
                raise TraceViewerError(f"Outbox item {item_id} is {item.state}; nothing to retry.")
            db.execute("UPDATE items SET state='pending', next_attempt=0 WHERE id=?", (item_id,))
            return self._item(db, item_id)

    def discard(self, item_id: int) -> Item:
        """Give up on an unsent item (and on the edits queued after it) at the user's request."""
        with self._write() as db:
            item = self._item(db, item_id)
            if item.state not in ("pending", "parked"):
                raise TraceViewerError(f"Outbox item {item_id} is {item.state}; "
                                       "nothing to discard.")
            db.execute("UPDATE items SET state='discarded', finished=? WHERE id=?",
                       (time.time(), item_id))
            self._discard_dependents(db, item.submission_id)
            return self._item(db, item_id)

    @staticmethod
    def _discard_dependents(db: sqlite3.Connection, submission_id: str) -> None:
        db.execute("UPDATE items SET state='discarded', finished=?, last_error=? "
                   "WHERE depends_on=? AND state IN ('pending', 'parked')",
                   (time.time(), "its assessment was never created (discarded)", submission_id))

    # -- sending ----------------------------------------------------------------------------

    def _claim(self, target: Target, force: bool, skip: set[int]) -> tuple[Item, int] | None:
        """Lease the oldest due item of `target`; returns it with its attempts before this one."""
        now = time.time()
        with self._write() as db:
            rows = db.execute(
                "SELECT * FROM items WHERE state='pending' AND workspace=? AND host=?"
                " AND (? OR next_attempt<=?) ORDER BY id",
                (target.workspace, target.host, force, now)).fetchall()
            for row in rows:
                if row["id"] in skip:
                    continue
                if row["lease_until"] >= now and _process_alive(row["lease_pid"]):
                    continue  # being sent by a live sender
                if row["depends_on"]:
                    dep = db.execute("SELECT state, assessment_id FROM items WHERE submission_id=?",
                                     (row["depends_on"],)).fetchone()
                    if dep is None or dep["state"] != "sent":
                        skip.add(row["id"])  # waits for its create
                        continue
                    db.execute("UPDATE items SET assessment_id=?, depends_on=NULL WHERE id=?",
                               (dep["assessment_id"], row["id"]))
                db.execute("UPDATE items SET attempts=attempts+1, lease_until=?, lease_pid=?"
                           " WHERE id=?", (now + LEASE_SECONDS, os.getpid(), row["id"]))
                return self._item(db, row["id"]), row["attempts"]
        return None

    def _finish(self, item: Item, state: str, assessment_id: str | None = None,
                error: str | None = None) -> None:
        with self._write() as db:
            db.execute("UPDATE items SET state=?, assessment_id=COALESCE(?, assessment_id),"
                       " last_error=?, error_time=?, lease_until=0, finished=? WHERE id=?",
                       (state, assessment_id, error, time.time(), time.time(), item.item_id))

    def _postpone(self, item: Item, error: str) -> None:
        with self._write() as db:
            db.execute("UPDATE items SET lease_until=0, next_attempt=?, last_error=?, error_time=?"
                       " WHERE id=?", (time.time() + backoff_seconds(item.attempts), error,
                                       time.time(), item.item_id))

    def send(self, client: RestClient, target: Target, *, force: bool = False,
             token: CancelToken | None = None) -> SendReport:
        """Send the due items of `target` in order through `client`. Stops at the first transient
        failure (the server is likely unreachable; later items would fail the same way)."""
        sent = parked = failed = 0
        last_error = None
        skip: set[int] = set()
        while (claimed := self._claim(target, force, skip)) is not None:
            item, earlier_attempts = claimed
            try:
                assessment_id = self._deliver(client, item, earlier_attempts)
            except TraceViewerError as exc:
                last_error = redact(str(exc))
                if is_transient(exc):
                    self._postpone(item, last_error)
                    failed += 1
                    break
                self._finish(item, "parked", error=last_error)
                parked += 1
            else:
                try:
                    self._finish(item, "sent", assessment_id=assessment_id)
                except OutboxUnavailable as exc:
                    # The server has it; the next send finds its submission id and does not
                    # write it twice.
                    raise OutboxUnavailable(
                        f"The server saved the assessment change on trace {item.trace_id}, but "
                        f"the outbox could not note that (it will not be sent twice): {exc}"
                    ) from None
                sent += 1
            if token is not None:
                token.progress((sent, parked, failed))
                token.check()
        return SendReport(sent, parked, failed, last_error)

    def _deliver(self, client: RestClient, item: Item, earlier_attempts: int) -> str | None:
        """Perform one item's request; returns the assessment id it created or touched."""
        if item.op == "create":
            if earlier_attempts:
                # An earlier attempt may have reached the server before failing (timeout, dropped
                # connection, crash): look for its submission id before writing again.
                existing = find_submission(client, item.trace_id, item.submission_id)
                if existing is not None:
                    return existing.assessment_id
            try:
                return client.create_assessment(item.trace_id,
                                                dict(item.payload)).assessment_id
            except NotFound:
                raise _trace_gone(item.trace_id) from None
        # An edit or delete is queued with an id or after a create, and `_claim` hands it out
        # only once that create is sent and its id copied over.
        assert item.assessment_id is not None
        if item.op == "update":
            return client.update_assessment(item.trace_id, item.assessment_id,
                                            dict(item.payload)).assessment_id
        with suppress(NotFound):  # already gone: the delete achieved its purpose
            client.delete_assessment(item.trace_id, item.assessment_id)
        return item.assessment_id

    def flush(self, open_client: Callable[[Target], RestClient] | None = None, *,
              force: bool = True, token: CancelToken | None = None) -> dict[Target, SendReport]:
        """Send everything pending for every target (clients from `open_client`, by default
        `open_target_client`). A target that cannot be opened keeps its items, with the reason
        recorded, or parks them when its workspace no longer exists."""
        opener = open_client or open_target_client
        reports: dict[Target, SendReport] = {}
        for target in self.targets():
            try:
                client = opener(target)
            except TraceViewerError as exc:
                reports[target] = self._record_open_failure(target, exc)
                continue
            try:
                reports[target] = self.send(client, target, force=force, token=token)
            finally:
                client.close()
        return reports

    def _record_open_failure(self, target: Target, exc: TraceViewerError) -> SendReport:
        message = redact(str(exc))
        state = "parked" if isinstance(exc, ConfigError) else "pending"
        with self._write() as db:
            cur = db.execute("UPDATE items SET state=?, last_error=?, error_time=?"
                             " WHERE state='pending' AND workspace=? AND host=?",
                             (state, message, time.time(), target.workspace, target.host))
        count = cur.rowcount
        return SendReport(parked=count if state == "parked" else 0,
                          failed=0 if state == "parked" else count, last_error=message)


def find_submission(client: RestClient, trace_id: str, submission_id: str) -> Assessment | None:
    """The assessment on `trace_id` carrying `submission_id`, if the server has it."""
    infos = client.batch_get_trace_infos([trace_id])
    if not infos:
        raise _trace_gone(trace_id)
    for assessment in infos[0].assessments:
        if (assessment.metadata or {}).get(SUBMISSION_KEY) == submission_id:
            return assessment
    return None


def _trace_gone(trace_id: str) -> NotFound:
    return NotFound(f"Trace {trace_id} no longer exists on the server (deleted?).")


def open_target_client(target: Target) -> RestClient:
    """A client for `target`: its workspace's settings and keyring secret, or for a bare host
    the credentials in the environment, as the MLflow SDK reads them (for a Databricks host
    through databricks-sdk: DATABRICKS_TOKEN, client credentials or a profile)."""
    from traceviewer.core import databricks_auth
    from traceviewer.core.auth import Auth
    from traceviewer.core.client import RestClient
    from traceviewer.core.workspaces import WorkspaceStore, guess_kind, open_client

    if not target.workspace:
        if (guess_kind(target.host) == "databricks"
                or databricks_auth.configured_for(target.host)):
            host, auth = databricks_auth.env_auth(target.host)
            return RestClient(host, auth, kind="databricks")
        return RestClient(target.host, Auth.from_env(target.host), kind="mlflow")
    workspace = WorkspaceStore().get(target.workspace)
    if workspace.host.rstrip("/") != target.host.rstrip("/"):
        raise ConfigError(f"Workspace {target.workspace!r} now points at {workspace.host}, but "
                          f"these labels were for {target.host}; retry them after pointing it "
                          "back, or discard them.")
    return open_client(workspace)
