"""Who may write to a served index, from where, and how large a request may be.

    Guard(token=None, loopback=True)      # the app keeps one; routes that write depend on it

Writes (adding and removing items) need the bearer token when one is set; without a token they
are allowed only while the server listens on loopback, and never from a page of another origin
(a cross-origin form POST is a CORS "simple request" that browsers send without asking). The
launcher also pins the Host header to the names the server listens under (DNS rebinding), and
BodyLimit refuses a body larger than MAX_BODY_BYTES before anything parses it.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request

from ..hashing.errors import SemhashError

# An uploaded image may be 10 MiB (query.MAX_IMAGE_BYTES); multipart framing and a JSON batch of
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
    names = [host, "localhost", "127.0.0.1", "[::1]"]
    return list(dict.fromkeys(names))


class BodyLimit:
    """ASGI middleware: a 413 for a request body over `limit` bytes, by its Content-Length before
    any of it is read, else as soon as the streamed body passes the limit."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await self._refuse(send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send) -> None:
        body = json.dumps({"detail": f"request bodies are limited to {self.limit >> 20} MiB"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass
