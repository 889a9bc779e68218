"""Seed an MLflow server with production-like demo traces.

    python -m traceviewer.demo.seed --tracking-uri URL [--profile demo|test]

Runs the demo chat app (traceviewer.demo.chat_app) with uvicorn on a free loopback port in this
process and drives it over HTTP, one deployment per mount, on simulated times spread over the last
seven days; then logs the `big-traces` experiment's agent-loop traces directly through the SDK.
Trace export is synchronous, so no trace is left IN_PROGRESS. Seeding is idempotent: requests and
big traces already on the server (found by client request id) are skipped.
"""

from __future__ import annotations

import os

# Synchronous export: a trace is on the server when its request returns. Set before mlflow loads.
os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"

import argparse
import base64
import json
import random
import socket
import sys
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import mlflow
import uvicorn
from mlflow import MlflowClient
from mlflow.entities import Span, Trace, TraceData, TraceInfo, TraceLocation, TraceState
from mlflow.tracing.client import TracingClient
from mlflow.tracing.utils import add_size_stats_to_trace_metadata
from starlette.applications import Starlette
from starlette.routing import Mount

from traceviewer.demo import chat_app
from traceviewer.demo.chat_app import Deployment

PROD_EXPERIMENT = chat_app.DEFAULT_EXPERIMENT
BIG_EXPERIMENT = "big-traces"
BIG_TRACE_SPANS = (1_000, 10_000)
QUOTED_CUSTOMER = "O'Brien"
UNTRUSTED_TEXT = "<b>bold</b> & <script>x</script>"
FEEDBACK_NAME = "response_is_correct"

# Mount path -> deployment. Staging runs the newer release that records session and user as
# trace metadata; production records them as tags, as the MLflow guide shows.
DEPLOYMENTS = {
    "prod-us": Deployment("production", "1.4.2", "deploy-prod-us-7f3a", "us-east-1"),
    "prod-eu": Deployment("production", "1.5.0", "deploy-prod-eu-2c91", "eu-west-1"),
    "staging": Deployment("staging", "1.5.0", "deploy-staging-b40e", "us-west-2",
                          context_in_metadata=True),
}
# Which deployment serves the i-th session (cycled): mostly production, some staging.
_DEPLOYMENT_CYCLE = ("prod-us", "prod-eu", "prod-us", "prod-eu", "prod-us", "staging")


@dataclass(frozen=True, slots=True)
class Profile:
    """How much data to seed."""

    name: str
    traces: int
    sessions: int
    users: int


PROFILES = {
    # 380 so that >= 300 traces carry session and user as tags (staging's ~1/6 use metadata).
    "demo": Profile("demo", traces=380, sessions=48, users=14),
    "test": Profile("test", traces=60, sessions=12, users=6),
}


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """One planned request to the chat app, and the feedback its user gives afterwards."""

    request_id: str
    session_id: str
    user_id: str
    customer: str | None
    deployment: str
    message: str
    time_ms: int
    fault: str | None
    feedback: tuple[bool, str | None] | None


_FIRST = ("jane", "omar", "mei", "lukas", "amara", "diego", "priya", "noah", "fatima", "kenji",
          "sofia", "liam", "zara", "ivan", "chloe", "mateo", "aisha", "oscar")
_LAST = ("doe", "haddad", "chen", "becker", "okafor", "ruiz", "patel", "smith", "khan", "sato",
         "rossi", "murphy", "ali", "petrov", "martin", "silva", "yusuf", "berg")
_TOOL_MESSAGES = (
    "What is my account balance?",
    "How much money is in my checking account?",
    "Where is my order #{order}?",
    "Has my package for order {order} shipped yet?",
    "I want a refund for order #{order}, it arrived broken.",
)
_FAQ_MESSAGES = (
    "How do I reset my password?",
    "What are your support hours?",
    "Do you ship to Canada?",
    "How long do refunds take?",
    "Can I use SMS for two-factor authentication?",
    "When is my monthly statement available?",
    "Why is there a hold on my card payment?",
)
_UNTRUSTED_MESSAGE = f"Why does my invoice show {UNTRUSTED_TEXT} next to an item?"
_COMMENTS = (None, "The response was accurate and helpful", "Wrong order number",
             "Too slow but correct", "Did not answer my question", "Perfect, thanks!",
             f"It printed {UNTRUSTED_TEXT} literally")


def plan(profile: Profile, now_ms: int) -> list[ChatTurn]:
    """The profile's chat requests in time order; ids do not depend on now_ms."""
    rng = random.Random(f"traceviewer-seed-{profile.name}")
    users = [f"user-{_FIRST[i]}-{_LAST[i]}-{rng.randint(10_000, 99_999)}"
             for i in range(profile.users)]
    # The first user is a business customer whose name holds a quote (filter quoting tests).
    customers = {users[0]: QUOTED_CUSTOMER, users[1 % profile.users]: "Globex Corporation"}
    week_ms = 7 * 24 * 3600 * 1000
    per_session, extra = divmod(profile.traces, profile.sessions)
    turns: list[ChatTurn] = []
    for s in range(profile.sessions):
        session_id = f"session-{rng.getrandbits(48):012x}"
        user = users[s % profile.users]
        deployment = _DEPLOYMENT_CYCLE[s % len(_DEPLOYMENT_CYCLE)]
        t = now_ms - rng.randint(3_600_000, week_ms - 3_600_000)
        for _ in range(per_session + (s < extra)):
            k = len(turns)
            # Every ninth request fails or is slow, cycling through the fault kinds.
            fault = chat_app.FAULTS[(k // 9) % len(chat_app.FAULTS)] if k % 9 == 4 else None
            if k % 23 == 7:
                message = _UNTRUSTED_MESSAGE
            elif fault in (chat_app.FAULT_TOOL_TIMEOUT, chat_app.FAULT_TOOL_RETRY) or \
                    rng.random() < 0.45:
                message = rng.choice(_TOOL_MESSAGES[:2] if fault else _TOOL_MESSAGES)
            else:
                message = rng.choice(_FAQ_MESSAGES)
            failed = fault in (chat_app.FAULT_TOOL_TIMEOUT, chat_app.FAULT_RATE_LIMIT)
            feedback = (None if failed or k % 4 != 1 else
                        (rng.random() < 0.7, rng.choice(_COMMENTS)))
            turns.append(ChatTurn(
                request_id=f"req-{rng.getrandbits(64):016x}", session_id=session_id,
                user_id=user, customer=customers.get(user), deployment=deployment,
                message=message.format(order=rng.randint(10_000, 99_999)), time_ms=t,
                fault=fault, feedback=feedback))
            t += rng.randint(20_000, 300_000)
    return sorted(turns, key=lambda turn: turn.time_ms)


def _progress(text: str) -> None:
    print(f"seed: {text}", file=sys.stderr, flush=True)


def _existing_request_ids(client: MlflowClient, experiment_id: str) -> set[str]:
    found: set[str] = set()
    token = None
    while True:
        page = client.search_traces(locations=[experiment_id], max_results=500,
                                    page_token=token, include_spans=False)
        found.update(t.info.client_request_id for t in page if t.info.client_request_id)
        token = page.token
        if not token:
            return found


def _experiment_id(client: MlflowClient, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    return experiment.experiment_id if experiment else client.create_experiment(name)


class _AppServer:
    """The chat app's deployments served by uvicorn on a free loopback port, in a thread."""

    def __init__(self) -> None:
        app = Starlette(routes=[Mount(f"/{path}", app=chat_app.create_app(dep, PROD_EXPERIMENT))
                                for path, dep in DEPLOYMENTS.items()])
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        daemon=True)

    def __enter__(self) -> _AppServer:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the demo chat app did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join()
        self._sock.close()


def _send(http: httpx.Client, turn: ChatTurn) -> None:
    """One chat request, then its user's feedback if the plan has some."""
    headers = {"X-Request-ID": turn.request_id, "X-Session-ID": turn.session_id,
               "X-User-ID": turn.user_id, "X-Simulated-Time": str(turn.time_ms)}
    if turn.customer:
        headers["X-Customer"] = turn.customer
    if turn.fault:
        headers["X-Simulate-Fault"] = turn.fault
    r = http.post(f"/{turn.deployment}/chat", json={"message": turn.message}, headers=headers)
    if r.status_code not in (200, 503):  # 503: a planned fault
        raise RuntimeError(f"chat app answered {r.status_code}: {r.text[:200]}")
    if turn.feedback:
        is_correct, comment = turn.feedback
        r = http.post(f"/{turn.deployment}/chat_feedback",
                      params={"client_request_id": turn.request_id},
                      json={"is_correct": is_correct, "comment": comment},
                      headers={"X-User-ID": turn.user_id})
        r.raise_for_status()


def seed_chats(client: MlflowClient, profile: Profile, workers: int = 4) -> None:
    """Drive the chat app with the profile's requests and feedback (skipping seeded ones)."""
    experiment_id = _experiment_id(client, PROD_EXPERIMENT)
    mlflow.set_experiment(experiment_id=experiment_id)
    done = _existing_request_ids(client, experiment_id)
    todo = [t for t in plan(profile, int(time.time() * 1000)) if t.request_id not in done]
    if not todo:
        _progress(f"{PROD_EXPERIMENT}: already seeded ({len(done)} traces)")
        return
    _progress(f"{PROD_EXPERIMENT}: {len(todo)} chat requests to send")
    # Sessions run in parallel (the server spends most of each request waiting on the tracking
    # server); the turns of one session stay in order, as a user would send them.
    sessions: dict[str, list[ChatTurn]] = {}
    for turn in todo:
        sessions.setdefault(turn.session_id, []).append(turn)
    sent = 0
    lock = threading.Lock()

    def run_session(turns: list[ChatTurn]) -> None:
        nonlocal sent
        for turn in turns:
            _send(http, turn)
            with lock:
                sent += 1
                if sent % 20 == 0 or sent == len(todo):
                    _progress(f"{PROD_EXPERIMENT}: {sent}/{len(todo)} chat requests")

    with _AppServer() as server, httpx.Client(base_url=server.url, timeout=120) as http, \
            ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(run_session, turns) for turns in sessions.values()]:
            future.result()


# ---- big traces -------------------------------------------------------------------------------

_AGENT_TOOLS = ("web_search", "read_file", "run_sql", "fetch_url", "python_exec")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class _SpanWriter:
    """Builds a trace's spans as MLflow span dicts with explicit times."""

    def __init__(self, trace_id: str, rng: random.Random):
        self.trace_id = trace_id
        self._otel_trace_id = _b64(bytes.fromhex(trace_id.removeprefix("tr-")))
        self.rng = rng
        self.spans: list[dict] = []

    def add(self, name: str, span_type: str, parent: str | None, start_ns: int, end_ns: int,
            inputs: object, outputs: object | None, error: str | None = None,
            attributes: Mapping[str, object] | None = None) -> str:
        span_id = _b64(self.rng.randbytes(8))
        attrs = {"mlflow.traceRequestId": self.trace_id, "mlflow.spanType": span_type,
                 "mlflow.spanInputs": inputs, **(attributes or {})}
        if outputs is not None:
            attrs["mlflow.spanOutputs"] = outputs
        events = []
        if error:
            events.append({"name": "exception", "time_unix_nano": end_ns, "attributes": {
                "exception.type": "TimeoutError", "exception.message": error,
                "exception.stacktrace": f"TimeoutError: {error}"}})
        self.spans.append({
            "trace_id": self._otel_trace_id, "span_id": span_id, "parent_span_id": parent or "",
            "name": name, "start_time_unix_nano": start_ns, "end_time_unix_nano": end_ns,
            "attributes": {k: json.dumps(v) for k, v in attrs.items()},
            "status": {"code": "STATUS_CODE_ERROR" if error else "STATUS_CODE_OK",
                       "message": f"TimeoutError: {error}" if error else ""},
            "events": events})
        return span_id


def _agent_steps(writer: _SpanWriter, root: str, start_ns: int, span_budget: int) -> int:
    """Adds agent-loop iterations (5 or 6 spans each) until span_budget is used; returns end."""
    rng, t, step = writer.rng, start_ns, 0
    while span_budget >= 6:
        step += 1
        step_index = len(writer.spans)
        step_id = writer.add(f"step_{step}", "CHAIN", root, t, t, {"step": step}, None)
        tokens = {"input_tokens": rng.randint(300, 4_000), "output_tokens": rng.randint(20, 300)}
        tokens["total_tokens"] = tokens["input_tokens"] + tokens["output_tokens"]
        tool = rng.choice(_AGENT_TOOLS)
        llm_end = t + rng.randint(200, 2_500) * 1_000_000
        writer.add("plan_next_action", "CHAT_MODEL", step_id, t, llm_end,
                   {"messages": [{"role": "user", "content": f"Step {step}: what next?"}]},
                   {"choices": [{"message": {"role": "assistant",
                                             "content": f"Call {tool} for step {step}"}}]},
                   attributes={"mlflow.chat.tokenUsage": tokens,
                               "mlflow.llm.model": chat_app.MODEL})
        t = llm_end
        tool_end = t + rng.randint(20, 900) * 1_000_000
        failed = rng.random() < 0.02
        tool_id = writer.add(tool, "TOOL", step_id, t, tool_end, {"query": f"q{step}"},
                             None if failed else {"rows": rng.randint(0, 50)},
                             error=f"{tool} timed out" if failed else None)
        inner = t + 1_000_000
        writer.add("search_index", "RETRIEVER", tool_id, inner, inner + 5_000_000,
                   {"query": f"q{step}"}, [{"page_content": f"chunk {step}"}])
        writer.add("embed", "EMBEDDING", tool_id, inner, inner + 2_000_000, {"text": f"q{step}"},
                   [0.1, 0.2])
        t = tool_end
        parse_end = t + rng.randint(1, 20) * 1_000_000
        writer.add("parse_observation", "PARSER", step_id, t, parse_end, {"step": step},
                   {"ok": not failed})
        # The step span was added first (for pre-order); fix its end now that it is known.
        writer.spans[step_index]["end_time_unix_nano"] = parse_end
        t = parse_end
        span_budget -= 6
    return t


def seed_big_trace(client: TracingClient, experiment_id: str, num_spans: int,
                   start_ns: int) -> None:
    """Log one agent-loop trace of num_spans spans in a few SDK calls (not one per span)."""
    rng = random.Random(num_spans)
    trace_id = "tr-" + os.urandom(16).hex()
    writer = _SpanWriter(trace_id, rng)
    question = f"Research task with a {num_spans}-span agent loop"
    writer.add("research_agent", "AGENT", None, start_ns, start_ns, {"task": question}, None)
    root = writer.spans[0]["span_id"]
    budget = num_spans - 1
    end_ns = _agent_steps(writer, root, start_ns + 1_000_000, budget)
    while len(writer.spans) < num_spans:  # top up to the exact count
        writer.add("log_progress", "UNKNOWN", root, end_ns, end_ns + 1_000_000, {}, {"ok": True})
        end_ns += 1_000_000
    answer = f"Finished after {len(writer.spans)} spans"
    writer.spans[0]["end_time_unix_nano"] = end_ns
    writer.spans[0]["attributes"]["mlflow.spanOutputs"] = json.dumps(answer)
    spans = [Span.from_dict(s) for s in writer.spans]
    info = TraceInfo(
        trace_id=trace_id, trace_location=TraceLocation.from_experiment_id(experiment_id),
        request_time=start_ns // 1_000_000, execution_duration=(end_ns - start_ns) // 1_000_000,
        state=TraceState.OK, client_request_id=f"big-{num_spans}",
        request_preview=json.dumps({"task": question}), response_preview=json.dumps(answer),
        trace_metadata={"mlflow.trace_schema.version": "3",
                        "mlflow.traceInputs": json.dumps({"task": question}),
                        "mlflow.traceOutputs": json.dumps(answer)},
        tags={"mlflow.traceName": "research_agent", "environment": "production",
              "app_version": "1.5.0"})
    add_size_stats_to_trace_metadata(Trace(info, TraceData(spans)))
    # As the SDK's own exporter does: spans first (in batches), then the trace info.
    for i in range(0, len(spans), 2_500):
        client.log_spans(experiment_id, spans[i:i + 2_500])
    client.start_trace(info)


def seed_big_traces(client: MlflowClient, tracking_uri: str) -> None:
    """Log the big agent-loop traces that are not on the server yet."""
    experiment_id = _experiment_id(client, BIG_EXPERIMENT)
    done = _existing_request_ids(client, experiment_id)
    now_ns = time.time_ns()
    tracing = TracingClient(tracking_uri)
    for i, num_spans in enumerate(BIG_TRACE_SPANS):
        if f"big-{num_spans}" in done:
            continue
        _progress(f"{BIG_EXPERIMENT}: logging a {num_spans}-span trace")
        seed_big_trace(tracing, experiment_id, num_spans, now_ns - (i + 2) * 3600 * 10**9)
    _progress(f"{BIG_EXPERIMENT}: done")


def main(argv: list[str] | None = None) -> int:
    """Seed the server at --tracking-uri with the chosen profile."""
    parser = argparse.ArgumentParser(prog="python -m traceviewer.demo.seed",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", required=True, help="MLflow server URL")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="demo")
    args = parser.parse_args(argv)
    started = time.monotonic()
    mlflow.set_tracking_uri(args.tracking_uri)
    client = MlflowClient(tracking_uri=args.tracking_uri)
    seed_chats(client, PROFILES[args.profile])
    seed_big_traces(client, args.tracking_uri)
    _progress(f"finished in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
