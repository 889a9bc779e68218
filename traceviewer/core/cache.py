"""On-disk LRU cache of opened traces, so reopening a trace is instant and works offline.

Each entry is one (server, trace id)'s trace in `otlp`'s packed form, which reads back several
times faster than the server's response, stored under `paths.cache_dir()/traces` behind a
one-line JSON header that records when it was cached and the entry format (entries of another
format read as misses).
Reading an entry bumps its modification time; when the cache grows past its size cap the entries
read least recently are removed first. Writes are atomic (temporary file, then rename), so
concurrent readers never see half an entry."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from traceviewer.core import paths
from traceviewer.core.cancel import CancelToken
from traceviewer.core.errors import CorruptTrace
from traceviewer.core.model import Trace
from traceviewer.core.otlp import parse_packed, write_packed

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
FORMAT = 2
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,120}$")


@dataclass(frozen=True, slots=True)
class CachedTrace:
    """A trace read from the cache and the epoch time (s) at which it was stored."""

    trace: Trace
    cached_at: float


class TraceCache:
    """Size-capped, least-recently-used cache of traces keyed by server and trace id."""

    def __init__(self, directory: Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES):
        self.directory = Path(directory) if directory else paths.cache_dir() / "traces"
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.max_bytes = max_bytes

    def _path(self, host: str, trace_id: str) -> Path:
        server = hashlib.sha256(host.rstrip("/").encode()).hexdigest()[:16]
        # Trace ids come from the server; never let one pick a path.
        name = trace_id if _SAFE_ID.match(trace_id) else hashlib.sha256(
            trace_id.encode()).hexdigest()
        return self.directory / f"{server}-{name}.json"

    def has(self, host: str, trace_id: str) -> bool:
        """Whether the trace has an entry (without reading it)."""
        return self._path(host, trace_id).exists()

    def get(self, host: str, trace_id: str, token: CancelToken | None = None
            ) -> CachedTrace | None:
        """Return the cached trace, or None if absent; a corrupt entry is dropped as a miss."""
        path = self._path(host, trace_id)
        try:
            # Unbuffered: `readall` then reads the rest into one buffer with the GIL released
            # (a buffered read would copy 100 MB while holding it).
            with path.open("rb", buffering=0) as f:
                header, raw = f.readline(), f.readall()
        except FileNotFoundError:
            return None
        try:
            head = json.loads(header)
            if head.get("format") != FORMAT:
                raise ValueError("an entry of another format")
            cached_at = float(head["cached_at"])
            trace = parse_packed(raw, token)
        except (ValueError, KeyError, TypeError, AttributeError, CorruptTrace):
            path.unlink(missing_ok=True)
            return None
        with contextlib.suppress(FileNotFoundError):
            os.utime(path)  # mark as recently used
        return CachedTrace(trace, cached_at)

    def put(self, host: str, trace_id: str, trace: Trace,
            token: CancelToken | None = None) -> None:
        """Store the trace (unless it is bigger than the cap), then evict least recently used
        entries over the cap. Cancelling through `token` leaves the cache as it was."""
        header = json.dumps({"cached_at": time.time(), "trace_id": trace_id,
                             "format": FORMAT}).encode()
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(header + b"\n")
                write_packed(trace, f.write, token)
                size = f.tell()
            if size > self.max_bytes:
                Path(tmp).unlink()
                return
            os.replace(tmp, self._path(host, trace_id))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._evict()

    def _evict(self) -> None:
        entries = []
        for path in self.directory.glob("*.json"):
            with contextlib.suppress(FileNotFoundError):
                st = path.stat()
                entries.append((st.st_mtime, st.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
