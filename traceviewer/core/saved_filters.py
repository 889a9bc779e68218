"""Named and recent filter strings, per workspace, in `filters.json` in the data dir.

Conveniences the app fills in again: a damaged file is set aside and the filters start empty (see
`storage`). Every change is one locked transaction on the file as it is on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from traceviewer.core import paths
from traceviewer.core.storage import JsonFile

MAX_RECENT = 10


def _parse(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError("it is not a map of workspaces")
    for workspace, entry in data.items():
        if not (isinstance(entry, dict) and isinstance(entry.get("saved", {}), dict)
                and isinstance(entry.get("recent", []), list)):
            raise ValueError(f"the entry of workspace {workspace!r} is not saved and recent "
                             "filters")
    return data


class SavedFilters:
    """The named and recent filters of one workspace."""

    def __init__(self, workspace: str, path: Path | None = None):
        self.workspace = workspace
        self.path = path or paths.data_dir() / "filters.json"
        self._file: JsonFile[dict[str, Any]] = JsonFile(
            self.path, _parse, dict, what="file of saved and recent filters", regenerable=True)

    def _entry(self, data: dict[str, Any]) -> dict[str, Any]:
        entry: dict[str, Any] = data.setdefault(self.workspace, {})
        entry.setdefault("saved", {})
        entry.setdefault("recent", [])
        return entry

    def saved(self) -> dict[str, str]:
        """Name -> filter string, sorted by name."""
        return dict(sorted(self._entry(self._file.read())["saved"].items()))

    def recent(self) -> list[str]:
        """The last filters applied, newest first."""
        return list(self._entry(self._file.read())["recent"])

    def save(self, name: str, text: str) -> None:
        """Save `text` under `name` (replacing a filter of that name)."""
        def save(data: dict[str, Any]) -> dict[str, Any]:
            self._entry(data)["saved"][name] = text
            return data

        self._file.update(save)

    def delete(self, name: str) -> None:
        """Forget the filter saved as `name`."""
        def delete(data: dict[str, Any]) -> dict[str, Any]:
            self._entry(data)["saved"].pop(name, None)
            return data

        self._file.update(delete)

    def remember(self, text: str) -> None:
        """Put `text` first in the recent list (empty filters are not remembered)."""
        if not text:
            return

        def remember(data: dict[str, Any]) -> dict[str, Any]:
            entry = self._entry(data)
            entry["recent"] = [text, *[t for t in entry["recent"] if t != text]][:MAX_RECENT]
            return data

        self._file.update(remember)
