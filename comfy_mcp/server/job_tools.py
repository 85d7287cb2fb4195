"""Tools that run and follow prompts: enqueue_workflow, get_status, get_outputs, wait_for_job.

With several ComfyUI backends, a new job goes to the backend :class:`BackendPool` chooses and a
prompt id is looked up on the backends (ComfyUI's queue and history are the record), so any
replica can answer for any prompt.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ContentBlock, TextContent, ToolAnnotations
from pydantic import Field

from comfy_mcp.comfy import ComfyConnectionError, ComfyError, ComfyTimeoutError, Job, JobState
from comfy_mcp.comfy.jobs import SUCCESS_STATES
from comfy_mcp.server.backends import Backend
from comfy_mcp.server.content import describe_outputs
from comfy_mcp.server.errors import tool_errors
from comfy_mcp.server.outputs import collect_outputs
from comfy_mcp.server.reports import JobReport, job_report
from comfy_mcp.server.runner import model_needs, prepare, wait_with_progress
from comfy_mcp.server.state import ServerState

PREVIEW_HELP = (
    "Inline downscaled image previews: true, false, or the longest side in pixels (16-2048)"
)
BACKEND_HELP = "ComfyUI backend to use (see list_backends); default: chosen automatically"
READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=True)
QUEUES_WORK = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)
PROMPT_ID = Annotated[str, Field(description="The prompt_id enqueue_workflow returned")]
PREVIEW = Annotated[bool | int, Field(description=PREVIEW_HELP)]
TIMEOUT = Annotated[
    float | None,
    Field(
        ge=0,
        description="Seconds to wait before returning the prompt_id (0: do not wait); default 45",
    ),
]


def register_job_tools(server: MCPServer, state: ServerState) -> None:
    @server.tool(title="Run a workflow", annotations=QUEUES_WORK)
    async def enqueue_workflow(
        workflow: Annotated[
            str | dict[str, Any],
            Field(
                description="A template name from list_workflows, an API-format ComfyUI graph "
                "({node_id: {class_type, inputs}}), or a workflow saved from the ComfyUI editor"
            ),
        ],
        ctx: Context,
        params: Annotated[
            dict[str, Any] | None,
            Field(description='Template parameters, e.g. {"prompt": "a red fox", "steps": 20}'),
        ] = None,
        wait: Annotated[
            bool,
            Field(description="Wait for the result (returns early, still running, on timeout)"),
        ] = True,
        timeout_s: TIMEOUT = None,
        preview: PREVIEW = True,
        backend: Annotated[str | None, Field(description=BACKEND_HELP)] = None,
    ) -> Annotated[CallToolResult, JobReport]:
        """Queue a workflow on ComfyUI, follow it, and return its images.

        Returns the prompt_id and status; when it finishes within the wait, the outputs too.
        """
        return await enqueue(
            state,
            ctx,
            workflow,
            params or {},
            wait=wait,
            timeout_s=timeout_s,
            preview=preview,
            backend=backend,
        )

    @server.tool(title="Get a prompt's status", annotations=READ_ONLY)
    async def get_status(prompt_id: PROMPT_ID) -> JobReport:
        """Where a prompt is: queued (with position), running (node, step), or how it ended."""
        with tool_errors():
            located, job, known = await lookup(state, prompt_id)
        workflow, params = run_info(state, job)
        report = job_report(
            job, workflow=workflow, params=params, known=known, backend=_name(state, located)
        )
        if job.state in SUCCESS_STATES:
            report.message += " Call get_outputs for its files and previews."
        return report

    @server.tool(title="Get a prompt's outputs", annotations=READ_ONLY)
    async def get_outputs(
        prompt_id: PROMPT_ID, preview: PREVIEW = True
    ) -> Annotated[CallToolResult, JobReport]:
        """Every output file of a finished prompt (name, kind, size, links) and image previews."""
        with tool_errors():
            located, job, known = await lookup(state, prompt_id)
        return await result(state, located, job, preview=preview, fail_on_error=False, known=known)

    @server.tool(title="Wait for a prompt", annotations=READ_ONLY)
    async def wait_for_job(
        prompt_id: PROMPT_ID, ctx: Context, timeout_s: TIMEOUT = None, preview: PREVIEW = True
    ) -> Annotated[CallToolResult, JobReport]:
        """Wait (again) for a prompt that was still running, with progress; then its outputs."""
        with tool_errors():
            located, job, known = await lookup(state, prompt_id)
            if located is not None and known and not job.done:
                client = located.client
                job = client.jobs.get(job.prompt_id) or client.jobs.register(job)
                # Waiting here is not owning the prompt: a cancelled wait leaves it running.
                await wait_with_progress(
                    client,
                    job,
                    timeout=_timeout(state, timeout_s),
                    report=ctx.report_progress,
                    cancel_on_abort=False,
                )
        return await result(state, located, job, preview=preview, fail_on_error=False, known=known)


async def enqueue(
    state: ServerState,
    ctx: Context,
    workflow: str | dict[str, Any],
    params: dict[str, Any],
    *,
    wait: bool,
    timeout_s: float | None,
    preview: bool | int,
    backend: str | None = None,
) -> CallToolResult:
    """Choose a backend, prepare, queue and (optionally) wait: the body of every run tool."""
    with tool_errors():
        chosen = await state.pool.choose(backend, model_needs(state, workflow, params))
        run = await prepare(state, chosen.client, workflow, params)
    # Stored with the queue item and echoed by history, so any replica can report them.
    extra = {"comfy_mcp": {"workflow": run.name, "params": run.values}}
    with tool_errors(run.bindings()):
        job = await chosen.client.submit(run.graph, extra_data=extra)
    state.remember(job.prompt_id, run.name, run.values)
    if not wait or timeout_s == 0:
        # One look at the queue, so the handle says where the prompt stands.
        with contextlib.suppress(ComfyError):
            await chosen.client.refresh(job)
    else:
        await wait_with_progress(
            chosen.client,
            job,
            timeout=_timeout(state, timeout_s),
            report=ctx.report_progress,
            cancel_on_abort=state.settings.cancel_on_abort,
        )
    return await result(state, chosen, job, preview=preview, fail_on_error=True)


async def lookup(state: ServerState, prompt_id: str) -> tuple[Backend | None, Job, bool]:
    """The backend holding ``prompt_id`` and its job (refreshed over HTTP unless we follow it
    live). ``known`` is False when no backend has ever heard of the id."""
    prompt_id = prompt_id.strip()
    if not prompt_id:
        raise ToolError("prompt_id is empty; pass the prompt_id enqueue_workflow returned")
    located = await state.pool.locate(prompt_id)
    if located is None:
        if state.pool.several:
            down = {n: h.error for n, h in (await state.pool.health()).items() if not h.ok}
            if down:
                raise ToolError(
                    f"prompt {prompt_id} is not on any reachable backend; unreachable now: "
                    + "; ".join(f"{n} ({e})" for n, e in down.items())
                    + ". It may be there: ask again when that backend is back."
                )
        job = Job(prompt_id)
        job.mark_lost()
        return None, job, False
    tracked = located.client.jobs.get(prompt_id)
    job = tracked or Job(prompt_id)
    if not job.done:
        try:
            await located.client.refresh(job)
        except (ComfyConnectionError, ComfyTimeoutError) as exc:
            if not state.pool.several:
                raise
            raise ToolError(
                f"prompt {prompt_id} runs on backend '{located.name}', which cannot be reached "
                f"now ({exc}); ask again when it is back"
            ) from exc
    return located, job, tracked is not None or job.state is not JobState.LOST


def run_info(state: ServerState, job: Job) -> tuple[str | None, dict[str, Any]]:
    """The template and values a prompt was run with: remembered here, or read back from the
    ``extra_data`` ComfyUI stored with it (so another replica's prompts report them too)."""
    if job.prompt_id in state.runs:
        remembered, values = state.runs[job.prompt_id]
        return remembered, dict(values)
    prompt = job.history.prompt if job.history is not None else []
    extra = prompt[3] if len(prompt) > 3 and isinstance(prompt[3], dict) else {}
    info = extra.get("comfy_mcp")
    if isinstance(info, dict):
        params = info.get("params")
        workflow = info.get("workflow")
        return (
            str(workflow) if workflow is not None else None,
            dict(params) if isinstance(params, dict) else {},
        )
    return None, {}


def preview_side(preview: bool | int, default: int) -> int:
    """``preview`` is true/false, or the longest side in pixels (16–2048)."""
    if isinstance(preview, bool):
        return default
    return max(16, min(2048, preview))


async def result(
    state: ServerState,
    located: Backend | None,
    job: Job,
    *,
    preview: bool | int,
    fail_on_error: bool,
    known: bool = True,
) -> CallToolResult:
    """The tool result for a job: report + outputs with previews when it has finished."""
    workflow, params = run_info(state, job)
    items: list[Any] = []
    images: list[ContentBlock] = []
    texts: dict[str, list[str]] = {}
    if job.history is not None and located is not None:
        with tool_errors():
            items, found, texts = await collect_outputs(
                located.client,
                job,
                public=located.public,
                previews=preview is not False and preview != 0,
                max_side=preview_side(preview, state.settings.preview_max_side),
                budget=state.settings.preview_budget_bytes,
                save_dir=state.settings.output_dir,
                backend=located.name if state.pool.several else None,
            )
        images = list(found)
    report = job_report(
        job,
        workflow=workflow,
        params=params,
        outputs=items,
        texts=texts,
        known=known,
        backend=_name(state, located),
    )
    text = report.message
    if job.state in SUCCESS_STATES:
        text += "\n" + describe_outputs(report.outputs, report.texts)
    failed = job.state in (JobState.FAILED, JobState.INTERRUPTED, JobState.LOST)
    return CallToolResult(
        content=[TextContent(type="text", text=text), *images],
        structured_content=report.model_dump(mode="json"),
        is_error=fail_on_error and failed,
    )


def _timeout(state: ServerState, timeout_s: float | None) -> float:
    wanted = state.settings.wait_timeout if timeout_s is None else timeout_s
    return min(wanted, state.settings.max_wait_timeout)


def _name(state: ServerState, located: Backend | None) -> str | None:
    return located.name if located is not None and state.pool.several else None
