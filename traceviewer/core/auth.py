"""How a client proves who it is: no auth, a bearer token, or basic auth (username + password).

Secrets are registered with `redact` the moment an `Auth` holds them, and `repr` never shows
them, so an `Auth` can be logged or end up in a traceback without leaking anything."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from traceviewer.core.errors import ConfigError
from traceviewer.core.redact import register_secret

AuthKind = Literal["none", "token", "basic"]
_DATABRICKS_HOST_MARKERS = (".cloud.databricks.com", ".azuredatabricks.net", ".gcp.databricks.com")


class Authenticator(Protocol):
    """What `RestClient` asks for each request: `Auth` here, or a Databricks sign-in
    (`databricks_auth.DatabricksAuth`) whose access tokens expire and are refreshed."""

    @property
    def kind(self) -> str: ...

    def headers(self) -> dict[str, str]:
        """The headers to send with the next request (refreshing credentials when needed)."""
        ...

    def invalidate(self) -> bool:
        """The server rejected the last headers (HTTP 401): drop them. True when fresh ones
        may be accepted, so the request is worth sending once more."""
        ...

    def describe(self, host: str) -> str:
        """What the server rejected, for an error message."""
        ...


@dataclass(frozen=True, slots=True)
class Auth:
    """Credentials for one server. `token` is used for kind "token", `username`/`password` for
    kind "basic"."""

    kind: AuthKind = "none"
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in ("none", "token", "basic"):
            raise ConfigError(f"Unknown authentication kind {self.kind!r}: use none, token or "
                              "basic.")
        if self.kind == "token" and not self.token:
            raise ConfigError("Token authentication needs a token: enter one in the workspace "
                              "settings or set MLFLOW_TRACKING_TOKEN / DATABRICKS_TOKEN.")
        if self.kind == "basic" and not (self.username and self.password):
            raise ConfigError("Basic authentication needs a username and a password: enter them "
                              "in the workspace settings or set MLFLOW_TRACKING_USERNAME and "
                              "MLFLOW_TRACKING_PASSWORD.")
        register_secret(self.token)
        register_secret(self.password)
        if self.kind == "basic":
            register_secret(self._basic_value())

    @classmethod
    def from_env(cls, host: str | None = None, env: Mapping[str, str] | None = None) -> Auth:
        """Credentials from the environment, read the way the MLflow SDK reads them.

        MLFLOW_TRACKING_USERNAME + MLFLOW_TRACKING_PASSWORD win over a token (as in the SDK);
        DATABRICKS_TOKEN is preferred over MLFLOW_TRACKING_TOKEN for a Databricks host."""
        env = os.environ if env is None else env
        username = env.get("MLFLOW_TRACKING_USERNAME")
        password = env.get("MLFLOW_TRACKING_PASSWORD")
        if username and password:
            return cls("basic", username=username, password=password)
        tokens = [env.get("MLFLOW_TRACKING_TOKEN"), env.get("DATABRICKS_TOKEN")]
        if host and any(marker in host for marker in _DATABRICKS_HOST_MARKERS):
            tokens.reverse()
        token = next((t for t in tokens if t), None)
        return cls("token", token=token) if token else cls()

    def headers(self) -> dict[str, str]:
        """The Authorization header for this auth (empty for kind "none")."""
        if self.kind == "token":
            return {"Authorization": f"Bearer {self.token}"}
        if self.kind == "basic":
            return {"Authorization": self._basic_value()}
        return {}

    def invalidate(self) -> bool:
        """Fixed credentials: sending them again would be rejected again."""
        return False

    def describe(self, host: str) -> str:
        """What the server rejected, for an error message: 'the token for <host>' etc."""
        if self.kind == "token":
            return f"the token for {host}"
        if self.kind == "basic":
            return f"the username and password of {self.username!r} for {host}"
        return f"the anonymous request to {host}"

    def _basic_value(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")
