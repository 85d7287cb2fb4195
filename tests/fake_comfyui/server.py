"""Serving the fake with uvicorn on a real loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from .fake import FakeComfyUI

log = logging.getLogger(__name__)

SERVER_HEADER = "Python/3.11 aiohttp/3.14.5"  # what the recorded server sent


class _QuietServer(uvicorn.Server):
    """No signal handlers: the fake runs inside someone else's event loop (pytest)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class UvicornRunner:
    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",  # run_fake_comfyui starts the worker itself
            timeout_graceful_shutdown=1,
            server_header=False,
            headers=[("server", SERVER_HEADER)],
        )
        self.server = _QuietServer(config)
        self._task = asyncio.create_task(self.server.serve(), name="fake-comfyui-uvicorn")
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raises the startup error
                raise RuntimeError("uvicorn stopped during startup")
            await asyncio.sleep(0.005)
        sock = self.server.servers[0].sockets[0]
        self.port = sock.getsockname()[1]

    def _connections(self) -> list[Any]:
        if self.server is None:
            return []
        return list(self.server.server_state.connections)

    def abort_all(self) -> None:
        """Reset every open TCP connection (HTTP keep-alive and websockets)."""
        for protocol in self._connections():
            transport = getattr(protocol, "transport", None)
            if transport is not None:
                transport.abort()

    def abort_peer(self, peer: tuple[str, int] | None) -> bool:
        if peer is None:
            return False
        found = False
        for protocol in self._connections():
            transport = getattr(protocol, "transport", None)
            if transport is None:
                continue
            peername = transport.get_extra_info("peername")
            if peername is not None and tuple(peername[:2]) == tuple(peer):
                transport.abort()
                found = True
        return found

    async def stop(self) -> None:
        """Stop fast: close the listener, reset connections, cancel the serve task (the
        fake's lifespan has no shutdown work; ``FakeComfyUI.aclose`` stops the worker)."""
        if self.server is None or self._task is None:
            return
        servers = list(self.server.servers)
        for listener in servers:
            listener.close()
        self.abort_all()
        self.server.should_exit = True
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task
        for listener in servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(listener.wait_closed(), timeout=1)
        self.server = None
        self._task = None


@asynccontextmanager
async def run_fake_comfyui(**kwargs: Any) -> AsyncIterator[FakeComfyUI]:
    """Start a FakeComfyUI on 127.0.0.1:<free port>; ``fake.url`` includes the prefix."""
    port = kwargs.pop("port", 0)
    fake = FakeComfyUI(**kwargs)
    runner = UvicornRunner(fake.app, port=port)
    fake.start_worker()
    await runner.start()
    fake._runner = runner
    fake.url = f"http://127.0.0.1:{runner.port}{fake.prefix}"
    try:
        yield fake
    finally:
        await fake.aclose()
        await runner.stop()
