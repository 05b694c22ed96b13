"""Schemas for /openapi.json only: the handlers parse requests themselves (see perception.py)
to keep the hot path lean and every error in one shape, so these models only describe the wire."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from ..deadline import CALLER_HEADERS
from ..request_params import CHAT_PARAMETERS


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = Field(default=None, description="The request parameter at fault, when one is.")
    code: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None


class StreamOptions(BaseModel):
    include_usage: bool = Field(default=False, description=CHAT_PARAMETERS["stream_options"].doc)


class JsonSchemaFormat(BaseModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = Field(default=None, description="Required when type is json_schema.")


def _doc(name: str) -> str:
    return CHAT_PARAMETERS[name].doc


def _refused() -> str:
    lines = [f"- `{name}`: {p.doc}" for name, p in CHAT_PARAMETERS.items() if p.handling == "refused"]
    return "\n".join(lines)


class ChatCompletionRequest(BaseModel):
    model: str | None = Field(default=None, description=_doc("model"))
    messages: list[ChatMessage] = Field(min_length=1, description=_doc("messages"))
    stream: bool = Field(default=False, description=_doc("stream"))
    stream_options: StreamOptions | None = None
    user: str | None = Field(default=None, description=_doc("user"))
    temperature: float | None = Field(default=None, ge=0, le=2, description=_doc("temperature"))
    top_p: float | None = Field(default=None, ge=0, le=1, description=_doc("top_p"))
    seed: int | None = Field(default=None, description=_doc("seed"))
    presence_penalty: float | None = Field(default=None, ge=-2, le=2, description=_doc("presence_penalty"))
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2, description=_doc("frequency_penalty"))
    max_tokens: int | None = Field(default=None, ge=1, description=_doc("max_tokens"))
    max_completion_tokens: int | None = Field(default=None, ge=1, description=_doc("max_completion_tokens"))
    stop: str | list[str] | None = Field(default=None, description=_doc("stop"))
    response_format: ResponseFormat | None = Field(default=None, description=_doc("response_format"))


ChatCompletionRequest.__doc__ = (
    "An OpenAI chat completions request. Every parameter is honoured as described, or refused with "
    "a 400 whose error.param names it; nothing is accepted and ignored. A null value counts as absent; "
    "a key not listed here or below is refused (unknown_parameter).\n\nRefused parameters:\n" + _refused()
)


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter", "function_call"] = Field(
        description="The model's, passed through (also in the last chunk of a stream); length = cut off at "
        "max_tokens. rules: stop, or length when max_tokens cut the reply."
    )


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    system_fingerprint: str
    choices: list[Choice]
    usage: CompletionUsage


class SessionMessageRequest(BaseModel):
    content: str = Field(min_length=1)


class ToolCall(BaseModel):
    name: str
    arguments: dict[str, Any]
    outcome: str


class SessionUsage(BaseModel):
    inputTokens: int
    outputTokens: int
    totalTokens: int


class SessionMessageResponse(BaseModel):
    sessionId: str
    reply: str
    toolCalls: list[ToolCall]
    usage: SessionUsage


class HistoryMessage(BaseModel):
    role: str
    content: str
    at: float
    toolCalls: list[ToolCall] | None = None


class SessionHistory(BaseModel):
    sessionId: str
    turns: int
    messages: list[HistoryMessage]


class InputText(BaseModel):
    type: Literal["input_text", "output_text"] = Field(description="output_text only in assistant messages.")
    text: str


class InputMessage(BaseModel):
    type: Literal["message"] = "message"
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[InputText]


class ConversationRef(BaseModel):
    id: str


class ResponsesRequest(BaseModel):
    """`POST /v1/responses`. Any other parameter with a value is refused with 400 naming it in
    `error.param` (among them tools, tool_choice, parallel_tool_calls, top_p, reasoning, background,
    include, prompt, text other than plain text, truncation other than disabled); null, `tools: []`,
    `include: []` count as absent. The chat completions deadline applies (spec.model.timeoutSeconds)."""

    model: str | None = Field(default=None, description="Ignored: the agent's configured model answers.")
    input: str | list[InputMessage] = Field(
        description="A user message, or messages (no other item types); the last must be a user message."
    )
    instructions: str | None = Field(
        default=None,
        description="A system message for this turn only, after the Agent's own prompt; never stored.",
    )
    stream: bool = Field(default=False, description="SSE with the Responses event types.")
    store: bool | None = Field(
        default=None,
        description="false: nothing of this exchange is remembered. Default true on an Agent with a "
        "StatePolicy; true on an Agent without one is refused.",
    )
    previous_response_id: str | None = Field(
        default=None, description="Continues the session that response was stored in (its latest turn)."
    )
    conversation: str | ConversationRef | None = Field(
        default=None, description="A session id of the caller's choosing; not together with previous_response_id."
    )
    user: str | None = Field(default=None, description="Echoed in the response; not a session id here.")
    metadata: dict[str, str] | None = Field(default=None, description="Echoed in the response.")
    temperature: float | None = Field(
        default=None, ge=0, le=2, description="Sampling temperature (the Agent's when absent)."
    )
    max_output_tokens: int | None = Field(
        default=None, ge=1, description="Token limit of the answer, capped by the Agent's spec.model.maxTokens."
    )


class OutputText(BaseModel):
    type: Literal["output_text"]
    text: str
    annotations: list[Any]


class OutputMessage(BaseModel):
    type: Literal["message"]
    id: str
    status: Literal["in_progress", "completed", "incomplete"]
    role: Literal["assistant"]
    content: list[OutputText]


class ResponseUsage(BaseModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int


class AgentfleetExtension(BaseModel):
    tool_calls: list[ToolCall] = Field(description="The tools the agent ran itself (not for the caller to run).")


class ResponseObject(BaseModel):
    id: str = Field(description="resp_...; names its session when stored in one the runtime named.")
    object: Literal["response"]
    created_at: int
    status: Literal["completed", "incomplete", "failed", "in_progress"]
    incomplete_details: dict[str, str] | None = Field(description='{"reason": "max_output_tokens"} on length.')
    model: str
    output: list[OutputMessage]
    conversation: ConversationRef | None = Field(description="The session the exchange is stored in.")
    previous_response_id: str | None
    usage: ResponseUsage | None
    agentfleet: AgentfleetExtension


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }


REQUEST_MODELS: list[type[BaseModel]] = [ChatCompletionRequest, ResponsesRequest, SessionMessageRequest]


def timeout_headers() -> dict[str, Any]:
    """The caller's timeout headers, said in the operation's description: as declared header
    parameters, schemathesis' negative cases dropped the Authorization header along with them."""
    names = " or ".join(f"`{name}`" for name in CALLER_HEADERS)
    return {
        "description": f"Headers {names} (seconds the caller waits; the OpenAI SDKs send the second on every "
        "request, their read timeout) shorten the request's budget below the Agent's spec.model.timeoutSeconds; "
        "the runtime answers 504 model_timeout by the smaller of them. An unreadable value is a 400."
    }


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorResponse, "description": "error"} for code in codes}


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the request models (the handlers parse bodies themselves, so FastAPI
    cannot see them) and bearer auth on every /v1/ operation; built once, then cached on the app."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in REQUEST_MODELS:
            definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(definition.pop("$defs", {}))
            components[model.__name__] = definition
        schema["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        for path, operations in schema["paths"].items():
            if path.startswith("/v1/"):
                for operation in operations.values():
                    operation["security"] = [{"bearer": []}]
        app.openapi_schema = schema
    return app.openapi_schema
