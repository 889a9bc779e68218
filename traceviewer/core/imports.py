"""Import workspaces from what the user already has: the environment the MLflow SDK reads
(MLFLOW_TRACKING_URI, DATABRICKS_HOST with DATABRICKS_TOKEN or DATABRICKS_CLIENT_ID/_SECRET,
MLFLOW_TRACKING_TOKEN/USERNAME/PASSWORD, MLFLOW_EXPERIMENT_NAME) and the profiles of
`~/.databrickscfg`, of every auth type.

Imports only read; `WorkspaceStore.save` then puts the secret into the keyring."""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from traceviewer.core.auth import Auth
from traceviewer.core.client import normalize_host
from traceviewer.core.errors import ConfigError
from traceviewer.core.redact import register_secret
from traceviewer.core.workspaces import Workspace, guess_kind

_DEFAULT_PROFILE = "DEFAULT"


@dataclass(frozen=True, slots=True)
class Imported:
    """A workspace found in the environment or a config file, with its secret (if any)."""

    workspace: Workspace
    secret: str | None = field(repr=False)
    source: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """A databrickscfg profile that cannot become a workspace, and why."""

    profile: str
    reason: str


def name_for_host(host: str) -> str:
    """A workspace name derived from a host URL: 'adb-123' for adb-123.azuredatabricks.net,
    'localhost-5000' for http://localhost:5000."""
    parts = urlsplit(host)
    name = parts.hostname or "workspace"
    if guess_kind(host) == "databricks":
        name = name.split(".")[0]
    if parts.port:
        name = f"{name}-{parts.port}"
    return _safe_name(name)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@+-]", "-", text).strip("-._@+")[:64] or "workspace"


def from_environment(env: Mapping[str, str] | None = None, name: str | None = None) -> Imported:
    """The workspace the MLflow SDK would use with this environment; ConfigError if there is
    none (saying which variables to set)."""
    env = os.environ if env is None else env
    uri = env.get("MLFLOW_TRACKING_URI", "").strip()
    experiment = env.get("MLFLOW_EXPERIMENT_NAME") or env.get("MLFLOW_EXPERIMENT_ID")
    if uri.startswith("databricks"):
        # databricks://PROFILE[:prefix] names a databrickscfg profile, bare `databricks` uses
        # DATABRICKS_HOST/TOKEN (or the DEFAULT profile), as the SDK does.
        profile = uri.partition("://")[2].split(":")[0]
        if profile or not env.get("DATABRICKS_HOST"):
            profile = profile or _DEFAULT_PROFILE
            why = f"MLFLOW_TRACKING_URI is '{uri}', so the profile '{profile}' is needed, but"
            try:
                found, skipped = from_databrickscfg(env=env, profile=profile)
            except ConfigError as exc:
                raise ConfigError(f"{why} {exc}") from None
            if not found:
                raise ConfigError(f"{why} it {skipped[0].reason}.")
            imported = found[0]
            ws = Workspace(**{**imported.workspace.to_json(),
                              "name": name or imported.workspace.name,
                              "default_experiment": experiment})
            return Imported(ws, imported.secret, "environment")
        return _databricks_from_env(env, name, experiment)
    if not uri:
        if env.get("DATABRICKS_HOST"):
            return _databricks_from_env(env, name, experiment)
        raise ConfigError("Nothing to import: set MLFLOW_TRACKING_URI to the server URL (or to "
                          "'databricks' with DATABRICKS_HOST and DATABRICKS_TOKEN).")
    if not uri.startswith(("http://", "https://")):
        raise ConfigError(f"MLFLOW_TRACKING_URI '{uri}' is a local store, not a tracking "
                          "server: start one with `mlflow server` and point the variable at "
                          "its http:// URL.")
    host = normalize_host(uri)
    auth = Auth.from_env(host, env)
    secret = auth.token if auth.kind == "token" else auth.password
    ws = Workspace(name=name or name_for_host(host), host=host, kind=guess_kind(host),
                   auth=auth.kind, username=auth.username, default_experiment=experiment)
    return Imported(ws, secret, "environment")


def _databricks_from_env(env: Mapping[str, str], name: str | None,
                         experiment: str | None) -> Imported:
    host = normalize_host(env["DATABRICKS_HOST"])
    token = env.get("DATABRICKS_TOKEN")
    client_id, client_secret = env.get("DATABRICKS_CLIENT_ID"), env.get("DATABRICKS_CLIENT_SECRET")
    register_secret(token)
    register_secret(client_secret)
    ws_name = name or name_for_host(host)
    if token:
        ws = Workspace(name=ws_name, host=host, kind="databricks", auth="token",
                       default_experiment=experiment)
        return Imported(ws, token, "environment")
    if client_id and client_secret:
        ws = Workspace(name=ws_name, host=host, kind="databricks", auth="oauth-m2m",
                       client_id=client_id, default_experiment=experiment)
        return Imported(ws, client_secret, "environment")
    raise ConfigError("DATABRICKS_HOST is set but DATABRICKS_TOKEN is not: set it to a "
                      "personal access token, or set DATABRICKS_CLIENT_ID and "
                      "DATABRICKS_CLIENT_SECRET for a service principal.")


def databrickscfg_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the Databricks CLI keeps its profiles (DATABRICKS_CONFIG_FILE overrides)."""
    env = os.environ if env is None else env
    return Path(env.get("DATABRICKS_CONFIG_FILE") or Path.home() / ".databrickscfg").expanduser()


def from_databrickscfg(path: Path | None = None, profile: str | None = None,
                       env: Mapping[str, str] | None = None
                       ) -> tuple[list[Imported], list[Skipped]]:
    """The profiles of a databrickscfg file (all, or `profile`) as workspaces, every auth type
    (PAT, OAuth M2M, the browser sign-in, or one the profile itself carries such as
    databricks-cli), and the ones skipped with the reason (no host). ConfigError if the file or
    the profile is missing."""
    path = path or databrickscfg_path(env)
    # configparser would treat [DEFAULT] as defaults inherited by every profile; in
    # databrickscfg it is an ordinary profile.
    parser = configparser.ConfigParser(default_section="\0", interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist: create a profile with `databricks "
                          "configure --token`, or add the workspace by hand.") from None
    except (OSError, configparser.Error) as exc:
        raise ConfigError(f"Cannot read {path}: {exc}") from None
    names = parser.sections()
    if profile is not None:
        if profile not in names:
            raise ConfigError(f"{path} has no profile '{profile}' (it has: "
                              f"{', '.join(names) or 'none'}).")
        names = [profile]
    imported, skipped = [], []
    for section in names:
        values = parser[section]
        token = values.get("token", "").strip()
        client_secret = values.get("client_secret", "").strip()
        register_secret(token)
        register_secret(client_secret)
        register_secret(values.get("password", "").strip())
        host = values.get("host", "").strip()
        if not host:
            skipped.append(Skipped(section, "no host"))
            continue
        auth, secret, client_id = _profile_auth(values, token, client_secret)
        try:
            host = normalize_host(host)
            name = name_for_host(host) if section == _DEFAULT_PROFILE else _safe_name(section)
            ws = Workspace(name=name, host=host, kind="databricks", auth=auth,
                           client_id=client_id, profile=section if auth == "profile" else None)
        except ConfigError as exc:
            skipped.append(Skipped(section, str(exc)))
            continue
        imported.append(Imported(ws, secret, f"{path} [{section}]"))
    return imported, skipped


def _profile_auth(values: Mapping[str, str], token: str, client_secret: str
                  ) -> tuple[str, str | None, str | None]:
    """(auth, secret, client id) of a databrickscfg profile, as databricks-sdk picks the auth:
    an explicit auth_type first, else a token (PAT), else client credentials (M2M). Profiles
    that delegate to a command (databricks-cli, azure-cli) or another SDK auth type are used
    through the profile itself, so nothing of theirs is copied."""
    auth_type = values.get("auth_type", "").strip()
    client_id = values.get("client_id", "").strip() or None
    if auth_type in ("", "pat") and token:
        return "token", token, None
    if auth_type in ("", "oauth-m2m") and client_id and client_secret:
        return "oauth-m2m", client_secret, client_id
    if auth_type == "external-browser":
        return "oauth-u2m", None, None
    return "profile", None, None
