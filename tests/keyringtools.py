"""Helpers for the workspace and keyring tests."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import keyring.backends.fail
import keyring.core
import pytest

from traceviewer.core import keychain


def unique_name(prefix: str = "ws") -> str:
    """A workspace name no other test uses: the Secret Service is shared by the whole session."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def files_containing(root: Path, secret: str) -> list[Path]:
    """Every file under `root` whose bytes contain `secret` (plain or UTF-16, as some tools
    write), for "the secret is in no file" checks."""
    needles = (secret.encode(), secret.encode("utf-16-le"))
    return [path for path in root.rglob("*")
            if path.is_file() and not path.is_symlink()
            and any(needle in path.read_bytes() for needle in needles)]


@contextlib.contextmanager
def secrets_deleted_afterwards() -> Iterator[list[str]]:
    """Yields a list of workspace names whose secrets are deleted on exit, whatever happened."""
    names: list[str] = []
    try:
        yield names
    finally:
        for name in names:
            keychain.delete_secret(name)


def without_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make this process see no usable keyring (keyring's `fail` backend), as on a machine
    without a Secret Service; monkeypatch puts the real backend back after the test."""
    monkeypatch.setattr(keyring.core, "_keyring_backend", keyring.backends.fail.Keyring())
