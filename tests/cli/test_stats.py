"""`traceviewer stats` against the seeded server equals, group by group, what the MLflow SDK's
`search_traces` gives (counts, errors, token sums and pass rates exactly; percentiles by the
documented PERCENTILE_CONT definition, here numpy's default 'linear'), through both the metrics
endpoint and client-side aggregation (the Databricks stand-in has no metrics endpoint)."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict

import numpy as np
import pytest

from tests.cli.test_workspace import cli  # noqa: F401 (fixture)
from tests.conftest import PROD_EXPERIMENT

FEEDBACK = "response_is_correct"
USER = "mlflow.trace.user"


def sdk_infos(sdk, exp_id, filter_string=None) -> list:
    return [t.info for t in sdk.search_traces(locations=[exp_id], max_results=500,
                                              filter_string=filter_string,
                                              include_spans=False)]


def sdk_groups(sdk, prod, key, filter_string=None) -> dict:
    """The expected numbers per group value, computed from the SDK's trace infos."""
    return groups_of(sdk_infos(sdk, prod, filter_string), key)


def groups_of(infos, key) -> dict:
    """The expected numbers per group value of these SDK trace infos."""
    groups = defaultdict(list)
    for info in infos:
        groups[key(info)].append(info)
    out = {}
    for value, members in groups.items():
        durations = [i.execution_duration for i in members]
        usage = [i.token_usage or {} for i in members]
        valid = [a for i in members for a in i.assessments
                 if a.name == FEEDBACK and a.valid is not False]
        feedback = [a.value for a in valid]
        out[value] = {
            "traces": len(members),
            "errors": sum(str(i.state) == "ERROR" or getattr(i.state, "value", "") == "ERROR"
                          for i in members),
            "tokens": {k: sum(u.get(f"{k}_tokens", 0) for u in usage)
                       for k in ("input", "output", "total")},
            "pass_rate": sum(v is True for v in feedback) / len(feedback) if feedback else None,
            "feedback_count": len(feedback),
            "human_count": sum(a.source.source_type == "HUMAN" for a in valid),
            "latency_ms": {f"p{p}": float(np.percentile(durations, p)) for p in (50, 90, 99)}
            | {"mean": float(np.mean(durations))},
        }
    return out


def assert_equal_to_sdk(rows: list[dict], expected: dict) -> None:
    assert {r["group"] for r in rows} == set(expected)
    for row in rows:
        want = expected[row["group"]]
        assert "bucket_start" not in row
        assert row["traces"] == want["traces"], row["group"]
        assert row["errors"] == want["errors"], row["group"]
        assert row["tokens"] == want["tokens"], row["group"]
        got = row["assessments"].get(FEEDBACK)
        if want["feedback_count"]:
            assert got["count"] == want["feedback_count"]
            assert got["pass_rate"] == want["pass_rate"]
            assert got["human_count"] == want["human_count"], row["group"]
        else:
            assert got is None
        for k, v in want["latency_ms"].items():
            assert row["latency_ms"][k] == pytest.approx(v, rel=1e-9), (row["group"], k)


def stats_json(cli, *argv: str) -> list[dict]:  # noqa: F811
    code, out, err = cli("stats", "--experiment", PROD_EXPERIMENT, "--bucket", "none",
                         "--format", "json", *argv)
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def databricks_args(databricks_standin, monkeypatch) -> tuple[str, ...]:
    monkeypatch.setenv("DATABRICKS_TOKEN", databricks_standin.credentials.pat)
    for var in ("DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET", "DATABRICKS_CONFIG_PROFILE",
                "DATABRICKS_AUTH_TYPE"):
        monkeypatch.delenv(var, raising=False)
    return ("--host", databricks_standin.url, "--kind", "databricks")


def test_stats_by_environment_equal_the_sdk_through_metrics_and_search(
        cli, sdk, prod, mlflow_server, databricks_args):  # noqa: F811
    expected = sdk_groups(sdk, prod, lambda i: i.tags.get("environment"))
    assert len(expected) >= 2
    through_metrics = stats_json(cli, "--host", mlflow_server.url, "--via", "metrics",
                                 "--group-by", "tag:environment")
    assert_equal_to_sdk(through_metrics, expected)
    # The Databricks stand-in has no metrics endpoint: aggregated from search pages.
    through_search = stats_json(cli, *databricks_args, "--group-by", "tag:environment")
    assert_equal_to_sdk(through_search, expected)


def test_stats_by_user_with_a_filter_equal_the_sdk_through_metrics_and_search(
        cli, sdk, prod, mlflow_server, databricks_args):  # noqa: F811
    text = "tags.environment = 'production'"
    expected = sdk_groups(sdk, prod, lambda i: i.tags.get(USER) or i.trace_metadata.get(USER),
                          filter_string=text)
    assert len(expected) >= 2
    for argv in (("--host", mlflow_server.url, "--via", "metrics"), databricks_args,
                 ("--host", mlflow_server.url, "--via", "search")):
        rows = stats_json(cli, *argv, "--group-by", "user", "--filter", text)
        assert_equal_to_sdk(rows, expected)


def test_stats_buckets_start_at_the_floor_of_each_request_time(cli, sdk, prod,  # noqa: F811
                                                              mlflow_server):
    infos = [t.info for t in sdk.search_traces(locations=[prod], max_results=500,
                                               include_spans=False)]
    want: dict[int, int] = defaultdict(int)
    for info in infos:
        want[info.request_time // 86_400_000 * 86_400_000] += 1
    for via in ("metrics", "search"):
        code, out, err = cli("stats", "--experiment", PROD_EXPERIMENT, "--host",
                             mlflow_server.url, "--bucket", "1d", "--format", "json", "--via",
                             via)
        assert code == 0, err
        rows = json.loads(out)
        got = {np.datetime64(r["bucket_start"].rstrip("Z"), "ms").astype(int): r["traces"]
               for r in rows}
        assert got == dict(want), via


def sdk_union(sdk, exp_id, filter_strings) -> list:
    """The SDK's traces of any of the filters, each once (union by trace id)."""
    found = {}
    for text in filter_strings:
        for info in sdk_infos(sdk, exp_id, text):
            found.setdefault(info.trace_id, info)
    return list(found.values())


def test_stats_with_an_or_of_two_users_equal_the_sdks_union_of_each_branch(
        cli, sdk, prod, mlflow_server, databricks_args):  # noqa: F811
    counts = defaultdict(int)
    for info in sdk_infos(sdk, prod):
        counts[info.tags.get(USER) or info.trace_metadata.get(USER)] += 1
    first, second = sorted((u for u in counts if u), key=lambda u: -counts[u])[:2]
    # A user lives in the trace's tags or its metadata: each branch is both searches.
    union = sdk_union(sdk, prod, [f"{where}.`{USER}` = '{user}'" for user in (first, second)
                                  for where in ("tags", "metadata")])
    expected = groups_of(union, lambda i: i.tags.get("environment"))
    assert sum(g["traces"] for g in expected.values()) == counts[first] + counts[second]
    text = (f"tags.`{USER}` = '{first}' OR "
            f"(tags.`{USER}` = '{second}' AND execution_time_ms >= 0)")
    for argv in (("--host", mlflow_server.url), databricks_args):
        rows = stats_json(cli, *argv, "--group-by", "tag:environment", "--filter", text)
        assert_equal_to_sdk(rows, expected)
    code, _out, err = cli("stats", "--experiment", PROD_EXPERIMENT, "--host", mlflow_server.url,
                          "--via", "metrics", "--filter", text)
    assert code != 0
    assert "no OR" in err


@pytest.fixture(scope="module")
def judged(sdk):
    """An experiment of its own: traces in two environments with feedback from people and from
    an LLM judge, some overridden."""
    import mlflow
    from mlflow.entities import AssessmentSource

    exp_id = sdk.create_experiment(f"stats-judged-{uuid.uuid4().hex[:8]}")
    ids = []
    for i in range(8):
        span = mlflow.start_span_no_context("job", experiment_id=exp_id, inputs={"i": i})
        span.end(outputs=i)
        ids.append(span.trace_id)
    mlflow.flush_trace_async_logging()
    human = AssessmentSource(source_type="HUMAN", source_id="alice@example.com")
    judge = AssessmentSource(source_type="LLM_JUDGE", source_id="judge")
    for i, trace_id in enumerate(ids):
        sdk.set_trace_tag(trace_id, "environment", "staging" if i % 3 else "production")
        if i % 2:
            mlflow.log_feedback(trace_id=trace_id, name=FEEDBACK, value=i % 4 == 1,
                                source=judge)
        if i % 3 != 1:
            old = mlflow.log_feedback(trace_id=trace_id, name=FEEDBACK, value=True, source=human)
            if i == 3:
                mlflow.override_feedback(trace_id=trace_id, assessment_id=old.assessment_id,
                                         value=False, source=human)
    return exp_id


def test_human_counts_equal_the_sdk_through_metrics_and_search(cli, sdk, judged,  # noqa: F811
                                                               mlflow_server):
    expected = groups_of(sdk_infos(sdk, judged), lambda i: i.tags.get("environment"))
    humans = sum(g["human_count"] for g in expected.values())
    assert 0 < humans < sum(g["feedback_count"] for g in expected.values())
    for via in ("metrics", "search"):
        code, out, err = cli("stats", "--experiment", judged, "--host", mlflow_server.url,
                             "--bucket", "none", "--format", "json", "--via", via,
                             "--group-by", "tag:environment")
        assert code == 0, err
        assert_equal_to_sdk(json.loads(out), expected)


def test_human_counts_with_more_searches_than_the_query_cap_read_the_whole_range(
        cli, sdk, judged, mlflow_server, monkeypatch):  # noqa: F811
    """Past the cap on concurrent searches (one per assessment name and kind), the human
    counts come from one search of the range, and still equal the SDK's."""
    from traceviewer.core import filter_groups, search

    monkeypatch.setattr(filter_groups, "MAX_QUERIES", 1)
    streams = []
    iter_traces = search.iter_traces

    def counted(client, experiment_ids, filters=("",), *args, **kwargs):
        streams.append(len(filters))
        return iter_traces(client, experiment_ids, filters, *args, **kwargs)

    monkeypatch.setattr(search, "iter_traces", counted)
    expected = groups_of(sdk_infos(sdk, judged), lambda i: i.tags.get("environment"))
    code, out, err = cli("stats", "--experiment", judged, "--host", mlflow_server.url,
                         "--bucket", "none", "--format", "json", "--via", "metrics",
                         "--group-by", "tag:environment")
    assert code == 0, err
    assert_equal_to_sdk(json.loads(out), expected)
    assert streams and max(streams) == 1  # never more searches at once than the cap
