"""On-disk LRU cache of opened traces, so reopening a trace is instant and works offline.

Each entry is the raw response of `RestClient.get_trace_raw` for one (server, trace id), stored
under `paths.cache_dir()/traces` behind a one-line JSON header that records when it was cached.
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
from traceviewer.core.bigjson import loads_trace_doc
from traceviewer.core.cancel import CancelToken
from traceviewer.core.errors import CorruptTrace
from traceviewer.core.model import Trace
from traceviewer.core.otlp import parse_trace

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,120}$")


@dataclass(frozen=True, slots=True)
class CachedTrace:
    """A trace read from the cache and the epoch time (s) at which it was stored."""

    trace: Trace
    cached_at: float


class TraceCache:
    """Size-capped, least-recently-used cache of raw trace documents keyed by server and id."""

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

    def get(self, host: str, trace_id: str, token: CancelToken | None = None
            ) -> CachedTrace | None:
        """Return the cached trace, or None if absent; a corrupt entry is dropped as a miss."""
        path = self._path(host, trace_id)
        try:
            with path.open("rb") as f:
                header, raw = f.readline(), f.read()
        except FileNotFoundError:
            return None
        try:
            cached_at = float(json.loads(header)["cached_at"])
            trace = parse_trace(loads_trace_doc(raw, token))
        except (ValueError, KeyError, TypeError, CorruptTrace):
            path.unlink(missing_ok=True)
            return None
        with contextlib.suppress(FileNotFoundError):
            os.utime(path)  # mark as recently used
        return CachedTrace(trace, cached_at)

    def put(self, host: str, trace_id: str, raw: bytes) -> None:
        """Store the raw trace document, then evict least recently used entries over the cap."""
        header = json.dumps({"cached_at": time.time(), "trace_id": trace_id}).encode()
        if len(raw) + len(header) + 1 > self.max_bytes:
            return
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(header + b"\n")
                f.write(raw)  # not concatenated: no 100 MB copy holding the GIL
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
