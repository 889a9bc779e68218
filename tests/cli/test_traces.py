"""The server commands (`traces search`, `trace show`, `experiments list`) against the real seeded
server: each convenience flag and raw filters return exactly the traces the MLflow SDK's
search_traces returns, paging returns every trace once, span trees equal the SDK's parent links
(also for the 10,000-span trace), and errors are one line with the right exit code."""

from __future__ import annotations

import json
import re
import time

import pytest
from mlflow.entities import Trace as MlflowTrace

from tests.conftest import BASIC_AUTH_ADMIN, BIG_EXPERIMENT, PROD_EXPERIMENT, experiment_id
from traceviewer.cli import main
from traceviewer.core.workspaces import Workspace, WorkspaceStore

SESSION_TAG = "tags.`mlflow.trace.session`"
SESSION_META = "metadata.`mlflow.trace.session`"
USER_TAG = "tags.`mlflow.trace.user`"
USER_META = "metadata.`mlflow.trace.user`"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def sdk_union(sdk, prod, *filters: str) -> list[str]:
    """Trace ids matching any of `filters` by the SDK, in the server's default order."""
    matched: set[str] = set()
    for f in filters:
        matched |= {t.info.trace_id for t in sdk.search_traces(
            locations=[prod], filter_string=f, max_results=500, include_spans=False)}
    everything = sdk.search_traces(locations=[prod], max_results=500, include_spans=False)
    return [t.info.trace_id for t in everything if t.info.trace_id in matched]


def search_ids(capsys, url: str, *flags: str) -> list[str]:
    code, out, err = run(capsys, "traces", "search", "--host", url, "--experiment",
                         PROD_EXPERIMENT, "--max", "0", "--format", "json", *flags)
    assert code == 0, err
    return [row["trace_id"] for row in json.loads(out)]


def _in_tags_and_in_metadata(prod_infos, key: str) -> tuple[str, str]:
    tagged = next(i.tags[key] for i in prod_infos if key in i.tags)
    in_metadata = next(i.trace_metadata[key] for i in prod_infos if key in i.trace_metadata)
    return tagged, in_metadata


@pytest.mark.parametrize("where", ["tags", "metadata"])
def test_session_flag_matches_tags_and_metadata_as_the_sdk(capsys, mlflow_server, sdk, prod,
                                                           prod_infos, where):
    tagged, in_metadata = _in_tags_and_in_metadata(prod_infos, "mlflow.trace.session")
    session = tagged if where == "tags" else in_metadata
    expected = sdk_union(sdk, prod, f"{SESSION_TAG} = '{session}'",
                         f"{SESSION_META} = '{session}'")
    assert expected
    assert search_ids(capsys, mlflow_server.url, "--session", session) == expected


@pytest.mark.parametrize("where", ["tags", "metadata"])
def test_user_flag_matches_tags_and_metadata_as_the_sdk(capsys, mlflow_server, sdk, prod,
                                                        prod_infos, where):
    tagged, in_metadata = _in_tags_and_in_metadata(prod_infos, "mlflow.trace.user")
    user = tagged if where == "tags" else in_metadata
    expected = sdk_union(sdk, prod, f"{USER_TAG} = '{user}'", f"{USER_META} = '{user}'")
    assert expected
    assert search_ids(capsys, mlflow_server.url, "--user", user) == expected


def test_tag_value_with_a_quote_matches_as_the_sdk(capsys, mlflow_server, sdk, prod):
    expected = sdk_union(sdk, prod, "tags.customer = \"O'Brien\"")
    assert expected
    assert search_ids(capsys, mlflow_server.url, "--tag", "customer=O'Brien") == expected


def test_repeated_tags_are_anded(capsys, mlflow_server, sdk, prod):
    expected = sdk_union(sdk, prod, "tags.environment = 'production' AND tags.region = "
                                    "'eu-west-1'")
    assert expected
    assert search_ids(capsys, mlflow_server.url, "--tag", "environment=production",
                      "--tag", "region=eu-west-1") == expected


@pytest.mark.parametrize("state", ["ERROR", "OK", "ok"])
def test_status_flag_matches_the_sdk(capsys, mlflow_server, sdk, prod, state):
    expected = sdk_union(sdk, prod, f"status = '{state.upper()}'")
    assert expected
    assert search_ids(capsys, mlflow_server.url, "--status", state) == expected


def test_since_flag_matches_the_sdk(capsys, mlflow_server, sdk, prod, prod_infos):
    middle = sorted(i.request_time for i in prod_infos)[len(prod_infos) // 2]
    expected = sdk_union(sdk, prod, f"timestamp_ms >= {middle}")
    assert 0 < len(expected) < len(prod_infos)
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(middle // 1000)) + \
        f".{middle % 1000:03d}+00:00"
    assert search_ids(capsys, mlflow_server.url, "--since", str(middle)) == expected
    assert search_ids(capsys, mlflow_server.url, "--since", iso) == expected


def test_since_preset_matches_the_sdk(capsys, mlflow_server, sdk, prod, prod_infos):
    three_days_ago = int(time.time() * 1000) - 3 * 86_400_000
    expected = sdk_union(sdk, prod, f"timestamp_ms >= {three_days_ago}")
    assert search_ids(capsys, mlflow_server.url, "--since", "3d") == expected


def test_client_request_id_flag_matches_the_sdk(capsys, mlflow_server, sdk, prod, prod_infos):
    request_id = prod_infos[len(prod_infos) // 2].client_request_id
    expected = sdk_union(sdk, prod, f"client_request_id = '{request_id}'")
    assert len(expected) == 1
    assert search_ids(capsys, mlflow_server.url, "--client-request-id", request_id) == expected


@pytest.mark.parametrize("text", [
    "execution_time_ms > 1000 AND tags.environment = 'production'",
    "span.type = 'TOOL' AND span.status = 'ERROR'",
    "feedback.`response_is_correct` = 'false'",
    "trace.name = 'handle_chat' AND tags.app_version LIKE '1.5%'",
    "span.content ILIKE '%timed out%'",
])
def test_raw_filters_match_the_sdk(capsys, mlflow_server, sdk, prod, text):
    expected = sdk_union(sdk, prod, text)
    assert expected
    assert search_ids(capsys, mlflow_server.url, "--filter", text) == expected


def test_repeated_filters_are_alternatives(capsys, mlflow_server, sdk, prod):
    a, b = "status = 'ERROR'", "execution_time_ms > 4000"
    expected = sdk_union(sdk, prod, a, b)
    assert len(expected) > max(len(sdk_union(sdk, prod, a)), len(sdk_union(sdk, prod, b)))
    assert search_ids(capsys, mlflow_server.url, "--filter", a, "--filter", b) == expected


def test_flags_and_filter_combine_with_and(capsys, mlflow_server, sdk, prod):
    expected = sdk_union(sdk, prod, "status = 'ERROR' AND tags.environment = 'production'")
    assert search_ids(capsys, mlflow_server.url, "--filter", "tags.environment = 'production'",
                      "--status", "ERROR") == expected


def test_small_pages_return_every_trace_once(capsys, mlflow_server, prod_infos):
    got = search_ids(capsys, mlflow_server.url, "--page-size", "7")
    assert got == [i.trace_id for i in prod_infos]
    assert len(set(got)) == len(got)


def test_max_returns_the_newest_n(capsys, mlflow_server, prod_infos):
    code, out, _ = run(capsys, "traces", "search", "--host", mlflow_server.url, "--experiment",
                       PROD_EXPERIMENT, "--max", "9", "--page-size", "4", "--format", "jsonl")
    assert code == 0
    assert [json.loads(line)["trace_id"] for line in out.splitlines()] == \
        [i.trace_id for i in prod_infos[:9]]


def test_json_rows_hold_the_documented_fields(capsys, mlflow_server, prod_infos):
    code, out, _ = run(capsys, "traces", "search", "--host", mlflow_server.url, "--experiment",
                       PROD_EXPERIMENT, "--max", "0", "--format", "json")
    assert code == 0
    rows = {r["trace_id"]: r for r in json.loads(out)}
    for info in prod_infos:
        row = rows[info.trace_id]
        assert row["client_request_id"] == info.client_request_id
        assert row["execution_duration_ms"] == info.execution_duration
        assert row["state"] == info.state.value
        assert row["tags"] == info.tags
        assert row["session"] == (info.tags.get("mlflow.trace.session")
                                  or info.trace_metadata.get("mlflow.trace.session"))
        assert row["user"] == (info.tags.get("mlflow.trace.user")
                               or info.trace_metadata.get("mlflow.trace.user"))
        assert row["request_time"].endswith("Z")


def test_table_and_csv_have_one_row_per_trace(capsys, mlflow_server, prod_infos):
    base = ("traces", "search", "--host", mlflow_server.url, "--experiment", PROD_EXPERIMENT,
            "--max", "0")
    _, table, _ = run(capsys, *base)
    _, csv_text, _ = run(capsys, *base, "--format", "csv")
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["TIME", "TRACE", "ID"]
    assert [line.split()[2] for line in lines[1:]] == [i.trace_id for i in prod_infos]
    assert len(csv_text.splitlines()) >= len(prod_infos) + 1


def test_experiment_by_id_and_workspace(capsys, mlflow_server, prod, prod_infos):
    WorkspaceStore().save(Workspace(name="local", host=mlflow_server.url, kind="mlflow"))
    code, out, err = run(capsys, "traces", "search", "--workspace", "local", "--experiment",
                         prod, "--max", "0", "--format", "jsonl")
    assert code == 0, err
    assert len(out.splitlines()) == len(prod_infos)


# -- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("flags", "code", "message"), [
    (("--filter", "status === 'OK'"), 2, "Invalid comparator|==="),
    (("--filter", "tags.a = 'x' OR (tags.b = 'y'"), 2, r"Expected \) to close"),
    (("--status", "DONE"), 2, "Unknown state 'DONE'"),
    (("--since", "last tuesday"), 2, "is not a time"),
    (("--tag", "novalue"), 2, "--tag needs KEY=VALUE"),
    (("--tag", "q=it's \"x\""), 2, "both ' and \""),
    (("--max", "-1"), 2, "--max"),
])
def test_usage_and_filter_errors_exit_2_with_one_line(capsys, mlflow_server, flags, code,
                                                      message):
    got, _, err = run(capsys, "traces", "search", "--host", mlflow_server.url,
                      "--experiment", PROD_EXPERIMENT, *flags)
    assert got == code
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("traceviewer: ")
    assert re.search(message, err)


def test_unknown_experiment_exits_1(capsys, mlflow_server):
    code, _, err = run(capsys, "traces", "search", "--host", mlflow_server.url, "--experiment",
                       "no-such-experiment")
    assert code == 1
    assert "no experiment named or numbered 'no-such-experiment'" in err


def test_unreachable_server_exits_1(capsys):
    from traceviewer.demo.server import free_port

    code, _, err = run(capsys, "experiments", "list", "--host", f"http://127.0.0.1:{free_port()}")
    assert code == 1
    assert "Could not connect" in err


def test_a_server_must_be_chosen(capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code, _, err = run(capsys, "experiments", "list")
    assert code == 2
    assert "--workspace NAME or --host URL" in err


def test_the_sdks_tracking_uri_is_the_default_server(capsys, mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    code, out, _ = run(capsys, "experiments", "list", "--format", "json")
    assert code == 0
    assert PROD_EXPERIMENT in [e["name"] for e in json.loads(out)]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "databricks")
    assert run(capsys, "experiments", "list")[0] == 2


def test_credentials_come_from_the_environment_and_never_show(capsys, basic_auth_server,
                                                              monkeypatch):
    user, password = BASIC_AUTH_ADMIN
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    code, out, err = run(capsys, "experiments", "list", "--host", basic_auth_server.url,
                         "--format", "json")
    assert code == 0, err
    assert "Default" in [e["name"] for e in json.loads(out)]
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password + "-wrong")
    code, out, err = run(capsys, "experiments", "list", "--host", basic_auth_server.url)
    assert code == 1
    assert "was rejected (HTTP 401)" in err
    assert password not in err + out


# -- trace show --------------------------------------------------------------------------------

def tree_parents(text: str) -> dict[str, str | None]:
    """span id -> parent span id, read back from the indentation of `trace show`'s tree."""
    parents: dict[str, str | None] = {}
    stack: list[str] = []
    for line in text.splitlines()[1:]:
        depth = (len(line) - len(line.lstrip(" "))) // 2
        span_id = line.split()[-1]
        del stack[depth:]
        parents[span_id] = stack[-1] if stack else None
        stack.append(span_id)
    return parents


def show(capsys, url: str, trace_id: str, fmt: str) -> str:
    code, out, err = run(capsys, "trace", "show", trace_id, "--host", url, "--format", fmt)
    assert code == 0, err
    return out


def assert_tree_equals_sdk(capsys, url: str, sdk, trace_id: str) -> int:
    theirs = {s.span_id: s.parent_id for s in sdk.get_trace(trace_id).data.spans}
    assert tree_parents(show(capsys, url, trace_id, "tree")) == theirs
    dumped = MlflowTrace.from_json(show(capsys, url, trace_id, "json"))
    assert {s.span_id: s.parent_id for s in dumped.data.spans} == theirs
    return len(theirs)


def test_trace_show_tree_equals_the_sdks_parent_links(capsys, mlflow_server, sdk, prod_infos):
    error_trace = next(i.trace_id for i in prod_infos if i.state.value == "ERROR")
    assert assert_tree_equals_sdk(capsys, mlflow_server.url, sdk, error_trace) > 3


def test_trace_show_of_the_10k_span_trace_equals_the_sdk(capsys, mlflow_server, sdk):
    big = experiment_id(sdk, BIG_EXPERIMENT)
    (found,) = sdk.search_traces(locations=[big], filter_string="client_request_id = "
                                 "'big-10000'", include_spans=False)
    assert assert_tree_equals_sdk(capsys, mlflow_server.url, sdk, found.info.trace_id) == 10_000


def test_trace_show_summary_and_unknown_trace(capsys, mlflow_server, prod_infos):
    info = prod_infos[0]
    first = show(capsys, mlflow_server.url, info.trace_id, "tree").splitlines()[0]
    assert first.startswith(f"{info.trace_id}  handle_chat  {info.state.value}")
    code, _, err = run(capsys, "trace", "show", "tr-0000", "--host", mlflow_server.url)
    assert code == 1
    assert "Not found" in err


# -- experiments list --------------------------------------------------------------------------

def test_experiments_list_equals_the_sdk(capsys, mlflow_server, sdk):
    code, out, _ = run(capsys, "experiments", "list", "--host", mlflow_server.url, "--format",
                       "json")
    assert code == 0
    assert {e["experiment_id"]: e["name"] for e in json.loads(out)} == \
        {e.experiment_id: e.name for e in sdk.search_experiments(max_results=1000)}


def test_experiments_list_filter_is_a_case_insensitive_substring(capsys, mlflow_server):
    code, out, _ = run(capsys, "experiments", "list", "--host", mlflow_server.url, "--filter",
                       "GENAI")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "LAST", "UPDATE", "CREATED", "NAME"]
    assert [line.split()[-1] for line in lines[1:]] == [PROD_EXPERIMENT]
