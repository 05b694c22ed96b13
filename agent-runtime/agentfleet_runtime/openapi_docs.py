"""Schemas for /openapi.json only: the handlers parse requests themselves (see perception.py)
to keep the hot path lean and every error in one shape, so these models only describe the wire."""

from __future__ import annotations

from typing import Any, Literal

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
