"""`traces search --filter` with OR, parentheses and IN over users against the real seeded server:
exactly the union of the MLflow SDK's ids for each branch, each once, in the server's order."""

from __future__ import annotations

from collections import Counter

from tests.cli.test_traces import USER_META, USER_TAG, run, sdk_union, search_ids
from tests.conftest import PROD_EXPERIMENT

USER = "mlflow.trace.user"


def _users(prod_infos) -> list[str]:
    """Seeded users, most traces first (from the SDK's trace infos: tags or metadata)."""
    counts = Counter(i.tags.get(USER) or i.trace_metadata.get(USER) for i in prod_infos)
    return [u for u, _ in counts.most_common() if u]


def _user_branches(user: str, extra: str = "") -> list[str]:
    """The SDK filters for one user (the app's user field reads tags and metadata)."""
    return [f"{USER_TAG} = '{user}'{extra}", f"{USER_META} = '{user}'{extra}"]


def test_or_of_two_users_returns_the_union_of_the_sdks_ids_once_in_time_order(
        capsys, mlflow_server, sdk, prod, prod_infos):
    a, b = _users(prod_infos)[:2]
    expected = sdk_union(sdk, prod, *_user_branches(a), *_user_branches(b))
    assert len(expected) > max(len(sdk_union(sdk, prod, *_user_branches(u))) for u in (a, b))
    got = search_ids(capsys, mlflow_server.url, "--filter",
                     f"{USER_TAG} = '{a}' OR {USER_TAG} = '{b}'")
    assert got == expected


def test_or_of_and_groups_returns_the_union_of_the_sdks_ids(capsys, mlflow_server, sdk, prod,
                                                            prod_infos):
    a = next(i.tags.get(USER) or i.trace_metadata.get(USER) for i in prod_infos
             if getattr(i.state, "value", i.state) == "ERROR" and
             (i.tags.get(USER) or i.trace_metadata.get(USER)))
    slow_ok = "status = 'OK' AND execution_time_ms > 3000"
    expected = sdk_union(sdk, prod, *_user_branches(a, " AND status = 'ERROR'"), slow_ok)
    assert expected and len(expected) > len(sdk_union(sdk, prod, slow_ok))
    got = search_ids(capsys, mlflow_server.url, "--filter",
                     f"({USER_TAG} = '{a}' AND status = 'ERROR') OR ({slow_ok})")
    assert got == expected


def test_in_over_users_returns_the_union_of_the_sdks_ids(capsys, mlflow_server, sdk, prod,
                                                         prod_infos):
    users = _users(prod_infos)[:3]
    expected = sdk_union(sdk, prod, *(f for u in users for f in _user_branches(u)))
    listed = ", ".join(f"'{u}'" for u in users)
    got = search_ids(capsys, mlflow_server.url, "--filter", f"{USER_TAG} IN ({listed})")
    assert got == expected
    assert len(set(got)) == len(got)


def test_a_filter_costing_too_many_queries_is_refused_before_any_search(capsys, mlflow_server):
    listed = ", ".join(f"'u{i}'" for i in range(13))
    code, _, err = run(capsys, "traces", "search", "--host", mlflow_server.url, "--experiment",
                       PROD_EXPERIMENT, "--filter", f"{USER_TAG} IN ({listed})")
    assert code == 2
    assert "26 server queries" in err
