"""Is an external Redis usable? Connect, AUTH with the password the agents will use, PING, within a
short timeout. The answer becomes the StatePolicy's StoreReachable condition, and through it the
StateReady condition of every Agent using the policy, instead of an Unknown that reads as fine.

Only AUTH and PING are spoken, so a few lines of RESP replace a client library the operator would
otherwise have to carry; nothing is read from or written to the store."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

from ..api import reasons

DEFAULT_PORT = 6379


@dataclass(frozen=True)
class ProbeResult:
    reachable: bool
    reason: str  # Reachable | ConnectionRefused | AuthFailed | Timeout | Unreachable
    message: str


def _command(*parts: str) -> bytes:
    out = [f"*{len(parts)}\r\n".encode()]
    for part in parts:
        data = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


async def _reply(reader: asyncio.StreamReader) -> str:
    line = await reader.readline()
    if not line:
        raise ConnectionResetError("the server closed the connection")
    return line.decode(errors="replace").rstrip("\r\n")


def _auth_refused(reply: str) -> bool:
    words = reply[1:].split(" ", 1)
    return reply.startswith("-") and (
        words[0] in ("WRONGPASS", "NOAUTH", "NOPERM") or "password" in reply.lower() or "auth" in reply.lower()
    )


async def _talk(host: str, port: int, tls: bool, username: str | None, password: str | None) -> ProbeResult:
    where = f"{host}:{port}"
    reader, writer = await asyncio.open_connection(host, port, ssl=ssl.create_default_context() if tls else None)
    try:
        if password is not None:
            writer.write(_command("AUTH", username, password) if username else _command("AUTH", password))
            await writer.drain()
            reply = await _reply(reader)
            if reply.startswith("-"):
                return ProbeResult(False, reasons.AUTH_FAILED, f"Redis at {where} refused AUTH: {reply[1:]}")
        writer.write(_command("PING"))
        await writer.drain()
        reply = await _reply(reader)
        if reply == "+PONG":
            return ProbeResult(True, reasons.REACHABLE, f"Redis at {where} answered PING")
        if _auth_refused(reply):
            return ProbeResult(False, reasons.AUTH_FAILED, f"Redis at {where} wants a password: {reply[1:]}")
        return ProbeResult(False, reasons.UNREACHABLE, f"Redis at {where} answered PING with {reply[:200]!r}")
    finally:
        writer.close()
        with contextlib.suppress(OSError):  # the answer is known; a failing close changes nothing
            await writer.wait_closed()


async def probe_redis(url: str, password: str | None, timeout: float) -> ProbeResult:
    """password: from the StatePolicy's Secret; None falls back to the URL's, then to no AUTH."""
    parsed = urlparse(url)
    host = parsed.hostname or ""
    try:
        port = parsed.port or DEFAULT_PORT
    except ValueError:
        return ProbeResult(False, reasons.UNREACHABLE, "the Redis URL has an invalid port")
    if parsed.scheme not in ("redis", "rediss") or not host:
        return ProbeResult(False, reasons.UNREACHABLE, "the Redis URL is not redis://host:port or rediss://host:port")
    if password is None and parsed.password is not None:
        password = unquote(parsed.password)
    username = unquote(parsed.username) if parsed.username else None
    where = f"{host}:{port}"  # never the URL itself: it may carry a password
    try:
        return await asyncio.wait_for(_talk(host, port, parsed.scheme == "rediss", username, password), timeout)
    except TimeoutError:
        return ProbeResult(False, reasons.TIMEOUT, f"Redis at {where} did not answer within {timeout:g}s")
    except ConnectionRefusedError:
        return ProbeResult(False, reasons.CONNECTION_REFUSED, f"nothing accepts connections at {where}")
    except (OSError, ssl.SSLError) as exc:
        return ProbeResult(False, reasons.UNREACHABLE, f"Redis at {where}: {exc.__class__.__name__}: {exc}"[:500])
