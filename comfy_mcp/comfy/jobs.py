"""A submitted prompt's life, and the registry that routes websocket events to it.

A :class:`Job` is registered under its prompt id *before* POST /prompt is sent (we choose the id),
so no event can arrive for an unknown prompt. Its state moves through :class:`JobState`; the final
state and the outputs always come from ``/history/{id}``: websocket events are hints, history is
the record (see :meth:`Job.apply_history`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from comfy_mcp.comfy.events import TERMINAL_TYPES, Event, NodeText, Preview
from comfy_mcp.comfy.models import HistoryEntry, OutputFile, PromptReceipt, QueueSnapshot


class JobState(StrEnum):
    """Where a prompt is. The terminal states are those in :data:`TERMINAL_STATES`."""

    QUEUED = "queued"  # waiting in ComfyUI's queue (see queue_position)
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"  # succeeded, but ComfyUI dropped some output branches at validation
    CACHED = "cached"  # succeeded entirely from ComfyUI's cache: no new file was written
    FAILED = "failed"  # a node raised
    INTERRUPTED = "interrupted"  # stopped while running
    CANCELLED = "cancelled"  # removed from the queue before it ran
    LOST = "lost"  # in neither queue nor history
    UNKNOWN = "unknown"  # not determined yet


TERMINAL_STATES = frozenset(
    {
        JobState.SUCCEEDED,
        JobState.PARTIAL,
        JobState.CACHED,
        JobState.FAILED,
        JobState.INTERRUPTED,
        JobState.CANCELLED,
        JobState.LOST,
    }
)
SUCCESS_STATES = frozenset({JobState.SUCCEEDED, JobState.PARTIAL, JobState.CACHED})


@dataclass(frozen=True)
class Progress:
    """A snapshot of a running job, for progress listeners and status tools."""

    prompt_id: str
    state: JobState
    queue_position: int | None
    node: str | None
    node_type: str | None
    value: float | None  # steps done in the current node (samplers report these)
    max: float | None
    fraction: float | None  # overall, from progress_state: finished nodes / known nodes

    def describe(self) -> str:
        if self.state is JobState.QUEUED:
            where = f" (position {self.queue_position})" if self.queue_position else ""
            return f"queued{where}"
        if self.state is JobState.RUNNING:
            text = "running"
            if self.node:
                text += f" node {self.node}" + (f" ({self.node_type})" if self.node_type else "")
            if self.value is not None and self.max:
                text += f", step {self.value:g}/{self.max:g}"
            return text
        return str(self.state)


ProgressListener = Callable[[Progress], None]


class Job:
    """One prompt we submitted (or adopted by id), followed to its end."""

    def __init__(self, prompt_id: str, graph: dict[str, Any] | None = None) -> None:
        self.prompt_id = prompt_id
        self.graph = graph or {}
        self.receipt: PromptReceipt | None = None
        # True once ComfyUI has the prompt (POST answered, or adopted by id): before that, an
        # absence from the queue means "not posted yet", not "lost".
        self.accepted = False
        self.state = JobState.UNKNOWN
        self.queue_position: int | None = None
        self.node: str | None = None
        self.value: float | None = None
        self.max: float | None = None
        self.fraction: float | None = None
        self.cached_nodes: list[str] = []
        self.error: dict[str, Any] | None = None
        self.interruption: dict[str, Any] | None = None
        self.history: HistoryEntry | None = None
        self.previews: list[Preview] = []  # SaveImageWebsocket outputs exist only here
        self.texts: list[NodeText] = []
        self.submitted_at = time.monotonic()
        self.accepted_at: float | None = None  # when ComfyUI confirmed it has the prompt
        self.started_at: float | None = None  # when we first saw it running
        self.seen_in_queue_at: float | None = None  # last GET /queue that listed it
        self.finished_at: float | None = None
        # True once the websocket reported the end (``executing null`` or a terminal event):
        # a job settled over HTTP without it, on a socket that was up, hints at displacement.
        self.ended_by_event = False
        self.last_event_at = self.submitted_at
        self.ended = asyncio.Event()  # set when ComfyUI says the prompt is over
        self._listeners: list[ProgressListener] = []
        self._last_snapshot: Progress | None = None
        self.max_previews = 32

    # -- observers ---------------------------------------------------------------------------

    def add_listener(self, listener: ProgressListener) -> Callable[[], None]:
        """Call ``listener`` on every change; returns a function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def progress(self) -> Progress:
        node_type = None
        if self.node and isinstance(self.graph.get(self.node), dict):
            node_type = self.graph[self.node].get("class_type")
        return Progress(
            self.prompt_id,
            self.state,
            self.queue_position,
            self.node,
            node_type,
            self.value,
            self.max,
            self.fraction,
        )

    def _notify(self) -> None:
        if self.state is JobState.RUNNING and self.started_at is None:
            self.started_at = time.monotonic()
        snapshot = self.progress()
        if snapshot == self._last_snapshot:
            return  # many events change nothing a listener sees (e.g. progress_state twice)
        self._last_snapshot = snapshot
        for listener in list(self._listeners):
            listener(snapshot)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def files(self) -> list[OutputFile]:
        return self.history.files if self.history else []

    # -- websocket events (hints) --------------------------------------------------------------

    def feed(self, event: Event | Preview | NodeText) -> None:
        """Apply one event already known to belong to this prompt."""
        self.last_event_at = time.monotonic()
        if isinstance(event, Preview):
            if len(self.previews) < self.max_previews:
                self.previews.append(event)
            return
        if isinstance(event, NodeText):
            self.texts.append(event)
            return
        kind, data = event.type, event.data
        if event.is_prompt_done or kind in TERMINAL_TYPES:
            self.ended_by_event = True
        if self.done:
            return
        running_kinds = ("execution_start", "executing", "progress", "progress_state", "executed")
        if kind in running_kinds and self.state in (JobState.UNKNOWN, JobState.QUEUED):
            self.state = JobState.RUNNING
            self.queue_position = 0
        if kind == "execution_cached":
            self.cached_nodes = [str(n) for n in data.get("nodes", [])]
        elif kind == "executing":
            if event.is_prompt_done:
                self.ended.set()
            elif data.get("node") is not None:
                self.node = str(data["node"])
                self.value = self.max = None
        elif kind == "progress":
            self.node = str(data.get("node", self.node))
            self.value = _number(data.get("value"))
            self.max = _number(data.get("max"))
        elif kind == "progress_state":
            nodes = data.get("nodes")
            if isinstance(nodes, dict) and nodes:
                finished = sum(
                    1
                    for n in nodes.values()
                    if isinstance(n, dict) and n.get("state") == "finished"
                )
                total = max(len(self.graph), len(nodes))
                self.fraction = min(1.0, finished / total) if total else None
        elif kind == "execution_error":
            self.error = data
        elif kind == "execution_interrupted":
            self.interruption = data
        self._notify()

    def note_queue(self, queue: QueueSnapshot) -> bool:
        """Update from GET /queue. Returns False when the prompt is not in the queue."""
        position = queue.position(self.prompt_id)
        if position is None:
            return False
        self.seen_in_queue_at = time.monotonic()
        if not self.done:
            self.queue_position = position
            self.state = JobState.RUNNING if position == 0 else JobState.QUEUED
            self._notify()
        return True

    def note_state(self, state: JobState, queue_position: int | None = None) -> None:
        """Record a non-terminal state learned over HTTP (the newer job API)."""
        if self.done or state in TERMINAL_STATES:
            return
        self.state = state
        self.queue_position = 0 if state is JobState.RUNNING else queue_position
        self._notify()

    # -- history (the record) ------------------------------------------------------------------

    def apply_history(self, entry: HistoryEntry) -> None:
        """Settle the final state from the history entry."""
        self.history = entry
        outcome = entry.outcome
        if outcome == "interrupted":
            self.interruption = entry.interruption or self.interruption
            self._finish(JobState.INTERRUPTED)
        elif outcome == "error":
            self.error = entry.error or self.error
            self._finish(JobState.FAILED)
        elif outcome == "success":
            if self.receipt is not None and self.receipt.partial:
                self._finish(JobState.PARTIAL)
            elif entry.fully_cached:
                self._finish(JobState.CACHED)
            else:
                self._finish(JobState.SUCCEEDED)

    def mark_lost(self) -> None:
        self._finish(JobState.LOST)

    def mark_cancelled(self) -> None:
        self._finish(JobState.CANCELLED)

    def _finish(self, state: JobState) -> None:
        self.state = state
        self.queue_position = None
        self.finished_at = time.monotonic()
        self.ended.set()
        self._notify()


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class JobRegistry:
    """Routes events to jobs by prompt id; forgets finished jobs after ``retention`` seconds."""

    def __init__(self, *, retention: float = 3600.0, max_finished: int = 1000) -> None:
        self._jobs: dict[str, Job] = {}
        self._registrations = 0
        self.retention = retention
        self.max_finished = max_finished
        # (prompt_id, node) of the last `executing`: legacy previews carry no ids of their own.
        self._last: tuple[str | None, str | None] = (None, None)

    def register(self, job: Job) -> Job:
        self._registrations += 1
        if self._registrations % 32 == 0:  # prune is O(jobs): not on every registration
            self.prune()
        existing = self._jobs.get(job.prompt_id)
        if existing is not None:
            return existing
        self._jobs[job.prompt_id] = job
        return job

    def get(self, prompt_id: str) -> Job | None:
        return self._jobs.get(prompt_id)

    def forget(self, prompt_id: str) -> None:
        self._jobs.pop(prompt_id, None)

    def active(self) -> list[Job]:
        return [job for job in self._jobs.values() if not job.done]

    def __len__(self) -> int:
        return len(self._jobs)

    def dispatch(self, event: Event | Preview | NodeText) -> None:
        """Give an event to the job it belongs to; events of other prompts are ignored."""
        if isinstance(event, Event):
            prompt_id = event.prompt_id
            if event.type == "executing" and event.data.get("node") is not None:
                if prompt_id is None:
                    # ComfyUI's reconnect frame: {"node": id} without a prompt id, sent right
                    # after our handshake when a prompt of ours is running.
                    prompt_id = self._only_running()
                self._last = (prompt_id, str(event.data["node"]))
        elif isinstance(event, Preview) and event.prompt_id is None:
            prompt_id, node = self._last
            event = Preview(event.mime_type, event.image, prompt_id, node, attributed=True)
        else:
            prompt_id = event.prompt_id or self._last[0]
        job = self._jobs.get(prompt_id) if prompt_id else None
        if job is not None:
            job.feed(event)

    def _only_running(self) -> str | None:
        running = [job.prompt_id for job in self._jobs.values() if job.state is JobState.RUNNING]
        return running[0] if len(running) == 1 else None

    def prune(self) -> None:
        """Forget finished jobs past the retention time or beyond ``max_finished``."""
        now = time.monotonic()
        finished = [j for j in self._jobs.values() if j.done and j.finished_at is not None]
        finished.sort(key=lambda j: j.finished_at or 0.0)
        excess = len(finished) - self.max_finished
        for index, job in enumerate(finished):
            if index < excess or now - (job.finished_at or now) > self.retention:
                del self._jobs[job.prompt_id]
