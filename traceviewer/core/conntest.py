"""The connection test of a workspace, mirroring the seed document's "verify that traces are
collected": host reachable, TLS valid, server answers, credentials accepted, server version,
default experiment found, traces in the last 24 hours.

Each step yields a `Step` with its own actionable message; a step that cannot run because an
earlier one failed is reported as skipped, saying why. The command line prints the steps, the
GUI shows them as they arrive (through `CancelToken.progress`)."""

from __future__ import annotations

import socket
import ssl
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from traceviewer.core import databricks_auth, tls
from traceviewer.core.cancel import CancelToken
from traceviewer.core.client import RestClient
from traceviewer.core.errors import ConfigError, NotFound, TraceViewerError
from traceviewer.core.redact import redact
from traceviewer.core.workspaces import Workspace, open_client

OK, WARNING, FAILED, SKIPPED = "ok", "warning", "failed", "skipped"
CONNECT_TIMEOUT_S = 10.0
# Counting stops here: the test says "at least" rather than paging through a busy experiment.
COUNT_LIMIT = 5000
_PAGE = 500
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True, slots=True)
class Step:
    """One check: its title, OK/WARNING/FAILED/SKIPPED, and what was found or what to do."""

    title: str
    status: str
    detail: str
    user: str | None = None  # who the credentials signed in as (Databricks), when known

    @property
    def failed(self) -> bool:
        return self.status == FAILED


def run(ws: Workspace, secret: str | None = None,
        token: CancelToken | None = None) -> list[Step]:
    """Run every check against `ws` (with `secret`, else the stored one); each finished step is
    also reported through `token.progress(step)`."""
    token = token or CancelToken()
    steps = []
    for step in _checks(ws, secret, token):
        token.check()
        steps.append(step)
        token.progress(step)
    return steps


def passed(steps: list[Step]) -> bool:
    """True when no step failed (warnings and skipped steps do not fail the test)."""
    return not any(step.failed for step in steps)


def _checks(ws: Workspace, secret: str | None, token: CancelToken) -> Iterator[Step]:
    parts = urlsplit(ws.host)
    hostname = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    proxied = _proxy_for(ws.host)
    later = ["MLflow server answers", "Credentials accepted", "Server version",
             "Default experiment found", "Traces in the last 24 hours"]

    if proxied:
        # The direct socket checks say nothing about a connection made through a proxy.
        yield Step("Host reachable", SKIPPED, f"connections go through the proxy {proxied}")
        yield Step("TLS certificate valid", SKIPPED, f"connections go through the proxy {proxied}")
    else:
        reach = _reachable(hostname, port)
        yield reach
        if reach.failed:
            yield from _not_run(["TLS certificate valid", *later], "the host is not reachable")
            return
        tls = _tls(ws, hostname, port)
        yield tls
        if tls.failed:
            yield from _not_run(later, "the TLS certificate is not valid")
            return
    token.check()

    try:
        client = open_client(ws, secret)
    except TraceViewerError as exc:
        yield Step("MLflow server answers", SKIPPED, "not run: the client could not be set up")
        yield Step("Credentials accepted", FAILED, redact(str(exc)))
        yield from _not_run(later[2:], "no credentials")
        return
    with client:
        yield from _server_checks(ws, client, token, later)


def _server_checks(ws: Workspace, client: RestClient, token: CancelToken,
                   later: list[str]) -> Iterator[Step]:
    if ws.kind == "databricks":
        yield Step(later[0], SKIPPED, "Databricks has no public health check; see the next step")
    else:
        health = _attempt(later[0], client.health, lambda _: "the health check answered OK")
        yield health
        if health.failed:
            yield from _not_run(later[1:], "the server did not answer")
            return
    token.check()

    if ws.kind == "databricks":
        try:
            user = _signed_in(client, token)
        except TraceViewerError as exc:
            creds = Step(later[1], FAILED, redact(str(exc)))
        else:
            creds = Step(later[1], OK, f"signed in as {user} with the {secret_word(ws)}",
                         user=user)
    else:
        creds = _attempt(later[1], lambda: client.search_experiments(max_results=1),
                         lambda _: ("no credentials needed" if ws.auth == "none"
                                    else f"the server accepted the {secret_word(ws)}"))
    yield creds
    if creds.failed:
        yield from _not_run(later[2:], "the credentials were not accepted")
        return
    token.check()

    if ws.kind == "databricks":
        yield Step(later[2], SKIPPED, "a Databricks workspace does not report an MLflow version")
    else:
        yield _version(client, later[2])
    token.check()

    if not ws.default_experiment:
        yield Step(later[3], SKIPPED, "no default experiment is set: set one in the workspace "
                                      "to check it")
        yield Step(later[4], SKIPPED, "not run: no default experiment")
        return
    try:
        experiment = client.resolve_experiment(ws.default_experiment)
    except NotFound:
        yield Step(later[3], FAILED,
                   f"'{ws.default_experiment}' does not exist on {ws.host}: check the name "
                   "(names are case-sensitive; Databricks names are paths like "
                   "/Users/you@example.com/app) or the experiment id.")
        yield Step(later[4], SKIPPED, "not run: the default experiment was not found")
        return
    except TraceViewerError as exc:
        yield Step(later[3], FAILED, redact(str(exc)))
        yield Step(later[4], SKIPPED, "not run: the default experiment could not be read")
        return
    yield Step(later[3], OK, f"'{experiment.name}' (id {experiment.experiment_id})")
    yield _recent_traces(client, experiment.experiment_id, experiment.name, token, later[4])


def _version(client: RestClient, title: str) -> Step:
    try:
        return Step(title, OK, f"MLflow {client.version()}")
    except TraceViewerError as exc:
        return Step(title, WARNING,
                    f"the server did not report its version ({redact(str(exc))})")


def _recent_traces(client: RestClient, experiment_id: str, experiment_name: str,
                   token: CancelToken, title: str) -> Step:
    since_ms = int(time.time() * 1000) - 24 * 3600 * 1000
    count, page_token = 0, None
    try:
        while count < COUNT_LIMIT:
            token.check()
            infos, page_token = client.search_traces(
                [experiment_id], filter=f"attributes.timestamp_ms > {since_ms}",
                max_results=_PAGE, page_token=page_token)
            count += len(infos)
            if not page_token:
                break
    except TraceViewerError as exc:
        return Step(title, FAILED, redact(str(exc)))
    if count == 0:
        return Step(title, WARNING,
                    f"no traces in '{experiment_name}' since yesterday: check that the app logs "
                    "to this server (MLFLOW_TRACKING_URI) and this experiment "
                    "(MLFLOW_EXPERIMENT_NAME), and that tracing is enabled.")
    more = "+" if page_token else ""
    return Step(title, OK, f"{count}{more} trace{'s' if count != 1 else ''}")


def _attempt(title: str, call: Callable[[], object], describe: Callable[[object], str]) -> Step:
    try:
        result = call()
    except TraceViewerError as exc:
        return Step(title, FAILED, redact(str(exc)))
    return Step(title, OK, describe(result))


def _not_run(titles: list[str], why: str) -> Iterator[Step]:
    for title in titles:
        yield Step(title, SKIPPED, f"not run: {why}")


def secret_word(ws: Workspace) -> str:
    """How `ws` signs in, for messages: 'token', 'OAuth user sign-in (U2M)' and so on."""
    if ws.kind == "databricks":
        label = databricks_auth.auth_label(ws.auth)
        return f"{label} '{ws.profile}'" if ws.auth == "profile" else label
    return "username and password" if ws.auth == "basic" else "token"


def _signed_in(client: RestClient, token: CancelToken) -> str:
    """The signed-in Databricks user (SCIM Me), after checking the MLflow API answers too."""
    user = databricks_auth.current_user(client, token) or "an unnamed identity"
    # The MLflow API may refuse what SCIM accepted (a token without the all-apis scope).
    client.search_experiments(max_results=1, token=token)
    return user


def signed_in_user(steps: list[Step]) -> str | None:
    """The Databricks user the connection test signed in as, if it did."""
    return next((step.user for step in steps if step.user), None)


def _proxy_for(url: str) -> str | None:
    """The proxy httpx would use for `url` (it honours the *_PROXY variables), or None."""
    parts = urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def _reachable(hostname: str, port: int) -> Step:
    title = "Host reachable"
    try:
        with socket.create_connection((hostname, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except socket.gaierror:
        return Step(title, FAILED, f"the name {hostname} cannot be resolved: check its spelling, "
                                   "your network connection and your VPN.")
    except ConnectionRefusedError:
        return Step(title, FAILED, f"{hostname} refused connections on port {port}: check the "
                                   "port in the URL and that the server is running.")
    except TimeoutError:
        return Step(title, FAILED, f"no answer from {hostname}:{port} within "
                                   f"{CONNECT_TIMEOUT_S:g} s: a firewall or a missing VPN "
                                   "connection may block it.")
    except OSError as exc:
        return Step(title, FAILED, f"cannot connect to {hostname}:{port} "
                                   f"({exc.strerror or type(exc).__name__}): check the network.")
    return Step(title, OK, f"{hostname}:{port} accepts connections")


def _tls(ws: Workspace, hostname: str, port: int) -> Step:
    title = "TLS certificate valid"
    if urlsplit(ws.host).scheme == "http":
        if ws.needs_secret and hostname not in _LOOPBACK:
            return Step(title, WARNING, "plain http: the credentials travel unencrypted; use an "
                                        "https:// URL if the server offers one.")
        return Step(title, SKIPPED, "plain http (no TLS)")
    if not ws.verify_tls:
        return Step(title, WARNING, "certificate verification is turned off for this "
                                    "workspace: anyone on the network path could read the token.")
    try:
        # The trust store every connection of the app uses (core.tls), not a private one.
        context = tls.context(ws.ca_bundle)
    except ConfigError as exc:
        return Step(title, FAILED, str(exc))
    try:
        with socket.create_connection((hostname, port), timeout=CONNECT_TIMEOUT_S) as raw, \
                context.wrap_socket(raw, server_hostname=hostname) as conn:
            cert = conn.getpeercert() or {}
    except ssl.SSLCertVerificationError as exc:
        hint = ("set the CA bundle of your organisation in the workspace settings"
                if "self" in (exc.verify_message or "") or "issuer" in (exc.verify_message or "")
                else "check the host name and ask the server's administrator")
        return Step(title, FAILED, f"the certificate of {hostname} is not valid "
                                   f"({exc.verify_message}): {hint}.")
    except (ssl.SSLError, OSError) as exc:
        return Step(title, FAILED, f"the TLS handshake with {hostname}:{port} failed "
                                   f"({getattr(exc, 'reason', None) or exc}): check that the port "
                                   "serves https.")
    until = cert.get("notAfter")
    return Step(title, OK, f"trusted certificate for {hostname}"
                           + (f", valid until {until}" if until else ""))
