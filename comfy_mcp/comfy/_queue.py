"""Prompt, queue and history routes of ``ComfyClient``.

=====================  ==========================================================================
POST /prompt           ``{prompt_id, number, node_errors}``; 400 ``{error, node_errors}``
GET  /prompt           ``{exec_info: {queue_remaining}}``
GET  /queue            ``{queue_running: [item], queue_pending: [item]}`` (items are arrays)
POST /queue            ``{delete: [ids]}`` / ``{clear: true}`` → empty body
GET  /history[/{id}]   ``{prompt_id: entry}``; ``{}`` for an unknown (or still running) id
POST /history          ``{delete: [ids]}`` / ``{clear: true}`` → empty body
POST /interrupt        ``{prompt_id}`` interrupts only that prompt if it runs → empty body
POST /free             ``{unload_models, free_memory}`` → empty body (bodyless POST is a 500)
=====================  ==========================================================================
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from comfy_mcp.comfy._core import ClientCore, decode_json, history_entry
from comfy_mcp.comfy.endpoint import segment
from comfy_mcp.comfy.errors import ComfyHTTPError, ComfyProtocolError, PromptRejectedError
from comfy_mcp.comfy.models import HistoryEntry, PromptReceipt, QueueSnapshot

ItemKind = Literal["queue", "history"]


class QueueRoutes(ClientCore):
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
        """POST /prompt: queue an API-format graph, without following it (see ``submit``).

        Always sends our ``client_id`` (without it ComfyUI sends no completion events) and a
        ``prompt_id`` (a new canonical UUID by default), so a retried POST can be looked up
        instead of queued twice. The caller's graph is never modified.

        Args:
            prompt: ``{node_id: {"class_type": …, "inputs": {…}}}``.
            front: run before everything queued (ComfyUI gives it a negative number).
            number: explicit priority (lower runs first).
            extra_data: stored with the prompt and echoed by /queue and /history (no secrets).
            workflow: the editor graph, embedded in saved PNGs (``extra_pnginfo.workflow``).
            partial_execution_targets: run only these output nodes.

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
            extra["extra_pnginfo"] = {**extra.get("extra_pnginfo", {}), "workflow": dict(workflow)}
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
        data = decode_json(response, "POST /prompt")
        try:
            return PromptReceipt.model_validate(data)
        except ValueError as exc:
            raise ComfyProtocolError(f"unexpected answer to POST /prompt: {data!r:.300}") from exc

    async def get_queue(self) -> QueueSnapshot:
        """GET /queue, with the pending items sorted into run order (ComfyUI sends heap order)."""
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
        """Remove pending queue items, or history entries.

        ComfyUI answers 200 whatever matched (a running prompt is not in the pending queue:
        interrupt it instead); check with ``get_queue`` when it matters.
        """
        await self._post(f"/{kind}", {"delete": list(prompt_ids)})

    async def clear_items(self, kind: ItemKind) -> None:
        """Clear the pending queue (the running prompt stays) or the whole history."""
        await self._post(f"/{kind}", {"clear": True})

    async def get_history(
        self, max_items: int | None = None, offset: int | None = None
    ) -> dict[str, HistoryEntry]:
        """GET /history, oldest first, keyed by prompt id.

        ``max_items`` alone gives the newest N; with ``offset`` it gives N entries starting at
        the offset-th oldest; neither gives everything (ComfyUI keeps up to 10,000).
        """
        params: dict[str, int] = {}
        if max_items is not None:
            if max_items < 1:
                raise ValueError("max_items must be >= 1")
            params["max_items"] = max_items
        if offset is not None:
            if offset < 0:
                raise ValueError("offset must be >= 0")
            params["offset"] = offset
        data = await self._get_object("/history", params=params)
        return {pid: history_entry(pid, entry) for pid, entry in data.items()}

    async def get_history_item(self, prompt_id: str) -> HistoryEntry | None:
        """GET /history/{id}; None when ComfyUI has no entry.

        None is ambiguous: still queued or running, or unknown, deleted or evicted. ``refresh``
        and ``get_prompt_status`` resolve it with the queue.
        """
        data = await self._get_object(f"/history/{segment(prompt_id)}")
        entry = data.get(prompt_id)
        return history_entry(prompt_id, entry) if entry is not None else None

    async def interrupt(self, prompt_id: str) -> None:
        """Interrupt ``prompt_id`` if it is running.

        ComfyUI silently ignores an id that is not running (queued, finished, unknown): to
        stop a prompt whatever its state use ``cancel``. The running node finishes first
        unless it reports progress.
        """
        await self._post("/interrupt", {"prompt_id": prompt_id})

    async def interrupt_all(self) -> None:
        """Global interrupt: stops whatever runs, whoever queued it. Use only when asked to."""
        await self._post("/interrupt", {})

    async def free(self, *, unload_models: bool = False, free_memory: bool = False) -> None:
        """POST /free. ``free_memory`` also resets ComfyUI's execution cache."""
        await self._post("/free", {"unload_models": unload_models, "free_memory": free_memory})
