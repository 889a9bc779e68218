"""The Qt-free app model: what switching workspace, client, experiment and filter does to the
state every view reads, and where it is remembered."""

from __future__ import annotations

import pytest

from traceviewer.core import filters
from traceviewer.core.app_model import AppModel
from traceviewer.core.client import RestClient
from traceviewer.core.errors import BadFilter
from traceviewer.core.model import Experiment
from traceviewer.core.saved_filters import SavedFilters
from traceviewer.core.workspaces import Workspace, WorkspaceMemory, WorkspaceStore

EXPERIMENT = Experiment("1", "/Shared/production-genai-app")


class Recorder:
    """Every event of a model, in order, as (event name, query text)."""

    def __init__(self, model: AppModel):
        self.events: list[tuple[str, str]] = []
        for name in ("workspace_changed", "source_changed", "query_changed"):
            getattr(model, name).connect(
                lambda m, name=name: self.events.append((name, m.query.text)))


@pytest.fixture
def model(tmp_path) -> AppModel:
    return AppModel(WorkspaceStore(tmp_path / "workspaces.json"), WorkspaceMemory())


def test_a_workspace_opens_with_its_last_filter_and_no_client_or_experiment(model):
    prod = Workspace("prod", "http://127.0.0.1:1")
    model.set_workspace(prod)
    model.set_clauses([filters.status("ERROR")])
    model.set_workspace(Workspace("other", "http://127.0.0.1:2"))
    assert model.query.text == ""
    model.set_workspace(prod)
    assert model.query.text == "status = 'ERROR'"
    assert model.client is None and model.experiment is None and model.scope is None
    assert WorkspaceMemory().current == "prod"


def test_a_replaced_client_is_closed_so_its_tasks_end(model):
    first, second = RestClient("http://127.0.0.1:1"), RestClient("http://127.0.0.1:2")
    model.set_client(first)
    model.set_client(second)
    assert first._http.is_closed and not second._http.is_closed
    model.set_workspace(None)
    assert second._http.is_closed


def test_an_applied_filter_is_the_workspaces_last_and_recent_and_views_hear_of_it(model):
    model.set_workspace(Workspace("prod", "http://127.0.0.1:1"))
    model.set_client(RestClient("http://127.0.0.1:1"))
    model.set_experiment(EXPERIMENT)
    seen = Recorder(model)
    model.set_clauses([filters.user("u1")])
    text = filters.build([filters.user("u1")])
    assert seen.events == [("query_changed", text)]
    assert model.scope is not None
    assert model.scope.query.filter_strings() == filters.alternatives([filters.user("u1")])
    assert model.scope.experiment_ids == ["1"]
    assert WorkspaceMemory().get("prod").last_filter == text
    assert SavedFilters("prod").recent()[0] == text
    assert WorkspaceMemory().get("prod").last_experiment == EXPERIMENT.name


def test_a_filter_that_does_not_parse_changes_nothing(model):
    model.set_experiment(EXPERIMENT, filter_text="status = 'OK'")
    seen = Recorder(model)
    with pytest.raises(BadFilter):
        model.set_experiment(Experiment("2", "other"), filter_text="status === 'OK'")
    assert seen.events == [] and model.experiment == EXPERIMENT
    assert model.query.text == "status = 'OK'"


def test_server_order_is_part_of_the_query(model):
    seen = Recorder(model)
    model.set_order(("execution_time_ms DESC",))
    assert model.query.order_by == ("execution_time_ms DESC",)
    assert seen.events == [("query_changed", "")]


def test_a_reviewer_id_is_saved_through_the_models_store_and_the_workspace_follows(model,
                                                                                    tmp_path):
    ws = Workspace("prod", "http://127.0.0.1:1")
    model.store.upsert(ws)
    model.set_workspace(ws)
    seen = Recorder(model)
    saved = model.save_reviewer(ws, "  alice@example.com ")
    assert saved.reviewer == "alice@example.com" == model.workspace.reviewer
    assert WorkspaceStore(tmp_path / "workspaces.json").get("prod").reviewer == saved.reviewer
    assert WorkspaceStore().list() == []  # the default store was not written behind its back
    assert seen.events == [("workspace_changed", "")]
    assert model.save_reviewer(saved, "alice@example.com") is saved  # unchanged: no write
