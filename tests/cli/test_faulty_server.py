"""The command line against loopback servers that are not MLflow servers (tests/fakeserver.py):
JSON of another shape, a web page and endless answers give one clear line and exit 1, never a
traceback, and a label they swallowed is kept in the outbox, said to be not saved (not
"refused")."""

from __future__ import annotations

import json

import pytest

from tests.cli.test_feedback import cli  # noqa: F401 (a fixture)
from tests.fakeserver import FakeServer, endless, head
from traceviewer.core.outbox import Outbox

TRACE_ID = "tr-" + "a" * 32
FEEDBACK = ("feedback", "add", TRACE_ID, "--name", "x", "--value", "true",
            "--source-id", "a@example.com")
# Valid JSON, none of it shaped as MLflow answers: lists that are strings, items that are
# numbers, objects missing.
WRONG_SHAPES = [
    {"experiments": "not a list", "traces": {"a": 1}, "assessment": "x"},
    {"experiments": [1, None], "traces": [1], "next_page_token": 7},
]


def answering(document: dict | str, content_type: str = "application/json") -> FakeServer:
    body = (document if isinstance(document, str) else json.dumps(document)).encode()
    return FakeServer(lambda sock, _: sock.sendall(
        head("200 OK", {"Content-Type": content_type,
                        "Content-Length": str(len(body))}) + body))


@pytest.mark.parametrize("document", WRONG_SHAPES)
@pytest.mark.parametrize("command", [("experiments", "list"),
                                     ("traces", "search", "--experiment", "1"),
                                     ("traces", "search", "--experiment", "1", "--max", "5"),
                                     FEEDBACK])
def test_json_of_another_shape_is_one_clear_error_naming_the_host(cli, document,  # noqa: F811
                                                                  command):
    with answering(document) as server:
        code, _, err = cli(*command, "--host", server.url)
    assert code == 1
    assert f"{server.url} answered with JSON that is not an MLflow server's" in err
    assert "check that the host URL points at an MLflow tracking server" in err


@pytest.mark.parametrize("command", [("experiments", "list"), FEEDBACK])
def test_a_web_page_instead_of_json_says_so_rather_than_try_again(cli, command):  # noqa: F811
    page = "<html><body><form action='/login'>Sign in</form></body></html>"
    with answering(page, "text/html; charset=utf-8") as server:
        code, _, err = cli(*command, "--host", server.url)
    assert code == 1
    assert f"{server.url} sent a web page, not an MLflow answer" in err
    assert "sign-in page or a proxy" in err and "try again" not in err


def test_a_label_an_endless_answer_swallowed_is_kept_and_said_not_saved(cli):  # noqa: F811
    holder: list[FakeServer] = []
    with FakeServer(lambda sock, _: endless(sock, holder[0].stop_event)) as server:
        holder.append(server)
        code, out, err = cli(*FEEDBACK, "--host", server.url)
    (item,) = Outbox().items()
    assert code == 1 and out == ""
    assert err.startswith(f"x = yes on {TRACE_ID} was not saved: ") and "refused" not in err
    assert "is larger than 64 MB" in err and f"outbox retry {item.item_id}" in err
    assert item.state == "parked"  # the server may hold it: sent again only when asked
