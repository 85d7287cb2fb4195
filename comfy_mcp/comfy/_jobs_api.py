"""The newer servers' job API (``/api/jobs``), used when the server has it.

Not in ComfyUI 0.3.64 (the recorded server answers 404). Newer servers answer, per the research
notes and ComfyUI's ``comfy_execution/jobs.py``:

=============================  ==================================================================
GET  /api/jobs                 ``{"jobs": [job…], "pagination": {…}}`` (the probe)
GET  /api/jobs/{id}            ``{id, status, priority, create_time, execution_start_time,
                               execution_end_time, execution_error, outputs, execution_status,
                               workflow…}``; 404 for an unknown id
POST /api/jobs/{id}/cancel     cancels a pending or running job
=============================  ==================================================================

``status`` is ``pending``, ``in_progress``, ``completed``, ``failed`` or ``cancelled``; one GET
answers what takes three classic requests (history, queue, history: §4 rule 8). Payloads are
read defensively and the classic routes stay the fallback.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from comfy_mcp.comfy._core import json_or_none
from comfy_mcp.comfy._queue import QueueRoutes
from comfy_mcp.comfy.endpoint import segment
from comfy_mcp.comfy.errors import ComfyAuthError, ComfyHTTPError, ComfyNotFoundError
from comfy_mcp.comfy.jobs import Job, JobState
from comfy_mcp.comfy.models import HistoryEntry

CancelOutcome = Literal["removed", "interrupted", "finished", "unknown"]

_RUNNING = {"pending": JobState.QUEUED, "in_progress": JobState.RUNNING}
_ENDED = {"completed", "failed", "cancelled"}


class JobsApiRoutes(QueueRoutes):
    _jobs_api: bool | None
    _jobs_api_lock: asyncio.Lock

    async def has_jobs_api(self) -> bool:
        """Whether the server has the ``/api/jobs`` routes.

        Probed once (GET /api/jobs: a 404 or a non-JSON answer means absent) and remembered
        until the websocket reconnects, since a reconnect may mean a restarted, different
        server. Connection failures are raised, not remembered.
        """
        if self._jobs_api is None:
            async with self._jobs_api_lock:
                if self._jobs_api is None:
                    self._jobs_api = await self._probe_jobs_api()
        return self._jobs_api

    def forget_jobs_api(self) -> None:
        """Probe again on the next use (called after every websocket reconnect)."""
        self._jobs_api = None

    async def _probe_jobs_api(self) -> bool:
        try:
            response = await self.request(
                "GET", "/jobs", params={"limit": 1}, route_prefix="/api", retries=0
            )
        except ComfyAuthError:
            raise
        except ComfyHTTPError:
            return False  # 404 on 0.3.64; any other refusal: use the classic routes
        return isinstance(json_or_none(response), dict | list)

    async def _job_payload(self, prompt_id: str) -> dict[str, Any] | None:
        """GET /api/jobs/{id}; None when the server does not know the id."""
        try:
            data = await self._get_json(f"/jobs/{segment(prompt_id)}", route_prefix="/api")
        except ComfyNotFoundError:
            return None
        return data if isinstance(data, dict) else None

    async def _refresh_from_jobs_api(self, job: Job) -> bool:
        """Settle ``job`` from the job API. False when it cannot tell (unknown id or status):
        the caller falls back to the classic routes."""
        payload = await self._job_payload(job.prompt_id)
        status = str(payload.get("status", "")) if payload else ""
        if status in _RUNNING:
            job.accepted = True
            job.note_state(_RUNNING[status])
            return True
        if payload is None or status not in _ENDED:
            return False
        job.accepted = True
        # Outputs come from the history record; the payload's copy of it is the fallback for
        # an entry already evicted from /history.
        entry = await self.get_history_item(job.prompt_id)
        if entry is None or entry.outcome is None:
            entry = _entry_from_payload(job.prompt_id, payload)
        if status == "cancelled" and (entry is None or entry.outcome != "interrupted"):
            # Cancelled before it ran; one stopped while running reads as interrupted.
            job.mark_cancelled()
        elif entry is not None and entry.outcome is not None:
            job.apply_history(entry)
        else:
            return False
        return True

    async def _cancel_with_jobs_api(self, prompt_id: str) -> CancelOutcome:
        payload = await self._job_payload(prompt_id)
        status = str(payload.get("status", "")) if payload else ""
        if payload is None:
            return "unknown"
        if status in _ENDED:
            return "finished"
        await self.request(
            "POST", f"/jobs/{segment(prompt_id)}/cancel", json_body={}, route_prefix="/api"
        )
        job = self.jobs.get(prompt_id)
        if status == "pending":
            if job is not None and not job.done:
                job.mark_cancelled()
            return "removed"
        return "interrupted"


def _entry_from_payload(prompt_id: str, payload: dict[str, Any]) -> HistoryEntry | None:
    """The history record inside a finished job's payload (``outputs`` + ``execution_status``
    are the history entry's ``outputs`` and ``status``), or None when it is not there."""
    status = payload.get("execution_status")
    outputs = payload.get("outputs")
    if not isinstance(status, dict) or not isinstance(outputs, dict):
        return None
    workflow = payload.get("workflow")
    if not isinstance(workflow, dict):
        workflow = {}
    prompt = [
        payload.get("priority", 0),
        prompt_id,
        workflow.get("prompt", {}),
        workflow.get("extra_data", {}),
        list(outputs),  # the output nodes that reported something
    ]
    try:
        return HistoryEntry.from_wire(
            prompt_id, {"prompt": prompt, "outputs": outputs, "status": status}
        )
    except ValueError:
        return None
