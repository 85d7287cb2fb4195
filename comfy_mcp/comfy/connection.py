"""The one websocket per client: connect, keep reading, reconnect with backoff.

Why one reader task that always drains the socket: the ``websockets`` library stops reading once
its queue is full, and an unread backlog also hides ComfyUI's close reply (a 4 s wait turned into
14 s in measurements). Why the old socket is closed before a new one opens: ComfyUI keeps one
socket per client id, and the old socket's cleanup would orphan the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException

from comfy_mcp.comfy.endpoint import Endpoint
from comfy_mcp.comfy.errors import (
    ComfyAuthError,
    ComfyConnectionError,
    ComfyHTTPError,
    ComfyTimeoutError,
)
from comfy_mcp.comfy.events import (
    AnyEvent,
    Event,
    UnknownEvent,
    feature_flags_frame,
    parse_binary,
    parse_text,
)

log = logging.getLogger(__name__)

EventHandler = Callable[[AnyEvent], None]
ReconnectHandler = Callable[[], Awaitable[None]]


class EventConnection:
    """Owns the websocket for one client id and feeds every frame to ``on_event``.

    Args:
        endpoint: builds the ``ws(s)://…/ws?clientId=`` URL and the auth headers.
        client_id: unique per process; ComfyUI routes a prompt's events by it.
        on_event: called for every parsed frame, in order, from the reader task.
        on_reconnect: awaited after every successful *re*connect, to reconcile jobs over HTTP.
        open_timeout: deadline for the TCP + websocket handshake + first ``status`` frame.
        max_backoff: cap of the exponential reconnect delay (with jitter), in seconds.
        max_attempts: give up reconnecting after this many failures in a row (None: never).
    """

    def __init__(
        self,
        endpoint: Endpoint,
        client_id: str,
        on_event: EventHandler,
        on_reconnect: ReconnectHandler | None = None,
        *,
        open_timeout: float = 10.0,
        max_backoff: float = 10.0,
        max_attempts: int | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.client_id = client_id
        self.on_event = on_event
        self.on_reconnect = on_reconnect
        self.open_timeout = open_timeout
        self.max_backoff = max_backoff
        self.max_attempts = max_attempts
        self.connected = asyncio.Event()
        self.features: dict[str, object] = {}
        self.reconnects = 0
        # monotonic times: when the current socket finished its handshake, and when any frame
        # last arrived (the client's displacement check compares them with its jobs).
        self.opened_at = 0.0
        self.last_frame_at = 0.0
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._start_lock = asyncio.Lock()
        self._closed = False

    @property
    def running(self) -> bool:
        return self._reader is not None and not self._reader.done()

    async def start(self) -> None:
        """Connect (once) and start the reader; raises when the first connect fails."""
        async with self._start_lock:
            if self.running:
                return
            self._closed = False
            self._ws = await self._open()
            self._reader = asyncio.create_task(self._read_forever(), name="comfyui-websocket")

    async def close(self) -> None:
        """Stop reading and close the socket. Idempotent."""
        self._closed = True
        self.connected.clear()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        await self._close_socket()

    async def drop(self) -> None:
        """Close the current socket as if the network dropped it (tests, and displacement)."""
        if self._ws is not None:
            await self._ws.close()

    async def reconnect(self) -> None:
        """Close the current socket and let the reader open a new one.

        The old socket is closed (and its close awaited) *before* the new one opens: ComfyUI's
        cleanup of a socket deregisters its client id, so an old socket closing after the new
        one registered would orphan the new one.
        """
        if self.running:
            await self._close_socket()

    async def _open(self) -> ClientConnection:
        url = self.endpoint.ws_url(self.client_id)
        safe_url = self.endpoint.redact(url)
        try:
            async with asyncio.timeout(self.open_timeout):
                ws = await connect(
                    url,
                    additional_headers=self.endpoint.headers(),
                    max_size=None,  # binary image frames can be large
                    max_queue=None,
                    open_timeout=None,  # the outer deadline covers the whole handshake
                    ping_interval=20,
                    ping_timeout=20,
                    close_timeout=2,
                    compression=None,
                )
                # The first client frame must be the feature flags: ComfyUI checks only that one.
                await ws.send(feature_flags_frame())
                await self._await_handshake(ws)
        except TimeoutError as exc:
            raise ComfyTimeoutError(
                f"websocket handshake with {safe_url}", self.open_timeout
            ) from exc
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403) or 300 <= status < 400:
                raise ComfyAuthError("GET", safe_url, status) from exc
            raise ComfyHTTPError("GET", safe_url, status, "websocket upgrade refused") from exc
        except (OSError, InvalidURI, WebSocketException) as exc:
            raise ComfyConnectionError(
                self.endpoint.base_url, self.endpoint.redact(str(exc))
            ) from exc
        self.opened_at = self.last_frame_at = time.monotonic()
        self.connected.set()
        return ws

    async def _await_handshake(self, ws: ClientConnection) -> None:
        """Read until the first ``status`` frame; check that ComfyUI echoes our client id."""
        while True:
            frame = await ws.recv()
            event = parse_text(frame) if isinstance(frame, str) else parse_binary(frame)
            self.on_event(event)
            if isinstance(event, Event) and event.type == "status":
                sid = event.sid
                if sid is not None and sid != self.client_id:
                    log.warning("ComfyUI echoed client id %s, expected %s", sid, self.client_id)
                return

    async def _read_forever(self) -> None:
        failures = 0
        while not self._closed:
            ws = self._ws
            if ws is not None:
                try:
                    async for frame in ws:
                        self._dispatch(frame)
                except ConnectionClosed:
                    pass
                except Exception:  # a bug in a handler must not kill the reader
                    log.exception("websocket reader error")
                self.connected.clear()
                await self._close_socket()
                if self._closed:
                    return
                log.warning("websocket to %s closed; reconnecting", self.endpoint.base_url)
            delay = min(self.max_backoff, 0.25 * 2**failures) * (0.5 + random.random() / 2)
            await asyncio.sleep(delay if failures else 0.05)
            try:
                self._ws = await self._open()
            except Exception as exc:  # keep trying: waits meanwhile reconcile over HTTP
                failures += 1
                log.info("websocket reconnect failed (%s): %s", failures, exc)
                if self.max_attempts is not None and failures >= self.max_attempts:
                    log.error("giving up on the websocket after %d attempts", failures)
                    return
                continue
            failures = 0
            self.reconnects += 1
            if self.on_reconnect is not None:
                try:
                    await self.on_reconnect()
                except Exception:
                    log.exception("reconciling jobs after a reconnect failed")

    def _dispatch(self, frame: str | bytes) -> None:
        self.last_frame_at = time.monotonic()
        event = parse_text(frame) if isinstance(frame, str) else parse_binary(frame)
        if isinstance(event, UnknownEvent):
            log.debug("skipping websocket frame: %s", event.reason)
        elif isinstance(event, Event) and event.type == "feature_flags":
            self.features = dict(event.data)
        self.on_event(event)

    async def _close_socket(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
