"""Running a workflow for a tool call: resolve, fill, validate, submit, wait with progress.

Kept apart from the tool adapters so the steps read in order and each can be tested alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp.server.mcpserver.exceptions import ToolError

from comfy_mcp.comfy import ComfyClient, Job, Progress
from comfy_mcp.server.errors import BindingIndex
from comfy_mcp.server.state import ServerState
from comfy_mcp.server.uploads import resolve_image_argument
from comfy_mcp.templates import (
    Template,
    TemplateError,
    is_api_format,
    is_ui_format,
    to_api_format,
    validate_graph,
)

log = logging.getLogger(__name__)

# Template enum sources that name files in a model folder.
MODEL_SOURCES = {
    "checkpoints": "checkpoints",
    "loras": "loras",
    "vae": "vae",
    "upscale_models": "upscale_models",
    "controlnet": "controlnet",
}

ProgressSink = Callable[[float, float | None, str | None], Awaitable[None]]


@dataclass
class PreparedRun:
    """A graph ready to queue, with what produced it (for reports and error mapping)."""

    graph: dict[str, Any]
    template: Template | None = None
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str | None:
        return self.template.name if self.template else None

    def bindings(self) -> BindingIndex:
        if self.template is None:
            return {}
        return {
            (b.node_id, b.input_name): p.name for p in self.template.parameters for b in p.bindings
        }


async def prepare(
    state: ServerState,
    comfy: ComfyClient,
    workflow: str | Mapping[str, Any],
    params: Mapping[str, Any],
) -> PreparedRun:
    """Turn a template name or a raw graph into a graph validated against ``comfy``'s node
    definitions (raises ToolError)."""
    template = None
    if isinstance(workflow, str):
        template = state.catalog.get(workflow)
        params = await _upload_image_arguments(state, comfy, template, params)
    else:
        if params:
            raise ToolError(
                "'params' only applies to templates; edit the graph's inputs directly, "
                "or pass a template name as 'workflow'"
            )
        if not is_ui_format(workflow) and not is_api_format(workflow):
            raise ToolError(
                "'workflow' must be a template name (see list_workflows), an API-format graph "
                '({"1": {"class_type": "EmptyImage", "inputs": {...}}, ...}) or a workflow '
                "saved from the ComfyUI editor (with 'nodes' and 'links')"
            )
    try:
        return _build(template, workflow, params, await comfy.get_node_defs())
    except (TemplateError, ToolError):
        # The node definitions are cached; a model file or custom node added since would be
        # refused by a stale copy. Check once more against fresh ones before saying no.
        return _build(template, workflow, params, await comfy.get_node_defs(refresh=True))


def _build(
    template: Template | None,
    workflow: str | Mapping[str, Any],
    params: Mapping[str, Any],
    object_info: Mapping[str, Any],
) -> PreparedRun:
    if template is not None:
        filled = template.fill(params, choices=template.live_choices(object_info))
        run = PreparedRun(filled.graph, template, filled.values)
    else:
        assert not isinstance(workflow, str)
        # Editor ("UI") exports are converted with the server's own node definitions.
        run = PreparedRun(to_api_format(workflow, object_info))
    issues = validate_graph(
        run.graph, object_info, parameters=run.template.parameters if run.template else ()
    )
    if issues:
        lines = [f"the workflow would be rejected by ComfyUI ({len(issues)} problem(s)):"]
        lines += [f"- {issue}" for issue in issues]
        raise ToolError("\n".join(lines))
    return run


def model_needs(
    state: ServerState, workflow: str | Mapping[str, Any], params: Mapping[str, Any]
) -> dict[str, set[str]]:
    """The model files a template run needs (folder → names), to pick a backend that has them.

    Only named templates are inspected; an unknown name is reported later by ``prepare``.
    """
    if not isinstance(workflow, str) or workflow not in state.catalog.names():
        return {}
    needs: dict[str, set[str]] = {}
    for parameter in state.catalog.get(workflow).parameters:
        folder = MODEL_SOURCES.get(parameter.choices_from or "")
        if parameter.type == "lora_stack":
            entries = params.get(parameter.name) or []
            names = {e["name"] for e in entries if isinstance(e, dict) and "name" in e}
            if names:
                needs.setdefault("loras", set()).update(str(n) for n in names)
            continue
        value = params.get(parameter.name, parameter.default)
        if folder and isinstance(value, str) and value:
            needs.setdefault(folder, set()).add(value)
    return needs


async def _upload_image_arguments(
    state: ServerState, comfy: ComfyClient, template: Template, params: Mapping[str, Any]
) -> dict[str, Any]:
    """Image parameters accept data URLs, base64, URLs and allowed paths: upload those first."""
    resolved = dict(params)
    for parameter in template.parameters:
        value = resolved.get(parameter.name)
        if parameter.type == "image" and isinstance(value, str):
            resolved[parameter.name] = await resolve_image_argument(
                state, value, parameter=parameter.name, client=comfy
            )
    return resolved


async def wait_with_progress(
    comfy: ComfyClient,
    job: Job,
    *,
    timeout: float,
    report: ProgressSink | None,
    cancel_on_abort: bool,
    interval: float = 0.5,
) -> Job:
    """Wait for ``job``, sending at most one progress notification per ``interval``.

    If the MCP request is cancelled while waiting, the prompt is cancelled too (deleted when
    queued, interrupted when running) unless ``cancel_on_abort`` is off.
    """
    last: list[Progress | None] = [None]

    async def pump() -> None:
        sent = 0
        while True:
            await asyncio.sleep(interval)
            snapshot = job.progress()
            if report is not None and snapshot != last[0]:
                last[0] = snapshot
                sent += 1
                fraction = snapshot.fraction
                # Progress must increase: use the overall fraction when known, else a counter.
                value = round(fraction * 100, 1) if fraction is not None else float(sent)
                with contextlib.suppress(Exception):
                    await report(
                        value, 100.0 if fraction is not None else None, snapshot.describe()
                    )

    pumper = asyncio.create_task(pump())
    try:
        return await comfy.wait(job, timeout=timeout)
    except anyio.get_cancelled_exc_class():
        if cancel_on_abort and not job.done:
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                try:
                    action = await comfy.cancel(job.prompt_id)
                    log.info("request cancelled: prompt %s %s", job.prompt_id, action)
                except Exception as exc:
                    log.warning("could not cancel prompt %s: %s", job.prompt_id, exc)
        raise
    finally:
        pumper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumper
