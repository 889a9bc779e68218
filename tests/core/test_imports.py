"""Importing workspaces from the SDK's environment variables and from ~/.databrickscfg."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from traceviewer.core.errors import ConfigError
from traceviewer.core.imports import from_databrickscfg, from_environment, name_for_host
from traceviewer.core.redact import redact

DATABRICKSCFG = textwrap.dedent("""
    [DEFAULT]
    host  = https://adb-1234567890.12.azuredatabricks.net/
    token = dapi0123456789abcdef0123456789abcdef

    [staging]
    host  = dbc-staging.cloud.databricks.com
    token = dapifedcba9876543210fedcba9876543210

    [oauth]
    host      = https://dbc-oauth.cloud.databricks.com
    auth_type = databricks-cli

    [team space]
    host  = https://dbc-team.cloud.databricks.com
    token = dapi11112222333344445555666677778888
""")


@pytest.fixture
def databrickscfg() -> Path:
    path = Path.home() / ".databrickscfg"
    path.write_text(DATABRICKSCFG)
    return path


def test_http_tracking_uri_with_token_and_experiment():
    found = from_environment({"MLFLOW_TRACKING_URI": "https://mlflow.example.com:8443/",
                              "MLFLOW_TRACKING_TOKEN": "tok-0123456789",
                              "MLFLOW_EXPERIMENT_NAME": "/Shared/production-genai-app"})
    ws = found.workspace
    assert (ws.name, ws.host, ws.kind, ws.auth) == (
        "mlflow.example.com-8443", "https://mlflow.example.com:8443", "mlflow", "token")
    assert ws.default_experiment == "/Shared/production-genai-app"
    assert found.secret == "tok-0123456789"
    assert "tok-0123456789" not in repr(found)


def test_username_and_password_mean_basic_auth():
    found = from_environment({"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
                              "MLFLOW_TRACKING_USERNAME": "admin",
                              "MLFLOW_TRACKING_PASSWORD": "password1234"}, name="local")
    assert (found.workspace.name, found.workspace.auth, found.workspace.username) == (
        "local", "basic", "admin")
    assert found.secret == "password1234"
    assert redact("login with password1234") == "login with ****"


def test_databricks_uri_uses_host_and_token_variables():
    found = from_environment({"MLFLOW_TRACKING_URI": "databricks",
                              "DATABRICKS_HOST": "https://dbc-a1b2.cloud.databricks.com",
                              "DATABRICKS_TOKEN": "dapiaaaabbbbccccdddd0000",
                              "MLFLOW_EXPERIMENT_ID": "42"})
    ws = found.workspace
    assert (ws.name, ws.kind, ws.auth, ws.default_experiment) == (
        "dbc-a1b2", "databricks", "token", "42")
    assert found.secret == "dapiaaaabbbbccccdddd0000"


def test_databricks_uri_with_profile_reads_databrickscfg(databrickscfg):
    found = from_environment({"MLFLOW_TRACKING_URI": "databricks://staging",
                              "MLFLOW_EXPERIMENT_NAME": "/Users/me/app"})
    assert found.workspace.host == "https://dbc-staging.cloud.databricks.com"
    assert found.workspace.default_experiment == "/Users/me/app"
    assert found.secret == "dapifedcba9876543210fedcba9876543210"


def test_databricks_host_without_token_says_which_variable_is_missing():
    with pytest.raises(ConfigError, match="DATABRICKS_TOKEN is not"):
        from_environment({"DATABRICKS_HOST": "https://dbc-a1b2.cloud.databricks.com"})


@pytest.mark.parametrize(("env", "message"), [
    ({}, "Nothing to import"),
    ({"MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"}, "is a local store"),
    ({"MLFLOW_TRACKING_URI": "databricks"}, "profile 'DEFAULT' is needed, but .* does not"),
])
def test_unusable_environment_is_a_clear_error(env, message):
    with pytest.raises(ConfigError, match=message):
        from_environment(env)


def test_databrickscfg_imports_every_profile_type(databrickscfg):
    imported, skipped = from_databrickscfg()
    assert [(i.workspace.name, i.workspace.host, i.workspace.auth) for i in imported] == [
        ("adb-1234567890", "https://adb-1234567890.12.azuredatabricks.net", "token"),
        ("staging", "https://dbc-staging.cloud.databricks.com", "token"),
        ("oauth", "https://dbc-oauth.cloud.databricks.com", "profile"),
        ("team-space", "https://dbc-team.cloud.databricks.com", "token"),
    ]
    assert all(i.workspace.kind == "databricks" for i in imported)
    # The DEFAULT profile's token is not inherited by profiles without one.
    assert [i.secret for i in imported if i.workspace.auth == "profile"] == [None]
    assert skipped == []


def test_databrickscfg_single_profile_and_unknown_profile(databrickscfg):
    imported, _ = from_databrickscfg(profile="staging")
    assert [i.workspace.name for i in imported] == ["staging"]
    with pytest.raises(ConfigError, match=r"no profile 'prod' \(it has: DEFAULT, staging"):
        from_databrickscfg(profile="prod")


def test_databrickscfg_missing_file_says_how_to_create_it():
    with pytest.raises(ConfigError, match="databricks configure --token"):
        from_databrickscfg()


def test_databrickscfg_tokens_are_masked_once_read(databrickscfg):
    from_databrickscfg()
    assert "dapi11112222333344445555666677778888" not in redact(
        "token dapi11112222333344445555666677778888 rejected")


@pytest.mark.parametrize(("host", "name"), [
    ("https://adb-99.7.azuredatabricks.net", "adb-99"),
    ("http://localhost:5000", "localhost-5000"),
    ("https://mlflow.internal", "mlflow.internal"),
])
def test_names_derived_from_hosts(host, name):
    assert name_for_host(host) == name
