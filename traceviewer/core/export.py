"""Export of a trace search result (every page) to CSV or JSONL, with progress and cancel.

Rows are flat: one per trace, the columns in `COLUMNS`. The file appears only when the export
completes: it is written to a temporary file next to it and renamed, so a cancelled or failed
export leaves nothing half-written behind."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from traceviewer.core.cancel import CancelToken
from traceviewer.core.errors import UsageError
from traceviewer.core.model import TraceInfo, format_rfc3339_ms

COLUMNS = ("trace_id", "client_request_id", "request_time", "execution_duration_ms", "state",
           "name", "session", "user", "tags", "request_preview", "response_preview", "feedback")
FORMATS = ("csv", "jsonl")


def _feedback_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def feedback_summary(info: TraceInfo) -> str:
    """Valid feedback as `name=value` pairs joined by '; ' (a failed judge shows `error`)."""
    return "; ".join(
        f"{a.name}={'error' if a.error else _feedback_value(a.value)}"
        for a in info.assessments if a.kind == "feedback" and a.valid)


def trace_row(info: TraceInfo) -> dict[str, Any]:
    """One trace as a flat row (tags as a dict; CSV writes it as JSON)."""
    return {
        "trace_id": info.trace_id,
        "client_request_id": info.client_request_id,
        "request_time": format_rfc3339_ms(info.request_time_ms),
        "execution_duration_ms": info.duration_ms,
        "state": info.state,
        "name": info.name,
        "session": info.session,
        "user": info.user,
        "tags": dict(info.tags),
        "request_preview": info.request_preview,
        "response_preview": info.response_preview,
        "feedback": feedback_summary(info),
    }


def write_rows(pages: Iterable[list[TraceInfo]], out: TextIO, fmt: str,
               token: CancelToken | None = None) -> int:
    """Write every page to an open text stream as CSV or JSONL; returns the row count."""
    if fmt not in FORMATS:
        raise UsageError(f"Unknown export format {fmt!r}: use csv or jsonl.")
    writer = csv.DictWriter(out, fieldnames=COLUMNS) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    count = 0
    for page in pages:
        if token is not None:
            token.check()
        for info in page:
            row = trace_row(info)
            if writer is not None:
                writer.writerow({**row, "tags": json.dumps(row["tags"], ensure_ascii=False)})
            else:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += len(page)
        if token is not None:
            token.progress(count)
    return count


def export(pages: Iterable[list[TraceInfo]], path: str | os.PathLike[str], fmt: str | None = None,
           token: CancelToken | None = None) -> int:
    """Export all pages to `path` (format from `fmt` or the file suffix); returns the row
    count. The file is replaced only once everything is written."""
    target = Path(path)
    fmt = fmt or target.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise UsageError(f"Cannot tell the export format of {target.name!r}: name it .csv or "
                         ".jsonl, or choose the format.")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                                   dir=target.parent)
    except OSError as exc:
        raise UsageError(f"Cannot write to {target.parent}: {exc.strerror}.") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            count = write_rows(pages, out, fmt, token)
        os.replace(tmp, target)
    except OSError as exc:
        os.unlink(tmp)
        raise UsageError(f"Cannot write {target}: {exc.strerror}.") from None
    except BaseException:  # cancelled or failed: leave no partial file
        os.unlink(tmp)
        raise
    return count
