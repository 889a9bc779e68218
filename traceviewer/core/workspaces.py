"""Workspaces: the MLflow servers and Databricks workspaces the user connects to.

The settings live in `workspaces.json` in the config dir, written atomically (temp file, fsync,
rename) and readable only by the user. Secrets never go there: they live in the OS keyring, one
entry per workspace (see `keychain`). Per-workspace UI memory (last experiment, filter, columns)
lives in a separate small state file in the data dir, so the GUI can save it often without
rewriting the settings."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from traceviewer.core import keychain, paths
from traceviewer.core.auth import Auth
from traceviewer.core.client import RestClient
from traceviewer.core.errors import AuthError, ConfigError, KeyringUnavailable

KINDS = ("mlflow", "databricks")
AUTH_KINDS = ("none", "token", "basic")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
_DATABRICKS_DOMAINS = (".cloud.databricks.com", ".azuredatabricks.net", ".gcp.databricks.com",
                       ".databricks.azure.cn", ".databricks.com")


def guess_kind(host: str) -> str:
    """'databricks' for a Databricks workspace URL, else 'mlflow'."""
    hostname = (urlsplit(host).hostname or "").lower()
    return "databricks" if hostname.endswith(_DATABRICKS_DOMAINS) else "mlflow"


def normalize_host(host: str) -> str:
    """`host` as a base URL without trailing slash; ConfigError unless it is http(s)://host."""
    text = host.strip().rstrip("/")
    if "://" not in text and text:
        text = f"https://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"'{host}' is not a server URL: use http(s)://host[:port], "
                          "e.g. http://127.0.0.1:5000 or https://adb-123.azuredatabricks.net")
    if parts.username or parts.password:
        raise ConfigError("Put credentials in the token or password field, not in the URL.")
    return text


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

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(f"'{self.name}' is not a valid workspace name: use up to 64 "
                              "letters, digits and . _ @ + - (starting with a letter or digit)")
        object.__setattr__(self, "host", normalize_host(self.host))
        if self.kind not in KINDS:
            raise ConfigError(f"Unknown workspace kind '{self.kind}': use mlflow or databricks.")
        if self.auth not in AUTH_KINDS:
            raise ConfigError(f"Unknown auth method '{self.auth}': use none, token or basic.")
        if self.auth == "basic" and not self.username:
            raise ConfigError(f"Workspace '{self.name}' uses basic auth: it needs a username.")
        if self.kind == "databricks" and self.auth != "token":
            raise ConfigError(f"Databricks workspace '{self.name}' needs a personal access "
                              "token (auth method 'token').")
        for field in ("username", "default_experiment", "ca_bundle", "reviewer"):
            value = getattr(self, field)
            object.__setattr__(self, field, (value or "").strip() or None)

    @property
    def needs_secret(self) -> bool:
        return self.auth != "none"

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


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace `path` with `data` as JSON so that a crash at any point leaves either the old or
    the new file, never a torn one; the file is readable by the user only (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"Cannot read {path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); fix or delete it.") from None


class WorkspaceStore:
    """The saved workspaces (config file) and their secrets (keyring)."""

    FILE = "workspaces.json"

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else paths.config_dir() / self.FILE
        self.memory = WorkspaceMemory(self.path.with_name("state.json") if path else None)
        self._lock = threading.Lock()

    def _load(self) -> dict[str, Workspace]:
        data = _read_json(self.path)
        if data is None:
            return {}
        if not isinstance(data, dict) or not isinstance(data.get("workspaces"), list):
            raise ConfigError(f"{self.path} is not a workspace file; fix or delete it.")
        result = {}
        for entry in data["workspaces"]:
            if not isinstance(entry, dict):
                raise ConfigError(f"{self.path} holds an entry that is not an object.")
            ws = Workspace.from_json(entry)
            result[ws.name] = ws
        return result

    def _save(self, workspaces: Mapping[str, Workspace]) -> None:
        ordered = sorted(workspaces.values(), key=lambda w: w.name.lower())
        write_json_atomic(self.path, {"version": 1,
                                      "workspaces": [w.to_json() for w in ordered]})

    def list(self) -> list[Workspace]:
        """All workspaces, sorted by name."""
        return sorted(self._load().values(), key=lambda w: w.name.lower())

    def get(self, name: str) -> Workspace:
        """The workspace called `name`; ConfigError naming the known ones if there is none."""
        workspaces = self._load()
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
        with self._lock:
            workspaces = self._load()
            previous = workspaces.get(ws.name)
            if previous is not None and not replace:
                raise ConfigError(f"A workspace named '{ws.name}' already exists: choose another "
                                  "name, or replace it (--replace on the command line).")
            if secret is not None and ws.needs_secret:
                keep = keychain.remember_for_session if session_only else keychain.set_secret
                keep(ws.name, secret)
            elif previous is not None and previous.needs_secret and not ws.needs_secret:
                keychain.delete_secret(ws.name)
            workspaces[ws.name] = ws
            self._save(workspaces)

    def rename(self, old: str, new: str) -> Workspace:
        """Rename a workspace, moving its keyring entry and its UI memory along."""
        with self._lock:
            workspaces = self._load()
            if old not in workspaces:
                raise ConfigError(f"No workspace named '{old}'.")
            if new in workspaces:
                raise ConfigError(f"A workspace named '{new}' already exists.")
            renamed = replace(workspaces.pop(old), name=new)
            if renamed.needs_secret:
                # First the secret: if the keyring fails, the config still names the old entry.
                keychain.move_secret(old, new)
            workspaces[new] = renamed
            self._save(workspaces)
        self.memory.rename(old, new)
        return renamed

    def remove(self, name: str) -> None:
        """Remove a workspace, its keyring entry and its UI memory.

        The settings are removed even when the keyring cannot be reached; the KeyringUnavailable
        raised then says the secret is still in the keyring."""
        with self._lock:
            workspaces = self._load()
            if name not in workspaces:
                raise ConfigError(f"No workspace named '{name}'.")
            ws = workspaces.pop(name)
            self._save(workspaces)
        self.memory.forget(name)
        if ws.needs_secret:
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


def open_client(ws: Workspace, secret: str | None = None) -> RestClient:
    """A client for `ws`, with `secret` or else the one in session memory or the keyring.

    Reads the keyring, which may block on an unlock prompt: call it off the GUI thread."""
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
    return RestClient(ws.host, auth, verify=ws.ca_bundle or ws.verify_tls)


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


class WorkspaceMemory:
    """Per-workspace UI memory and the last opened workspace, in `state.json` in the data dir.

    A damaged state file is ignored (it holds only conveniences), never an error."""

    def __init__(self, path: Path | None = None):
        self._path = path
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self._path or paths.data_dir() / "state.json"

    def _load(self) -> dict[str, Any]:
        try:
            data = _read_json(self.path)
        except ConfigError:
            data = None
        if not isinstance(data, dict):
            data = {}
        if not isinstance(data.get("workspaces"), dict):
            data["workspaces"] = {}
        return data

    def get(self, name: str) -> WorkspaceState:
        """What was remembered for workspace `name` (empty if nothing)."""
        entry = self._load()["workspaces"].get(name)
        return WorkspaceState.from_json(entry) if isinstance(entry, dict) else WorkspaceState()

    def put(self, name: str, state: WorkspaceState) -> None:
        """Remember `state` for workspace `name`."""
        with self._lock:
            data = self._load()
            data["workspaces"][name] = state.to_json()
            write_json_atomic(self.path, data)

    @property
    def current(self) -> str | None:
        """The workspace that was open last, if any."""
        value = self._load().get("current")
        return value if isinstance(value, str) else None

    def set_current(self, name: str | None) -> None:
        """Remember `name` as the workspace to open next time."""
        with self._lock:
            data = self._load()
            data["current"] = name
            write_json_atomic(self.path, data)

    def rename(self, old: str, new: str) -> None:
        with self._lock:
            data = self._load()
            if old in data["workspaces"]:
                data["workspaces"][new] = data["workspaces"].pop(old)
            if data.get("current") == old:
                data["current"] = new
            write_json_atomic(self.path, data)

    def forget(self, name: str) -> None:
        with self._lock:
            data = self._load()
            data["workspaces"].pop(name, None)
            if data.get("current") == name:
                data["current"] = None
            write_json_atomic(self.path, data)
