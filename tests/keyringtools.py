"""Helpers for the workspace and keyring tests."""

from __future__ import annotations

import uuid
from pathlib import Path


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
