"""Schemas for /openapi.json only: the handlers parse requests themselves (see perception.py)
to keep the hot path lean and every error in one shape, so these models only describe the wire."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    message: str
    type: str
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
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model: str | None = Field(default=None, description="Ignored: the agent's configured model answers.")
    messages: list[ChatMessage] = Field(min_length=1, description="The last one must be a user message.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(default=None, description="Session id when no X-Session-ID header is sent.")


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: str


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


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }


REQUEST_MODELS: list[type[BaseModel]] = [ChatCompletionRequest, SessionMessageRequest]


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
