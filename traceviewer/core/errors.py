"""Typed errors. Every message is meant for a user: it says what happened and what to do, and it
never contains a secret (see traceviewer.core.redact)."""

from __future__ import annotations


class TraceViewerError(Exception):
    """Base of every error the app reports to a user."""

    exit_code = 1


class UsageError(TraceViewerError):
    """The command line or a setting was used wrongly."""

    exit_code = 2


class ConfigError(TraceViewerError):
    """The workspace configuration is missing or invalid."""

    exit_code = 2


class AuthError(TraceViewerError):
    """401/403: credentials missing, rejected or lacking permission."""


class NotFound(TraceViewerError):
    """A trace, experiment or assessment does not exist."""


class BadFilter(TraceViewerError):
    """The filter string is invalid (locally or by the server's reason, verbatim)."""

    exit_code = 2

    def __init__(self, message: str, position: int | None = None):
        super().__init__(message)
        self.position = position


class ServerError(TraceViewerError):
    """The server answered with an error we cannot act on automatically."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class Unsupported(ServerError):
    """The server has no such call (Databricks' JSON 404 ENDPOINT_NOT_FOUND): the thing asked
    for may well exist; this server just cannot do it."""


class ConnectionFailed(TraceViewerError):
    """DNS failure, refused connection, TLS failure."""


class Timeout(TraceViewerError):
    """The server did not answer in time."""


class DeadlineExceeded(Timeout):
    """A call did not finish within its total time (a server trickling its answer)."""


class ResponseTooLarge(TraceViewerError):
    """An answer larger than the call may hold (an endless or runaway response)."""


class OutboxUnavailable(TraceViewerError):
    """The local outbox database cannot be used now: locked by another program for too long,
    disk full, read-only or damaged. Whatever was being written was not recorded."""


class CorruptTrace(TraceViewerError):
    """Trace JSON that cannot be read (truncated, not JSON, wrong shape)."""


class KeyringUnavailable(TraceViewerError):
    """No usable OS keyring (no backend, locked, prompt cancelled). There is never a plaintext
    fallback; the user may keep a secret in memory for this session instead."""


class Cancelled(TraceViewerError):
    """A background task was cancelled because a newer request superseded it."""
