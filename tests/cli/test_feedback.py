"""`traceviewer feedback` and `traceviewer outbox` against the real seeded `mlflow server`, read
back with the MLflow SDK."""

from __future__ import annotations

import json

import pytest

from tests.conftest import PROD_EXPERIMENT, experiment_id
from tests.core.test_outbox import labels, unique_name
from traceviewer.cli import main
from traceviewer.cli.feedback import EXIT_QUEUED
from traceviewer.core import paths
from traceviewer.core.client import RestClient
from traceviewer.core.outbox import Outbox
from traceviewer.core.workspaces import Workspace, WorkspaceStore

REVIEWER = "bob@example.com"


@pytest.fixture
def cli(capsys):
    """Run the real entry point in-process; returns (exit code, stdout, stderr)."""
    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err
    return run


@pytest.fixture(scope="module")
def traces(mlflow_server, sdk):
    """Seeded production traces (with their client request ids)."""
    with RestClient(mlflow_server.url) as client:
        infos, _ = client.search_traces([experiment_id(sdk, PROD_EXPERIMENT)], max_results=12)
    return infos


def test_feedback_add_by_trace_id_is_read_back_by_the_sdk_as_human(cli, sdk, mlflow_server,
                                                                    traces):
    name, trace_id = unique_name(), traces[0].trace_id
    code, out, _ = cli("feedback", "add", trace_id, "--host", mlflow_server.url, "--name", name,
                       "--value", "false", "--rationale", "wrong <b>balance</b>",
                       "--source-id", REVIEWER)
    assert code == 0 and out.startswith(f"Saved {name} = no on {trace_id}")
    (label,) = labels(sdk, trace_id, name)
    assert (label.source.source_type, label.source.source_id) == ("HUMAN", REVIEWER)
    assert (label.value, label.rationale) == (False, "wrong <b>balance</b>")
    assert label.assessment_id in out


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("4", 4.0), ("0.25", 0.25),
                                                ("needs work", "needs work")])
def test_feedback_value_reads_booleans_and_numbers_else_text(cli, sdk, mlflow_server, traces,
                                                             text, expected):
    name = unique_name()
    assert cli("feedback", "add", traces[1].trace_id, "--host", mlflow_server.url,
               "--name", name, "--value", text, "--source-id", REVIEWER)[0] == 0
    (label,) = labels(sdk, traces[1].trace_id, name)
    # MLflow returns every number as a double.
    assert label.value == expected and type(label.value) is type(expected)


def test_feedback_add_by_client_request_id_labels_that_trace(cli, sdk, mlflow_server, traces):
    info = next(t for t in traces if t.client_request_id)
    name = unique_name()
    code, _, _ = cli("feedback", "add", "--client-request-id", info.client_request_id,
                     "--experiment", PROD_EXPERIMENT, "--host", mlflow_server.url,
                     "--name", name, "--value", "true", "--source-id", REVIEWER)
    assert code == 0
    assert [a.value for a in labels(sdk, info.trace_id, name)] == [True]


def test_unknown_client_request_id_is_an_error_naming_it(cli, mlflow_server):
    code, _, err = cli("feedback", "add", "--client-request-id", "no-such-request",
                       "--experiment", PROD_EXPERIMENT, "--host", mlflow_server.url,
                       "--name", "x", "--value", "true", "--source-id", REVIEWER)
    assert code == 1 and "no-such-request" in err


def test_workspace_reviewer_is_the_source_id_and_a_label_needs_one(cli, sdk, mlflow_server,
                                                                   traces):
    WorkspaceStore().save(Workspace("local", mlflow_server.url))
    code, _, err = cli("feedback", "add", traces[2].trace_id, "--workspace", "local",
                       "--name", "x", "--value", "true")
    assert code == 2 and "--source-id" in err

    WorkspaceStore().save(Workspace("local", mlflow_server.url, reviewer=REVIEWER), replace=True)
    name = unique_name()
    assert cli("feedback", "add", traces[2].trace_id, "--workspace", "local", "--name", name,
               "--value", "true")[0] == 0
    (label,) = labels(sdk, traces[2].trace_id, name)
    assert label.source.source_id == REVIEWER


def test_feedback_list_shows_the_assessments_as_the_sdk_has_them(cli, sdk, mlflow_server,
                                                                 traces):
    trace_id, name = traces[3].trace_id, unique_name()
    cli("feedback", "add", trace_id, "--host", mlflow_server.url, "--name", name, "--value",
        "3", "--rationale", "ok-ish", "--source-id", REVIEWER)

    code, out, _ = cli("feedback", "list", trace_id, "--host", mlflow_server.url,
                       "--format", "json")
    assert code == 0
    listed = {a["assessment_id"]: a for a in json.loads(out)}
    sdk_ids = {a.assessment_id for a in sdk.get_trace(trace_id).info.assessments}
    assert set(listed) == sdk_ids
    (mine,) = [a for a in listed.values() if a["assessment_name"] == name]
    assert mine["feedback"]["value"] == 3 and mine["rationale"] == "ok-ish"
    assert mine["source"] == {"source_type": "HUMAN", "source_id": REVIEWER}

    code, out, _ = cli("feedback", "list", trace_id, "--host", mlflow_server.url)
    (row,) = [line for line in out.splitlines() if line.startswith(name)]
    assert "HUMAN:" + REVIEWER in row and "ok-ish" in row


def test_label_given_while_the_server_is_down_is_queued_exits_3_and_is_sent_by_flush(
        cli, sdk, fault_proxy, traces):
    trace_id, name = traces[4].trace_id, unique_name()
    fault_proxy.down()
    code, out, err = cli("feedback", "add", trace_id, "--host", fault_proxy.url, "--name", name,
                         "--value", "true", "--source-id", REVIEWER)
    assert code == EXIT_QUEUED == 3 and out == ""  # scripts tell "queued" from "sent"
    assert err.startswith(f"Queued {name} = yes on {trace_id}") and "outbox flush" in err

    code, out, _ = cli("outbox", "status", "--format", "json")
    status = json.loads(out)
    assert (status["pending"], status["parked"]) == (1, 0)
    assert status["items"][0]["trace_id"] == trace_id and "connect" in status["last_error"]
    assert cli("outbox", "flush")[0] == 1  # still down: nothing lost, says what waits

    fault_proxy.up()
    code, out, _ = cli("outbox", "flush")
    assert code == 0 and f"{fault_proxy.url}: 1 sent" in out
    assert len(labels(sdk, trace_id, name)) == 1
    assert Outbox().items() == []


def test_refused_label_is_kept_with_the_reason_until_discarded(cli, mlflow_server):
    missing = "tr-" + "0" * 32
    code, _, err = cli("feedback", "add", missing, "--host", mlflow_server.url, "--name", "x",
                       "--value", "true", "--source-id", REVIEWER)
    assert code == 1 and "no longer exists" in err
    (item,) = Outbox().items()
    assert f"outbox discard {item.item_id}" in err

    code, out, _ = cli("outbox", "status")
    assert "0 pending, 1 refused or not saved (parked)" in out and missing in out
    code, out, _ = cli("outbox", "flush")  # kept back: not sent again on its own
    assert code == 1 and "Still waiting: 0 pending, 1 refused or not saved" in out

    assert cli("outbox", "discard", str(item.item_id))[0] == 0
    assert Outbox().items() == []


def test_feedback_add_help_documents_the_queued_exit_status(capsys):
    with pytest.raises(SystemExit):
        main(["feedback", "add", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"{EXIT_QUEUED} queued" in help_text and "0 saved" in help_text


def _garbage_outbox() -> bytes:
    garbage = b"\x00not an outbox\xff" * 300
    path = paths.data_dir() / "outbox.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(garbage)
    return garbage


def test_feedback_add_on_a_garbage_outbox_names_where_it_was_moved_and_still_saves(
        cli, sdk, mlflow_server, traces):
    garbage = _garbage_outbox()
    trace_id, name = traces[5].trace_id, unique_name()
    code, out, err = cli("feedback", "add", trace_id, "--host", mlflow_server.url,
                         "--name", name, "--value", "true", "--source-id", REVIEWER)
    (aside,) = paths.data_dir().glob("outbox.sqlite3.corrupt-*")
    assert aside.read_bytes() == garbage  # kept as it was
    assert f"moved aside to {aside}" in err and "new outbox" in err
    assert code == 0 and out.startswith(f"Saved {name} = yes on {trace_id}")
    assert [a.value for a in labels(sdk, trace_id, name)] == [True]


@pytest.mark.parametrize("command", [("outbox", "status"), ("outbox", "flush")])
def test_outbox_commands_on_a_garbage_outbox_name_where_it_was_moved(cli, command):
    _garbage_outbox()
    code, out, err = cli(*command)
    (aside,) = paths.data_dir().glob("outbox.sqlite3.corrupt-*")
    assert f"moved aside to {aside}" in err
    assert code == 0 and ("0 pending" in out or "Nothing left to send" in out)
