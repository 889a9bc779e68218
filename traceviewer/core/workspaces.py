"""Workspaces: the MLflow servers and Databricks workspaces the user connects to.

The settings live in `workspaces.json` in the config dir, a `storage.JsonFile`: written
atomically and readable only by the user, each change one transaction under a lock that other
processes share, a damaged file set aside with a ConfigError. Secrets never go there: they live
in the OS keyring, one entry per workspace (see `keychain`). Per-workspace UI memory (last
experiment, filter, columns) lives in a separate small state file in the data dir, so the GUI can
save it often without rewriting the settings."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from traceviewer.core import databricks_auth, keychain, paths
from traceviewer.core.auth import Auth, Authenticator
from traceviewer.core.cancel import CancelToken
from traceviewer.core.client import RestClient, normalize_host
from traceviewer.core.errors import AuthError, ConfigError, KeyringUnavailable
from traceviewer.core.storage import JsonFile

KINDS = ("mlflow", "databricks")
AUTH_KINDS = ("none", "token", "basic")
# A Databricks workspace signs in with one of these ("token" is the older name of "pat").
DATABRICKS_AUTH_KINDS = ("token", *databricks_auth.AUTH_KINDS)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
_DATABRICKS_DOMAINS = (".cloud.databricks.com", ".azuredatabricks.net", ".gcp.databricks.com",
                       ".databricks.azure.cn", ".databricks.com")


def guess_kind(host: str) -> str:
    """'databricks' for a Databricks workspace URL, else 'mlflow'."""
    hostname = (urlsplit(host).hostname or "").lower()
    return "databricks" if hostname.endswith(_DATABRICKS_DOMAINS) else "mlflow"


@dataclass(frozen=True, slots=True)
class Workspace:
    """One server the user connects to; everything but the secret."""

    name: str
    host: str
    kind: str = "mlflow"
    auth: str = "none"
    username: str | None = None
    default_experiment: str | None = None
    ca_bundle: str | None = None
    verify_tls: bool = True
    reviewer: str | None = None
    profile: str | None = None  # Databricks auth "profile": the ~/.databrickscfg profile
    client_id: str | None = None  # Databricks auth "oauth-m2m": the service principal

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(f"'{self.name}' is not a valid workspace name: use up to 64 "
                              "letters, digits and . _ @ + - (starting with a letter or digit)")
        object.__setattr__(self, "host", normalize_host(self.host))
        if self.kind not in KINDS:
            raise ConfigError(f"Unknown workspace kind '{self.kind}': use mlflow or databricks.")
        for field in ("username", "default_experiment", "ca_bundle", "reviewer", "profile",
                      "client_id"):
            value = getattr(self, field)
            object.__setattr__(self, field, (value or "").strip() or None)
        if self.kind == "databricks":
            if self.auth not in DATABRICKS_AUTH_KINDS:
                raise ConfigError(f"Databricks workspace '{self.name}' cannot use auth method "
                                  f"'{self.auth}': use pat, oauth-u2m, oauth-m2m or profile.")
            if self.auth == "oauth-m2m" and not self.client_id:
                raise ConfigError(f"Workspace '{self.name}' signs in as a service principal "
                                  "(oauth-m2m): it needs the client id.")
            if self.auth == "profile" and not self.profile:
                raise ConfigError(f"Workspace '{self.name}' signs in with a ~/.databrickscfg "
                                  "profile: it needs the profile name.")
        elif self.auth not in AUTH_KINDS:
            raise ConfigError(f"Unknown auth method '{self.auth}': use none, token or basic.")
        if self.auth == "basic" and not self.username:
            raise ConfigError(f"Workspace '{self.name}' uses basic auth: it needs a username.")

    @property
    def tls_unverified(self) -> bool:
        """TLS certificate verification is off (and no CA bundle is given): the GUI's status
        bar and every CLI command say so."""
        return not self.verify_tls and not self.ca_bundle

    @property
    def needs_secret(self) -> bool:
        """Whether the workspace may keep a secret in the keyring: a token, password or client
        secret the user enters, or the refresh token of a Databricks sign-in."""
        return self.auth != "none"

    @property
    def enters_secret(self) -> bool:
        """Whether the user types the secret in (token, password, client secret); a Databricks
        browser sign-in (oauth-u2m, or a profile) gets its own."""
        return self.auth in ("token", "basic", "pat", "oauth-m2m")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (no secret: the secret is never part of a Workspace)."""
        return asdict(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Workspace:
        """Build from `to_json` output; unknown keys (from newer versions) are ignored."""
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in d.items() if k in known})
        except TypeError as exc:
            raise ConfigError(f"A workspace entry is incomplete: {exc}") from None


def _parse_workspaces(data: Any) -> dict[str, Workspace]:
    if not isinstance(data, dict) or not isinstance(data.get("workspaces"), list):
        raise ConfigError("it has no list of workspaces")
    result = {}
    for entry in data["workspaces"]:
        if not isinstance(entry, dict):
            raise ConfigError("it holds an entry that is not an object")
        ws = Workspace.from_json(entry)
        result[ws.name] = ws
    return result


def _dump_workspaces(workspaces: dict[str, Workspace]) -> dict[str, Any]:
    ordered = sorted(workspaces.values(), key=lambda w: w.name.lower())
    return {"version": 1, "workspaces": [w.to_json() for w in ordered]}


class WorkspaceStore:
    """The saved workspaces (config file) and their secrets (keyring).

    Every change is one locked transaction on the file as it is on disk, so changes made
    meanwhile by another process (`traceviewer workspace add`) or another store are kept."""

    FILE = "workspaces.json"

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else paths.config_dir() / self.FILE
        self.memory = WorkspaceMemory(self.path.with_name("state.json") if path else None)
        self._file = JsonFile(self.path, _parse_workspaces, dict, dump=_dump_workspaces,
                              what="workspace file", regenerable=False)

    def list(self) -> list[Workspace]:
        """All workspaces, sorted by name."""
        return sorted(self._file.read().values(), key=lambda w: w.name.lower())

    def get(self, name: str) -> Workspace:
        """The workspace called `name`; ConfigError naming the known ones if there is none."""
        workspaces = self._file.read()
        if name not in workspaces:
            known = ", ".join(sorted(workspaces)) or "none yet"
            raise ConfigError(f"No workspace named '{name}' (known: {known}). "
                              "Add one with `traceviewer workspace add`.")
        return workspaces[name]

    def upsert(self, ws: Workspace) -> None:
        """Add `ws` or replace the workspace of the same name (keeping its stored secret)."""
        self.save(ws, replace=True)

    def save(self, ws: Workspace, secret: str | None = None, *, replace: bool = False,
             session_only: bool = False) -> None:
        """Add `ws` (or, with `replace`, update it) and store `secret` in the keyring, or with
        `session_only` in this process's memory (the user's choice when no keyring works).

        The secret is stored first, so a keyring failure leaves no workspace without one;
        `secret=None` keeps the stored secret. ConfigError if the name is taken and not
        `replace`."""
        def add(workspaces: dict[str, Workspace]) -> dict[str, Workspace]:
            previous = workspaces.get(ws.name)
            if previous is not None and not replace:
                raise ConfigError(f"A workspace named '{ws.name}' already exists: choose another "
                                  "name, or replace it (--replace on the command line).")
            if secret is not None and ws.needs_secret:
                keep = keychain.remember_for_session if session_only else keychain.set_secret
                keep(ws.name, secret)
            elif previous is not None and previous.needs_secret and (
                    not ws.needs_secret or _secret_kind(previous) != _secret_kind(ws)):
                # Another way of signing in: the old secret (say a PAT) is no refresh token.
                keychain.delete_secret(ws.name)
            workspaces[ws.name] = ws
            return workspaces

        self._file.update(add)

    def rename(self, old: str, new: str) -> Workspace:
        """Rename a workspace, moving its keyring entry and its UI memory along."""
        def move(workspaces: dict[str, Workspace]) -> dict[str, Workspace]:
            if old not in workspaces:
                raise ConfigError(f"No workspace named '{old}'.")
            if new in workspaces:
                raise ConfigError(f"A workspace named '{new}' already exists.")
            renamed = replace(workspaces.pop(old), name=new)
            if renamed.needs_secret:
                # First the secret: if the keyring fails, the config still names the old entry.
                keychain.move_secret(old, new)
            workspaces[new] = renamed
            return workspaces

        renamed = self._file.update(move)[new]
        self.memory.rename(old, new)
        return renamed

    def remove(self, name: str) -> None:
        """Remove a workspace, its keyring entry and its UI memory.

        The settings are removed even when the keyring cannot be reached; the KeyringUnavailable
        raised then says the secret is still in the keyring."""
        removed: list[Workspace] = []

        def drop(workspaces: dict[str, Workspace]) -> dict[str, Workspace]:
            if name not in workspaces:
                raise ConfigError(f"No workspace named '{name}'.")
            removed.append(workspaces.pop(name))
            return workspaces

        self._file.update(drop)
        self.memory.forget(name)
        if removed[0].needs_secret:
            try:
                keychain.delete_secret(name)
            except KeyringUnavailable as exc:
                raise KeyringUnavailable(
                    f"Removed workspace '{name}', but its secret is still in the keyring "
                    f"(service '{keychain.SERVICE}', account '{name}'): {exc}") from None

    get_secret = staticmethod(keychain.get_secret)
    set_secret = staticmethod(keychain.set_secret)
    delete_secret = staticmethod(keychain.delete_secret)
    remember_for_session = staticmethod(keychain.remember_for_session)


def _secret_kind(ws: Workspace) -> str:
    """What the keyring entry of `ws` holds: "token" and "pat" are one kind (a PAT)."""
    return "pat" if ws.auth == "token" else ws.auth


def signs_in_browser(ws: Workspace) -> bool:
    """Whether `ws` may sign in in the browser (OAuth U2M; a profile only if it says
    external-browser, which `sign_in` checks)."""
    return ws.kind == "databricks" and ws.auth in ("oauth-u2m", "profile")


def sign_in(ws: Workspace, *, on_url: Callable[[str], None] | None = None,
            token: CancelToken | None = None, session_only: bool = False,
            open_browser: Callable[[str], bool] | None = None) -> str | None:
    """The browser sign-in (OAuth U2M) of Databricks workspace `ws`: its refresh token goes to
    the keyring (with `session_only`, to this process's memory), never to a file. Returns the
    signed-in user (SCIM Me userName), the workspace's default reviewer id.

    The keyring is checked before the browser opens, so a missing one costs no sign-in. Blocks
    until the browser comes back: call it off the GUI thread."""
    if not signs_in_browser(ws):
        raise ConfigError(f"Workspace '{ws.name}' does not sign in in the browser (auth "
                          f"{ws.auth}): the browser sign-in is for Databricks workspaces with "
                          "auth oauth-u2m.")
    host, discovery = ws.host, None
    if ws.auth == "profile":
        resolved = databricks_auth.resolve(host=ws.host, profile=ws.profile)
        if resolved.auth != "oauth-u2m":
            raise ConfigError(f"Profile '{ws.profile}' signs in with "
                              f"{databricks_auth.auth_label(resolved.auth)}, not in the browser.")
        host, discovery = resolved.host, resolved.discovery_url
    if not session_only:
        keychain.secure_backend()  # KeyringUnavailable now, before the browser opens
    verify = ws.ca_bundle or ws.verify_tls
    endpoints = databricks_auth.discover_endpoints(host, discovery)
    signed = databricks_auth.sign_in_browser(
        host, endpoints=endpoints, verify=verify, on_url=on_url, token=token,
        open_browser=open_browser)
    keep = keychain.remember_for_session if session_only else keychain.set_secret
    keep(ws.name, signed.refresh_token)
    with open_client(ws) as client:
        return databricks_auth.current_user(client, token)


def open_client(ws: Workspace, secret: str | None = None) -> RestClient:
    """A client for `ws`, with `secret` or else the one in session memory or the keyring.

    Reads the keyring, which may block on an unlock prompt: call it off the GUI thread."""
    if ws.kind == "databricks":
        return RestClient(ws.host, workspace_auth(ws, secret), verify=ws.ca_bundle or ws.verify_tls,
                          kind="databricks")
    if ws.needs_secret and secret is None:
        secret = keychain.get_secret(ws.name)
        if secret is None:
            what = "password" if ws.auth == "basic" else "token"
            raise AuthError(f"No {what} is stored for workspace '{ws.name}': enter it in the "
                            f"workspace manager, or run `traceviewer workspace add {ws.name} "
                            f"--host {ws.host} ... --replace`.")
    if ws.auth == "token":
        auth = Auth("token", token=secret)
    elif ws.auth == "basic":
        auth = Auth("basic", username=ws.username, password=secret)
    else:
        auth = Auth()
    return RestClient(ws.host, auth, verify=ws.ca_bundle or ws.verify_tls, kind=ws.kind)


def workspace_auth(ws: Workspace, secret: str | None = None) -> Authenticator:
    """The sign-in of Databricks workspace `ws` (PAT, OAuth U2M or M2M, or a profile), with
    `secret` (PAT or client secret) or the keyring's. Reads the keyring: not on the GUI thread."""
    return databricks_auth.workspace_auth(ws.name, ws.host, ws.auth, secret=secret,
                                          profile=ws.profile, client_id=ws.client_id,
                                          verify=ws.ca_bundle or ws.verify_tls)


@dataclass(frozen=True, slots=True)
class WorkspaceState:
    """What the GUI remembers per workspace between runs."""

    last_experiment: str | None = None
    last_filter: str | None = None
    columns: tuple[str, ...] | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> WorkspaceState:
        columns = d.get("columns")
        return cls(last_experiment=d.get("last_experiment") or None,
                   last_filter=d.get("last_filter") or None,
                   columns=tuple(str(c) for c in columns) if isinstance(columns, list) else None)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["columns"] = list(self.columns) if self.columns is not None else None
        return d


def _parse_memory(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or not isinstance(data.setdefault("workspaces", {}), dict):
        raise ConfigError("it is not a map of workspaces")
    return data


class WorkspaceMemory:
    """Per-workspace UI memory and the last opened workspace, in `state.json` in the data dir.

    It holds only conveniences: a damaged file is set aside and the memory starts empty (see
    `storage`). Every change is one locked transaction, so no save loses another's change."""

    def __init__(self, path: Path | None = None):
        self._path = path

    @property
    def path(self) -> Path:
        return self._path or paths.data_dir() / "state.json"

    @property
    def _file(self) -> JsonFile[dict[str, Any]]:
        # Made on use: the default path follows the data dir of the moment.
        return JsonFile(self.path, _parse_memory, lambda: {"workspaces": {}}, what="UI memory",
                        regenerable=True)

    def get(self, name: str) -> WorkspaceState:
        """What was remembered for workspace `name` (empty if nothing)."""
        entry = self._file.read()["workspaces"].get(name)
        return WorkspaceState.from_json(entry) if isinstance(entry, dict) else WorkspaceState()

    def put(self, name: str, state: WorkspaceState) -> None:
        """Remember `state` for workspace `name`."""
        def put(data: dict[str, Any]) -> dict[str, Any]:
            data["workspaces"][name] = state.to_json()
            return data

        self._file.update(put)

    @property
    def current(self) -> str | None:
        """The workspace that was open last, if any."""
        value = self._file.read().get("current")
        return value if isinstance(value, str) else None

    def set_current(self, name: str | None) -> None:
        """Remember `name` as the workspace to open next time. Nothing is written (or locked)
        when it already is: opening the last workspace again, as the app starts, writes no
        file."""
        if self.current == name:
            return

        def set_current(data: dict[str, Any]) -> dict[str, Any]:
            data["current"] = name
            return data

        self._file.update(set_current)

    def rename(self, old: str, new: str) -> None:
        """Move the memory of workspace `old` to `new`."""
        def rename(data: dict[str, Any]) -> dict[str, Any]:
            if old in data["workspaces"]:
                data["workspaces"][new] = data["workspaces"].pop(old)
            if data.get("current") == old:
                data["current"] = new
            return data

        self._file.update(rename)

    def forget(self, name: str) -> None:
        """Drop the memory of workspace `name`."""
        def forget(data: dict[str, Any]) -> dict[str, Any]:
            data["workspaces"].pop(name, None)
            if data.get("current") == name:
                data["current"] = None
            return data

        self._file.update(forget)
