"""Several ComfyUI servers behind one MCP server: choosing one for a job, finding a job's one.

ComfyUI's own queue and history are the source of truth: a prompt is found by asking the
backends, not by remembering where it went, so any replica of a stateless deployment can answer
for any prompt id. Health and model lists are cached for a few seconds so a choice costs no more
than one round of cheap requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from mcp.server.mcpserver.exceptions import ToolError

from comfy_mcp.comfy import ComfyClient, ComfyError, ComfyNotFoundError, Endpoint

log = logging.getLogger(__name__)

HEALTH_TIMEOUT = 3.0


@dataclass(frozen=True)
class Health:
    ok: bool
    queue_remaining: int | None = None
    error: str | None = None


@dataclass
class Backend:
    name: str
    client: ComfyClient
    public: Endpoint  # where agents reach this backend's /view


class BackendPool:
    """The configured backends, in preference order (the first is the default)."""

    def __init__(
        self, backends: list[Backend], *, health_ttl: float = 2.0, models_ttl: float = 30.0
    ) -> None:
        if not backends:
            raise ValueError("at least one backend is needed")
        self.backends = {b.name: b for b in backends}
        self.health_ttl = health_ttl
        self.models_ttl = models_ttl
        self._health: dict[str, tuple[float, Health]] = {}
        self._models: dict[tuple[str, str], tuple[float, list[str]]] = {}

    @property
    def default(self) -> Backend:
        return next(iter(self.backends.values()))

    @property
    def several(self) -> bool:
        return len(self.backends) > 1

    def named(self, name: str) -> Backend:
        try:
            return self.backends[name]
        except KeyError:
            raise ToolError(
                f"no backend {name!r}; configured backends: {', '.join(self.backends)}"
            ) from None

    def for_client(self, client: ComfyClient) -> Backend:
        return next(b for b in self.backends.values() if b.client is client)

    async def health(self) -> dict[str, Health]:
        """Every backend's health (cached ``health_ttl`` seconds), checked concurrently."""
        names = list(self.backends)
        results = await asyncio.gather(*(self._health_of(n) for n in names))
        return dict(zip(names, results, strict=True))

    async def _health_of(self, name: str) -> Health:
        cached = self._health.get(name)
        now = time.monotonic()
        if cached and now - cached[0] < self.health_ttl:
            return cached[1]
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                remaining = await self.backends[name].client.get_queue_remaining()
            health = Health(ok=True, queue_remaining=remaining)
        except (ComfyError, TimeoutError) as exc:
            health = Health(ok=False, error=str(exc) or "no answer in time")
        self._health[name] = (time.monotonic(), health)
        return health

    async def models(self, name: str, folder: str) -> list[str]:
        key = (name, folder)
        cached = self._models.get(key)
        if cached and time.monotonic() - cached[0] < self.models_ttl:
            return cached[1]
        files = await self.backends[name].client.get_models(folder)
        self._models[key] = (time.monotonic(), files)
        return files

    async def choose(
        self, name: str | None = None, needs: Mapping[str, set[str]] | None = None
    ) -> Backend:
        """The backend for a new job: the one named, else the healthy one with the shortest
        queue among those that have every model in ``needs`` (folder → file names)."""
        if name:
            return self.named(name)
        if not self.several:
            return self.default
        health = await self.health()
        healthy = [n for n, h in health.items() if h.ok]
        if not healthy:
            details = "; ".join(f"{n}: {h.error}" for n, h in health.items())
            raise ToolError(f"no ComfyUI backend is reachable ({details})")
        candidates = [n for n in healthy if await self._has_models(n, needs or {})]
        if not candidates:
            wanted = ", ".join(f"{f}/{m}" for f, ms in (needs or {}).items() for m in sorted(ms))
            raise ToolError(
                f"no reachable backend has {wanted}; reachable: {', '.join(healthy)}. "
                "Check list_models, or name a backend."
            )
        best = min(candidates, key=lambda n: health[n].queue_remaining or 0)
        unhealthy = [n for n in health if not health[n].ok]
        if unhealthy:
            log.warning("skipping unreachable backends: %s", ", ".join(unhealthy))
        return self.backends[best]

    async def _has_models(self, name: str, needs: Mapping[str, set[str]]) -> bool:
        for folder, files in needs.items():
            try:
                available = set(await self.models(name, folder))
            except ComfyError:
                return False
            if not files <= available:
                return False
        return True

    async def locate(self, prompt_id: str) -> Backend | None:
        """The backend that holds ``prompt_id``: one that follows it, else the one whose queue
        or history has it. None when no reachable backend knows it."""
        for backend in self.backends.values():
            if backend.client.jobs.get(prompt_id) is not None:
                return backend
        if not self.several:
            return self.default

        async def holds(backend: Backend) -> bool:
            try:
                async with asyncio.timeout(HEALTH_TIMEOUT * 2):
                    if await backend.client.get_history_item(prompt_id) is not None:
                        return True
                    return (await backend.client.get_queue()).position(prompt_id) is not None
            except (ComfyError, TimeoutError):
                return False

        found = await asyncio.gather(*(holds(b) for b in self.backends.values()))
        for backend, hit in zip(self.backends.values(), found, strict=True):
            if hit:
                return backend
        return None

    async def models_everywhere(self, folder: str) -> tuple[dict[str, list[str]], dict[str, str]]:
        """``folder``'s files on each backend, and the backends that could not answer (why)."""
        names = list(self.backends)

        async def one(name: str) -> list[str] | BaseException:
            try:
                return await self.models(name, folder)
            except ComfyNotFoundError as exc:
                return exc
            except ComfyError as exc:
                return exc

        results = await asyncio.gather(*(one(n) for n in names))
        found: dict[str, list[str]] = {}
        failed: dict[str, str] = {}
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException):
                failed[name] = str(result)
            else:
                found[name] = result
        return found, failed
