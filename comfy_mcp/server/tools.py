"""The MCP tools for discovery and control: models, templates, backends, queue, stop, free.

The tools that run and follow prompts are in :mod:`comfy_mcp.server.job_tools`.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from comfy_mcp.comfy import ComfyNotFoundError
from comfy_mcp.server.backends import Backend
from comfy_mcp.server.errors import tool_errors
from comfy_mcp.server.job_tools import READ_ONLY, lookup, register_job_tools
from comfy_mcp.server.reports import QueueReport, queue_report
from comfy_mcp.server.state import ServerState

STOPS_WORK = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True
)
ALL_BACKENDS = "ComfyUI backend (when several are configured); default: all of them"


class ModelList(BaseModel):
    folder: str
    models: list[str] = Field(
        description="File names relative to the folder, as ComfyUI wants them"
    )
    count: int
    locations: dict[str, list[str]] = Field(
        default_factory=dict,
        description="With several backends: which backends have each file",
    )
    unavailable: dict[str, str] = Field(
        default_factory=dict, description="Backends that could not answer, and why"
    )


class WorkflowList(BaseModel):
    workflows: list[dict[str, Any]]
    errors: dict[str, str] = Field(
        default_factory=dict, description="Template files that could not be loaded, and why"
    )


class BackendInfo(BaseModel):
    name: str
    url: str
    reachable: bool
    queue_remaining: int | None = None
    error: str | None = None


class BackendList(BaseModel):
    backends: list[BackendInfo]


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
    backends: list[str] = Field(default_factory=list)
    message: str


class CancelReport(BaseModel):
    removed: list[str]
    message: str


def register_tools(server: MCPServer, state: ServerState) -> None:
    """Add every tool to ``server``; they reach ComfyUI through ``state``."""
    register_job_tools(server, state)

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
        return await _models(state, folder)

    @server.tool(title="List LoRAs", annotations=READ_ONLY)
    async def list_loras() -> ModelList:
        """List the LoRA files ComfyUI has (names to use in LoRA parameters)."""
        return await _models(state, "loras")

    @server.tool(title="List workflow templates", annotations=READ_ONLY)
    async def list_workflows() -> Annotated[CallToolResult, WorkflowList]:
        """List the workflow templates enqueue_workflow can run, with their parameters."""
        with tool_errors():
            templates = [t.summary() for t in state.catalog.templates()]
        listing = WorkflowList(workflows=templates, errors=state.catalog.errors())
        # The text is a short overview; the full parameter details are in structured content
        # (and in comfy://workflows/{name}), so the result is not the same JSON twice.
        return CallToolResult(
            content=[TextContent(type="text", text=_overview(listing))],
            structured_content=listing.model_dump(mode="json"),
        )

    @server.tool(title="List ComfyUI backends", annotations=READ_ONLY)
    async def list_backends() -> BackendList:
        """The ComfyUI servers this MCP server uses, whether each answers, and its queue."""
        health = await state.pool.health()
        return BackendList(
            backends=[
                BackendInfo(
                    name=name,
                    url=state.pool.backends[name].client.endpoint.base_url,
                    reachable=h.ok,
                    queue_remaining=h.queue_remaining,
                    error=h.error,
                )
                for name, h in health.items()
            ]
        )

    @server.tool(title="Show ComfyUI's queue", annotations=READ_ONLY)
    async def get_queue(
        backend: Annotated[str | None, Field(description=ALL_BACKENDS)] = None,
    ) -> QueueReport:
        """What ComfyUI is running and what waits, in run order; which prompts are ours."""
        with tool_errors():
            return await queue_overview(state, _targets(state, backend))

    @server.tool(title="Cancel queued prompts", annotations=STOPS_WORK)
    async def cancel_all_queued(
        all_clients: Annotated[
            bool,
            Field(
                description="Also remove prompts other clients queued. Only when asked to; "
                "by default only this server's prompts are removed"
            ),
        ] = False,
        backend: Annotated[str | None, Field(description=ALL_BACKENDS)] = None,
    ) -> CancelReport:
        """Remove waiting prompts from ComfyUI's queue (the running one is left alone)."""
        removed: list[str] = []
        kept = 0
        with tool_errors():
            for chosen in _targets(state, backend):
                gone, left = await _cancel_queued(chosen, all_clients)
                removed += gone
                kept += left
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
                for chosen in _targets(state, None):
                    await chosen.client.interrupt_all()
                return InterruptResult(
                    prompt_id=None,
                    action="interrupted_all",
                    message="Interrupted whatever was running.",
                )
            located, _, _ = await lookup(state, prompt_id)
            action = "unknown" if located is None else await located.client.cancel(prompt_id)
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
        backend: Annotated[str | None, Field(description=ALL_BACKENDS)] = None,
    ) -> FreeResult:
        """Ask ComfyUI to unload models and free memory (applied before its next prompt)."""
        targets = _targets(state, backend)
        with tool_errors():
            for chosen in targets:
                await chosen.client.free(unload_models=unload_models, free_memory=free_memory)
        asked = [
            n for n, on in (("unload models", unload_models), ("free memory", free_memory)) if on
        ]
        return FreeResult(
            unload_models=unload_models,
            free_memory=free_memory,
            backends=[b.name for b in targets] if state.pool.several else [],
            message=f"Asked ComfyUI to {' and '.join(asked) or 'do nothing'}.",
        )


def _overview(listing: WorkflowList) -> str:
    lines = []
    for template in listing.workflows:
        params = []
        for p in template.get("parameters", []):
            text = p["name"]
            if p.get("required"):
                text += " (required)"
            elif p.get("default") is not None and not isinstance(p.get("default"), dict | list):
                shown = repr(p["default"])
                text += "=" + (shown if len(shown) <= 30 else shown[:28] + "…'")
            params.append(text)
        inferred = " [parameters inferred]" if template.get("inferred") else ""
        lines.append(
            f"- {template['name']}: {template.get('description', '').strip()}{inferred}\n"
            f"  params: {', '.join(params) or '(none)'}"
        )
    for path, reason in listing.errors.items():
        lines.append(f"- could not load {path}: {reason}")
    return "\n".join(lines) or "No templates."


async def queue_overview(state: ServerState, backends: list[Backend]) -> QueueReport:
    """The queues of ``backends`` as one report (the get_queue tool and comfy://queue)."""
    reports = []
    for chosen in backends:
        queue = await chosen.client.get_queue()
        name = chosen.name if state.pool.several else None
        reports.append(queue_report(queue, chosen.client.client_id, state.runs, name))
    return QueueReport.merge(reports)


def _targets(state: ServerState, backend: str | None) -> list[Backend]:
    if backend:
        return [state.pool.named(backend)]
    return list(state.pool.backends.values())


async def _models(state: ServerState, folder: str) -> ModelList:
    """One backend: its list (a clear error when the folder does not exist). Several: the
    union, where each file lives, and which backends could not answer."""
    pool = state.pool
    if not pool.several:
        with tool_errors():
            try:
                models = await pool.default.client.get_models(folder)
            except ComfyNotFoundError as exc:
                raise ToolError(exc.body or f"no model folder {folder!r}") from exc
        return ModelList(folder=folder, models=models, count=len(models))
    found, failed = await pool.models_everywhere(folder)
    if not found:
        raise ToolError(
            f"no backend could list {folder!r}: "
            + "; ".join(f"{name}: {error}" for name, error in failed.items())
        )
    locations: dict[str, list[str]] = {}
    for name, files in found.items():
        for file in files:
            locations.setdefault(file, []).append(name)
    models = sorted(locations)
    return ModelList(
        folder=folder,
        models=models,
        count=len(models),
        locations=locations,
        unavailable=failed,
    )


async def _cancel_queued(backend: Backend, all_clients: bool) -> tuple[list[str], int]:
    client = backend.client
    queue = await client.get_queue()
    targets = [
        item.prompt_id
        for item in queue.pending
        if all_clients or item.client_id == client.client_id
    ]
    if targets:
        await client.delete_items("queue", targets)
    after = await client.get_queue()
    removed = [pid for pid in targets if not after.is_pending(pid)]
    for pid in removed:
        job = client.jobs.get(pid)
        if job is not None and not job.done:
            job.mark_cancelled()
    return removed, len(after.pending)


__all__ = ["queue_overview", "register_tools"]
