"""Fault injection: a mutable ``Faults`` record and the ASGI middleware that applies it."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from .fake import FakeComfyUI

log = logging.getLogger(__name__)

INTERNAL_ERROR_TEXT = b"500 Internal Server Error\n\nServer got itself in trouble"
UNAUTHORIZED_TEXT = b"401: Unauthorized"


@dataclass
class Faults:
    """Knobs read on every request. Route keys are paths without the prefix and ``/api``
    (``"/prompt"``, ``"/history/*"``; fnmatch patterns allowed)."""

    hang_http: bool = False
    http_errors: dict[str, int] = field(default_factory=dict)
    malformed_json: set[str] = field(default_factory=set)
    ws_silent: bool = False
    reject_ws_status: int | None = None
    require_headers: dict[str, str] = field(default_factory=dict)
    require_query: dict[str, str] = field(default_factory=dict)
    require_cookies: dict[str, str] = field(default_factory=dict)
    http_delay: float = 0.0

    def clear(self) -> None:
        fresh = Faults()
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))


def route_key(path: str, prefix: str) -> str:
    if prefix and (path == prefix or path.startswith(prefix + "/")):
        path = path[len(prefix) :] or "/"
    if path == "/api" or path.startswith("/api/"):
        path = path[4:] or "/"
    return path


def _matches(key: str, patterns: Any) -> str | None:
    for pattern in patterns:
        if key == pattern or fnmatch.fnmatchcase(key, pattern):
            return str(pattern)
    return None


def _authorized(scope: Scope, faults: Faults) -> bool:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    for name, value in faults.require_headers.items():
        if headers.get(name.lower()) != value:
            return False
    if faults.require_query:
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        for name, value in faults.require_query.items():
            if query.get(name) != value:
                return False
    if faults.require_cookies:
        jar: SimpleCookie = SimpleCookie()
        with contextlib.suppress(Exception):
            jar.load(headers.get("cookie", ""))
        for name, value in faults.require_cookies.items():
            if name not in jar or jar[name].value != value:
                return False
    return True


async def _plain(send: Send, status: int, body: bytes, content_type: bytes | None) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if content_type is not None:
        headers.append((b"content-type", content_type))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class FaultMiddleware:
    def __init__(self, app: ASGIApp, fake: FakeComfyUI) -> None:
        self.app = app
        self.fake = fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        faults = self.fake.faults
        self.fake.record_request(scope)
        status = None
        if not _authorized(scope, faults):
            status = 401
        elif faults.reject_ws_status is not None:
            status = faults.reject_ws_status
        if status is None:
            await self.app(scope, receive, send)
            return
        await receive()  # websocket.connect
        body = UNAUTHORIZED_TEXT if status == 401 else f"{status}: Forbidden".encode()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        fake, faults = self.fake, self.fake.faults
        key = route_key(scope["path"], fake.prefix)
        fake.record_request(scope)
        if not _authorized(scope, faults):
            await _plain(send, 401, UNAUTHORIZED_TEXT, b"text/plain; charset=utf-8")
            return
        if faults.hang_http:
            replay = await self._hang(receive)
            if replay is None:
                return
            receive = replay
        if faults.http_delay > 0:
            await asyncio.sleep(faults.http_delay)
        error_key = _matches(key, faults.http_errors)
        if error_key is not None and faults.http_errors[error_key] > 0:
            faults.http_errors[error_key] -= 1
            if faults.http_errors[error_key] <= 0:
                del faults.http_errors[error_key]
            await _plain(send, 500, INTERNAL_ERROR_TEXT, b"text/plain; charset=utf-8")
            return
        if _matches(key, faults.malformed_json) is not None:
            await self._malformed(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _hang(self, receive: Receive) -> Receive | None:
        """Swallow the request body, then wait until ``hang_http`` is cleared or the client
        disconnects. Returns a receive callable replaying the body, or None on disconnect."""
        messages: list[Message] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            messages.append(message)
            if not message.get("more_body", False):
                break
        pending = asyncio.ensure_future(receive())
        try:
            while self.fake.faults.hang_http:
                done, _ = await asyncio.wait({pending}, timeout=0.02)
                if done:
                    return None
        finally:
            if not pending.done():
                pending.cancel()
        replay = iter(messages)

        async def replay_receive() -> Message:
            try:
                return next(replay)
            except StopIteration:
                await asyncio.Event().wait()  # nothing more to receive
                raise

        return replay_receive

    async def _malformed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the real handler (side effects happen), then answer 200 with truncated JSON."""
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        broken = body[: max(1, len(body) // 2)] if body.startswith((b"{", b"[")) else b'{"'
        await _plain(send, 200, broken, b"application/json; charset=utf-8")
