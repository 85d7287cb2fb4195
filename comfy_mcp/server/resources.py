"""MCP resources: system stats, history, full-size outputs, templates."""

from __future__ import annotations

import mimetypes
from collections.abc import Awaitable
from typing import Any, TypeVar
from urllib.parse import unquote

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

from comfy_mcp.comfy import ComfyError, ComfyNotFoundError
from comfy_mcp.server.reports import queue_report
from comfy_mcp.server.state import ServerState
from comfy_mcp.templates import TemplateError

T = TypeVar("T")
_HIDDEN_SYSTEM_KEYS = ("argv",)  # the server's command line can carry paths and secrets
_OUTPUT_TYPES = ("output", "temp", "input")


OUTPUT_URI_PREFIX = "comfy://output/"


def output_mime_type(uri: str) -> str:
    """The MIME type of an output resource, from its (percent-encoded) file name."""
    filename = unquote(uri.rsplit("/", 1)[-1].split("?", 1)[0])
    guessed, _ = mimetypes.guess_type(filename)
    return guessed or "application/octet-stream"


def register_resources(server: MCPServer, state: ServerState) -> None:
    @server.resource(
        "comfy://system-stats",
        name="system-stats",
        description="ComfyUI version, Python/PyTorch versions, devices and free (V)RAM",
        mime_type="application/json",
    )
    async def system_stats() -> dict[str, Any]:
        stats = await _comfy_call(state.comfy.get_system_stats())
        system = {k: v for k, v in stats.get("system", {}).items() if k not in _HIDDEN_SYSTEM_KEYS}
        return {**stats, "system": system}

    @server.resource(
        "comfy://queue",
        name="queue",
        description="What ComfyUI runs now and what waits, in run order; which are ours",
        mime_type="application/json",
    )
    async def queue() -> dict[str, Any]:
        snapshot = await _comfy_call(state.comfy.get_queue())
        return queue_report(snapshot, state.comfy.client_id, state.runs).model_dump(mode="json")

    @server.resource(
        "comfy://history",
        name="history",
        description="The 20 most recent prompts: id, status, output count (newest last)",
        mime_type="application/json",
    )
    async def history() -> dict[str, Any]:
        entries = await _comfy_call(state.comfy.get_history(max_items=20))
        return {
            "prompts": [
                {
                    "prompt_id": pid,
                    "status": entry.outcome or "unknown",
                    "outputs": len(entry.files),
                    "cached": entry.fully_cached,
                }
                for pid, entry in entries.items()
            ]
        }

    @server.resource(
        "comfy://history/{prompt_id}",
        name="history-entry",
        description="One prompt's history entry: graph, outputs, status messages",
        mime_type="application/json",
    )
    async def history_entry(prompt_id: str) -> dict[str, Any]:
        entry = await _comfy_call(state.comfy.get_history_item(prompt_id))
        if entry is None:
            raise ResourceNotFoundError(f"ComfyUI has no history for prompt {prompt_id}")
        return entry.model_dump(mode="json")

    @server.resource(
        "comfy://output/{type}/{subfolder}/{filename}",
        name="output-file",
        description="A full-size file ComfyUI produced (type: output, temp or input; "
        "percent-encode a nested subfolder: a%2Fb)",
        mime_type="application/octet-stream",
    )
    async def output_file(type: str, subfolder: str, filename: str) -> bytes:
        type_, subfolder, filename = unquote(type), unquote(subfolder), unquote(filename)
        if type_ not in _OUTPUT_TYPES:
            raise ResourceNotFoundError(f"type must be one of {', '.join(_OUTPUT_TYPES)}")
        if ".." in subfolder.split("/") or filename in ("", ".", "..") or "/" in filename:
            raise ResourceNotFoundError("invalid file name")
        try:
            return await _comfy_call(state.comfy.view(filename, subfolder=subfolder, type=type_))
        except ResourceError as exc:
            if isinstance(exc.__cause__, ComfyNotFoundError):
                raise ResourceNotFoundError(
                    f"ComfyUI has no {type_} file {subfolder + '/' if subfolder else ''}{filename}"
                ) from exc
            raise

    @server.resource(
        "comfy://workflows",
        name="workflows",
        description="The workflow templates and their parameters",
        mime_type="application/json",
    )
    def workflows() -> dict[str, Any]:
        return {"workflows": [t.summary() for t in state.catalog.templates()]}

    @server.resource(
        "comfy://workflows/{name}",
        name="workflow",
        description="One template: parameters and its API-format graph",
        mime_type="application/json",
    )
    def workflow(name: str) -> dict[str, Any]:
        try:
            template = state.catalog.get(name)
        except TemplateError as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        return {**template.summary(), "graph": template.graph}


async def _comfy_call(awaitable: Awaitable[T]) -> T:
    try:
        return await awaitable
    except ComfyError as exc:
        raise ResourceError(str(exc)) from exc
