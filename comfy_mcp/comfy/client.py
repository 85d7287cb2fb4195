"""``ComfyClient``: the ComfyUI HTTP API plus the websocket, one method per route.

Checked against recordings of ComfyUI 0.3.64 (``tests/fixtures``). Routes and what they answer:

=====================  ==========================================================================
POST /prompt           ``{prompt_id, number, node_errors}``; 400 ``{error, node_errors}``
GET  /queue            ``{queue_running: [item], queue_pending: [item]}`` (items are arrays)
POST /queue            ``{delete: [ids]}`` / ``{clear: true}`` → empty body
GET  /history[/{id}]   ``{prompt_id: entry}``; ``{}`` for an unknown (or still running) id
POST /history          ``{delete: [ids]}`` / ``{clear: true}`` → empty body
POST /interrupt        ``{prompt_id}`` interrupts only that prompt if it runs → empty body
POST /free             ``{unload_models, free_memory}`` → empty body (bodyless POST is a 500)
GET  /object_info      ``{class: def}``; ``/object_info/{class}`` answers ``{}`` when unknown
GET  /models/{folder}  file names relative to the folder; 404 (empty body) for unknown folders
GET  /view             file bytes; 400 for ``..``, 404 when missing (empty bodies)
POST /upload/image     multipart → ``{name, subfolder, type}`` (renamed on clashes)
=====================  ==========================================================================

Every call has a timeout; transport failures become :mod:`comfy_mcp.comfy.errors` exceptions, never
empty results.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self

import httpx

from comfy_mcp.comfy.connection import EventConnection
from comfy_mcp.comfy.endpoint import Auth, Endpoint, segment
from comfy_mcp.comfy.errors import (
    ClientClosedError,
    ComfyAuthError,
    ComfyConnectionError,
    ComfyError,
    ComfyHTTPError,
    ComfyNotFoundError,
    ComfyProtocolError,
    ComfyTimeoutError,
    ExecutionFailedError,
    ExecutionInterruptedError,
    JobCancelledError,
    JobLostError,
    PromptRejectedError,
    UploadTooLargeError,
)
from comfy_mcp.comfy.events import AnyEvent, UnknownEvent
from comfy_mcp.comfy.jobs import Job, JobRegistry, JobState, ProgressListener
from comfy_mcp.comfy.models import HistoryEntry, PromptReceipt, QueueSnapshot, UploadResult
from comfy_mcp.comfy.nodeinfo import FOLDER_LOADERS, combo_options

log = logging.getLogger(__name__)

ItemKind = Literal["queue", "history"]
EventCallback = Callable[[AnyEvent], None]


class ComfyClient:
    """An async client for one ComfyUI server.

    Use it as an async context manager; it opens the websocket lazily, on the first prompt::

        async with ComfyClient("http://127.0.0.1:8188") as comfy:
            job = await comfy.run(graph, timeout=120)
            for f in job.files:
                png = await comfy.view(f.filename, subfolder=f.subfolder, type=f.type)

    Args:
        base_url: ``http(s)://host[:port][/prefix]``.
        client_id: sent with every prompt and on the websocket; unique per process by default.
        user: sent as the ``Comfy-User`` header (multi-user servers only).
        auth: headers / cookies / query parameters applied to HTTP, websocket and /view alike.
        route_prefix: ``""`` or ``"/api"``.
        timeout: seconds for ordinary HTTP calls (``/object_info`` and transfers get 3×).
        verify: TLS verification: True, False (explicit opt-in), or a CA bundle path.
        http_client: an ``httpx.AsyncClient`` to use instead of our own (not closed by us).
        use_websocket: False forces polling (for servers where websockets are blocked).
        poll_interval: seconds between HTTP checks while a wait has no websocket.
        check_interval: seconds between HTTP checks while the websocket is up: a safety net for
            events that never come (another client took over our client id, a silent socket).
        submit_retries: resend a POST /prompt that got no answer, at most this often, and only
            after checking that ComfyUI has no trace of its prompt id (no double submit).
        job_retention, max_finished_jobs: finished jobs are forgotten after this many seconds,
            or beyond this many, so a long-running process does not grow (ComfyUI's history
            stays the record).
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
        self._http = http_client or httpx.AsyncClient(
            verify=verify, timeout=timeout, follow_redirects=False, trust_env=False
        )
        self.events = EventConnection(
            self.endpoint,
            self.client_id,
            self._on_event,
            self._reconcile_all,
            open_timeout=ws_open_timeout,
        )
        self._subscribers: list[tuple[str | None, str | None, EventCallback]] = []
        self._reconciler: asyncio.Task[None] | None = None
        self._node_defs: dict[str, Any] | None = None
        self._node_defs_lock = asyncio.Lock()
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
        """Open the websocket now (it otherwise opens on the first prompt)."""
        self._check_open()
        await self.events.start()

    async def disconnect(self) -> None:
        """Close the websocket only; REST calls keep working."""
        await self.events.close()

    async def aclose(self) -> None:
        """Close the websocket and the HTTP client. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._reconciler is not None:
            self._reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconciler
        await self.events.close()
        if self._owns_http:
            await self._http.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("this ComfyClient is closed")

    # -- HTTP core -------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        route: str,
        *,
        params: Mapping[str, str | int | float | bool] | None = None,
        json_body: Any = None,
        files: Any = None,
        data: Mapping[str, str] | None = None,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> httpx.Response:
        """Send one request to a ComfyUI route and return the response (status < 400).

        GETs are retried twice on connection errors and 5xx answers (they are safe to repeat);
        other methods are never retried here.
        """
        self._check_open()
        url = self.endpoint.http_url(route, params)
        safe_url = self.endpoint.redact(url)
        headers = self.endpoint.headers()
        if self.user:
            headers["Comfy-User"] = self.user
        seconds = timeout if timeout is not None else self.timeout
        attempts = 1 + (retries if retries is not None else (2 if method == "GET" else 0))
        for attempt in range(attempts):
            try:
                response = await self._http.request(
                    method,
                    url,
                    json=json_body,
                    files=files,
                    data=data,
                    headers=headers,
                    timeout=httpx.Timeout(seconds, connect=min(seconds, 10.0)),
                )
            except httpx.TimeoutException as exc:
                if attempt + 1 < attempts:
                    continue
                raise ComfyTimeoutError(f"{method} {safe_url}", seconds) from exc
            except httpx.TransportError as exc:
                if attempt + 1 < attempts:
                    await asyncio.sleep(0.2 * (attempt + 1))
                    continue
                reason = self.endpoint.redact(str(exc) or type(exc).__name__)
                raise ComfyConnectionError(self.endpoint.base_url, reason) from exc
            if response.status_code >= 500 and attempt + 1 < attempts:
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            if response.status_code >= 300:
                raise self._status_error(method, safe_url, response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _status_error(self, method: str, url: str, response: httpx.Response) -> ComfyHTTPError:
        status = response.status_code
        body = self.endpoint.redact(response.text)
        parsed = _json_or_none(response)
        if status in (401, 403) or 300 <= status < 400:
            return ComfyAuthError(method, url, status, body, parsed)
        if status == 404:
            return ComfyNotFoundError(method, url, status, body, parsed)
        if status == 413:
            return UploadTooLargeError(method, url, status, body, parsed)
        return ComfyHTTPError(method, url, status, body, parsed)

    async def _get_json(self, route: str, **kwargs: Any) -> Any:
        response = await self.request("GET", route, **kwargs)
        return _decode_json(response, f"GET {route}")

    async def _post(self, route: str, body: Any, **kwargs: Any) -> httpx.Response:
        # Always a JSON body: a bodyless POST /free is an HTTP 500 in ComfyUI.
        return await self.request(
            "POST", route, json_body=body if body is not None else {}, **kwargs
        )

    # -- prompts -------------------------------------------------------------------------------

    async def queue_prompt(
        self,
        prompt: Mapping[str, Any],
        *,
        prompt_id: str | None = None,
        front: bool = False,
        number: float | None = None,
        extra_data: Mapping[str, Any] | None = None,
        workflow: Mapping[str, Any] | None = None,
        partial_execution_targets: Sequence[str] | None = None,
    ) -> PromptReceipt:
        """POST /prompt. Always sends our ``client_id`` and a ``prompt_id`` (a new UUID by default).

        Raises:
            PromptRejectedError: ComfyUI answered 400; nothing was queued.
        """
        body: dict[str, Any] = {
            "prompt": dict(prompt),
            "client_id": self.client_id,
            "prompt_id": prompt_id or str(uuid.uuid4()),
        }
        if front:
            body["front"] = True
        if number is not None:
            body["number"] = number
        extra = dict(extra_data or {})
        if workflow is not None:
            extra.setdefault("extra_pnginfo", {})["workflow"] = dict(workflow)
        if extra:
            body["extra_data"] = extra
        if partial_execution_targets:
            body["partial_execution_targets"] = list(partial_execution_targets)
        try:
            response = await self.request("POST", "/prompt", json_body=body)
        except ComfyHTTPError as exc:
            if exc.status == 400 and isinstance(exc.json, dict):
                node_errors = exc.json.get("node_errors")
                raise PromptRejectedError(
                    exc.json.get("error", exc.body),
                    node_errors if isinstance(node_errors, dict) else {},
                ) from exc
            raise
        data = _decode_json(response, "POST /prompt")
        try:
            return PromptReceipt.model_validate(data)
        except ValueError as exc:
            raise ComfyProtocolError(f"unexpected answer to POST /prompt: {data!r:.300}") from exc

    async def get_queue(self) -> QueueSnapshot:
        """GET /queue, with the pending items sorted into run order."""
        data = await self._get_json("/queue")
        try:
            return QueueSnapshot.from_wire(data)
        except ValueError as exc:
            raise ComfyProtocolError(f"unexpected answer to GET /queue: {exc}") from exc

    async def get_queue_remaining(self) -> int:
        """GET /prompt: running + pending prompts. A cheap liveness and load probe."""
        data = await self._get_json("/prompt")
        try:
            return int(data["exec_info"]["queue_remaining"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ComfyProtocolError(f"unexpected answer to GET /prompt: {data!r:.200}") from exc

    async def delete_items(self, kind: ItemKind, prompt_ids: Sequence[str]) -> None:
        """Remove pending queue items, or history entries. Unknown ids are ignored by ComfyUI."""
        await self._post(f"/{kind}", {"delete": list(prompt_ids)})

    async def clear_items(self, kind: ItemKind) -> None:
        """Clear the pending queue (the running prompt stays) or the whole history."""
        await self._post(f"/{kind}", {"clear": True})

    async def get_history(
        self, max_items: int | None = None, offset: int | None = None
    ) -> dict[str, HistoryEntry]:
        """GET /history, oldest first. ``max_items`` alone gives the newest N;
        with ``offset`` it gives N entries starting at the offset-th oldest."""
        params: dict[str, int] = {}
        if max_items is not None:
            if max_items < 1:
                raise ValueError("max_items must be >= 1")
            params["max_items"] = max_items
        if offset is not None:
            if offset < 0:
                raise ValueError("offset must be >= 0")
            params["offset"] = offset
        data = await self._get_json("/history", params=params)
        if not isinstance(data, dict):
            raise ComfyProtocolError("GET /history did not answer an object")
        return {pid: _history_entry(pid, entry) for pid, entry in data.items()}

    async def get_history_item(self, prompt_id: str) -> HistoryEntry | None:
        """GET /history/{id}; None when ComfyUI has no entry (yet)."""
        data = await self._get_json(f"/history/{segment(prompt_id)}")
        if not isinstance(data, dict):
            raise ComfyProtocolError("GET /history/{id} did not answer an object")
        entry = data.get(prompt_id)
        return _history_entry(prompt_id, entry) if entry is not None else None

    async def interrupt(self, prompt_id: str) -> None:
        """Interrupt ``prompt_id`` if it is running; ComfyUI ignores any other id silently."""
        await self._post("/interrupt", {"prompt_id": prompt_id})

    async def interrupt_all(self) -> None:
        """Global interrupt: stops whatever runs, whoever queued it. Use only when asked to."""
        await self._post("/interrupt", {})

    async def free(self, *, unload_models: bool = False, free_memory: bool = False) -> None:
        """POST /free. ``free_memory`` also resets ComfyUI's execution cache."""
        await self._post("/free", {"unload_models": unload_models, "free_memory": free_memory})

    # -- discovery -----------------------------------------------------------------------------

    async def get_system_stats(self) -> dict[str, Any]:
        data = await self._get_json("/system_stats")
        if not isinstance(data, dict):
            raise ComfyProtocolError("GET /system_stats did not answer an object")
        return data

    async def get_features(self) -> dict[str, Any]:
        """GET /features (present since 0.3.6x); ``{}`` on servers without it."""
        try:
            data = await self._get_json("/features")
        except ComfyNotFoundError:
            return {}
        return data if isinstance(data, dict) else {}

    async def get_node_defs(
        self, node_class: str | None = None, *, refresh: bool = False
    ) -> dict[str, Any]:
        """``/object_info``: the whole map (cached per client) or one class (``{}`` if unknown)."""
        if node_class is not None:
            if self._node_defs is not None and not refresh and node_class in self._node_defs:
                return {node_class: self._node_defs[node_class]}
            data = await self._get_json(f"/object_info/{segment(node_class)}")
            return data if isinstance(data, dict) else {}
        async with self._node_defs_lock:
            if self._node_defs is None or refresh:
                data = await self._get_json("/object_info", timeout=self.timeout * 3)
                if not isinstance(data, dict):
                    raise ComfyProtocolError("GET /object_info did not answer an object")
                self._node_defs = data
            return self._node_defs

    def invalidate_node_defs(self) -> None:
        """Forget the cached ``/object_info`` (combo lists change when files are added)."""
        self._node_defs = None

    async def get_model_types(self) -> list[str]:
        """GET /models: the model folder names (``configs`` and ``custom_nodes`` left out)."""
        data = await self._get_json("/models")
        return [str(x) for x in data if x not in ("configs", "custom_nodes")]

    async def get_models(self, folder: str) -> list[str]:
        """Files in a model folder, subfolders included (``style/anime.safetensors``).

        Uses GET /models/{folder}; on servers without that route, the matching loader's combo in
        ``/object_info``.

        Raises:
            ComfyNotFoundError: the folder does not exist; the message lists the ones that do.
        """
        try:
            data = await self._get_json(f"/models/{segment(folder)}", retries=0)
            return [str(x) for x in data]
        except ComfyNotFoundError as exc:
            try:
                folders = await self.get_model_types()
            except ComfyNotFoundError:
                return await self._models_from_node_defs(folder)
            raise ComfyNotFoundError(
                "GET",
                exc.url,
                404,
                f"no model folder {folder!r}; ComfyUI has: {', '.join(folders)}",
            ) from exc

    async def _models_from_node_defs(self, folder: str) -> list[str]:
        if folder == "embeddings":
            return await self.get_embeddings()
        loader = FOLDER_LOADERS.get(folder)
        if loader is None:
            raise ComfyNotFoundError("GET", f"/models/{folder}", 404, f"unknown folder {folder!r}")
        defs = await self.get_node_defs()
        return combo_options(defs.get(loader[0], {}), loader[1]) or []

    async def get_loras(self) -> list[str]:
        return await self.get_models("loras")

    async def get_embeddings(self) -> list[str]:
        data = await self._get_json("/embeddings")
        return [str(x) for x in data]

    async def get_extensions(self) -> list[str]:
        data = await self._get_json("/extensions")
        return [str(x) for x in data]

    async def get_samplers(self) -> list[str]:
        return await self._ksampler_options("sampler_name")

    async def get_schedulers(self) -> list[str]:
        return await self._ksampler_options("scheduler")

    async def _ksampler_options(self, input_name: str) -> list[str]:
        defs = await self.get_node_defs("KSampler")
        return combo_options(defs.get("KSampler", {}), input_name) or []

    # -- files -----------------------------------------------------------------------------------

    def view_url(
        self,
        filename: str,
        *,
        subfolder: str = "",
        type: str = "output",
        include_auth: bool = False,
    ) -> str:
        """The ``/view`` URL of a file. Without auth by default: safe to hand to an agent."""
        return self.endpoint.view_url(
            filename, subfolder=subfolder, type=type, include_auth=include_auth
        )

    async def view(
        self,
        filename: str,
        *,
        subfolder: str = "",
        type: str = "output",
        preview: str | None = None,
        channel: str | None = None,
        max_bytes: int = 512 * 1024 * 1024,
    ) -> bytes:
        """Download a file through ``/view`` (streamed, refused past ``max_bytes``)."""
        self._check_open()
        url = self.endpoint.view_url(
            filename, subfolder=subfolder, type=type, preview=preview, channel=channel
        )
        safe_url = self.endpoint.redact(url)
        timeout = httpx.Timeout(self.timeout * 3, connect=min(self.timeout, 10.0))
        try:
            async with self._http.stream(
                "GET", url, headers=self.endpoint.headers(), timeout=timeout
            ) as response:
                if response.status_code >= 300:
                    await response.aread()
                    raise self._status_error("GET", safe_url, response)
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise ComfyProtocolError(f"{safe_url} is larger than {max_bytes} bytes")
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.TimeoutException as exc:
            raise ComfyTimeoutError(f"GET {safe_url}", self.timeout * 3) from exc
        except httpx.TransportError as exc:
            raise ComfyConnectionError(self.endpoint.base_url, str(exc)) from exc

    async def upload_image(
        self,
        data: bytes,
        filename: str,
        *,
        subfolder: str = "",
        type: Literal["input", "temp", "output"] = "input",
        overwrite: bool = False,
        mask: bool = False,
    ) -> UploadResult:
        """POST /upload/image (or /upload/mask). Use the returned name: ComfyUI renames clashes."""
        fields = {
            "type": type,
            "subfolder": subfolder,
            "overwrite": "true" if overwrite else "false",
        }
        route = "/upload/mask" if mask else "/upload/image"
        response = await self.request(
            "POST",
            route,
            files={"image": (filename, data, "application/octet-stream")},
            data=fields,
            timeout=self.timeout * 3,
        )
        try:
            return UploadResult.model_validate(_decode_json(response, f"POST {route}"))
        except ValueError as exc:
            raise ComfyProtocolError(f"unexpected answer to POST {route}") from exc

    # -- jobs ------------------------------------------------------------------------------------

    async def submit(
        self, prompt: Mapping[str, Any], *, prompt_id: str | None = None, **options: Any
    ) -> Job:
        """Queue a prompt and return its :class:`Job`, registered before the POST is sent.

        The websocket is opened first (when enabled), so no event of the prompt can be missed.
        If the POST fails without an answer, the id is looked up before anything is resent.
        """
        await self._ensure_events()
        job = self.jobs.register(Job(prompt_id or str(uuid.uuid4()), dict(prompt)))
        try:
            for attempt in range(1 + self.submit_retries):
                try:
                    job.receipt = await self.queue_prompt(
                        prompt, prompt_id=job.prompt_id, **options
                    )
                    break
                except (ComfyTimeoutError, ComfyConnectionError):
                    # The POST may have reached ComfyUI: look before resending. Resending with
                    # the same prompt id is safe only when ComfyUI has no trace of it.
                    if await self._posted(job):
                        break
                    if attempt == self.submit_retries:
                        raise
                    await asyncio.sleep(0.2 * (attempt + 1))
        except BaseException:
            self.jobs.forget(job.prompt_id)
            raise
        job.accepted = True
        if job.state is JobState.UNKNOWN:
            job.state = JobState.QUEUED
        return job

    async def _posted(self, job: Job) -> bool:
        """Whether ComfyUI has the prompt (queued, running or in history) after a failed POST."""
        try:
            entry = await self.get_history_item(job.prompt_id)
            if entry is not None:
                if entry.outcome is not None:
                    job.apply_history(entry)
                return True
            return job.note_queue(await self.get_queue())
        except ComfyError:
            return False

    async def wait(
        self,
        job: Job | str,
        *,
        timeout: float,
        on_progress: ProgressListener | None = None,
    ) -> Job:
        """Wait until the job ends or ``timeout`` passes; returns the job either way.

        Completion comes from the websocket (``executing`` with ``node: null`` for this prompt) and
        is settled from ``/history/{id}``. While the websocket is down (or disabled) the job is
        checked over HTTP every ``poll_interval`` seconds, so a dropped socket never hangs a wait.
        """
        if isinstance(job, str):
            job = self.jobs.get(job) or self.jobs.register(Job(job))
            job.accepted = True  # adopted by id: it exists on the server, or is lost
        remove = job.add_listener(on_progress) if on_progress else None
        deadline = time.monotonic() + timeout
        self._start_reconciler()
        try:
            while not job.done:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(remaining):
                        await job.ended.wait()
                except TimeoutError:
                    break
                if not job.done:
                    await self._settle(job, deadline)
                    if not job.done:
                        # ComfyUI said "ended" but history is not readable yet (or ComfyUI is
                        # down): let the reconciler settle it rather than spin here.
                        job.ended.clear()
        finally:
            if remove:
                remove()
            self.jobs.prune()
        return job

    async def run(
        self,
        prompt: Mapping[str, Any],
        *,
        timeout: float = 600.0,
        on_progress: ProgressListener | None = None,
        **options: Any,
    ) -> Job:
        """Submit, wait, and raise unless the prompt succeeded.

        Raises:
            PromptRejectedError, ExecutionFailedError, ExecutionInterruptedError,
            JobCancelledError, JobLostError, ComfyTimeoutError.
        """
        job = await self.submit(prompt, **options)
        await self.wait(job, timeout=timeout, on_progress=on_progress)
        raise_for_job(job, timeout)
        return job

    async def refresh(self, job: Job | str) -> Job:
        """Settle a job's state over HTTP: history, then the queue, then history again.

        ``{}`` from ``/history/{id}`` means "still queued or running" *or* "unknown": the queue
        decides, and a prompt in neither is ``lost``.
        """
        if isinstance(job, str):
            job = self.jobs.get(job) or self.jobs.register(Job(job))
        if job.done:
            return job
        entry = await self.get_history_item(job.prompt_id)
        if entry is not None and entry.outcome is not None:
            job.accepted = True
            job.apply_history(entry)
            return job
        queue = await self.get_queue()
        if job.note_queue(queue):
            job.accepted = True
            return job
        entry = await self.get_history_item(job.prompt_id)
        if entry is not None and entry.outcome is not None:
            job.apply_history(entry)
        else:
            job.mark_lost()
        return job

    async def cancel(
        self, prompt_id: str
    ) -> Literal["removed", "interrupted", "finished", "unknown"]:
        """Stop one prompt and no other: delete it if queued, interrupt it if running."""
        queue = await self.get_queue()
        if queue.is_pending(prompt_id):
            await self.delete_items("queue", [prompt_id])
            queue = await self.get_queue()
            if not queue.position(prompt_id):
                job = self.jobs.get(prompt_id)
                if job is not None and not job.done:
                    job.mark_cancelled()
                if not queue.is_running(prompt_id):
                    return "removed"
        if queue.is_running(prompt_id):
            await self.interrupt(prompt_id)
            return "interrupted"
        entry = await self.get_history_item(prompt_id)
        return "finished" if entry is not None else "unknown"

    async def _settle(self, job: Job, deadline: float) -> None:
        """The prompt ended: read its history entry (written just before ``executing null``)."""
        for delay in (0.0, 0.05, 0.1, 0.2, 0.4, 0.8):
            if delay:
                await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            try:
                entry = await self.get_history_item(job.prompt_id)
            except ComfyError as exc:
                log.warning("reading history of %s failed: %s", job.prompt_id, exc)
                continue
            if entry is not None and entry.outcome is not None:
                job.apply_history(entry)
                return
            if time.monotonic() >= deadline:
                return
        await self._safe_refresh(job)

    async def _safe_refresh(self, job: Job) -> None:
        try:
            await self.refresh(job)
        except ComfyError as exc:
            log.info("checking %s over HTTP failed: %s", job.prompt_id, exc)

    async def _ensure_events(self) -> None:
        if not self.use_websocket or self.events.running:
            return
        try:
            await self.events.start()
        except ComfyConnectionError:
            raise
        except ComfyError as exc:
            if isinstance(exc, ComfyAuthError):
                raise
            log.warning("websocket unavailable (%s); following prompts by polling", exc)

    async def _reconcile_all(self) -> None:
        """Check every accepted, unfinished job over HTTP: one GET /queue for all of them, then
        GET /history/{id} only for those no longer queued."""
        active = [job for job in self.jobs.active() if job.accepted]
        if not active:
            return
        try:
            queue = await self.get_queue()
        except ComfyError as exc:
            log.info("reconciling jobs: GET /queue failed: %s", exc)
            return
        for job in active:
            if job.done or job.note_queue(queue):
                continue
            try:
                entry = await self.get_history_item(job.prompt_id)
            except ComfyError as exc:
                log.info("reconciling %s: %s", job.prompt_id, exc)
                continue
            if entry is not None and entry.outcome is not None:
                job.apply_history(entry)
            elif not job.done:
                # Not queued when we looked, and no history after that: gone.
                job.mark_lost()

    def _start_reconciler(self) -> None:
        if self._reconciler is None or self._reconciler.done():
            self._reconciler = asyncio.create_task(
                self._reconcile_forever(), name="comfy-reconcile"
            )

    async def _reconcile_forever(self) -> None:
        """While jobs are unfinished, check them over HTTP: a safety net every
        ``check_interval`` with a live websocket, the way jobs are followed (``poll_interval``)
        without one. Ends when no job is left; the next wait starts it again."""
        while any(job.accepted for job in self.jobs.active()):
            connected = self.events.connected.is_set()
            await asyncio.sleep(self.check_interval if connected else self.poll_interval)
            await self._reconcile_all()

    # -- events --------------------------------------------------------------------------------

    def on(
        self, event_type: str | None, callback: EventCallback, *, prompt_id: str | None = None
    ) -> Callable[[], None]:
        """Call ``callback(event)`` for every websocket event of ``event_type`` (None: all).

        ``event_type`` is ComfyUI's message type (``"progress"``, ``"executed"``…), ``"preview"``
        for binary images or ``"progress_text"``. With ``prompt_id``, only that prompt's events.
        Returns a function that unsubscribes. A callback that raises is logged, not propagated.
        """
        entry = (event_type, prompt_id, callback)
        self._subscribers.append(entry)
        return lambda: self._subscribers.remove(entry) if entry in self._subscribers else None

    async def iter_events(
        self, *, prompt_id: str | None = None, max_buffer: int = 1000
    ) -> AsyncIterator[AnyEvent]:
        """Iterate over websocket events (of one prompt, if given) as they arrive.

        Opens the websocket if needed. Events beyond ``max_buffer`` unread ones are dropped
        (oldest kept) so a slow consumer cannot grow memory without bound.
        """
        await self._ensure_events()
        queue: asyncio.Queue[AnyEvent] = asyncio.Queue(maxsize=max_buffer)

        def put(event: AnyEvent) -> None:
            if not queue.full():
                queue.put_nowait(event)

        unsubscribe = self.on(None, put, prompt_id=prompt_id)
        try:
            while True:
                yield await queue.get()
        finally:
            unsubscribe()

    def _on_event(self, event: AnyEvent) -> None:
        if not isinstance(event, UnknownEvent):
            self.jobs.dispatch(event)
        for event_type, prompt_id, callback in list(self._subscribers):
            if event_type is not None and event.type != event_type:
                continue
            if prompt_id is not None and getattr(event, "prompt_id", None) != prompt_id:
                continue
            try:
                callback(event)
            except Exception:
                log.exception("event callback %r failed", callback)


def raise_for_job(job: Job, timeout: float) -> None:
    """Raise the error that matches a job's final state (nothing when it succeeded)."""
    state = job.state
    if state is JobState.FAILED:
        err = job.error or {}
        raise ExecutionFailedError(
            job.prompt_id,
            _str_or_none(err.get("node_id")),
            _str_or_none(err.get("node_type")),
            str(err.get("exception_type", "Exception")),
            str(err.get("exception_message", "")),
            [str(x) for x in err.get("traceback", [])],
        )
    if state is JobState.INTERRUPTED:
        info = job.interruption or {}
        raise ExecutionInterruptedError(
            job.prompt_id, _str_or_none(info.get("node_id")), _str_or_none(info.get("node_type"))
        )
    if state is JobState.CANCELLED:
        raise JobCancelledError(job.prompt_id)
    if state is JobState.LOST:
        raise JobLostError(job.prompt_id)
    if not job.done:
        raise ComfyTimeoutError(f"waiting for prompt {job.prompt_id} ({job.state.value})", timeout)


def _str_or_none(value: Any) -> str | None:
    return str(value) if value is not None else None


def _json_or_none(response: httpx.Response) -> Any:
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _decode_json(response: httpx.Response, what: str) -> Any:
    """Decode by content type, never by status: several routes answer 200 with no body."""
    if not response.content:
        raise ComfyProtocolError(f"{what} answered an empty body where JSON was expected")
    try:
        return json.loads(response.content)
    except ValueError as exc:
        snippet = response.text[:120].replace("\n", " ")
        raise ComfyProtocolError(f"{what} answered malformed JSON: {snippet!r}") from exc


def _history_entry(prompt_id: str, entry: Any) -> HistoryEntry:
    try:
        return HistoryEntry.from_wire(prompt_id, entry)
    except ValueError as exc:
        raise ComfyProtocolError(f"malformed history entry for {prompt_id}: {exc}") from exc
