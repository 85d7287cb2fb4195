"""The MCP tools: short adapters from arguments to the client, runner and reports."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ContentBlock, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from comfy_mcp.comfy import ComfyNotFoundError, Job, JobState
from comfy_mcp.comfy.jobs import SUCCESS_STATES
from comfy_mcp.server.content import describe_outputs
from comfy_mcp.server.errors import tool_errors
from comfy_mcp.server.outputs import collect_outputs
from comfy_mcp.server.reports import JobReport, QueueReport, job_report, queue_report
from comfy_mcp.server.runner import prepare, wait_with_progress
from comfy_mcp.server.state import ServerState

PREVIEW_HELP = (
    "Inline downscaled image previews: true, false, or the longest side in pixels (16-2048)"
)
READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=True)
QUEUES_WORK = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)
STOPS_WORK = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True
)


class ModelList(BaseModel):
    folder: str
    models: list[str] = Field(
        description="File names relative to the folder, as ComfyUI wants them"
    )
    count: int


class WorkflowList(BaseModel):
    workflows: list[dict[str, Any]]
    errors: dict[str, str] = Field(
        default_factory=dict, description="Template files that could not be loaded, and why"
    )


class InterruptResult(BaseModel):
    prompt_id: str | None
    action: str = Field(
        description="removed (was queued), interrupted (was running), finished, unknown, "
        "or interrupted_all"
    )
    message: str


class FreeResult(BaseModel):
    unload_models: bool
    free_memory: bool
    message: str


class CancelReport(BaseModel):
    removed: list[str]
    message: str


def register_tools(server: MCPServer, state: ServerState) -> None:
    """Add every tool to ``server``; they reach ComfyUI through ``state``."""

    @server.tool(title="List model files", annotations=READ_ONLY)
    async def list_models(
        folder: Annotated[
            str,
            Field(
                description="ComfyUI model folder: checkpoints, loras, vae, upscale_models, "
                "controlnet, embeddings, clip, unet, …"
            ),
        ] = "checkpoints",
    ) -> ModelList:
        """List the model files ComfyUI has in one folder (subfolders included)."""
        with tool_errors():
            try:
                models = await state.comfy.get_models(folder)
            except ComfyNotFoundError as exc:
                raise ToolError(exc.body or f"no model folder {folder!r}") from exc
        return ModelList(folder=folder, models=models, count=len(models))

    @server.tool(title="List LoRAs", annotations=READ_ONLY)
    async def list_loras() -> ModelList:
        """List the LoRA files ComfyUI has (names to use in LoRA parameters)."""
        with tool_errors():
            models = await state.comfy.get_loras()
        return ModelList(folder="loras", models=models, count=len(models))

    @server.tool(title="List workflow templates", annotations=READ_ONLY)
    async def list_workflows() -> WorkflowList:
        """List the workflow templates enqueue_workflow can run, with their parameters."""
        with tool_errors():
            templates = [t.summary() for t in state.catalog.templates()]
        return WorkflowList(workflows=templates, errors=state.catalog.errors())

    @server.tool(title="Run a workflow", annotations=QUEUES_WORK)
    async def enqueue_workflow(
        workflow: Annotated[
            str | dict[str, Any],
            Field(
                description="A template name from list_workflows, or a whole API-format "
                "ComfyUI graph ({node_id: {class_type, inputs}})"
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
        timeout_s: Annotated[
            float | None,
            Field(gt=0, description="Seconds to wait before returning the prompt_id; default 45"),
        ] = None,
        preview: Annotated[bool | int, Field(description=PREVIEW_HELP)] = True,
    ) -> Annotated[CallToolResult, JobReport]:
        """Queue a workflow on ComfyUI, follow it, and return its images.

        Returns the prompt_id and status; when it finishes within the wait, the outputs too.
        """
        return await enqueue(
            state, ctx, workflow, params or {}, wait=wait, timeout_s=timeout_s, preview=preview
        )

    @server.tool(title="Get a prompt's status", annotations=READ_ONLY)
    async def get_status(
        prompt_id: Annotated[str, Field(description="The prompt_id enqueue_workflow returned")],
    ) -> JobReport:
        """Where a prompt is: queued (with position), running (node, step), or how it ended."""
        with tool_errors():
            job, known = await _lookup(state, prompt_id)
        workflow, params = state.runs.get(prompt_id, (None, {}))
        return job_report(job, workflow=workflow, params=dict(params), known=known)

    @server.tool(title="Get a prompt's outputs", annotations=READ_ONLY)
    async def get_outputs(
        prompt_id: Annotated[str, Field(description="The prompt_id enqueue_workflow returned")],
        preview: Annotated[bool | int, Field(description=PREVIEW_HELP)] = True,
    ) -> Annotated[CallToolResult, JobReport]:
        """Every output file of a finished prompt (name, kind, size, links) and image previews."""
        with tool_errors():
            job, known = await _lookup(state, prompt_id)
        return await _result(state, job, preview=preview, fail_on_error=False, known=known)

    @server.tool(title="Wait for a prompt", annotations=READ_ONLY)
    async def wait_for_job(
        prompt_id: Annotated[str, Field(description="The prompt_id enqueue_workflow returned")],
        ctx: Context,
        timeout_s: Annotated[
            float | None,
            Field(gt=0, description="Seconds to wait before returning; default 45"),
        ] = None,
        preview: Annotated[bool | int, Field(description=PREVIEW_HELP)] = True,
    ) -> Annotated[CallToolResult, JobReport]:
        """Wait (again) for a prompt that was still running, with progress; then its outputs."""
        with tool_errors():
            job, known = await _lookup(state, prompt_id)
            if known and not job.done:
                job = state.comfy.jobs.get(job.prompt_id) or state.comfy.jobs.register(job)
                timeout = min(
                    timeout_s or state.settings.wait_timeout, state.settings.max_wait_timeout
                )
                # Waiting here is not owning the prompt: a cancelled wait leaves it running.
                await wait_with_progress(
                    state.comfy,
                    job,
                    timeout=timeout,
                    report=ctx.report_progress,
                    cancel_on_abort=False,
                )
        return await _result(state, job, preview=preview, fail_on_error=False, known=known)

    @server.tool(title="Show ComfyUI's queue", annotations=READ_ONLY)
    async def get_queue() -> QueueReport:
        """What ComfyUI is running and what waits, in run order; which prompts are ours."""
        with tool_errors():
            queue = await state.comfy.get_queue()
        return queue_report(queue, state.comfy.client_id, state.runs)

    @server.tool(title="Cancel queued prompts", annotations=STOPS_WORK)
    async def cancel_all_queued(
        all_clients: Annotated[
            bool,
            Field(
                description="Also remove prompts other clients queued. Only when asked to; "
                "by default only this server's prompts are removed"
            ),
        ] = False,
    ) -> CancelReport:
        """Remove waiting prompts from ComfyUI's queue (the running one is left alone)."""
        with tool_errors():
            queue = await state.comfy.get_queue()
            ours = state.comfy.client_id
            targets = [
                item.prompt_id for item in queue.pending if all_clients or item.client_id == ours
            ]
            if targets:
                await state.comfy.delete_items("queue", targets)
            after = await state.comfy.get_queue()
        removed = [pid for pid in targets if not after.is_pending(pid)]
        for pid in removed:
            job = state.comfy.jobs.get(pid)
            if job is not None and not job.done:
                job.mark_cancelled()
        kept = len(after.pending)
        return CancelReport(
            removed=removed,
            message=f"Removed {len(removed)} queued prompt(s); {kept} still waiting"
            + ("" if all_clients else " (other clients' prompts are never touched by default)"),
        )

    @server.tool(title="Stop a prompt", annotations=STOPS_WORK)
    async def interrupt(
        prompt_id: Annotated[
            str | None, Field(description="The prompt to stop; only this one is touched")
        ] = None,
        all: Annotated[
            bool,
            Field(description="Stop whatever is running, whoever queued it. Only when asked to."),
        ] = False,
    ) -> InterruptResult:
        """Stop one prompt: remove it if still queued, interrupt it if running."""
        with tool_errors():
            if prompt_id is None:
                if not all:
                    raise ToolError(
                        "give the prompt_id to stop; to stop whatever is running on ComfyUI "
                        "(other users' work included), pass all=true"
                    )
                await state.comfy.interrupt_all()
                return InterruptResult(
                    prompt_id=None,
                    action="interrupted_all",
                    message="Interrupted whatever was running.",
                )
            action = await state.comfy.cancel(prompt_id)
        messages = {
            "removed": f"Removed {prompt_id} from the queue; it will not run.",
            "interrupted": f"Interrupted {prompt_id} while it was running.",
            "finished": f"{prompt_id} had already finished; nothing to stop.",
            "unknown": f"ComfyUI has no prompt {prompt_id} in its queue or history.",
        }
        return InterruptResult(prompt_id=prompt_id, action=action, message=messages[action])

    @server.tool(title="Free ComfyUI memory", annotations=STOPS_WORK)
    async def free_memory(
        unload_models: Annotated[bool, Field(description="Unload models from (V)RAM")] = True,
        free_memory: Annotated[
            bool, Field(description="Free cached memory (also clears ComfyUI's result cache)")
        ] = True,
    ) -> FreeResult:
        """Ask ComfyUI to unload models and free memory (applied before its next prompt)."""
        with tool_errors():
            await state.comfy.free(unload_models=unload_models, free_memory=free_memory)
        asked = [
            n for n, on in (("unload models", unload_models), ("free memory", free_memory)) if on
        ]
        return FreeResult(
            unload_models=unload_models,
            free_memory=free_memory,
            message=f"Asked ComfyUI to {' and '.join(asked) or 'do nothing'}.",
        )


async def enqueue(
    state: ServerState,
    ctx: Context,
    workflow: str | dict[str, Any],
    params: dict[str, Any],
    *,
    wait: bool,
    timeout_s: float | None,
    preview: bool | int,
) -> CallToolResult:
    """Prepare, queue and (optionally) wait for a workflow: the body of every run tool."""
    with tool_errors():
        run = await prepare(state, workflow, params)
    with tool_errors(run.bindings()):
        job = await state.comfy.submit(run.graph)
    state.remember(job.prompt_id, run.name, run.values)
    if wait:
        timeout = min(timeout_s or state.settings.wait_timeout, state.settings.max_wait_timeout)
        await wait_with_progress(
            state.comfy,
            job,
            timeout=timeout,
            report=ctx.report_progress,
            cancel_on_abort=state.settings.cancel_on_abort,
        )
    return await _result(state, job, preview=preview, fail_on_error=True)


async def _lookup(state: ServerState, prompt_id: str) -> tuple[Job, bool]:
    """The job for ``prompt_id``: ours if we follow it, else looked up in ComfyUI."""
    prompt_id = prompt_id.strip()
    if not prompt_id:
        raise ToolError("prompt_id is empty; pass the prompt_id enqueue_workflow returned")
    job = state.comfy.jobs.get(prompt_id)
    known = job is not None
    job = job or Job(prompt_id)
    if not job.done:
        await state.comfy.refresh(job)
    return job, known or job.state is not JobState.LOST


def preview_side(preview: bool | int, default: int) -> int:
    """``preview`` is true/false, or the longest side in pixels (16–2048)."""
    if isinstance(preview, bool):
        return default
    return max(16, min(2048, preview))


async def _result(
    state: ServerState, job: Job, *, preview: bool | int, fail_on_error: bool, known: bool = True
) -> CallToolResult:
    workflow, params = state.runs.get(job.prompt_id, (None, {}))
    items: list[Any] = []
    images: list[ContentBlock] = []
    texts: dict[str, list[str]] = {}
    if job.history is not None:
        with tool_errors():
            items, found, texts = await collect_outputs(
                state.comfy,
                job,
                public=state.public_endpoint(),
                previews=preview is not False and preview != 0,
                max_side=preview_side(preview, state.settings.preview_max_side),
                budget=state.settings.preview_budget_bytes,
                save_dir=state.settings.output_dir,
            )
        images = list(found)
    report = job_report(
        job, workflow=workflow, params=dict(params), outputs=items, texts=texts, known=known
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
