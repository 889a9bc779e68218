"""Workspace secrets (tokens, passwords) in the OS keyring, and nowhere else.

Only real secure backends count (Secret Service, KWallet, macOS Keychain, Windows Credential
Locker). `keyring` may otherwise pick its `fail` backend, a chainer or a plaintext file backend
from keyrings.alt; those are treated as "no keyring" and raise `KeyringUnavailable`. There is
never a plaintext fallback: the only alternative is `remember_for_session`, which keeps a secret
in this process's memory until it exits, and only when the caller asks for it explicitly.

Every secret read or written here is registered with `redact.register_secret` at once."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from traceviewer.core.errors import KeyringUnavailable
from traceviewer.core.redact import redact, register_secret

if TYPE_CHECKING:
    import keyring.backend

# `keyring` is imported where it is first used, not here: loading it (and picking a backend)
# takes tens of milliseconds, and the GUI paints its first window without it.

SERVICE = "traceviewer"

# module.ClassName of the backends that store secrets encrypted under the user's login.
SECURE_BACKENDS = frozenset({
    "keyring.backends.SecretService.Keyring",
    "keyring.backends.libsecret.Keyring",
    "keyring.backends.kwallet.DBusKeyring",
    "keyring.backends.macOS.Keyring",
    "keyring.backends.Windows.WinVaultKeyring",
})

_HOW_TO_FIX = ("Start or unlock your desktop keyring (GNOME Keyring, KWallet, macOS Keychain or "
               "Windows Credential Manager).")

_lock = threading.Lock()
_session: dict[str, str] = {}


def _qualname(backend: keyring.backend.KeyringBackend) -> str:
    return f"{type(backend).__module__}.{type(backend).__name__}"


def secure_backend() -> keyring.backend.KeyringBackend:
    """The keyring backend secrets go to; raises `KeyringUnavailable` when none is secure."""
    import keyring

    chosen = keyring.get_keyring()
    # A chainer falls through to its next backend on errors, which might be a plaintext one:
    # use its first secure member directly instead.
    candidates: list[keyring.backend.KeyringBackend] = getattr(chosen, "backends", None) or [chosen]
    for backend in candidates:
        if _qualname(backend) in SECURE_BACKENDS:
            return backend
    found = ", ".join(_qualname(b) for b in candidates)
    raise KeyringUnavailable(f"No secure OS keyring is available (found: {found}). {_HOW_TO_FIX}")


def _failed(action: str, name: str, exc: Exception) -> KeyringUnavailable:
    reason = redact(str(exc)) or type(exc).__name__
    return KeyringUnavailable(
        f"Could not {action} the secret of workspace '{name}' in the keyring "
        f"({type(exc).__name__}: {reason}). {_HOW_TO_FIX}")


def get_secret(name: str) -> str | None:
    """The secret of workspace `name` (session memory first, then the keyring), or None."""
    with _lock:
        secret = _session.get(name)
    if secret is None:
        backend = secure_backend()
        try:
            secret = backend.get_password(SERVICE, name)
        except Exception as exc:  # any backend failure (locked, dismissed prompt, D-Bus error)
            raise _failed("read", name, exc) from None
    register_secret(secret)
    return secret


def stored_in(name: str) -> str | None:
    """Where the secret of workspace `name` is kept: "session", "keyring", or None (nowhere).

    Reads the keyring, which may block on an unlock prompt: call it off the GUI thread."""
    with _lock:
        if name in _session:
            return "session"
    return "keyring" if get_secret(name) is not None else None


def set_secret(name: str, secret: str) -> None:
    """Store the secret of workspace `name` in the keyring."""
    register_secret(secret)
    backend = secure_backend()
    try:
        backend.set_password(SERVICE, name, secret)
    except Exception as exc:  # any backend failure (locked, dismissed prompt, D-Bus error)
        raise _failed("store", name, exc) from None
    with _lock:
        _session.pop(name, None)


def remember_for_session(name: str, secret: str) -> None:
    """Keep the secret of workspace `name` in memory until the app exits (the user chose this
    because no keyring is usable); it is never written anywhere."""
    register_secret(secret)
    with _lock:
        _session[name] = secret


def delete_secret(name: str) -> None:
    """Forget the secret of workspace `name` in the keyring and in session memory."""
    with _lock:
        had_session = _session.pop(name, None) is not None
    try:
        backend = secure_backend()
    except KeyringUnavailable:
        if had_session:
            return  # it only ever lived in memory
        raise
    import keyring.errors

    try:
        backend.delete_password(SERVICE, name)
    except keyring.errors.PasswordDeleteError:
        pass  # nothing stored: already in the wanted state
    except Exception as exc:  # any backend failure (locked, dismissed prompt, D-Bus error)
        raise _failed("delete", name, exc) from None


def move_secret(old: str, new: str) -> None:
    """Move the secret of workspace `old` to `new` (a rename); nothing happens if it has none."""
    with _lock:
        in_session = _session.pop(old, None)
    if in_session is not None:
        remember_for_session(new, in_session)
        return
    secret = get_secret(old)
    if secret is None:
        return
    set_secret(new, secret)
    delete_secret(old)
