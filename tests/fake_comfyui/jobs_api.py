"""The newer servers' job API (``/api/jobs``), off by default: ComfyUI 0.3.64 has none.

Not recorded; shaped after ComfyUI's ``comfy_execution/jobs.py`` (statuses ``pending``,
``in_progress``, ``completed``, ``failed``) plus ``cancelled`` and ``POST …/cancel`` from the
research notes. Enabled with ``FakeComfyUI(jobs_api=True)``; served under ``/api`` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from .http_util import json_response

if TYPE_CHECKING:
    from .fake import FakeComfyUI
    from .state import QueueItem


class JobsApiRoutes:
    def __init__(self, fake: FakeComfyUI) -> None:
        self.fake = fake

    def table(self) -> list[tuple[str, Any, list[str]]]:
        return [
            ("/api/jobs", self.list_jobs, ["GET"]),
            ("/api/jobs/{prompt_id}", self.get_job, ["GET"]),
            ("/api/jobs/{prompt_id}/cancel", self.cancel_job, ["POST"]),
        ]

    def _from_queue(self, item: QueueItem, status: str) -> dict[str, Any]:
        return {
            "id": item.prompt_id,
            "status": status,
            "priority": item.number,
            "outputs_count": 0,
        }

    def _from_history(self, prompt_id: str, full: bool) -> dict[str, Any]:
        entry = self.fake.queue.history[prompt_id]
        status_info = entry.get("status") or {}
        messages = status_info.get("messages", [])
        last = messages[-1][0] if messages else None
        if prompt_id in self.fake.cancelled_prompts and last == "execution_interrupted":
            status = "cancelled"
        elif status_info.get("status_str") == "error":
            status = "failed"
        else:
            status = "completed"
        outputs = entry.get("outputs", {})
        job: dict[str, Any] = {
            "id": prompt_id,
            "status": status,
            "priority": entry["prompt"][0],
            "outputs_count": sum(
                len(v) for ui in outputs.values() for k, v in ui.items() if k != "animated"
            ),
        }
        for name, data in messages:
            if name == "execution_start":
                job["execution_start_time"] = data.get("timestamp")
            elif name in ("execution_success", "execution_error", "execution_interrupted"):
                job["execution_end_time"] = data.get("timestamp")
                if name == "execution_error":
                    job["execution_error"] = data
        if full:
            job["outputs"] = outputs
            job["execution_status"] = status_info
            job["workflow"] = {"prompt": entry["prompt"][2], "extra_data": entry["prompt"][3]}
        return job

    def find(self, prompt_id: str, full: bool = True) -> dict[str, Any] | None:
        fake = self.fake
        if prompt_id in fake.queue.history:
            return self._from_history(prompt_id, full)
        running, pending = fake.queue.current_queue()
        for item in running:
            if item.prompt_id == prompt_id:
                return self._from_queue(item, "in_progress")
        for item in pending:
            if item.prompt_id == prompt_id:
                return self._from_queue(item, "pending")
        if prompt_id in fake.cancelled_prompts:
            return {"id": prompt_id, "status": "cancelled", "outputs_count": 0}
        return None

    async def list_jobs(self, request: Request) -> Response:
        fake = self.fake
        running, pending = fake.queue.current_queue()
        jobs = [self._from_queue(i, "in_progress") for i in running]
        jobs += [self._from_queue(i, "pending") for i in pending]
        jobs += [self._from_history(pid, False) for pid in reversed(fake.queue.history)]
        total = len(jobs)
        limit = int(request.query_params.get("limit", total) or total)
        offset = int(request.query_params.get("offset", 0) or 0)
        page = jobs[offset : offset + limit]
        pagination = {
            "offset": offset,
            "limit": limit,
            "total": total,
            "has_more": offset + len(page) < total,
        }
        return json_response({"jobs": page, "pagination": pagination})

    async def get_job(self, request: Request) -> Response:
        job = self.find(request.path_params["prompt_id"])
        if job is None:
            return json_response({"error": "Job not found"}, 404)
        return json_response(job)

    async def cancel_job(self, request: Request) -> Response:
        fake = self.fake
        prompt_id = request.path_params["prompt_id"]
        job = self.find(prompt_id, full=False)
        if job is None:
            return json_response({"error": "Job not found"}, 404)
        fake.jobs_api_cancels.append(prompt_id)
        if job["status"] == "pending":
            fake.queue.delete_queue_item(prompt_id)
            fake.cancelled_prompts.add(prompt_id)
        elif job["status"] == "in_progress":
            fake.cancelled_prompts.add(prompt_id)
            fake.executor.interrupt()
        return json_response(self.find(prompt_id, full=False))
