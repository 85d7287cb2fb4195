"""The I/O choke point every ``ComfyClient`` route goes through, and the state the route groups
share.

The route groups (``_queue``, ``_discovery``, ``_users``, ``_files``, ``_jobs_api``,
``_waiting``) are mixins over :class:`ClientCore`; ``ComfyClient`` combines them and owns
``__init__``. Keeping the one ``request`` here means every route gets the same auth, timeouts,
retries and typed errors.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import httpx

from comfy_mcp.comfy.connection import EventConnection
from comfy_mcp.comfy.endpoint import Endpoint
from comfy_mcp.comfy.errors import (
    ClientClosedError,
    ComfyAuthError,
    ComfyConnectionError,
    ComfyHTTPError,
    ComfyNotFoundError,
    ComfyProtocolError,
    ComfyTimeoutError,
    UploadTooLargeError,
)
from comfy_mcp.comfy.jobs import JobRegistry
from comfy_mcp.comfy.models import HistoryEntry

Params = Mapping[str, str | int | float | bool]


class ClientCore:
    """State and the HTTP core shared by the route groups (set up by ``ComfyClient``)."""

    endpoint: Endpoint
    client_id: str
    user: str | None
    timeout: float
    poll_interval: float
    check_interval: float
    submit_retries: int
    use_websocket: bool
    jobs: JobRegistry
    events: EventConnection
    _http: httpx.AsyncClient
    _in_flight: asyncio.Semaphore
    _closed: bool
    _node_defs: dict[str, Any] | None
    _node_defs_lock: asyncio.Lock
    _max_upload_size: int | None

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("this ComfyClient is closed")

    async def request(
        self,
        method: str,
        route: str,
        *,
        params: Params | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        files: Any = None,
        data: Mapping[str, str] | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        route_prefix: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request to a ComfyUI route and return the response (status < 300).

        The public escape hatch for routes without a method: auth, the ``Comfy-User`` header,
        the timeout and the typed errors apply as everywhere else. GETs are retried twice on
        connection errors and 5xx answers (they are safe to repeat); other methods are never
        retried here. ``route_prefix`` overrides the client's ``""``/``"/api"`` for routes
        served under one spelling only; ``headers`` are added last (they win).

        Raises:
            ComfyConnectionError, ComfyTimeoutError: no answer.
            ComfyHTTPError: an error status (``ComfyAuthError``, ``ComfyNotFoundError``,
                ``UploadTooLargeError`` for 401/403/3xx, 404, 413).
        """
        self._check_open()
        url = self.endpoint.http_url(route, params, route_prefix=route_prefix)
        safe_url = self.endpoint.redact(url)
        all_headers = self.endpoint.headers()
        if self.user:
            all_headers["Comfy-User"] = self.user
        if content is not None:
            all_headers["Content-Type"] = "application/octet-stream"
        all_headers.update(headers or {})
        seconds = timeout if timeout is not None else self.timeout
        attempts = 1 + (retries if retries is not None else (2 if method == "GET" else 0))
        for attempt in range(attempts):
            try:
                async with self._in_flight:
                    response = await self._http.request(
                        method,
                        url,
                        json=json_body,
                        content=content,
                        files=files,
                        data=data,
                        headers=all_headers,
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
        parsed = json_or_none(response)
        if status in (401, 403) or 300 <= status < 400:
            return ComfyAuthError(method, url, status, body, parsed)
        if status == 404:
            return ComfyNotFoundError(method, url, status, body, parsed)
        if status == 413:
            return UploadTooLargeError(method, url, status, body, parsed)
        return ComfyHTTPError(method, url, status, body, parsed)

    async def _get_json(self, route: str, **kwargs: Any) -> Any:
        response = await self.request("GET", route, **kwargs)
        return decode_json(response, f"GET {route}")

    async def _get_object(self, route: str, **kwargs: Any) -> dict[str, Any]:
        data = await self._get_json(route, **kwargs)
        if not isinstance(data, dict):
            raise ComfyProtocolError(f"GET {route} did not answer an object: {data!r:.200}")
        return data

    async def _get_list(self, route: str, **kwargs: Any) -> list[Any]:
        data = await self._get_json(route, **kwargs)
        if not isinstance(data, list):
            raise ComfyProtocolError(f"GET {route} did not answer a list: {data!r:.200}")
        return data

    async def _post(self, route: str, body: Any, **kwargs: Any) -> httpx.Response:
        # Always a JSON body: a bodyless POST /free is an HTTP 500 in ComfyUI.
        return await self.request(
            "POST", route, json_body=body if body is not None else {}, **kwargs
        )


def json_or_none(response: httpx.Response) -> Any:
    """The body parsed as JSON when the server says it is JSON, else None."""
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        return response.json()
    except ValueError:
        return None


def decode_json(response: httpx.Response, what: str) -> Any:
    """Decode by content, never by status: several routes answer 200 with no body."""
    if not response.content:
        raise ComfyProtocolError(f"{what} answered an empty body where JSON was expected")
    try:
        return json.loads(response.content)
    except ValueError as exc:
        snippet = response.text[:120].replace("\n", " ")
        raise ComfyProtocolError(f"{what} answered malformed JSON: {snippet!r}") from exc


def history_entry(prompt_id: str, entry: Any) -> HistoryEntry:
    try:
        return HistoryEntry.from_wire(prompt_id, entry)
    except ValueError as exc:
        raise ComfyProtocolError(f"malformed history entry for {prompt_id}: {exc}") from exc
