"""No secret in a log line or an error message: registered secrets, Authorization header values,
credentials in URLs and Databricks tokens are masked."""

from __future__ import annotations

import logging
import sys
import uuid

import pytest

from traceviewer.cli import main
from traceviewer.core import paths
from traceviewer.core.errors import ConfigError
from traceviewer.core.redact import MASK, RedactingFilter, redact, register_secret


def secret() -> str:
    return f"s3cr3t-{uuid.uuid4().hex}"


def test_registered_secret_is_masked_everywhere_it_appears():
    value = secret()
    register_secret(value)
    assert redact(f"token={value}; again {value}.") == f"token={MASK}; again {MASK}."


def test_longer_secret_is_masked_whole_when_it_contains_a_shorter_one():
    short = secret()
    register_secret(short)
    register_secret(short + "-suffix")
    assert redact(f"<{short}-suffix>") == f"<{MASK}>"


def test_too_short_secrets_are_not_registered():
    # Masking "ab" would garble ordinary text; such a value is no credential worth the name.
    register_secret("ab")
    assert redact("about a tab") == "about a tab"


@pytest.mark.parametrize(("text", "masked"), [
    ("Authorization: Bearer abc.def-123", f"Authorization: {MASK}"),
    ("{'Authorization': 'Basic YWRtaW46cHc='}", f"{{'Authorization': '{MASK}'}}"),
    ('"authorization":"token xyz"', f'"authorization":"{MASK}"'),
    ("Proxy-Authorization: Basic dXNlcjpwdw==", f"Proxy-Authorization: {MASK}"),
    ("sent Bearer eyJhbGciOiJIUzI1NiJ9 to the server", f"sent Bearer {MASK} to the server"),
])
def test_authorization_header_values_are_masked_unregistered(text, masked):
    assert redact(text) == masked


def test_credentials_in_a_url_are_masked():
    assert (redact("GET https://ana:pw-123@mlflow.example.com/api")
            == f"GET https://{MASK}@mlflow.example.com/api")


def test_databricks_tokens_are_masked_unregistered():
    token = f"dapi{uuid.uuid4().hex}-2"  # never registered by another test
    assert redact(f"token {token} rejected") == f"token {MASK} rejected"


def test_log_filter_masks_arguments_and_tracebacks():
    value = secret()
    register_secret(value)
    try:
        raise RuntimeError(f"failed with {value}")
    except RuntimeError:
        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 1, "login %s with %s", (value, "Bearer abcdefgh1234"),
            exc_info=sys.exc_info())
    RedactingFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert value not in formatted
    assert "abcdefgh1234" not in formatted
    assert "RuntimeError: failed with ****" in formatted


def test_command_line_errors_are_masked(monkeypatch, capsys):
    value = secret()
    register_secret(value)

    def fail(_args):
        raise ConfigError(f"cannot use {value}")

    # Any command failing with a message that holds a secret: exercise main()'s error path.
    monkeypatch.setattr("traceviewer.cli.workspace._list", fail)
    assert main(["workspace", "list"]) == 2
    err = capsys.readouterr().err
    assert err == f"traceviewer: cannot use {MASK}\n"
    log = (paths.log_dir() / "traceviewer.log")
    assert not log.exists() or value not in log.read_text()
