"""The structured results tools return: small, typed, and the same shape everywhere."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from comfy_mcp.comfy.jobs import Job, JobState
from comfy_mcp.comfy.models import QueueItem, QueueSnapshot
from comfy_mcp.server.content import OutputItem


class ProgressInfo(BaseModel):
    node: str | None = Field(default=None, description="Id of the node running now")
    node_type: str | None = Field(default=None, description="Its class, e.g. KSampler")
    step: float | None = Field(default=None, description="Steps done in that node")
    steps: float | None = Field(default=None, description="Steps that node will take")
    fraction: float | None = Field(default=None, description="Overall progress, 0..1")


class ErrorInfo(BaseModel):
    node_id: str | None = None
    node_type: str | None = None
    exception_type: str | None = None
    message: str
    traceback_tail: list[str] = Field(default_factory=list)


class JobReport(BaseModel):
    """Where a prompt is and what it produced."""

    prompt_id: str = Field(description="Pass this to get_status, get_outputs or interrupt")
    status: str = Field(
        description="queued, running, succeeded, partial, cached, failed, interrupted, "
        "cancelled, lost or unknown"
    )
    message: str = Field(description="One line for a human")
    queue_position: int | None = Field(
        default=None, description="0 = running, 1 = next to run; null when not queued"
    )
    progress: ProgressInfo | None = None
    error: ErrorInfo | None = None
    outputs: list[OutputItem] = Field(default_factory=list)
    texts: dict[str, list[str]] = Field(default_factory=dict, description="Text outputs by node id")
    workflow: str | None = Field(default=None, description="Template name, when one was used")
    params: dict[str, Any] = Field(
        default_factory=dict, description="Parameter values used, random seeds included"
    )
    dropped_outputs: list[str] = Field(
        default_factory=list,
        description="Output nodes ComfyUI skipped because they failed validation (partial)",
    )
    backend: str | None = Field(
        default=None, description="The ComfyUI backend running it (when several are configured)"
    )


def job_report(
    job: Job,
    *,
    workflow: str | None = None,
    params: dict[str, Any] | None = None,
    outputs: list[OutputItem] | None = None,
    texts: dict[str, list[str]] | None = None,
    known: bool = True,
    backend: str | None = None,
) -> JobReport:
    """Build the report of a job; ``known=False`` for an id we never submitted nor found."""
    state = job.state
    status = "unknown" if (state is JobState.LOST and not known) else str(state)
    progress = None
    if state is JobState.RUNNING:
        p = job.progress()
        progress = ProgressInfo(
            node=p.node, node_type=p.node_type, step=p.value, steps=p.max, fraction=p.fraction
        )
    error = None
    if state is JobState.FAILED:
        err = job.error or {}
        error = ErrorInfo(
            node_id=_opt(err.get("node_id")),
            node_type=_opt(err.get("node_type")),
            exception_type=_opt(err.get("exception_type")),
            message=str(err.get("exception_message", "")).strip() or "execution failed",
            traceback_tail=[str(t).rstrip() for t in err.get("traceback", [])][-3:],
        )
    elif state is JobState.INTERRUPTED:
        info = job.interruption or {}
        error = ErrorInfo(
            node_id=_opt(info.get("node_id")),
            node_type=_opt(info.get("node_type")),
            message="interrupted",
        )
    return JobReport(
        prompt_id=job.prompt_id,
        status=status,
        message=_message(job, status, error),
        queue_position=job.queue_position if state in (JobState.QUEUED, JobState.RUNNING) else None,
        progress=progress,
        error=error,
        outputs=outputs or [],
        texts=texts or {},
        workflow=workflow,
        params=params or {},
        dropped_outputs=job.receipt.dropped_outputs if job.receipt else [],
        backend=backend,
    )


def _message(job: Job, status: str, error: ErrorInfo | None) -> str:
    pid = job.prompt_id
    if status == "unknown":
        return f"ComfyUI has no prompt {pid} in its queue or history."
    state = job.state
    if state in (JobState.QUEUED, JobState.RUNNING):
        return (
            f"Prompt {pid} is {job.progress().describe()}. "
            "Call wait_for_job with this prompt_id to wait for it (with progress), "
            "or get_status to check without waiting."
        )
    if state is JobState.FAILED and error is not None:
        return (
            f"Prompt {pid} failed in node {error.node_id} ({error.node_type}): "
            f"{error.exception_type}: {error.message}"
        )
    if state is JobState.INTERRUPTED and error is not None:
        return f"Prompt {pid} was interrupted at node {error.node_id} ({error.node_type})."
    if state is JobState.CACHED:
        return (
            f"Prompt {pid} finished from ComfyUI's cache: the outputs are the files of an "
            "identical earlier run (change an input, such as the seed, for a new result)."
        )
    if state is JobState.PARTIAL:
        dropped = ", ".join(job.receipt.dropped_outputs) if job.receipt else ""
        return f"Prompt {pid} finished, but output nodes {dropped} were skipped (invalid)."
    if state is JobState.CANCELLED:
        return f"Prompt {pid} was removed from the queue before it ran."
    if state is JobState.LOST:
        return (
            f"Prompt {pid} is in neither ComfyUI's queue nor its history "
            "(server restarted, or the entry was deleted)."
        )
    return f"Prompt {pid} finished."


def _opt(value: Any) -> str | None:
    return str(value) if value is not None else None


class QueueEntry(BaseModel):
    prompt_id: str
    position: int = Field(description="0 = running, 1 = next to run, …")
    ours: bool = Field(description="Queued through this server process")
    workflow: str | None = None
    backend: str | None = None


class QueueReport(BaseModel):
    running: list[QueueEntry]
    pending: list[QueueEntry]
    message: str

    @classmethod
    def merge(cls, reports: list[QueueReport]) -> QueueReport:
        """Several backends' queues as one report (each entry names its backend)."""
        if len(reports) == 1:
            return reports[0]
        running = [e for r in reports for e in r.running]
        pending = [e for r in reports for e in r.pending]
        mine = sum(1 for e in running + pending if e.ours)
        return cls(
            running=running,
            pending=pending,
            message=f"{len(running)} running, {len(pending)} waiting ({mine} of them ours) "
            f"on {len(reports)} backends.",
        )


def queue_report(
    queue: QueueSnapshot,
    client_id: str,
    runs: Mapping[str, tuple[str | None, Any]],
    backend: str | None = None,
) -> QueueReport:
    """The queue in run order, marking the prompts this server queued (by client id)."""

    def entry(item: QueueItem, position: int) -> QueueEntry:
        workflow = runs.get(item.prompt_id, (None, {}))[0]
        info = item.extra_data.get("comfy_mcp")
        if workflow is None and isinstance(info, dict):
            workflow = info.get("workflow")
        return QueueEntry(
            prompt_id=item.prompt_id,
            position=position,
            ours=item.client_id == client_id,
            workflow=workflow,
            backend=backend,
        )

    running = [entry(item, 0) for item in queue.running]
    pending = [entry(item, i) for i, item in enumerate(queue.pending, start=1)]
    mine = sum(1 for e in running + pending if e.ours)
    return QueueReport(
        running=running,
        pending=pending,
        message=f"{len(running)} running, {len(pending)} waiting ({mine} of them ours).",
    )
