"""A scriptable OpenAI-compatible chat completions server (POST /v1/chat/completions).

Default behaviour: answers "Echo: <last user message>"; after a tool result it answers
"Tool result: <content>". Scripting:

    llm = FakeLLM().start()
    llm.respond_with_tool_call(r"customer (?P<email>\\S+@\\S+)", "lookup_customer", {"email": "{email}"})
    llm.fail_with_429(times=2, retry_after="1")   # then succeed
    llm.mode = "error"                           # every call answers 500
    llm.mode = "hang"                            # every call waits (until stop or hang_seconds)
    llm.delay = 0.5                              # seconds before any answer
    llm.stream_chunk_delay = 0.2                 # seconds between streamed chunks
    llm.finish_reason = "content_filter"         # the finish_reason of every answer
    llm.requests                                 # every request body received, in order

Like a real model, it honours `max_tokens` / `max_completion_tokens` (a token is a word here):
a longer reply is cut and ends with finish_reason "length".
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from ._server import FakeServer, JsonHandler


@dataclass
class ToolRule:
    pattern: re.Pattern[str]
    tool: str
    arguments: dict[str, str] = field(default_factory=dict)


def _words(text: str) -> int:
    return len(text.split())


class _LLMHandler(JsonHandler):
    owner: FakeLLM

    def do_GET(self) -> None:
        if self.route.rstrip("/") == "/v1/models":
            self.send_json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
        else:
            self.send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_POST(self) -> None:
        llm = self.owner
        raw = self.read_body()
        if self.route.rstrip("/") != "/v1/chat/completions":
            self.send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self.send_json(400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}})
            return
        with llm.lock:
            llm.requests.append(body)
            llm.headers_seen.append(dict(self.headers))
            fail_429 = llm.fail_429_remaining > 0
            if fail_429:
                llm.fail_429_remaining -= 1
        if llm.api_key is not None and self.headers.get("Authorization") != f"Bearer {llm.api_key}":
            self.send_json(401, {"error": {"message": "bad key", "type": "invalid_request_error"}})
            return
        if llm.delay:
            llm.released.wait(llm.delay)
        if fail_429:
            self.send_json(
                429,
                {"error": {"message": "rate limited", "type": "rate_limit_error"}},
                {"Retry-After": llm.retry_after},
            )
            return
        if llm.mode == "hang":
            llm.released.wait(llm.hang_seconds)
            self.send_json(500, {"error": {"message": "hung", "type": "server_error"}})
            return
        if llm.mode == "error":
            self.send_json(500, {"error": {"message": "internal error", "type": "server_error"}})
            return
        message, finish = llm.limited(body, llm.decide(body))
        if body.get("stream"):
            self._stream(body, message, finish)
        else:
            self.send_json(200, llm.completion(body, message, finish))

    def _stream(self, body: dict[str, Any], message: dict[str, Any], finish: str) -> None:
        llm = self.owner
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        base = {
            "id": f"chatcmpl-fake{len(llm.requests)}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", "fake-model"),
        }

        def emit(payload: dict[str, Any] | str) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            self.wfile.write(f"data: {data}\n\n".encode())
            self.wfile.flush()

        emit({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
        if message.get("tool_calls"):
            for index, call in enumerate(message["tool_calls"]):
                arguments = call["function"]["arguments"]
                half = len(arguments) // 2
                emit(
                    {
                        **base,
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": None,
                                "delta": {
                                    "tool_calls": [
                                        {
                                            "index": index,
                                            "id": call["id"],
                                            "type": "function",
                                            "function": {
                                                "name": call["function"]["name"],
                                                "arguments": arguments[:half],
                                            },
                                        }
                                    ]
                                },
                            }
                        ],
                    }
                )
                emit(
                    {
                        **base,
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": None,
                                "delta": {
                                    "tool_calls": [{"index": index, "function": {"arguments": arguments[half:]}}]
                                },
                            }
                        ],
                    }
                )
        else:
            words = (message.get("content") or "").split(" ")
            for i, word in enumerate(words):
                if llm.stream_chunk_delay:
                    llm.released.wait(llm.stream_chunk_delay)
                emit(
                    {
                        **base,
                        "choices": [
                            {"index": 0, "finish_reason": None, "delta": {"content": word if i == 0 else " " + word}}
                        ],
                    }
                )
        emit({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            emit({**base, "choices": [], "usage": llm.usage(body, message)})
        emit("[DONE]")
        self.close_connection = True


class FakeLLM(FakeServer):
    handler = _LLMHandler

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, api_key: str | None = None) -> None:
        super().__init__(host, port)
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.headers_seen: list[dict[str, str]] = []
        self.tool_rules: list[ToolRule] = []
        self.fail_429_remaining = 0
        self.retry_after = "0"
        self.mode = "ok"  # ok | error | hang
        self.hang_seconds = 60.0
        self.delay = 0.0
        self.stream_chunk_delay = 0.0
        self.finish_reason: str | None = None

    @property
    def url(self) -> str:
        """The base URL an OpenAI client or the runtime's model.endpoint takes."""
        return f"{self.base_url}/v1"

    @property
    def request_count(self) -> int:
        with self.lock:
            return len(self.requests)

    def respond_with_tool_call(self, pattern: str, tool: str, arguments: dict[str, str] | None = None) -> None:
        """When the last user message matches, ask for `tool` with arguments filled from named groups."""
        self.tool_rules.append(ToolRule(re.compile(pattern, re.IGNORECASE), tool, arguments or {}))

    def fail_with_429(self, times: int, retry_after: str = "0") -> None:
        self.fail_429_remaining = times
        self.retry_after = retry_after

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.headers_seen.clear()
        self.tool_rules.clear()
        self.fail_429_remaining = 0
        self.mode, self.delay, self.stream_chunk_delay = "ok", 0.0, 0.0
        self.finish_reason = None

    def decide(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body.get("messages") or []
        last = messages[-1] if messages else {}
        if last.get("role") == "tool":
            return {"role": "assistant", "content": f"Tool result: {last.get('content')}"}
        text = next((str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), "")
        offered = {t["function"]["name"] for t in body.get("tools") or [] if isinstance(t, dict)}
        for rule in self.tool_rules:
            match = rule.pattern.search(text)
            if match and rule.tool in offered:
                groups = match.groupdict()
                arguments = {k: v.format(**groups) for k, v in rule.arguments.items()}
                return {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": f"call_{len(self.requests)}",
                            "type": "function",
                            "function": {"name": rule.tool, "arguments": json.dumps(arguments)},
                        }
                    ],
                }
        return {"role": "assistant", "content": f"Echo: {text}"}

    def limited(self, body: dict[str, Any], message: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """The message cut to the request's token limit, and its finish_reason."""
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        words = (message.get("content") or "").split(" ")
        if message.get("tool_calls"):
            finish = "tool_calls"
        elif isinstance(limit, int) and len(words) > limit:
            message, finish = {**message, "content": " ".join(words[:limit])}, "length"
        else:
            finish = "stop"
        return message, self.finish_reason or finish

    def usage(self, body: dict[str, Any], message: dict[str, Any]) -> dict[str, int]:
        prompt = sum(_words(str(m.get("content") or "")) for m in body.get("messages") or [])
        completion = _words(message.get("content") or "") + (5 if message.get("tool_calls") else 0)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def completion(self, body: dict[str, Any], message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
        return {
            "id": f"chatcmpl-fake{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake-model"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": self.usage(body, message),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description="fake OpenAI-compatible server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key")
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    llm = FakeLLM(port=args.port, api_key=args.api_key)
    llm.delay = args.delay
    llm.serve_forever()


if __name__ == "__main__":
    main()
