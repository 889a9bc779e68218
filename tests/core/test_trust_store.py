"""One trust store (core.tls, the OS's through truststore, plus the workspace's CA bundle) for
the REST client, the connection test and the Databricks storage client alike: a private CA is
trusted by all of them or by none, and each refusal says to set the CA bundle. A loopback HTTPS
proxy with a self-signed CA in front of the real test server."""

from __future__ import annotations

import pytest
import truststore

from tests.core.test_client import FAST, tls_files, tls_proxy  # noqa: F401 (fixtures)
from traceviewer.core import conntest, databricks_routes
from traceviewer.core.client import RestClient
from traceviewer.core.errors import ConnectionFailed
from traceviewer.core.workspaces import Workspace
from traceviewer.selftest import check_tls


def _storage_get(url: str, verify: bool | str):
    with RestClient(url, verify=verify, retry=FAST, kind="databricks") as client:
        resp = databricks_routes._storage_get(client, f"{url}/version", {}, "reading the test "
                                              "object", None, 5.0)
        return resp.status_code


def _conntest(url: str, **settings) -> dict[str, conntest.Step]:
    steps = conntest.run(Workspace("tls", url, **settings))
    return {step.title: step for step in steps}


def test_workspace_ca_bundle_is_trusted_by_client_connection_test_and_storage(
        tls_proxy, tls_files):  # noqa: F811
    ca = str(tls_files[0])
    with RestClient(tls_proxy.url, verify=ca) as client:
        assert client.version()
        assert isinstance(client._http._transport._pool._ssl_context, truststore.SSLContext)
    steps = _conntest(tls_proxy.url, ca_bundle=ca)
    assert steps["TLS certificate valid"].status == conntest.OK
    assert steps["MLflow server answers"].status == conntest.OK
    assert _storage_get(tls_proxy.url, ca) == 200


def test_without_the_ca_bundle_client_connection_test_and_storage_refuse_saying_so(
        tls_proxy):  # noqa: F811
    with RestClient(tls_proxy.url, retry=FAST) as client, \
            pytest.raises(ConnectionFailed, match="CA bundle"):
        client.version()
    step = _conntest(tls_proxy.url)["TLS certificate valid"]
    assert step.failed and "CA bundle" in step.detail and "self-signed" in step.detail
    with pytest.raises(ConnectionFailed, match=r"trace storage .*CA bundle"):
        _storage_get(tls_proxy.url, True)
    assert tls_proxy.received_count() == 0


def test_a_ca_in_the_os_trust_store_is_trusted_everywhere(tls_proxy, tls_files,  # noqa: F811
                                                          monkeypatch):
    # SSL_CERT_FILE is where OpenSSL, and so truststore on Linux, reads the system's CAs.
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[0]))
    with RestClient(tls_proxy.url) as client:
        assert client.version()
    assert _conntest(tls_proxy.url)["TLS certificate valid"].status == conntest.OK
    assert _storage_get(tls_proxy.url, True) == 200


def test_verification_off_is_still_honoured_everywhere(tls_proxy):  # noqa: F811
    with RestClient(tls_proxy.url, verify=False) as client:
        assert client.version()
    assert _conntest(tls_proxy.url, verify_tls=False)["TLS certificate valid"].status == \
        conntest.WARNING
    assert _storage_get(tls_proxy.url, False) == 200


def test_self_test_names_the_os_trust_store():
    assert "operating system's trust store" in check_tls()
    assert "truststore" in check_tls()
