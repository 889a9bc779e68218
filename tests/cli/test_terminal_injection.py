"""Untrusted text cannot drive the terminal: names, tags, span names and server messages holding
ESC sequences or bidi overrides print as visible escapes in tables, trees and error messages,
while json/jsonl/csv keep the data exact. Against the real server, on a trace of our own."""

from __future__ import annotations

import csv
import io
import json
import uuid

import mlflow
import pytest

from traceviewer.cli import main

TITLE = "\x1b]0;pwned\x07"  # sets the terminal window title
CLEAR = "\x1b[2J"  # clears the screen
LINK = "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\"  # an OSC 8 hyperlink
RLO = "\u202e"  # right-to-left override: "tr-abc\u202efdp" reads as "tr-abcpdf"
EVIL = f"name{TITLE}{CLEAR}{LINK}{RLO}gpj.exe\tend\nnext"
RAW = ("\x1b", "\x07", "\u202e", "\t")


@pytest.fixture(scope="module")
def evil(mlflow_server, sdk):
    """(experiment id, trace id) of a trace whose name, session tag and span name are EVIL."""
    exp_id = sdk.create_experiment(f"terminal-injection-{uuid.uuid4().hex[:8]}")
    root = mlflow.start_span_no_context("root", experiment_id=exp_id, inputs={"q": EVIL})
    child = mlflow.start_span_no_context(EVIL, parent_span=root)
    child.end()
    root.end(outputs=EVIL)
    mlflow.flush_trace_async_logging()
    trace_id = root.trace_id
    sdk.set_trace_tag(trace_id, "mlflow.traceName", EVIL)
    sdk.set_trace_tag(trace_id, "mlflow.trace.session", EVIL)
    return exp_id, trace_id


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_no_raw_controls(text: str) -> None:
    for char in RAW:
        assert char not in text, f"{char!r} reached the terminal"


def test_trace_table_shows_escape_sequences_as_text(capsys, mlflow_server, sdk, evil):
    exp_id, trace_id = evil
    assert sdk.get_trace(trace_id).info.tags["mlflow.traceName"] == EVIL
    code, out, err = run(capsys, "traces", "search", "--host", mlflow_server.url,
                         "--experiment", exp_id)
    assert code == 0, err
    assert_no_raw_controls(out + err)
    lines = out.splitlines()
    assert len(lines) == 2  # header + the one trace: \n in a cell does not add a line
    assert "name\\x1b]0;pwned\\x07\\x1b[2J" in lines[1]
    assert "<U+202E>gpj.exe\\tend\\nnext" in lines[1]


@pytest.mark.parametrize("format", ["json", "jsonl", "csv"])
def test_machine_formats_keep_the_data_exact(capsys, mlflow_server, evil, format):
    exp_id, trace_id = evil
    code, out, err = run(capsys, "traces", "search", "--host", mlflow_server.url,
                         "--experiment", exp_id, "--format", format)
    assert code == 0, err
    if format == "json":
        rows = json.loads(out)
    elif format == "jsonl":
        rows = [json.loads(line) for line in out.splitlines()]
    else:
        rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["trace_id"], r["name"], r["session"]) for r in rows] == [(trace_id, EVIL, EVIL)]


def test_trace_tree_shows_escape_sequences_as_text(capsys, mlflow_server, sdk, evil):
    _, trace_id = evil
    spans = sdk.get_trace(trace_id).data.spans
    assert EVIL in [s.name for s in spans]
    code, out, err = run(capsys, "trace", "show", trace_id, "--host", mlflow_server.url)
    assert code == 0, err
    assert_no_raw_controls(out + err)
    lines = out.splitlines()
    assert len(lines) == 1 + len(spans)
    assert lines[0].startswith(trace_id) and "<U+202E>gpj.exe" in lines[0]
    assert any(line.startswith("  name\\x1b]0;pwned\\x07\\x1b[2J") for line in lines[2:])


def test_error_messages_quoting_the_server_show_escape_sequences_as_text(capsys,
                                                                         mlflow_server):
    bad_id = f"tr-{uuid.uuid4().hex}{CLEAR}{RLO}"
    code, _, err = run(capsys, "trace", "show", bad_id, "--host", mlflow_server.url)
    assert code == 1
    assert_no_raw_controls(err)
    assert err.startswith("traceviewer: ") and err.count("\n") == 1
    assert "\\x1b[2J<U+202E>" in err
