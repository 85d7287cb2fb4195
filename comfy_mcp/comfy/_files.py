"""File routes of ``ComfyClient``: uploads, ``/view`` downloads and turning outputs into URLs or
bytes.

=====================  ==========================================================================
POST /upload/image     multipart ``image`` (+ ``type``, ``subfolder``, ``overwrite``) →
                       ``{name, subfolder, type}``; clashing names are renamed ``x (1).png``
POST /upload/mask      the same plus ``original_ref`` (JSON ``{filename, subfolder, type}``): the
                       mask's alpha is copied into that image and the result stored
GET  /view             file bytes; 400 for ``..``, 404 when missing (empty bodies)
=====================  ==========================================================================
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Literal

import httpx

from comfy_mcp.comfy._core import decode_json
from comfy_mcp.comfy._queue import QueueRoutes
from comfy_mcp.comfy.errors import (
    ComfyConnectionError,
    ComfyProtocolError,
    ComfyTimeoutError,
    UploadTooLargeError,
)
from comfy_mcp.comfy.jobs import Job
from comfy_mcp.comfy.models import (
    HistoryEntry,
    MediaKind,
    OutputFile,
    ResolvedOutput,
    UploadResult,
    output_texts,
)

UploadType = Literal["input", "temp", "output"]
DEFAULT_MAX_BYTES = 512 * 1024 * 1024


class FileRoutes(QueueRoutes):
    def view_url(
        self,
        filename: str,
        *,
        subfolder: str = "",
        type: str = "output",
        preview: str | None = None,
        channel: str | None = None,
        include_auth: bool = False,
    ) -> str:
        """The ``/view`` URL of a file, built like every other URL (prefix, ``/api``).

        Without credentials by default, so it can be shown to an agent or a browser that has
        its own; ``include_auth=True`` adds the auth query parameters (such a URL is a secret).
        """
        return self.endpoint.view_url(
            filename,
            subfolder=subfolder,
            type=type,
            preview=preview,
            channel=channel,
            include_auth=include_auth,
        )

    async def view(
        self,
        filename: str,
        *,
        subfolder: str = "",
        type: str = "output",
        preview: str | None = None,
        channel: str | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> bytes:
        """Download a file through ``/view`` (streamed, refused past ``max_bytes``).

        ``preview="webp;90"`` or ``"jpeg;80"`` re-encodes at full size; ``channel`` is
        ``"rgb"`` or ``"a"`` (alpha as PNG).

        Raises:
            ComfyNotFoundError: no such file (404); ``ComfyHTTPError`` 400/403 for a path
                outside ComfyUI's folders.
            ComfyProtocolError: the file is larger than ``max_bytes``.
        """
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
            reason = self.endpoint.redact(str(exc) or exc.__class__.__name__)
            raise ComfyConnectionError(self.endpoint.base_url, reason) from exc

    async def upload_image(
        self,
        data: bytes,
        filename: str,
        *,
        subfolder: str = "",
        type: UploadType = "input",
        overwrite: bool = False,
    ) -> UploadResult:
        """POST /upload/image. Use the returned ``name``/``reference``: ComfyUI renames clashes.

        Same bytes under the same name come back unchanged (nothing written); different bytes
        get ``name (1).ext``. ``overwrite=True`` replaces the file instead.

        Raises:
            UploadTooLargeError: over the server's ``max_upload_size`` (checked before sending
                when the limit is known) or HTTP 413.
        """
        return await self._upload("/upload/image", data, filename, subfolder, type, overwrite)

    async def upload_mask(
        self,
        data: bytes,
        filename: str,
        original_ref: UploadResult | OutputFile | Mapping[str, str],
        *,
        subfolder: str = "",
        type: UploadType = "input",
        overwrite: bool = False,
    ) -> UploadResult:
        """POST /upload/mask: paint a mask's alpha channel into an existing image.

        ComfyUI reads ``original_ref`` (the image the mask belongs to: an ``UploadResult``,
        an ``OutputFile`` or ``{"filename", "subfolder", "type"}``), replaces its alpha with
        the mask's alpha and stores the result under ``filename`` (renamed on clashes, like
        ``upload_image``). Load it with ``LoadImage``; its MASK output is the painted mask.
        """
        extra = {"original_ref": json.dumps(_reference(original_ref))}
        return await self._upload("/upload/mask", data, filename, subfolder, type, overwrite, extra)

    async def _upload(
        self,
        route: str,
        data: bytes,
        filename: str,
        subfolder: str,
        type: UploadType,
        overwrite: bool,
        extra: Mapping[str, str] | None = None,
    ) -> UploadResult:
        limit = self._upload_limit()
        if limit is not None and len(data) > limit:
            raise UploadTooLargeError(
                "POST",
                self.endpoint.base_url + route,
                413,
                f"{len(data)} bytes is over the server's max_upload_size of {limit} bytes",
            )
        fields = {
            "type": type,
            "subfolder": subfolder,
            "overwrite": "true" if overwrite else "false",
            **(extra or {}),
        }
        response = await self.request(
            "POST",
            route,
            files={"image": (filename, data, "application/octet-stream")},
            data=fields,
            timeout=self.timeout * 3,
        )
        try:
            return UploadResult.model_validate(decode_json(response, f"POST {route}"))
        except ValueError as exc:
            raise ComfyProtocolError(f"unexpected answer to POST {route}") from exc

    def _upload_limit(self) -> int | None:
        """The server's max_upload_size if already known (websocket handshake or /features)."""
        value = self.events.features.get("max_upload_size")
        if isinstance(value, int) and value > 0:
            return value
        return self._max_upload_size

    async def get_prompt_outputs(self, prompt_id: str) -> list[OutputFile]:
        """Every file a finished prompt produced (all output keys, ``temp`` included).

        From GET /history/{id}; ``[]`` while the prompt is queued or running, when it failed
        before writing anything, or when ComfyUI has no entry (use ``get_prompt_status`` to
        tell these apart).
        """
        entry = await self.get_history_item(prompt_id)
        return entry.files if entry is not None else []

    async def resolve_outputs(
        self,
        source: Job | HistoryEntry | str,
        *,
        as_: Literal["url", "bytes"] = "url",
        include_auth: bool = False,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> list[ResolvedOutput]:
        """Every output of a prompt, ready to use: files with a ``/view`` URL (or their bytes),
        text outputs, and images that only existed on the websocket.

        Args:
            source: a ``Job`` (its history, read if not yet known, plus the images its
                ``SaveImageWebsocket``-style output nodes streamed), a ``HistoryEntry``, or a
                prompt id.
            as_: ``"url"`` fills ``url`` (no credentials unless ``include_auth``: safe to
                show); ``"bytes"`` downloads each file into ``data`` as well.

        Returns every kind (images, animations, video, audio, 3D, latents, text) and every
        type (``output``, ``temp``, ``input``); ``[]`` when the prompt has no history entry.
        """
        job = source if isinstance(source, Job) else None
        if isinstance(source, HistoryEntry):
            entry: HistoryEntry | None = source
        elif isinstance(source, Job):
            entry = source.history or await self.get_history_item(source.prompt_id)
        else:
            entry = await self.get_history_item(source)
        resolved: list[ResolvedOutput] = []
        if entry is not None:
            for file in entry.files:
                url = self.view_url(
                    file.filename,
                    subfolder=file.subfolder,
                    type=file.type,
                    include_auth=include_auth,
                )
                resolved.append(
                    ResolvedOutput(file.node_id, file.key, file.kind, file.mime_type, file, url)
                )
            for node_id, texts in output_texts(entry.outputs).items():
                resolved += [
                    ResolvedOutput(node_id, "text", MediaKind.TEXT, "text/plain", text=t)
                    for t in texts
                ]
        if as_ == "bytes":
            resolved = list(await asyncio.gather(*(self._fill(r, max_bytes) for r in resolved)))
        if job is not None:
            resolved += _websocket_outputs(job, entry)
        return resolved

    async def _fill(self, output: ResolvedOutput, max_bytes: int) -> ResolvedOutput:
        if output.file is None:
            return output
        file = output.file
        data = await self.view(
            file.filename, subfolder=file.subfolder, type=file.type, max_bytes=max_bytes
        )
        return ResolvedOutput(
            output.node_id, output.key, output.kind, output.mime_type, file, output.url, data
        )


def _reference(ref: UploadResult | OutputFile | Mapping[str, str]) -> dict[str, str]:
    if isinstance(ref, UploadResult):
        return {"filename": ref.name, "subfolder": ref.subfolder, "type": ref.type}
    if isinstance(ref, OutputFile):
        return {"filename": ref.filename, "subfolder": ref.subfolder, "type": ref.type}
    if "filename" not in ref:
        raise ValueError("original_ref needs a 'filename' (and optionally subfolder, type)")
    return {
        "filename": ref["filename"],
        "subfolder": ref.get("subfolder", ""),
        "type": ref.get("type", "input"),
    }


def _websocket_outputs(job: Job, entry: HistoryEntry | None) -> list[ResolvedOutput]:
    """Images an output node streamed over the websocket (``SaveImageWebsocket``): they exist
    nowhere else. Live sampler previews come from non-output nodes and are left out."""
    output_nodes = set(entry.output_nodes) if entry is not None else set()
    found: list[ResolvedOutput] = []
    for preview in job.previews:
        node = preview.node_id
        if node is None:
            continue
        class_type = str((job.graph.get(node) or {}).get("class_type", ""))
        if node in output_nodes or "websocket" in class_type.lower():
            found.append(
                ResolvedOutput(
                    node, "websocket", MediaKind.IMAGE, preview.mime_type, data=preview.image
                )
            )
    return found
