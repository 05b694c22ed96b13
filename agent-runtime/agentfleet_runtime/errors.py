"""Errors that reach callers, in the OpenAI shape {"error": {"message", "type", "code"}}."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error with a status code and a message that is safe to show to the caller."""

    def __init__(
        self, status: int, message: str, *, type: str = "invalid_request_error", code: str, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.code, self.param)


def error_body(message: str, type: str, code: str, param: str | None = None) -> dict[str, Any]:
    # OpenAI's shape names the offending request parameter in `param` (the SDK reads it into
    # APIError.param); it is added only when one parameter is to blame.
    error: dict[str, Any] = {"message": message, "type": type, "code": code}
    if param is not None:
        error["param"] = param
    return {"error": error}


def bad_request(message: str, code: str = "invalid_request") -> ApiError:
    return ApiError(400, message, code=code)


class UpstreamError(Exception):
    """The model provider failed after retries; `code` tells which way."""

    def __init__(self, message: str, *, code: str = "model_unavailable", status: int = 502) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
