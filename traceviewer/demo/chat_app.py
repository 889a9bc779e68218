"""The demo's FastAPI chat app, traced the way MLflow's production-tracing guide describes.

Each `POST /chat` yields one trace: `@app.post` must be the outermost decorator and
`@mlflow.trace` the inner one (the other order registers the untraced function with FastAPI).
Headers `X-Request-ID`, `X-Session-ID` and `X-User-ID` become the trace's client request id and
its session and user; the deployment adds `environment`, `app_version`, `deployment_id` and
`region` tags. `POST /chat_feedback` records HUMAN feedback on a trace found by its client
request id, as the guide does.

Demo-only extras, so seeded data can look like a week of production without waiting a week:
`X-Simulated-Time` (epoch ms) runs the request on a simulated clock that the app's simulated
work advances instead of sleeping, and `X-Simulate-Fault` picks a failure mode. Run it on its own
with `uvicorn traceviewer.demo.chat_app:app` (settings from the environment, as in the guide).
"""

from __future__ import annotations

import contextvars
import hashlib
import os
import random
import re
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from types import SimpleNamespace

import mlflow
import mlflow.entities.span_event
import opentelemetry.sdk.trace
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from mlflow.client import MlflowClient
from mlflow.entities import AssessmentSource, SpanType
from mlflow.tracing.constant import SpanAttributeKey
from pydantic import BaseModel

DEFAULT_EXPERIMENT = "/Shared/production-genai-app"
MODEL = "gpt-4o-mini"
# Failure modes a seeding client can ask for with X-Simulate-Fault.
FAULT_TOOL_TIMEOUT = "tool_timeout"  # a tool times out: the request fails (ERROR trace)
FAULT_TOOL_RETRY = "tool_retry"  # a tool fails once, the retry succeeds (OK trace, ERROR span)
FAULT_RATE_LIMIT = "rate_limit"  # the chat model rejects the call: the request fails
FAULT_SLOW = "slow"  # the chat model takes 10-40 s
FAULTS = (FAULT_TOOL_TIMEOUT, FAULT_TOOL_RETRY, FAULT_RATE_LIMIT, FAULT_SLOW)


@dataclass(frozen=True, slots=True)
class Deployment:
    """Where an instance of the app runs; stamped on every trace it makes."""

    environment: str
    app_version: str
    deployment_id: str
    region: str
    # Newer releases record session and user as trace metadata (update_current_trace's
    # session_id=/user=) instead of the tags the guide uses; viewers must read both.
    context_in_metadata: bool = False

    @classmethod
    def from_env(cls) -> Deployment:
        """The deployment described by environment variables, with the guide's defaults."""
        return cls(environment=os.getenv("ENVIRONMENT", "production"),
                   app_version=os.getenv("APP_VERSION", "1.0.0"),
                   deployment_id=os.getenv("DEPLOYMENT_ID", "unknown"),
                   region=os.getenv("REGION", "us-east-1"))


class ChatRequest(BaseModel):
    message: str


class FeedbackRequest(BaseModel):
    is_correct: bool
    comment: str | None = None


class UpstreamError(Exception):
    """A dependency of the app (tool backend, model provider) failed the request."""


class ToolTimeout(UpstreamError):
    pass


class RateLimitError(UpstreamError):
    pass


# ---- simulated clock --------------------------------------------------------------------------

class _SimulatedClock:
    def __init__(self, start_ns: int):
        self.now_ns = start_ns


_clock: contextvars.ContextVar[_SimulatedClock | None] = contextvars.ContextVar(
    "simulated_clock", default=None)


def _now_ns() -> int:
    clock = _clock.get()
    return clock.now_ns if clock is not None else time.time_ns()


# OpenTelemetry stamps span start/end with its module's time_ns, and MLflow stamps exception
# events with time.time(); both must follow a simulated request's clock or spans and events
# would land at the real time of seeding. Without a simulated clock both read the real time.
opentelemetry.sdk.trace.time_ns = _now_ns
mlflow.entities.span_event.time = SimpleNamespace(  # type: ignore[assignment]  # a stand-in
    time=lambda: _now_ns() / 1e9)


@dataclass(slots=True)
class _Behaviour:
    """How the current request behaves: its random source and the failures asked for."""

    rng: random.Random
    fault: str | None
    tool_failures: int


_behaviour: contextvars.ContextVar[_Behaviour] = contextvars.ContextVar("behaviour")


def _work(low_ms: float, high_ms: float) -> None:
    """Spend a random time between low_ms and high_ms (simulated when the request is)."""
    ms = _behaviour.get().rng.uniform(low_ms, high_ms)
    clock = _clock.get()
    if clock is None:
        time.sleep(ms / 1000)
    else:
        clock.now_ns += int(ms * 1_000_000)


class _SimulatedTimeMiddleware:
    """Runs a request carrying X-Simulated-Time (epoch ms) on a simulated clock."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        start_ms = (dict(scope.get("headers", ())).get(b"x-simulated-time")
                    if scope["type"] == "http" else None)
        if not start_ms:
            await self.app(scope, receive, send)
            return
        # The endpoint runs in a worker thread that inherits a copy of this context.
        token = _clock.set(_SimulatedClock(int(start_ms) * 1_000_000))
        try:
            await self.app(scope, receive, send)
        finally:
            _clock.reset(token)


# ---- the app's knowledge and tools ------------------------------------------------------------

_DOCS = (
    ("kb/accounts/balance.md", "Balances update in real time; pending card payments show as "
     "holds for up to 3 business days."),
    ("kb/accounts/statements.md", "Monthly statements are available on the 2nd of each month "
     "under Settings > Documents."),
    ("kb/orders/shipping.md", "Standard shipping takes 3-5 business days; we ship to the US, "
     "Canada and the EU."),
    ("kb/orders/tracking.md", "Order status moves from processing to shipped to delivered; "
     "tracking links are emailed at dispatch."),
    ("kb/orders/refunds.md", "Refunds are accepted within 30 days of delivery and reach the "
     "original payment method in 5-10 days."),
    ("kb/security/password.md", "Reset your password from the sign-in page with 'Forgot "
     "password'; links expire after 15 minutes."),
    ("kb/security/2fa.md", "Two-factor authentication can use an authenticator app or SMS codes."),
    ("kb/support/hours.md", "Support is open 24/7 by chat and 8am-8pm local time by phone."),
    ("kb/billing/invoices.md", "Invoices list each charge with its date; formatting characters "
     "in item names are shown verbatim."),
)

_TOOLS = {
    "lookup_account_balance": "Look up the current balance of the user's account",
    "get_order_status": "Get the shipping status of an order",
    "create_refund_ticket": "Open a refund ticket for an order",
}

_INTENTS = (
    ("balance", r"\bbalance\b|how much money", "lookup_account_balance"),
    ("refund", r"\brefund", "create_refund_ticket"),
    ("order_status", r"\border\b|\bpackage\b|\bdelivery\b", "get_order_status"),
    ("faq", r".", None),
)

_SYSTEM_PROMPT = ("You are the support assistant of Acme Bank & Shop. Answer briefly, use the "
                  "context documents and tools, never invent account data.")


def _rng_for(*parts: str) -> random.Random:
    """A generator seeded by the request, so a replayed request behaves the same."""
    return random.Random(hashlib.sha256("|".join(parts).encode()).digest())


def _tokens(text: str) -> int:
    return max(1, round(len(text.split()) * 1.3))


@mlflow.trace(span_type=SpanType.PARSER)
def parse_request(message: str) -> dict:
    """Classify the user's message into an intent and pull out order numbers."""
    _work(1, 6)
    intent, tool = next((intent, tool) for intent, pattern, tool in _INTENTS
                        if re.search(pattern, message, re.IGNORECASE))
    return {"intent": intent, "tool": tool, "order_ids": re.findall(r"#?(\d{5,})", message)}


@mlflow.trace(span_type=SpanType.EMBEDDING)
def embed_query(text: str) -> list[float]:
    """Embed the query (a small stand-in vector)."""
    _work(15, 60)
    rng = _behaviour.get().rng
    return [round(rng.uniform(-1, 1), 4) for _ in range(8)]


@mlflow.trace(span_type=SpanType.RETRIEVER)
def retrieve_documents(query: str, k: int = 4) -> list[dict]:
    """Find the knowledge-base chunks closest to the query."""
    embed_query(query)
    _work(40, 180)
    rng = _behaviour.get().rng
    words = set(re.findall(r"[a-z]+", query.lower()))
    scored = sorted(((len(words & set(re.findall(r"[a-z]+", text.lower()))) + rng.random(), uri,
                      text) for uri, text in _DOCS), reverse=True)[:k]
    return [{"id": f"{uri}#0", "page_content": text,
             "metadata": {"doc_uri": uri, "chunk_id": "0", "score": round(score, 3)}}
            for score, uri, text in scored]


@mlflow.trace(span_type=SpanType.RERANKER)
def rerank_documents(query: str, documents: list[dict], top_n: int = 2) -> list[dict]:
    """Re-order retrieved chunks with a cross-encoder and keep the best ones."""
    _work(20, 90)
    return sorted(documents, key=lambda d: d["metadata"]["score"], reverse=True)[:top_n]


@mlflow.trace(span_type=SpanType.CHAT_MODEL)
def chat_completion(messages: list[dict], tools: list[dict] | None = None,
                    model: str = MODEL, temperature: float = 0.2) -> dict:
    """Call the chat model (a deterministic stand-in that answers like one)."""
    behaviour = _behaviour.get()
    span = mlflow.get_current_active_span()
    assert span is not None  # inside @mlflow.trace
    span.set_attributes({SpanAttributeKey.MODEL: model, SpanAttributeKey.MODEL_PROVIDER: "openai",
                         SpanAttributeKey.MESSAGE_FORMAT: "openai"})
    if behaviour.fault == FAULT_RATE_LIMIT:
        _work(200, 600)
        raise RateLimitError(f"Error code: 429 - Rate limit reached for {model} in "
                             "organization org-acme on tokens per min (TPM): Limit 200000")
    if behaviour.fault == FAULT_SLOW:
        _work(10_000, 40_000)
    else:
        _work(350, 2_500)
    if tools and messages[-1]["role"] == "user":
        message = {"role": "assistant", "content": None, "tool_calls": [{
            "id": f"call_{behaviour.rng.getrandbits(48):012x}", "type": "function",
            "function": {"name": tools[0]["function"]["name"],
                         "arguments": '{"account": "primary"}'}}]}
    else:
        message = {"role": "assistant", "content": _answer(messages)}
    prompt_tokens = sum(_tokens(str(m.get("content") or "")) for m in messages) + 40
    completion_tokens = _tokens(str(message.get("content") or "")) + 12
    total = prompt_tokens + completion_tokens
    span.set_attribute(SpanAttributeKey.CHAT_USAGE, {
        "input_tokens": prompt_tokens, "output_tokens": completion_tokens, "total_tokens": total})
    return {"id": f"chatcmpl-{behaviour.rng.getrandbits(64):016x}", "object": "chat.completion",
            "model": model,
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if "tool_calls" in message else "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": total}}


def _answer(messages: list[dict]) -> str:
    question = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    tool_result = next((m["content"] for m in reversed(messages) if m["role"] == "tool"), None)
    if tool_result:
        return f"Here is what I found: {tool_result}. Anything else I can help with?"
    context = next((m["content"] for m in messages if m["role"] == "system"
                    and m["content"].startswith("Context:")), "")
    facts = context.split("\n")[1:]
    return f"You asked: {question} {facts[0] if facts else 'I could not find that, sorry.'}"


def _backend_call(low_ms: float, high_ms: float, timeout_s: float, what: str) -> None:
    """Simulated call to a backend service that times out while failures are asked for."""
    behaviour = _behaviour.get()
    _work(low_ms, high_ms)
    if behaviour.tool_failures > 0:
        behaviour.tool_failures -= 1
        _work(timeout_s * 1000, timeout_s * 1000)
        raise ToolTimeout(f"{what} timed out after {timeout_s:.1f} s")


@mlflow.trace(span_type=SpanType.TOOL)
def lookup_account_balance(user_id: str) -> dict:
    """Read the balance of the user's primary account from the core banking service."""
    _backend_call(60, 300, 5.0, "balance service (GET /v2/accounts/primary)")
    rng = _behaviour.get().rng
    account = int(hashlib.sha1(user_id.encode()).hexdigest()[:6], 16) % 99_999
    return {"account": f"ACC-{account:05d}", "balance": round(rng.uniform(12, 9_500), 2),
            "currency": "USD"}


@mlflow.trace(span_type=SpanType.TOOL)
def get_order_status(order_id: str) -> dict:
    """Ask the order service where an order is."""
    _backend_call(50, 250, 3.0, f"order service (GET /orders/{order_id})")
    rng = _behaviour.get().rng
    return {"order_id": order_id, "status": rng.choice(["processing", "shipped", "delivered"]),
            "carrier": rng.choice(["UPS", "DHL", "USPS"])}


@mlflow.trace(span_type=SpanType.TOOL)
def create_refund_ticket(order_id: str) -> dict:
    """Open a refund ticket in the helpdesk."""
    _backend_call(80, 400, 4.0, "helpdesk API (POST /tickets)")
    return {"ticket": f"RF-{_behaviour.get().rng.randint(10_000, 99_999)}",
            "order_id": order_id, "status": "open"}


_TOOL_FUNCS = {"lookup_account_balance": lookup_account_balance,
               "get_order_status": get_order_status,
               "create_refund_ticket": create_refund_ticket}


def _call_tool(name: str, user_id: str, order_ids: list[str]) -> dict:
    """Run a tool, retrying once after a timeout as the app's backends allow."""
    arg = user_id if name == "lookup_account_balance" else (order_ids or ["10042"])[0]
    try:
        return _TOOL_FUNCS[name](arg)
    except ToolTimeout:
        _work(200, 500)
        return _TOOL_FUNCS[name](arg)


@mlflow.trace(span_type=SpanType.PARSER)
def format_response(completion: dict) -> str:
    """Take the assistant's text out of the model response."""
    _work(0.2, 2)
    return completion["choices"][0]["message"]["content"]


# ---- the app ----------------------------------------------------------------------------------

def create_app(deployment: Deployment, experiment_name: str = DEFAULT_EXPERIMENT) -> FastAPI:
    """The chat app for one deployment; its traces go to the active MLflow experiment."""
    app = FastAPI(title="Acme support chat")
    app.add_middleware(_SimulatedTimeMiddleware)
    # Recent turns per session, so follow-up questions carry the conversation to the model.
    history: dict[str, deque] = defaultdict(lambda: deque(maxlen=6))

    @app.exception_handler(UpstreamError)
    def upstream_failed(request: Request, exc: UpstreamError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.post("/chat")  # FastAPI's decorator outermost, so FastAPI calls the traced function
    @mlflow.trace(span_type=SpanType.CHAIN)
    def handle_chat(request: Request, chat_request: ChatRequest) -> dict:
        client_request_id = request.headers.get("X-Request-ID")
        session_id = request.headers.get("X-Session-ID")
        user_id = request.headers.get("X-User-ID")
        fault = request.headers.get("X-Simulate-Fault")
        environment = {"environment": deployment.environment,
                       "app_version": deployment.app_version,
                       "deployment_id": deployment.deployment_id,
                       "region": deployment.region}
        if customer := request.headers.get("X-Customer"):
            environment["customer"] = customer
        if deployment.context_in_metadata:
            mlflow.update_current_trace(client_request_id=client_request_id, tags=environment,
                                        session_id=session_id, user=user_id)
        else:
            context = {"mlflow.trace.session": session_id, "mlflow.trace.user": user_id}
            mlflow.update_current_trace(client_request_id=client_request_id, tags={
                **{k: v for k, v in context.items() if v is not None}, **environment})
        # The decorator captured the raw Request object; record what the user asked instead.
        span = mlflow.get_current_active_span()
        assert span is not None  # inside @mlflow.trace
        span.set_inputs({"message": chat_request.message})

        tool_failures = {FAULT_TOOL_TIMEOUT: 2, FAULT_TOOL_RETRY: 1}.get(fault or "", 0)
        _behaviour.set(_Behaviour(rng=_rng_for(client_request_id or "", chat_request.message),
                                  fault=fault, tool_failures=tool_failures))
        parsed = parse_request(chat_request.message)
        messages = [{"role": "system", "content": _SYSTEM_PROMPT}]
        if parsed["intent"] in ("faq", "refund"):
            docs = rerank_documents(chat_request.message,
                                    retrieve_documents(chat_request.message))
            messages.append({"role": "system", "content": "Context:\n" + "\n".join(
                d["page_content"] for d in docs)})
        turns = history[session_id or ""]
        messages += [*turns, {"role": "user", "content": chat_request.message}]
        tools = ([{"type": "function", "function": {"name": parsed["tool"],
                                                    "description": _TOOLS[parsed["tool"]]}}]
                 if parsed["tool"] else None)
        completion = chat_completion(messages, tools=tools)
        if tools:
            call = completion["choices"][0]["message"]
            result = _call_tool(parsed["tool"], user_id or "", parsed["order_ids"])
            messages += [call, {"role": "tool", "tool_call_id": call["tool_calls"][0]["id"],
                                "content": ", ".join(f"{k}: {v}" for k, v in result.items())}]
            completion = chat_completion(messages, tools=tools)
        response_text = format_response(completion)
        turns.extend([{"role": "user", "content": chat_request.message},
                      {"role": "assistant", "content": response_text}])
        return {"response": response_text}

    @app.post("/chat_feedback")
    def handle_chat_feedback(
        request: Request,
        feedback: FeedbackRequest,
        client_request_id: str = Query(..., description="The client request ID from the "
                                                        "original chat request"),
    ) -> dict:
        """Collect user feedback for the chat interaction identified by client_request_id."""
        client = MlflowClient()
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is None:
            raise HTTPException(status_code=404, detail=f"No experiment {experiment_name!r}")
        traces = client.search_traces(
            locations=[experiment.experiment_id],
            filter_string=f"attributes.client_request_id = '{client_request_id}'",
            max_results=1, include_spans=False)
        if not traces:
            raise HTTPException(status_code=404, detail="Unable to find data for client "
                                                        f"request ID: {client_request_id}")
        mlflow.log_feedback(
            trace_id=traces[0].info.trace_id,
            name="response_is_correct",
            value=feedback.is_correct,
            source=AssessmentSource(source_type="HUMAN",
                                    source_id=request.headers.get("X-User-ID")),
            rationale=feedback.comment)
        return {"status": "success", "message": "Feedback recorded successfully",
                "trace_id": traces[0].info.trace_id, "client_request_id": client_request_id,
                "feedback_by": request.headers.get("X-User-ID")}

    return app


app = create_app(Deployment.from_env(), os.getenv("MLFLOW_EXPERIMENT_NAME", DEFAULT_EXPERIMENT))
