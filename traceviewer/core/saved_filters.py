"""Named and recent filter strings, per workspace, in `filters.json` in the data dir."""

from __future__ import annotations

import json
from pathlib import Path

from traceviewer.core import paths
from traceviewer.core.workspaces import write_json_atomic

MAX_RECENT = 10


class SavedFilters:
    def __init__(self, workspace: str, path: Path | None = None):
        self.workspace = workspace
        self.path = path or paths.data_dir() / "filters.json"

    def _load(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # conveniences only: a missing or damaged file means none saved
        return data if isinstance(data, dict) else {}

    def _entry(self, data: dict) -> dict:
        entry = data.setdefault(self.workspace, {})
        entry.setdefault("saved", {})
        entry.setdefault("recent", [])
        return entry

    def saved(self) -> dict[str, str]:
        """Name -> filter string, sorted by name."""
        return dict(sorted(self._entry(self._load())["saved"].items()))

    def recent(self) -> list[str]:
        """The last filters applied, newest first."""
        return list(self._entry(self._load())["recent"])

    def save(self, name: str, text: str) -> None:
        data = self._load()
        self._entry(data)["saved"][name] = text
        write_json_atomic(self.path, data)

    def delete(self, name: str) -> None:
        data = self._load()
        self._entry(data)["saved"].pop(name, None)
        write_json_atomic(self.path, data)

    def remember(self, text: str) -> None:
        """Put `text` first in the recent list (empty filters are not remembered)."""
        if not text:
            return
        data = self._load()
        entry = self._entry(data)
        entry["recent"] = [text, *[t for t in entry["recent"] if t != text]][:MAX_RECENT]
        write_json_atomic(self.path, data)
