"""Response helpers that reproduce aiohttp's wire format as seen in the recordings."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger(__name__)

JSON_TYPE = "application/json; charset=utf-8"
Handler = Callable[[Request], Awaitable[Response]]


class PayloadTooLarge(Exception):
    def __init__(self, max_size: int, actual_size: int) -> None:
        super().__init__(
            f"Maximum request body size {max_size} exceeded, actual body size {actual_size}"
        )


def json_response(data: Any, status: int = 200) -> Response:
    """aiohttp's web.json_response: json.dumps with default separators, charset in the type."""
    return Response(json.dumps(data).encode(), status_code=status, media_type=JSON_TYPE)


def empty(status: int = 200) -> Response:
    """An empty body: content-length 0 and no content-type, like ``web.Response(status=…)``."""
    return Response(b"", status_code=status)


def text(body: str, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="text/plain")


def internal_error() -> Response:
    return text("500 Internal Server Error\n\nServer got itself in trouble", 500)


async def read_body(request: Request, max_size: int) -> bytes:
    """The whole body, or PayloadTooLarge (the rest is drained so the client sees the 413)."""
    cached = getattr(request, "_body", None)
    if cached is not None:
        return bytes(cached)
    declared = request.headers.get("content-length")
    chunks: list[bytes] = []
    size = 0
    too_large = declared is not None and declared.isdigit() and int(declared) > max_size
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_size:
            too_large = True
        if not too_large:
            chunks.append(chunk)
    if too_large:
        raise PayloadTooLarge(max_size, size)
    body = b"".join(chunks)
    request._body = body  # lets request.form()/json() reuse it
    return body


async def read_json(request: Request, max_size: int) -> Any:
    """aiohttp's request.json(): json.loads of the text; raises on an empty/invalid body."""
    return json.loads((await read_body(request, max_size)).decode("utf-8"))


def guarded(handler: Handler) -> Handler:
    """Unhandled exceptions → aiohttp's 500 text; oversized bodies → 413."""

    @functools.wraps(handler)
    async def wrapper(request: Request) -> Response:
        try:
            return await handler(request)
        except PayloadTooLarge as exc:
            return text(str(exc), 413)
        except Exception:
            log.exception("fake ComfyUI handler %s failed", handler.__name__)
            return internal_error()

    return wrapper
