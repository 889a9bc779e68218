"""A redirect is reported as a redirect, naming where it pointed, and never followed: the
credentials of the workspace go to its own host only."""

from __future__ import annotations

import pytest

from tests.fakeserver import FakeServer, head
from traceviewer.core.auth import Auth
from traceviewer.core.client import RestClient
from traceviewer.core.errors import ServerError

TOKEN = "tv-secret-token-6152"


@pytest.mark.parametrize("status", ["302 Found", "301 Moved Permanently",
                                    "307 Temporary Redirect"])
def test_redirect_to_another_host_says_where_and_sends_no_credentials(status):
    with FakeServer(lambda sock, _: sock.sendall(head("200 OK", {"Content-Length": "2"}) + b"{}")
                    ) as elsewhere:
        target = f"{elsewhere.url}/api/2.0/mlflow/experiments/search"

        def redirect(sock, _):
            sock.sendall(head(status, {"Location": target, "Content-Length": "0"}))

        with FakeServer(redirect) as server, \
                RestClient(server.url, Auth(kind="token", token=TOKEN)) as client, \
                pytest.raises(ServerError) as caught:
            client.search_experiments()
        message = str(caught.value)
        assert "redirected" in message and target in message
        assert "unreadable" not in message and "try again" not in message
        assert caught.value.status == int(status.split()[0])
        assert TOKEN.encode() in server.requests[0]  # sent to the configured host...
        assert elsewhere.requests == []  # ...and nothing, no credentials, to the other one
