"""Human-readable times, durations and numbers, shared by the command line and the GUI."""

from __future__ import annotations

from datetime import datetime


def timestamp_ms(ms: int | None) -> str:
    """Epoch milliseconds as local 'YYYY-MM-DD HH:MM:SS' ('' when unknown)."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def duration_ms(ms: float | None) -> str:
    """A duration in milliseconds as '850 ms', '1.65 s', '2 min 5 s' ('' when unknown)."""
    if ms is None:
        return ""
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{minutes:,} min {seconds} s"


def number(value: float | None) -> str:
    """A count or measurement with thousands separators: '1,204', '0.75', '12,345.5' (floats
    to 4 decimals, whole ones without '.0'; '' when unknown)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{round(value, 4) if isinstance(value, float) else value:,}"


def signed_duration_ms(ms: float | None) -> str:
    """A difference of durations as '+850 ms' or '-1.65 s' ('' when unknown)."""
    if ms is None:
        return ""
    return ("+" if ms >= 0 else "-") + duration_ms(abs(ms))


def plural(n: int, word: str) -> str:
    """'1 trace', '1,204 traces'."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"
