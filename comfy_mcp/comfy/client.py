"""``ComfyClient``: the ComfyUI HTTP API plus the websocket, one method per route.

Checked against recordings of ComfyUI 0.3.64 (``tests/fixtures``) and a live 0.3.64. The
methods live in route groups, each module documenting the routes it wraps and what they answer:

* ``_queue``: POST /prompt, GET /prompt, /queue, /history, /interrupt, /free;
* ``_discovery``: /system_stats, /features, /object_info, /models, /experiment/models,
  /view_metadata, /embeddings, /extensions, /internal/logs;
* ``_users``: /users, /settings, /userdata;
* ``_files``: /upload/image, /upload/mask, /view, and resolving outputs to URLs or bytes;
* ``_jobs_api``: the newer servers' /api/jobs (probed, with the classic routes as fallback);
* ``_waiting``: submit / wait / run / run_polling / refresh / cancel and the HTTP safety net;
* this module: construction, lifecycle, URLs and websocket event subscriptions.

Every call has a timeout; transport failures become :mod:`comfy_mcp.comfy.errors` exceptions,
never empty results.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Self

import httpx

from comfy_mcp.comfy._core import Params
from comfy_mcp.comfy._discovery import DiscoveryRoutes
from comfy_mcp.comfy._files import FileRoutes
from comfy_mcp.comfy._users import UserRoutes
from comfy_mcp.comfy._waiting import JobMethods, raise_for_job
from comfy_mcp.comfy.connection import EventConnection
from comfy_mcp.comfy.endpoint import Auth, Endpoint
from comfy_mcp.comfy.events import AnyEvent, Event, UnknownEvent
from comfy_mcp.comfy.jobs import JobRegistry, ProgressListener

__all__ = ["ComfyClient", "EventCallback", "EventStream", "raise_for_job"]

log = logging.getLogger(__name__)

EventCallback = Callable[[AnyEvent], None]


class ComfyClient(JobMethods, FileRoutes, UserRoutes, DiscoveryRoutes):
    """An async client for one ComfyUI server.

    Use it as an async context manager; it opens the websocket lazily, on the first prompt::

        async with ComfyClient("http://127.0.0.1:8188") as comfy:
            job = await comfy.run(graph, timeout=120)
            for f in job.files:
                png = await comfy.view(f.filename, subfolder=f.subfolder, type=f.type)

    Args:
        base_url: ``http(s)://host[:port][/prefix]``.
        client_id: sent with every prompt and on the websocket; unique per process by default.
            Two sockets with the same id displace each other in ComfyUI: never share one.
        user: sent as the ``Comfy-User`` header (multi-user servers only).
        auth: headers / cookies / query parameters applied to HTTP, websocket and /view alike.
        route_prefix: ``""`` or ``"/api"``.
        timeout: seconds for ordinary HTTP calls (``/object_info`` and transfers get 3×).
        verify: TLS verification: True, False (explicit opt-in), or a CA bundle path.
        http_client: an ``httpx.AsyncClient`` to use instead of our own (not closed by us);
            also the place for request/response hooks (``event_hooks``) and proxies.
        use_websocket: False forces polling (for servers where websockets are blocked).
        poll_interval: seconds between HTTP checks while a wait has no websocket.
        check_interval: seconds between HTTP checks while the websocket is up: a safety net for
            events that never come (another client took over our client id, a silent socket).
        ws_open_timeout: deadline for the websocket handshake.
        ws_max_backoff: cap of the exponential (jittered) delay between reconnect attempts.
        ws_max_attempts: give up reconnecting after this many failures in a row (None: keep
            trying; waits meanwhile follow jobs over HTTP). The next prompt tries again.
        job_retention, max_finished_jobs: finished jobs are forgotten after this many seconds,
            or beyond this many, so a long-running process does not grow (ComfyUI's history
            stays the record).
        submit_retries: resend a POST /prompt that got no answer, at most this often, and only
            after checking that ComfyUI has no trace of its prompt id (no double submit).
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8188",
        *,
        client_id: str | None = None,
        user: str | None = None,
        auth: Auth | None = None,
        route_prefix: str = "",
        timeout: float = 30.0,
        verify: bool | str = True,
        http_client: httpx.AsyncClient | None = None,
        use_websocket: bool = True,
        poll_interval: float = 1.0,
        check_interval: float = 5.0,
        ws_open_timeout: float = 10.0,
        ws_max_backoff: float = 10.0,
        ws_max_attempts: int | None = None,
        job_retention: float = 3600.0,
        max_finished_jobs: int = 1000,
        submit_retries: int = 2,
    ) -> None:
        self.endpoint = Endpoint(base_url, route_prefix=route_prefix, auth=auth)
        self.client_id = client_id or uuid.uuid4().hex
        self.user = user
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.check_interval = check_interval
        self.submit_retries = submit_retries
        self.use_websocket = use_websocket
        self.jobs = JobRegistry(retention=job_retention, max_finished=max_finished_jobs)
        self._owns_http = http_client is None
        # Loading the CA bundle costs ~50 ms at start-up; a plain http:// ComfyUI never uses it
        # (redirects are not followed, so no request can switch to https).
        tls = verify if self.endpoint.scheme == "https" else False
        self._http = http_client or httpx.AsyncClient(
            verify=tls,
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        )
        # Requests in flight are bounded in front of httpx: with hundreds of waiters its pool's
        # scheduling turned quadratic under load (seen at 1,000 concurrent jobs).
        self._in_flight = asyncio.Semaphore(32)
        self.events = EventConnection(
            self.endpoint,
            self.client_id,
            self._on_event,
            self._after_reconnect,
            open_timeout=ws_open_timeout,
            max_backoff=ws_max_backoff,
            max_attempts=ws_max_attempts,
        )
        self._subscribers: list[tuple[str | None, str | None, EventCallback]] = []
        self._reconciler = None
        self._background = set()
        self._node_defs = None
        self._node_defs_lock = asyncio.Lock()
        self._max_upload_size = None
        self._jobs_api = None
        self._jobs_api_lock = asyncio.Lock()
        self._last_prompt_event_at = 0.0
        self._running_since = {}
        self._silence_probed = set()
        self.displacement_reconnects = 0
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def connect(self) -> None:
        """Open the websocket now (it otherwise opens on the first prompt).

        Raises:
            ComfyConnectionError, ComfyTimeoutError, ComfyAuthError: the handshake failed.
        """
        self._check_open()
        await self.events.start()

    async def disconnect(self) -> None:
        """Close the websocket only; REST calls keep working (jobs are then polled)."""
        await self.events.close()
        self.forget_jobs_api()

    async def aclose(self) -> None:
        """Close the websocket and the HTTP client. Idempotent; the client is unusable after."""
        if self._closed:
            return
        self._closed = True
        await self._stop_background()
        await self.events.close()
        if self._owns_http:
            await self._http.aclose()

    # -- URLs ------------------------------------------------------------------------------------

    def api_url(
        self, route: str, params: Params | None = None, *, include_auth: bool = False
    ) -> str:
        """The full URL of a REST route (prefix and ``/api`` applied), for use elsewhere.

        Without credentials by default; use ``request`` to call a route with them.
        """
        return self.endpoint.http_url(route, params, include_auth=include_auth)

    def internal_url(self, route: str, *, include_auth: bool = False) -> str:
        """The URL of an ``/internal/…`` route (never under ``/api``): ``internal_url("logs")``."""
        path = "/internal/" + route.lstrip("/")
        return self.endpoint.http_url(path, route_prefix="", include_auth=include_auth)

    def ws_url(self, *, include_auth: bool = False) -> str:
        """The websocket URL for this client's id (``ws(s)://…/ws?clientId=…``)."""
        return self.endpoint.ws_url(self.client_id, include_auth=include_auth)

    # -- events --------------------------------------------------------------------------------

    def on(
        self, event_type: str | None, callback: EventCallback, *, prompt_id: str | None = None
    ) -> Callable[[], None]:
        """Call ``callback(event)`` for every websocket event of ``event_type`` (None: all).

        ``event_type`` is ComfyUI's message type (``"progress"``, ``"executed"``…),
        ``"preview"`` for binary images, ``"progress_text"`` for node text, or ``"unknown"``
        for frames we could not parse. With ``prompt_id``, only that prompt's events.
        Returns a function that unsubscribes. A callback that raises is logged, not propagated.
        The socket opens with the first prompt, or call ``connect()``.
        """
        entry = (event_type, prompt_id, callback)
        self._subscribers.append(entry)
        return lambda: self._subscribers.remove(entry) if entry in self._subscribers else None

    def once(
        self, event_type: str | None, callback: EventCallback, *, prompt_id: str | None = None
    ) -> Callable[[], None]:
        """Like ``on``, for the next matching event only."""

        def call_once(event: AnyEvent) -> None:
            unsubscribe()
            callback(event)

        unsubscribe = self.on(event_type, call_once, prompt_id=prompt_id)
        return unsubscribe

    def on_progress(self, callback: ProgressListener, prompt_id: str) -> Callable[[], None]:
        """Call ``callback(progress)`` on every change of one prompt: queue position, node,
        sampler steps (``value``/``max``), overall ``fraction`` (from ``progress_state``).

        The prompt is adopted by id when it is not one of ours yet. Returns an unsubscribe
        function.
        """
        return self._adopt(prompt_id).add_listener(callback)

    def iter_events(self, *, prompt_id: str | None = None, max_buffer: int = 1000) -> EventStream:
        """Websocket events (of one prompt, if given) as an async iterator.

        Subscribed as soon as it is created, so events of a prompt submitted afterwards cannot
        be missed; the socket opens on entering it (``async with``) or on the first iteration.
        Events beyond ``max_buffer`` unread ones are dropped (oldest kept) so a slow consumer
        cannot grow memory without bound::

            async with comfy.iter_events(prompt_id=my_id) as events:
                await comfy.submit(graph, prompt_id=my_id)
                async for event in events:
                    ...
        """
        return EventStream(self, prompt_id, max_buffer)

    def _on_event(self, event: AnyEvent) -> None:
        if not isinstance(event, UnknownEvent):
            self.jobs.dispatch(event)
        if isinstance(event, Event) and (event.prompt_id or event.type == "executing"):
            # Per-prompt events (and the reconnect frame, ``executing`` without a prompt id)
            # reach only the socket registered under our id: proof we are not displaced.
            self._last_prompt_event_at = time.monotonic()
        for event_type, prompt_id, callback in list(self._subscribers):
            if event_type is not None and event.type != event_type:
                continue
            if prompt_id is not None and getattr(event, "prompt_id", None) != prompt_id:
                continue
            try:
                callback(event)
            except Exception:
                log.exception("event callback %r failed", callback)


class EventStream:
    """The async iterator ``ComfyClient.iter_events`` returns; ``close()`` (or leaving its
    ``async with``) unsubscribes."""

    def __init__(self, client: ComfyClient, prompt_id: str | None, max_buffer: int) -> None:
        self._client = client
        self._queue: asyncio.Queue[AnyEvent] = asyncio.Queue(maxsize=max_buffer)
        self._unsubscribe: Callable[[], None] | None = client.on(
            None, self._put, prompt_id=prompt_id
        )
        self._opened = False

    def _put(self, event: AnyEvent) -> None:
        if not self._queue.full():
            self._queue.put_nowait(event)

    async def _open(self) -> None:
        if not self._opened:
            self._opened = True
            await self._client._ensure_events()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> AnyEvent:
        if self._unsubscribe is None:
            raise StopAsyncIteration
        await self._open()
        return await self._queue.get()

    async def __aenter__(self) -> Self:
        await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop receiving events. Idempotent."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def __del__(self) -> None:
        self.close()
