"""Keeps secrets out of log lines and error messages.

Secrets the app handles are registered here when they are read (from the keyring, stdin or the
environment); `redact` replaces them, and anything shaped like an Authorization header value, with
a mask. The log handler installed by `setup_logging` runs every record through it."""

from __future__ import annotations

import logging
import re
import threading

from traceviewer.core import paths

MASK = "****"
_AUTH_VALUE = re.compile(r"(?i)\b(authorization|proxy-authorization)(['\"]?\s*[:=]\s*['\"]?)"
                         r"(bearer|basic|token)?\s*[^\s'\",}]+")
_SCHEME_VALUE = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_URL_USERINFO = re.compile(r"(?i)\b(https?://)[^/\s:@]+:[^/\s@]+@")
_DATABRICKS_TOKEN = re.compile(r"\bdapi[0-9a-f]{16,}(-\d+)?\b")

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(secret: str | None) -> None:
    """Remember a secret so that `redact` masks it wherever it appears later."""
    if secret and len(secret) >= 4:
        with _lock:
            _secrets.add(secret)


def redact(text: str) -> str:
    """Return `text` with every registered secret and auth-header value masked."""
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        text = text.replace(secret, MASK)
    text = _AUTH_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _SCHEME_VALUE.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    return _DATABRICKS_TOKEN.sub(MASK, text)


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's final message (arguments included) before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def setup_logging(level: int = logging.INFO) -> None:
    """Log to `<log dir>/traceviewer.log`, every line redacted. Idempotent."""
    root = logging.getLogger()
    if any(isinstance(f, RedactingFilter) for h in root.handlers for f in h.filters):
        return
    handler = logging.FileHandler(paths.log_dir() / "traceviewer.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs request lines at INFO; keep them, they carry no headers, but not below WARNING
    # for httpcore whose DEBUG output would show raw headers.
    logging.getLogger("httpcore").setLevel(logging.WARNING)
