"""The async ComfyUI client: HTTP routes, the websocket, and job tracking. No MCP here."""

from __future__ import annotations

from comfy_mcp.comfy.client import ComfyClient, raise_for_job
from comfy_mcp.comfy.endpoint import Auth, Endpoint
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
    JobError,
    JobLostError,
    PromptRejectedError,
    UploadTooLargeError,
)
from comfy_mcp.comfy.events import Event, NodeText, Preview, UnknownEvent
from comfy_mcp.comfy.jobs import TERMINAL_STATES, Job, JobState, Progress
from comfy_mcp.comfy.models import (
    HistoryEntry,
    MediaKind,
    OutputFile,
    PromptReceipt,
    QueueItem,
    QueueSnapshot,
    UploadResult,
)

__all__ = [
    "TERMINAL_STATES",
    "Auth",
    "ClientClosedError",
    "ComfyAuthError",
    "ComfyClient",
    "ComfyConnectionError",
    "ComfyError",
    "ComfyHTTPError",
    "ComfyNotFoundError",
    "ComfyProtocolError",
    "ComfyTimeoutError",
    "Endpoint",
    "Event",
    "ExecutionFailedError",
    "ExecutionInterruptedError",
    "HistoryEntry",
    "Job",
    "JobCancelledError",
    "JobError",
    "JobLostError",
    "JobState",
    "MediaKind",
    "NodeText",
    "OutputFile",
    "Preview",
    "Progress",
    "PromptReceipt",
    "PromptRejectedError",
    "QueueItem",
    "QueueSnapshot",
    "UnknownEvent",
    "UploadResult",
    "UploadTooLargeError",
    "raise_for_job",
]
