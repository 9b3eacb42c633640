"""Who may write to a served index, from where, and how large a request may be.

    Guard(token=None, loopback=True)      # the app keeps one; routes that write depend on it

Writes (adding and removing items) need the bearer token when one is set; without a token they
are allowed only while the server listens on loopback, and never from a page of another origin
(a cross-origin form POST is a CORS "simple request" that browsers send without asking). The
launcher also pins the Host header to the names the server listens under (DNS rebinding), and
Gate refuses a body larger than MAX_BODY_BYTES before anything parses it.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request

from ...hashing.errors import SemhashError

# An uploaded image may be 10 MiB (hashing/inputs/images.py MAX_BYTES); multipart framing and a JSON batch of
# vectors fit in the rest. Measured before this bound: a 40 MB JSON body was parsed (+950 MB,
# the event loop blocked 3.2 s) before it was refused.
MAX_BODY_BYTES = 12 << 20
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class Forbidden(SemhashError):
    http_status = 403


class Unauthorized(SemhashError):
    http_status = 401


@dataclass(frozen=True)
class Guard:
    token: str | None = None
    loopback: bool = True  # the server listens on loopback only

    def check_write(self, request: Request) -> None:
        """Raise Unauthorized/Forbidden unless this request may change the index."""
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
            raise Forbidden(f"writes from another origin ({origin}) are refused")
        if self.token is None:
            if not self.loopback:
                raise Forbidden("this server listens beyond loopback without a token: writes are refused")
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
            raise Unauthorized("writes need the server's token: Authorization: Bearer <token>")


async def require_writer(request: Request) -> None:
    """Route dependency: the app's Guard lets this request write (async: no thread-pool hop)."""
    request.app.state.guard.check_write(request)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str) -> list[str]:
    """Host headers a server listening on `host` answers: its loopback names, or anything when it
    listens on every interface (then the token guards writes)."""
    if host in ("0.0.0.0", "::", ""):
        return ["*"]
    names = [host, "localhost", "127.0.0.1", "[::1]", "::1"]
    return list(dict.fromkeys(names))


class Gate:
    """ASGI middleware, one pass over the headers per request: a 400 for a Host header the server
    does not answer to (hosts None: any), a 413 for a body over `limit` bytes - by its
    Content-Length before any of it is read (the HTTP parser holds the body to that length), else,
    for a chunked body, as soon as the stream passes the limit. Measured: Starlette's
    TrustedHostMiddleware plus a separate body limit cost 15% of two workers' k-NN throughput."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES, hosts: list[str] | None = None):
        self.app, self.limit = app, limit
        self.hosts = None if hosts is None or "*" in hosts else {h.encode() for h in hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        host = length = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"content-length":
                length = value
        if self.hosts is not None and (host or b"").rsplit(b":", 1)[0] not in self.hosts:
            return await _reply(send, 400, "this server does not answer to that Host header")
        if length is not None:
            if not length.isdigit() or int(length) > self.limit:
                return await _reply(send, 413, f"request bodies are limited to {self.limit >> 20} MiB")
            return await self.app(scope, receive, send)
        try:
            await self.app(scope, self._limited(receive), send)
        except _TooLarge:
            await _reply(send, 413, f"request bodies are limited to {self.limit >> 20} MiB")

    def _limited(self, receive):
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        return limited


async def _reply(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass
