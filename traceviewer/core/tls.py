"""One trust store for every HTTPS connection: the operating system's (through `truststore`),
plus the workspace's own CA bundle when it names one. The REST client, the Databricks storage
and sign-in calls and the connection test all verify with `context()`, so a corporate CA works
everywhere or nowhere."""

from __future__ import annotations

import ssl
from pathlib import Path

import truststore

from traceviewer.core.errors import ConfigError

TRUST_STORE = "the operating system's trust store"


def context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """A client TLS context verifying against the OS trust store and `ca_bundle` (PEM) if
    given; ConfigError when the bundle is missing or unreadable."""
    ctx = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_bundle:
        if not Path(ca_bundle).is_file():
            raise ConfigError(f"The CA bundle {ca_bundle} does not exist: fix the path in the "
                              "workspace settings.")
        try:
            ctx.load_verify_locations(cafile=ca_bundle)
        except (ssl.SSLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
            raise ConfigError(f"The CA bundle {ca_bundle} cannot be read ({reason}): it must "
                              "hold PEM certificates.") from None
    return ctx


def verify(setting: bool | str) -> ssl.SSLContext | bool:
    """What httpx's `verify=` gets for a workspace setting: False (verification off), True (the
    OS trust store) or a CA bundle path (the OS trust store plus that bundle)."""
    if setting is False:
        return False
    return context(None if setting is True else setting)


def describe() -> str:
    """Which trust store verifies certificates, for the self-test; ConfigError when it cannot
    be set up. On Linux, where truststore reads OpenSSL's CA file or directory (or a
    distribution's bundle), it names that and how many CA certificates a file holds."""
    context()
    where = "the platform's certificate store"
    paths = ssl.get_default_verify_paths()
    plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if paths.cafile:
        where, count = paths.cafile, _count(plain, paths.cafile)
    elif paths.capath:
        where, count = paths.capath, None  # a hashed directory is read on use
    else:
        bundle = next((f for f in _LINUX_BUNDLES if Path(f).is_file()), None)
        count = None if bundle is None else _count(plain, bundle)
        where = bundle or where
    held = "" if count is None else f"{count} CA certificates, "
    return f"{TRUST_STORE} ({held}{where}) via truststore {truststore.__version__}"


# Where truststore looks on Linux when OpenSSL's default paths hold nothing.
_LINUX_BUNDLES = ("/etc/ssl/cert.pem", "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
                  "/etc/pki/tls/cert.pem", "/etc/ssl/certs/ca-certificates.crt",
                  "/etc/ssl/ca-bundle.pem")


def _count(plain: ssl.SSLContext, cafile: str) -> int | None:
    try:
        plain.load_verify_locations(cafile=cafile)
    except (ssl.SSLError, OSError):
        return None
    return plain.cert_store_stats()["x509_ca"]


def failure_reason(exc: BaseException) -> str | None:
    """Why a connection failed TLS verification, if that is why it failed."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return getattr(seen, "verify_message", None) or seen.reason or "TLS error"
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    return "certificate verify failed" if "CERTIFICATE_VERIFY_FAILED" in text else None
