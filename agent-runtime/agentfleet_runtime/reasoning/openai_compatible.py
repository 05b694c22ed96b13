"""Reasoning with any OpenAI-compatible chat completions endpoint, tools included.

The model is asked, its tool calls are executed and their results handed back, until it
answers in text or `maxToolSteps` rounds of tools have run (then it must answer without tools).
Calls are retried on 429/5xx and transport errors with exponential backoff, honouring
Retry-After; a stream is retried only before its first byte. A request's deadline (deadline.py)
bounds all of it; the caller's parameters (request_params.py) go into every call, and the last
call's finish_reason is the answer's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from ..config import ModelConfig
from ..deadline import Deadline, bounded
from ..errors import UpstreamError
from ..metrics import RuntimeMetrics
from ..request_params import ModelParams, defaults
from ..retry_delay import MODEL_RETRIES, retry_delay
from ..secretfiles import SecretFile
from ..tls import untrusted_message
from ..tools.toolbox import ToolBox, ToolCallRecord
from .base import ReasoningResult, StreamEvent, Usage, estimate_tokens

log = logging.getLogger(__name__)

_RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504}
# What OpenAI's API reference lists; anything else a compatible server invents reads as "stop".
FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter", "function_call"}


def finish_reason(value: Any) -> str:
    return value if value in FINISH_REASONS else "stop"


class OpenAICompatibleReasoner:
    def __init__(self, config: ModelConfig, http: httpx.AsyncClient, metrics: RuntimeMetrics | None) -> None:
        assert config.endpoint is not None  # enforced by the config model
        self.config = config
        self.url = config.endpoint.rstrip("/") + "/chat/completions"
        self.http = http
        self.metrics = metrics
        self._api_key = SecretFile(config.api_key_file) if config.api_key_file else None

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = self._api_key.value() if self._api_key else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _payload(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, stream: bool, params: ModelParams
    ) -> dict:
        payload: dict[str, Any] = {"model": self.config.name, "messages": messages, **params.upstream()}
        if tools:
            payload["tools"] = tools
        if stream:
            payload["stream"] = True
            payload["stream_options"] = {"include_usage": True}
        return payload

    async def _send(self, payload: dict[str, Any], *, stream: bool, deadline: Deadline | None) -> httpx.Response:
        """POST with retries; the returned response is open (streamed) when `stream`."""
        attempts = self.config.max_retries + 1
        for attempt in range(1, attempts + 1):
            per_attempt = self.config.timeout_seconds
            if deadline is not None:
                per_attempt = deadline.attempt_timeout(per_attempt)
                deadline.attempts += 1
            request = self.http.build_request(
                "POST", self.url, json=payload, headers=self._headers(), timeout=httpx.Timeout(per_attempt)
            )
            try:
                async with bounded(deadline, "waiting for the model"):
                    response = await self.http.send(request, stream=stream)
            except httpx.TimeoutException:
                if deadline is not None:
                    deadline.last_error = f"timed out after {per_attempt:.3g} s"
                if attempt < attempts:
                    await self._pause(attempt, None, deadline)
                    continue
                tried = f" ({attempts} attempts of {per_attempt:.3g} s at most)" if attempts > 1 else ""
                raise UpstreamError(
                    f"the model did not answer in time{tried}", code="model_timeout", status=504
                ) from None
            except httpx.HTTPError as exc:
                untrusted = untrusted_message("the model endpoint", exc, "spec.model.caBundleSecretRef")
                if untrusted is not None:  # the same certificate on every attempt: no retry
                    log.warning("model call failed", extra={"error": "tls_untrusted"})
                    raise UpstreamError(untrusted, code="model_tls_untrusted") from None
                if deadline is not None:
                    deadline.last_error = f"failed ({type(exc).__name__})"
                if attempt < attempts:
                    await self._pause(attempt, None, deadline)
                    continue
                raise UpstreamError(f"the model is unreachable ({type(exc).__name__})") from None
            if response.status_code == 200:
                return response
            await response.aclose()
            status = response.status_code
            if deadline is not None:
                deadline.last_error = f"answered HTTP {status}"
            log.warning("model call failed", extra={"status": status, "attempt": attempt})
            if status in _RETRY_STATUSES and attempt < attempts:
                await self._pause(attempt, response.headers.get("retry-after"), deadline)
                continue
            code = "model_rate_limited" if status == 429 else "model_unavailable"
            if status in (401, 403):
                code = "model_auth_failed"  # never echo the key; the status says enough
            raise UpstreamError(f"the model endpoint answered HTTP {status}", code=code)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _pause(self, attempt: int, retry_after: str | None, deadline: Deadline | None) -> None:
        """Wait before the next attempt; when that wait would end past the deadline, give up now."""
        delay = retry_delay(attempt, retry_after, MODEL_RETRIES)
        if deadline is not None and delay >= deadline.remaining():
            deadline.activity = f"a retry after {delay:.3g} s would have ended past it"
            raise deadline.exceeded()
        await asyncio.sleep(delay)

    def _observe(self, started: float, usage: Usage) -> None:
        if self.metrics is not None:
            self.metrics.model_operation(time.perf_counter() - started, usage.input_tokens, usage.output_tokens)

    async def _complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        params: ModelParams,
        deadline: Deadline | None,
    ) -> tuple[dict[str, Any], str, Usage]:
        started = time.perf_counter()
        payload = self._payload(messages, tools, False, params)
        response = await self._send(payload, stream=False, deadline=deadline)
        try:
            data = response.json()
            choice = data["choices"][0]
            message = choice["message"]
            if not isinstance(message, dict):
                raise TypeError
        except (ValueError, KeyError, IndexError, TypeError):
            raise UpstreamError("the model sent a malformed response", code="model_bad_response") from None
        usage = _usage(data.get("usage"), messages, message.get("content") or "")
        self._observe(started, usage)
        return message, finish_reason(choice.get("finish_reason")), usage

    async def _run_tools(
        self, calls: list[dict[str, Any]], tools: ToolBox, records: list[ToolCallRecord]
    ) -> list[dict[str, Any]]:
        async def one(call: dict[str, Any]) -> dict[str, Any]:
            function = call.get("function") or {}
            name = str(function.get("name", ""))
            raw_args = function.get("arguments") or "{}"
            result = await tools.call(name, raw_args)
            try:
                args = json.loads(raw_args) if isinstance(raw_args, str) else raw_args
            except ValueError:
                args = {}
            records.append(ToolCallRecord(name, args if isinstance(args, dict) else {}, result.outcome))
            return {"role": "tool", "tool_call_id": str(call.get("id", "")), "content": result.content}

        return list(await asyncio.gather(*(one(call) for call in calls)))

    async def _tool_round(
        self,
        calls: list[dict[str, Any]],
        tools: ToolBox,
        records: list[ToolCallRecord],
        deadline: Deadline | None,
    ) -> list[dict[str, Any]]:
        names = ", ".join(sorted({str((call.get("function") or {}).get("name", "")) for call in calls}))
        async with bounded(deadline, f"tool {names} was running"):
            return await self._run_tools(calls, tools, records)

    async def answer(
        self,
        conversation: list[dict[str, Any]],
        tools: ToolBox,
        params: ModelParams | None = None,
        deadline: Deadline | None = None,
    ) -> ReasoningResult:
        params = params or defaults(self.config)
        messages, records, total = list(conversation), [], Usage()
        for step in range(self.config.max_tool_steps + 1):
            offered = tools.definitions() if tools and step < self.config.max_tool_steps else None
            message, reason, usage = await self._complete(messages, offered, params, deadline)
            total.add(usage)
            calls = message.get("tool_calls") or []
            if calls and offered:
                messages.append({"role": "assistant", "content": message.get("content"), "tool_calls": calls})
                messages.extend(await self._tool_round(calls, tools, records, deadline))
                continue
            return ReasoningResult(str(message.get("content") or ""), records, total, reason)
        raise AssertionError("unreachable")  # pragma: no cover

    async def stream(
        self,
        conversation: list[dict[str, Any]],
        tools: ToolBox,
        params: ModelParams | None = None,
        deadline: Deadline | None = None,
    ) -> AsyncIterator[StreamEvent]:
        params = params or defaults(self.config)
        messages, records, total = list(conversation), [], Usage()
        for step in range(self.config.max_tool_steps + 1):
            offered = tools.definitions() if tools and step < self.config.max_tool_steps else None
            started = time.perf_counter()
            payload = self._payload(messages, offered, True, params)
            response = await self._send(payload, stream=True, deadline=deadline)
            text_parts: list[str] = []
            calls: dict[int, dict[str, Any]] = {}
            usage_data: Any = None
            reason = "stop"
            try:
                async for data in _sse_events(response, deadline):
                    if data.get("usage"):
                        usage_data = data["usage"]
                    for choice in data.get("choices") or []:
                        if choice.get("finish_reason"):
                            reason = finish_reason(choice["finish_reason"])
                        delta = choice.get("delta") or {}
                        if delta.get("content"):
                            text_parts.append(delta["content"])
                            yield delta["content"]
                        for call in delta.get("tool_calls") or []:
                            _merge_tool_call(calls, call)
            except httpx.HTTPError as exc:
                raise UpstreamError(f"the model stream broke off ({type(exc).__name__})") from None
            finally:
                await response.aclose()
            usage = _usage(usage_data, messages, "".join(text_parts))
            self._observe(started, usage)
            total.add(usage)
            if calls and offered:
                ordered = [calls[i] for i in sorted(calls)]
                messages.append({"role": "assistant", "content": "".join(text_parts) or None, "tool_calls": ordered})
                messages.extend(await self._tool_round(ordered, tools, records, deadline))
                continue
            yield ReasoningResult("".join(text_parts), records, total, reason)
            return

    async def aclose(self) -> None:
        return None


def _merge_tool_call(calls: dict[int, dict[str, Any]], delta: dict[str, Any]) -> None:
    index = int(delta.get("index", 0))
    call = calls.setdefault(index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
    if delta.get("id"):
        call["id"] = delta["id"]
    function = delta.get("function") or {}
    if function.get("name"):
        call["function"]["name"] += function["name"]
    if function.get("arguments"):
        call["function"]["arguments"] += function["arguments"]


async def _lines(response: httpx.Response, deadline: Deadline | None) -> AsyncIterator[str]:
    """The stream's lines, each wait for one bounded by the deadline (never across a yield)."""
    lines = response.aiter_lines()
    while True:
        async with bounded(deadline, "the model was streaming"):
            try:
                line = await anext(lines)
            except StopAsyncIteration:
                return
        yield line


async def _sse_events(response: httpx.Response, deadline: Deadline | None) -> AsyncIterator[dict[str, Any]]:
    async for line in _lines(response, deadline):
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            data = json.loads(payload)
        except ValueError:
            continue
        if isinstance(data, dict):
            if "error" in data:
                raise UpstreamError("the model reported an error mid-stream")
            yield data


def _usage(data: Any, messages: list[dict[str, Any]], reply: str) -> Usage:
    if isinstance(data, dict):
        try:
            return Usage(int(data.get("prompt_tokens", 0)), int(data.get("completion_tokens", 0)))
        except (TypeError, ValueError):
            pass
    prompt = sum(estimate_tokens(str(m.get("content") or "")) for m in messages)
    return Usage(prompt, estimate_tokens(reply))
