"""Submitting prompts and following them to their end: ``submit``, ``wait``, ``run``,
``run_polling``, ``refresh``, ``cancel``, and the HTTP safety net behind them.

The websocket is a hint and ``/history`` the record: a job ends on ``executing`` with
``node: null`` for its prompt id and is then settled from ``/history/{id}``. While jobs are
unfinished one reconciler task checks them over HTTP (one GET /queue for all, then
``/history/{id}`` for those that left the queue): every ``check_interval`` with a live socket,
every ``poll_interval`` without one, so a dropped, silent or displaced socket never hangs a wait.

Displacement: ComfyUI keeps one socket per client id, so another socket opened with our id
silently takes our events (§3.5 of the protocol note). Two signs reveal it: a job the reconciler
settled over HTTP whose end never came on a socket that was up the whole time, and a prompt of
ours that ``/queue`` shows running while our socket stays silent for three check intervals.
Either way the client reconnects: the old socket is closed first, then a new one takes the id
back (and ComfyUI greets it with ``executing {node}`` when our prompt runs). A node that simply
runs long without reporting progress looks like silence too, so the silence probe is made at
most once per prompt; a displacement after that is still caught when the prompt ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Mapping
from typing import Any

from comfy_mcp.comfy._jobs_api import CancelOutcome, JobsApiRoutes
from comfy_mcp.comfy.errors import (
    ComfyAuthError,
    ComfyConnectionError,
    ComfyError,
    ComfyTimeoutError,
    ExecutionFailedError,
    ExecutionInterruptedError,
    JobCancelledError,
    JobLostError,
)
from comfy_mcp.comfy.jobs import Job, JobState, ProgressListener
from comfy_mcp.comfy.models import QueueSnapshot

log = logging.getLogger(__name__)

_SETTLE_DELAYS = (0.0, 0.05, 0.1, 0.2, 0.4, 0.8)
_SILENCE_FACTOR = 3  # check intervals of silence, while our prompt runs, before a probe


class JobMethods(JobsApiRoutes):
    _reconciler: asyncio.Task[None] | None
    _background: set[asyncio.Task[None]]
    _last_prompt_event_at: float
    _running_since: dict[str, float]
    _silence_probed: set[str]
    displacement_reconnects: int

    async def submit(
        self, prompt: Mapping[str, Any], *, prompt_id: str | None = None, **options: Any
    ) -> Job:
        """Queue a prompt and return its :class:`Job`, registered before the POST is sent.

        The websocket is opened first (when enabled), so no event of the prompt can be missed.
        If the POST fails without an answer, the id is looked up before anything is resent.
        ``options`` are those of ``queue_prompt`` (``front``, ``number``, ``extra_data``,
        ``workflow``, ``partial_execution_targets``).

        Raises:
            PromptRejectedError: the graph failed validation; no job is kept.
        """
        await self._ensure_events()
        return await self._submit(prompt, prompt_id, options)

    async def _submit(
        self, prompt: Mapping[str, Any], prompt_id: str | None, options: Mapping[str, Any]
    ) -> Job:
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
        job.accepted_at = time.monotonic()
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

    def _adopt(self, job: Job | str) -> Job:
        if isinstance(job, Job):
            return job
        adopted = self.jobs.get(job) or self.jobs.register(Job(job))
        adopted.accepted = True  # adopted by id: it exists on the server, or is lost
        return adopted

    async def wait(
        self,
        job: Job | str,
        *,
        timeout: float,
        on_progress: ProgressListener | None = None,
        poll_interval: float | None = None,
        run_timeout: float | None = None,
    ) -> Job:
        """Wait until the job ends or a budget runs out; returns the job either way.

        Completion comes from the websocket (``executing`` with ``node: null`` for this prompt)
        and is settled from ``/history/{id}``. While the websocket is down (or disabled) the
        job is checked over HTTP every ``poll_interval`` seconds, so a dropped socket never
        hangs a wait. Passing ``poll_interval`` checks this job over HTTP at that rate even
        with a live socket (for proxies that pass websockets but buffer their frames).

        Two budgets: ``timeout`` bounds the whole wait, queueing included; ``run_timeout``
        bounds the time since the prompt started running, so a long queue does not eat the
        run's budget and a run that never ends is noticed. Check ``job.done`` afterwards.

        ``job`` may be a prompt id, e.g. one queued by an earlier process: it is adopted.
        """
        job = self._adopt(job)
        remove = job.add_listener(on_progress) if on_progress else None
        deadline = time.monotonic() + timeout
        next_poll = time.monotonic() + poll_interval if poll_interval else math.inf
        self._start_reconciler()
        try:
            while not job.done:
                now = time.monotonic()
                limit = deadline
                if run_timeout is not None and job.started_at is not None:
                    limit = min(limit, job.started_at + run_timeout)
                if now >= limit:
                    break
                wake = min(limit, next_poll)
                if run_timeout is not None and job.started_at is None:
                    wake = min(wake, now + 0.25)  # notice the start: the run budget begins
                try:
                    async with asyncio.timeout(wake - now):
                        await job.ended.wait()
                except TimeoutError:
                    if poll_interval and time.monotonic() >= next_poll:
                        next_poll = time.monotonic() + poll_interval
                        await self._safe_refresh(job)
                    continue
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
        run_timeout: float | None = None,
        **options: Any,
    ) -> Job:
        """Submit, wait, and raise unless the prompt succeeded (succeeded, partial or cached).

        ``timeout`` and ``run_timeout`` are the budgets of ``wait``; ``options`` those of
        ``queue_prompt``.

        Raises:
            PromptRejectedError, ExecutionFailedError, ExecutionInterruptedError,
            JobCancelledError, JobLostError; ComfyTimeoutError (with ``prompt_id``: the
            prompt is still queued or running, ``wait(prompt_id, …)`` resumes).
        """
        job = await self.submit(prompt, **options)
        await self.wait(job, timeout=timeout, on_progress=on_progress, run_timeout=run_timeout)
        raise_for_job(job, timeout)
        return job

    async def run_polling(
        self,
        prompt: Mapping[str, Any],
        *,
        timeout: float = 600.0,
        poll_interval: float | None = None,
        on_progress: ProgressListener | None = None,
        run_timeout: float | None = None,
        **options: Any,
    ) -> Job:
        """Like ``run``, but followed over HTTP only: for servers whose websocket is blocked.

        Does not open the websocket; checks the prompt every ``poll_interval`` seconds
        (default: the client's) until it ends or ``timeout`` passes. Progress listeners see
        queue and running states, not sampler steps (those exist only on the websocket).

        Raises:
            the same errors as ``run``.
        """
        job = await self._submit(prompt, options.pop("prompt_id", None), options)
        interval = poll_interval or self.poll_interval
        await self.wait(
            job,
            timeout=timeout,
            on_progress=on_progress,
            poll_interval=interval,
            run_timeout=run_timeout,
        )
        raise_for_job(job, timeout)
        return job

    async def refresh(self, job: Job | str) -> Job:
        """Settle a job's state over HTTP and return it.

        With the newer job API, one GET /api/jobs/{id}. Otherwise history, then the queue,
        then history again: ``{}`` from ``/history/{id}`` means "still queued or running" *or*
        "unknown", the queue decides, and a prompt in neither is ``lost``.
        """
        job = job if isinstance(job, Job) else (self.jobs.get(job) or self.jobs.register(Job(job)))
        if job.done:
            return job
        if await self.has_jobs_api() and await self._refresh_from_jobs_api(job):
            return job
        entry = await self.get_history_item(job.prompt_id)
        if entry is not None and entry.outcome is not None:
            job.accepted = True
            job.apply_history(entry)
            return job
        if job.note_queue(await self.get_queue()):
            job.accepted = True
            return job
        entry = await self.get_history_item(job.prompt_id)
        if entry is not None and entry.outcome is not None:
            job.apply_history(entry)
        else:
            job.mark_lost()
        return job

    async def get_prompt_status(self, prompt_id: str) -> Job:
        """The current state of any prompt (ours or not), read over HTTP into a fresh ``Job``.

        Not registered with this client and not followed afterwards: a snapshot. ``state`` is
        ``queued`` (with ``queue_position``), ``running``, a terminal state, or ``lost`` for an
        id ComfyUI does not know.
        """
        job = Job(prompt_id)
        job.accepted = True
        return await self.refresh(job)

    async def cancel(self, prompt_id: str) -> CancelOutcome:
        """Stop one prompt and no other: delete it if queued, interrupt it if running.

        Returns ``"removed"`` (it will never run), ``"interrupted"`` (it was running; it ends
        as interrupted shortly), ``"finished"`` (too late) or ``"unknown"``. Uses
        ``/api/jobs/{id}/cancel`` on servers that have it.
        """
        if await self.has_jobs_api():
            return await self._cancel_with_jobs_api(prompt_id)
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
        for delay in _SETTLE_DELAYS:
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
        except (ComfyConnectionError, ComfyAuthError):
            raise
        except ComfyError as exc:
            log.warning("websocket unavailable (%s); following prompts by polling", exc)

    async def _after_reconnect(self) -> None:
        """A new socket: the server may be another one (restarted, upgraded), so probe its
        job API again, then reconcile every job: events sent meanwhile are not replayed."""
        self.forget_jobs_api()
        self._running_since.clear()
        await self._reconcile_all()

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
        self._check_silence(queue)
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
                if entry.client_id == self.client_id and self._end_was_missed(job):
                    self._spawn(self._confirm_displacement(job))
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

    # -- displacement ----------------------------------------------------------------------------

    def _end_was_missed(self, job: Job) -> bool:
        """True when the job ended while our socket was up, yet the socket never said so."""
        if job.ended_by_event or not self.events.connected.is_set():
            return False
        known_at = max(job.accepted_at or 0.0, job.seen_in_queue_at or 0.0)
        return 0.0 < self.events.opened_at < known_at

    async def _confirm_displacement(self, job: Job) -> None:
        """Give the end event a moment (history is written just before it), then reconnect."""
        opened_at = self.events.opened_at
        await asyncio.sleep(min(0.5, self.check_interval))
        if job.ended_by_event or self.events.opened_at != opened_at:
            return
        await self._reconnect_displaced(f"prompt {job.prompt_id} ended without an event")

    def _check_silence(self, queue: QueueSnapshot) -> None:
        """A prompt of ours running in ComfyUI while our socket stays silent: maybe displaced."""
        if not self.events.connected.is_set():
            return
        now = time.monotonic()
        ours = [item.prompt_id for item in queue.running if item.client_id == self.client_id]
        self._running_since = {pid: self._running_since.get(pid, now) for pid in ours}
        self._silence_probed &= set(ours)
        for prompt_id, since in self._running_since.items():
            quiet_since = max(since, self._last_prompt_event_at, self.events.opened_at)
            if prompt_id in self._silence_probed:
                continue
            if now - quiet_since > self.check_interval * _SILENCE_FACTOR:
                self._silence_probed.add(prompt_id)
                why = f"prompt {prompt_id} runs, our socket is silent"
                self._spawn(self._reconnect_displaced(why))
                return

    async def _reconnect_displaced(self, why: str) -> None:
        log.warning("websocket may be displaced (%s): reconnecting to take client id back", why)
        self.displacement_reconnects += 1
        await self.events.reconnect()

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name="comfy-displacement")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _stop_background(self) -> None:
        tasks = [t for t in (self._reconciler, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


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
        raise ComfyTimeoutError(
            f"waiting for prompt {job.prompt_id} ({job.state.value})",
            timeout,
            prompt_id=job.prompt_id,
        )


def _str_or_none(value: Any) -> str | None:
    return str(value) if value is not None else None
