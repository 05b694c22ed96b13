"""Demo stand-ins for the samples: a tiny OpenAI-compatible model and a tiny CRM.

They exist so the support-bot sample works end to end on a machine with no LLM provider and no
CRM (and where nothing a pod sends may leave the machine). They are not part of agentfleet and
not meant for anything but the demo: replace the Connector's and the Agent's endpoints with your
real systems.

    python demo_backends.py llm --port 8080   # POST /v1/chat/completions, GET /v1/models
    python demo_backends.py crm --port 8080   # POST /oauth/token, GET /api/customers, POST /api/tickets

The model follows one script: a message with an e-mail address makes it call `lookup_customer`;
after a tool result it answers with what the tool returned; anything else is echoed back. The
CRM checks the OAuth2 client credentials of the sample's `crm-creds` Secret (passed as
environment variables, never printed) and knows two customers. Standard library only, so any
Python 3 image runs it.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
CUSTOMERS = {
    "ada@example.com": {"id": "c-1001", "name": "Ada Lovelace", "tier": "gold", "openOrders": 2},
    "alan@example.com": {"id": "c-1002", "name": "Alan Turing", "tier": "silver", "openOrders": 0},
}


class JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "agentfleet-demo"

    def log_message(self, fmt: str, *args: Any) -> None:  # one line per request, no headers
        sys.stdout.write(f"{self.command} {urlsplit(self.path).path} {args[1] if len(args) > 1 else ''}\n")
        sys.stdout.flush()

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# --- the model -------------------------------------------------------------------------------


def completion(request: dict[str, Any]) -> dict[str, Any]:
    messages = request.get("messages") or []
    last = messages[-1] if messages else {}
    tools = {t.get("function", {}).get("name") for t in request.get("tools") or []}
    message: dict[str, Any]
    if last.get("role") == "tool":
        message = {"role": "assistant", "content": f"Here is what the CRM says: {last.get('content', '')}"}
        finish = "stop"
    else:
        text = str(last.get("content") or "")
        email = EMAIL.search(text)
        if email and "lookup_customer" in tools:
            call = {
                "id": f"call_{secrets.token_hex(6)}",
                "type": "function",
                "function": {"name": "lookup_customer", "arguments": json.dumps({"email": email.group(0)})},
            }
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": f"(demo model) You said: {text}"}
            finish = "stop"
    prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in messages)
    completion_tokens = len(str(message.get("content") or "").split())
    return {
        "id": f"chatcmpl-{secrets.token_hex(8)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "demo"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class LLMHandler(JsonHandler):
    api_key = ""

    def do_GET(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        if path == "/healthz":
            self.reply(200, {"status": "ok"})
        elif path == "/v1/models":
            self.reply(200, {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]})
        else:
            self.reply(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_POST(self) -> None:
        raw = self.body()
        if urlsplit(self.path).path.rstrip("/") != "/v1/chat/completions":
            self.reply(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
            return
        if self.api_key and self.headers.get("Authorization") != f"Bearer {self.api_key}":
            self.reply(401, {"error": {"message": "invalid API key", "type": "invalid_request_error"}})
            return
        try:
            request = json.loads(raw)
        except ValueError:
            self.reply(400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}})
            return
        self.reply(200, completion(request))


# --- the CRM ---------------------------------------------------------------------------------


class CRMHandler(JsonHandler):
    client_id = ""
    client_secret = ""
    tokens: set[str] = set()

    def authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header[7:] in self.tokens

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self.reply(200, {"status": "ok"})
            return
        if not self.authorized():
            self.reply(401, {"error": "unauthorized"})
            return
        if url.path.rstrip("/") == "/api/customers":
            email = (parse_qs(url.query).get("email") or [""])[0].lower()
            customer = CUSTOMERS.get(email)
            if customer:
                self.reply(200, {"email": email, **customer})
            else:
                self.reply(404, {"error": f"no customer with e-mail {email}"})
            return
        self.reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        raw = self.body()
        if url.path == "/oauth/token":
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            client = (form.get("client_id"), form.get("client_secret"))
            header = self.headers.get("Authorization", "")
            if header.startswith("Basic "):  # RFC 6749 2.3.1: credentials may come as HTTP Basic
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                client = (unquote_plus(user), unquote_plus(password))
            if form.get("grant_type") != "client_credentials":
                self.reply(400, {"error": "unsupported_grant_type"})
            elif client != (self.client_id, self.client_secret):
                self.reply(401, {"error": "invalid_client"})
            else:
                token = secrets.token_urlsafe(24)
                self.tokens.add(token)
                self.reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})
            return
        if not self.authorized():
            self.reply(401, {"error": "unauthorized"})
            return
        if url.path.rstrip("/") == "/api/tickets":
            ticket = json.loads(raw or b"{}")
            self.reply(201, {"id": f"t-{secrets.token_hex(4)}", "subject": ticket.get("subject", "")})
            return
        self.reply(404, {"error": "not found"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=["llm", "crm"])
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    handler: type[JsonHandler]
    if args.role == "llm":
        LLMHandler.api_key = os.environ.get("DEMO_API_KEY", "")
        handler = LLMHandler
    else:
        CRMHandler.client_id = os.environ.get("DEMO_CLIENT_ID", "")
        CRMHandler.client_secret = os.environ.get("DEMO_CLIENT_SECRET", "")
        handler = CRMHandler
    server = ThreadingHTTPServer(("0.0.0.0", args.port), handler)
    # As a container's PID 1 the program would otherwise ignore SIGTERM and live out the grace period.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"demo {args.role} listening on :{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
