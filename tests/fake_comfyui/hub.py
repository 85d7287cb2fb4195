"""Websocket connections: one socket per client id, per-socket ordered send queues."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket

log = logging.getLogger(__name__)

_CLOSE = object()


class Connection:
    """One accepted websocket. Frames are sent in order by a writer task."""

    def __init__(self, websocket: WebSocket, sid: str) -> None:
        self.websocket = websocket
        self.sid = sid
        self.feature_flags: dict[str, Any] = {}
        self.peer: tuple[str, int] | None = (
            (websocket.client.host, websocket.client.port) if websocket.client else None
        )
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop(), name=f"fake-comfyui-ws-{sid}")
        self.closed = False

    def enqueue(self, frame: str | bytes) -> None:
        if not self.closed:
            self._queue.put_nowait(frame)

    async def _write_loop(self) -> None:
        while True:
            frame = await self._queue.get()
            if frame is _CLOSE:
                return
            try:
                if isinstance(frame, bytes):
                    await self.websocket.send_bytes(frame)
                else:
                    await self.websocket.send_text(frame)
            except Exception as exc:  # the peer went away; drop everything else
                log.debug("ws %s send failed: %r", self.sid, exc)
                self.closed = True
                return

    async def close(self, code: int = 1000) -> None:
        self.closed = True
        self._writer.cancel()
        with contextlib.suppress(BaseException):
            await self._writer
        with contextlib.suppress(Exception):
            await self.websocket.close(code)

    async def stop_writer(self) -> None:
        self.closed = True
        self._writer.cancel()
        with contextlib.suppress(BaseException):
            await self._writer


class Hub:
    """PromptServer.sockets: a dict client id → connection, and the send helpers."""

    def __init__(self, is_silent: Callable[[], bool]) -> None:
        self.sockets: dict[str, Connection] = {}
        self.all_connections: set[Connection] = set()
        self._is_silent = is_silent

    def register(self, conn: Connection) -> None:
        # ComfyUI: self.sockets.pop(sid); self.sockets[sid] = ws -- the old socket stays open
        # but is no longer addressed (it gets nothing more, not even broadcasts).
        self.sockets.pop(conn.sid, None)
        self.sockets[conn.sid] = conn
        self.all_connections.add(conn)

    def unregister(self, conn: Connection) -> None:
        # Faithful to ComfyUI: the cleanup pops by sid, even if a newer socket took the id over.
        self.sockets.pop(conn.sid, None)
        self.all_connections.discard(conn)

    def _targets(self, sid: str | None) -> list[Connection]:
        if self._is_silent():
            return []
        if sid is None:
            return list(self.sockets.values())
        conn = self.sockets.get(sid)
        return [conn] if conn is not None else []

    def send(self, event: str, data: Any, sid: str | None) -> None:
        """Send ``{"type": event, "data": data}`` to ``sid`` (``None`` = every socket)."""
        targets = self._targets(sid)
        if not targets:
            return
        text = json.dumps({"type": event, "data": data})
        for conn in targets:
            conn.enqueue(text)

    def send_to(self, conn: Connection, event: str, data: Any) -> None:
        if not self._is_silent():
            conn.enqueue(json.dumps({"type": event, "data": data}))

    def send_bytes(self, frame: bytes, sid: str | None) -> None:
        for conn in self._targets(sid):
            conn.enqueue(frame)

    def supports_preview_metadata(self, sid: str | None) -> bool:
        if sid is None:
            return False
        conn = self.sockets.get(sid)
        return bool(conn and conn.feature_flags.get("supports_preview_metadata", False))

    def connected_ids(self) -> list[str]:
        return list(self.sockets)
