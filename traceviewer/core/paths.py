"""Where on-disk state lives. Everything goes under platformdirs' user dirs, so the XDG_*
variables isolate it (tests and demos rely on that)."""

from __future__ import annotations

from pathlib import Path

import platformdirs

APP = "traceviewer"


def _ensure(path: str) -> Path:
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True, mode=0o700)
    return p


def config_dir() -> Path:
    return _ensure(platformdirs.user_config_dir(APP, appauthor=False))


def data_dir() -> Path:
    return _ensure(platformdirs.user_data_dir(APP, appauthor=False))


def cache_dir() -> Path:
    return _ensure(platformdirs.user_cache_dir(APP, appauthor=False))


def log_dir() -> Path:
    return _ensure(platformdirs.user_log_dir(APP, appauthor=False))


def lock_dir() -> Path:
    """Lock files of the small state files (kept out of their folders, which hold only data)."""
    return _ensure(str(Path(platformdirs.user_state_dir(APP, appauthor=False)) / "locks"))
