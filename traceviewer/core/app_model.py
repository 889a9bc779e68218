"""The app's state, Qt-free: the current workspace, its client, the open experiment and the query.

Views subscribe to its events and read or set the query here, never through another widget
(napari's `ViewerModel` is the pattern). Events fire synchronously, on the thread that made the
change: in the GUI that is always the GUI thread."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from traceviewer.core import filter_groups, search
from traceviewer.core.client import RestClient
from traceviewer.core.errors import BadFilter
from traceviewer.core.filters import Clause
from traceviewer.core.model import Experiment
from traceviewer.core.saved_filters import SavedFilters
from traceviewer.core.workspaces import Workspace, WorkspaceMemory, WorkspaceStore

T = TypeVar("T")


class Event(Generic[T]):
    """A list of callbacks called with one value."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[T], object]] = []

    def connect(self, callback: Callable[[T], object]) -> None:
        self._callbacks.append(callback)

    def disconnect(self, callback: Callable[[T], object]) -> None:
        self._callbacks.remove(callback)

    def emit(self, value: T) -> None:
        for callback in list(self._callbacks):
            callback(value)


@dataclass(frozen=True, slots=True)
class Query:
    """What the trace views of an experiment show: a filter (AND groups joined by OR) and an
    order."""

    clauses: tuple[Clause, ...] = ()  # the first (usually the only) group
    order_by: tuple[str, ...] = search.DEFAULT_ORDER
    or_groups: tuple[tuple[Clause, ...], ...] = ()  # the groups OR-ed with `clauses`

    @property
    def groups(self) -> list[list[Clause]]:
        """Every group of the filter ([] for all traces)."""
        return filter_groups.joined(self.clauses, self.or_groups)

    @property
    def text(self) -> str:
        """The filter as a filter string ('' for all traces)."""
        return filter_groups.build(self.groups)

    def filter_strings(self) -> list[str]:
        """The AND-only server filters whose union is the filter."""
        return filter_groups.server_filters(self.groups)


@dataclass(frozen=True, slots=True)
class Scope:
    """Everything a view needs to read the traces of the query."""

    client: RestClient
    experiment: Experiment
    query: Query

    @property
    def experiment_ids(self) -> list[str]:
        return [self.experiment.experiment_id]


class AppModel:
    """The current workspace, client, experiment and query, with change events.

    `source_changed` fires when the workspace, client or experiment changes (the traces shown
    are another set); `query_changed` when only the filter or order does. Both carry the model.
    `workspace_changed` fires for a new workspace (or a saved change to it, such as its
    reviewer id)."""

    def __init__(self, store: WorkspaceStore | None = None,
                 memory: WorkspaceMemory | None = None) -> None:
        self.store = store or WorkspaceStore()
        self.memory = memory or WorkspaceMemory()
        self.workspace: Workspace | None = None
        self.client: RestClient | None = None
        self.experiment: Experiment | None = None
        self.query = Query()
        self.workspace_changed: Event[AppModel] = Event()
        self.source_changed: Event[AppModel] = Event()
        self.query_changed: Event[AppModel] = Event()

    @property
    def scope(self) -> Scope | None:
        """The client, experiment and query, or None while there is no experiment to read."""
        if self.client is None or self.experiment is None:
            return None
        return Scope(self.client, self.experiment, self.query)

    # -- workspace and client -------------------------------------------------------------

    def set_workspace(self, workspace: Workspace | None) -> None:
        """Switch to `workspace` (remembered as the one to open next time): no client until
        `set_client`, no experiment, and the workspace's last filter."""
        self.workspace = workspace
        if workspace is not None:
            self.memory.set_current(workspace.name)
        self.query = _with_groups(Query(), self._remembered_groups())
        self.workspace_changed.emit(self)
        self.set_client(None)

    def _remembered_groups(self) -> list[list[Clause]]:
        if self.workspace is None:
            return []
        text = self.memory.get(self.workspace.name).last_filter
        try:
            return filter_groups.parse(text) if text else []
        except BadFilter:
            return []  # a remembered filter the parser no longer accepts: start clean

    def set_client(self, client: RestClient | None) -> None:
        """Use `client` for the workspace (None: not connected); the previous one is closed, so
        tasks still holding it end quietly. The experiment is chosen again."""
        old, self.client = self.client, client
        self.experiment = None
        self.source_changed.emit(self)
        if old is not None and old is not client:
            old.close()

    def save_reviewer(self, workspace: Workspace, reviewer: str) -> Workspace:
        """`workspace` with `reviewer` as its reviewer id, saved through the model's store if it
        had none (or another); the current workspace follows."""
        reviewer = reviewer.strip()
        if not reviewer or reviewer == workspace.reviewer:
            return workspace
        workspace = replace(workspace, reviewer=reviewer)
        self.store.upsert(workspace)
        if self.workspace is not None and self.workspace.name == workspace.name:
            self.workspace = workspace
            self.workspace_changed.emit(self)
        return workspace

    # -- experiment and query -------------------------------------------------------------

    def set_experiment(self, experiment: Experiment | None, filter_text: str | None = None) -> None:
        """Show `experiment` (remembered as the workspace's last), with `filter_text` as the
        query's filter if given (BadFilter, nothing changed, if it does not parse)."""
        groups = filter_groups.parse(filter_text) if filter_text is not None else None
        self.experiment = experiment
        if groups is not None:
            self._remember(groups)
            self.query = _with_groups(self.query, groups)
        if experiment is not None and self.workspace is not None:
            name = self.workspace.name
            self.memory.put(name, replace(self.memory.get(name),
                                          last_experiment=experiment.name))
        self.source_changed.emit(self)

    def set_clauses(self, clauses: list[Clause]) -> None:
        """Apply a filter: remembered as the workspace's last and among its recent filters."""
        self.set_groups([clauses] if clauses else [])

    def set_groups(self, groups: list[list[Clause]]) -> None:
        """Apply a filter of groups OR-ed (remembered as `set_clauses` does)."""
        self._remember(groups)
        self.query = _with_groups(self.query, groups)
        self.query_changed.emit(self)

    def set_order(self, order_by: tuple[str, ...]) -> None:
        """Sort by `order_by` on the server."""
        self.query = replace(self.query, order_by=order_by)
        self.query_changed.emit(self)

    def refresh(self) -> None:
        """Read the same query again (F5)."""
        self.query_changed.emit(self)

    def _remember(self, groups: list[list[Clause]]) -> None:
        if self.workspace is None:
            return
        name, text = self.workspace.name, filter_groups.build(groups)
        SavedFilters(name).remember(text)
        self.memory.put(name, replace(self.memory.get(name), last_filter=text or None))


def _with_groups(query: Query, groups: list[list[Clause]]) -> Query:
    """`query` with the filter `groups` (an empty group, which matches everything, clears it)."""
    if not groups or any(not g for g in groups):
        return replace(query, clauses=(), or_groups=())
    return replace(query, clauses=tuple(groups[0]),
                   or_groups=tuple(tuple(g) for g in groups[1:]))
