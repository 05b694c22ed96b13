"""The shared plumbing of the fake servers: a threaded HTTP server on a free loopback port."""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: Any = None


class JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; with Nagle on, the body waits for the client's delayed
    # ACK (about 40 ms on Linux), which would be a latency the real services do not have.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    @property
    def owner(self) -> Any:
        return self.server.owner

    @property
    def route(self) -> str:
        return urlsplit(self.path).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query)

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


class FakeServer:
    """Start/stop and context-manager plumbing; subclasses set `handler`."""

    handler: type[JsonHandler]

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host, self._port = host, port
        # Set before start() to serve HTTPS with this context (a certificate of tests/fakes/tls.py).
        self.tls: ssl.SSLContext | None = None
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.lock = threading.Lock()
        # Set on stop so handlers parked in a "hang" mode return and the threads end.
        self.released = threading.Event()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls is not None else 'http'}://{self._host}:{self.port}"

    def start(self) -> FakeServer:
        self.released.clear()
        self._httpd = _Server((self._host, self._port), self.handler)
        if self.tls is not None:
            # Handshakes happen in accept(); one a client refuses is an OSError the server shrugs off.
            self._httpd.socket = self.tls.wrap_socket(self._httpd.socket, server_side=True)
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Run in the foreground (subprocess use) until interrupted."""
        self.start()
        print(f"listening on {self.base_url}", flush=True)
        try:
            self.released.wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
