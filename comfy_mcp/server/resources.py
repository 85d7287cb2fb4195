"""MCP resources: system stats, history, full-size outputs, templates."""

from __future__ import annotations

import mimetypes
from collections.abc import Awaitable
from typing import Any, TypeVar
from urllib.parse import unquote

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

from comfy_mcp.comfy import ComfyClient, ComfyError, ComfyNotFoundError, Job
from comfy_mcp.server.state import ServerState
from comfy_mcp.server.tools import queue_overview
from comfy_mcp.templates import TemplateError

T = TypeVar("T")
_HIDDEN = ("argv",)  # the server's command line can carry paths and secrets
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
        async def one(client: ComfyClient) -> dict[str, Any]:
            stats = await _comfy_call(client.get_system_stats())
            system = stats.get("system", {})
            return {**stats, "system": {k: v for k, v in system.items() if k not in _HIDDEN}}

        pool = state.pool
        if not pool.several:
            return await one(pool.default.client)
        backends: dict[str, Any] = {}
        for name, backend in pool.backends.items():
            try:
                backends[name] = await one(backend.client)
            except ResourceError as exc:
                backends[name] = {"error": str(exc)}
        return {"backends": backends}

    @server.resource(
        "comfy://queue",
        name="queue",
        description="What ComfyUI runs now and what waits, in run order; which are ours",
        mime_type="application/json",
    )
    async def queue() -> dict[str, Any]:
        report = await _comfy_call(queue_overview(state, list(state.pool.backends.values())))
        return report.model_dump(mode="json")

    @server.resource(
        "comfy://history",
        name="history",
        description="The 20 most recent prompts: id, status, output count (newest last)",
        mime_type="application/json",
    )
    async def history() -> dict[str, Any]:
        prompts = []
        for name, backend in state.pool.backends.items():
            entries = await _comfy_call(backend.client.get_history(max_items=20))
            for pid, entry in entries.items():
                job = Job(pid)  # the same status names as the tools use
                job.apply_history(entry)
                row: dict[str, Any] = {
                    "prompt_id": pid,
                    "status": str(job.state),
                    "outputs": len(entry.files),
                    "cached": entry.fully_cached,
                }
                if state.pool.several:
                    row["backend"] = name
                prompts.append(row)
        return {"prompts": prompts}

    @server.resource(
        "comfy://history/{prompt_id}",
        name="history-entry",
        description="One prompt's history entry: graph, outputs, status messages",
        mime_type="application/json",
    )
    async def history_entry(prompt_id: str) -> dict[str, Any]:
        located = await state.pool.locate(unquote(prompt_id))
        entry = None
        if located is not None:
            entry = await _comfy_call(located.client.get_history_item(unquote(prompt_id)))
        if entry is None:
            raise ResourceNotFoundError(f"ComfyUI has no history for prompt {prompt_id}")
        return entry.model_dump(mode="json")

    async def read_output(type_: str, subfolder: str, filename: str, backend: str) -> bytes:
        type_, subfolder, filename = unquote(type_), unquote(subfolder), unquote(filename)
        if type_ not in _OUTPUT_TYPES:
            raise ResourceNotFoundError(f"type must be one of {', '.join(_OUTPUT_TYPES)}")
        if ".." in subfolder.split("/") or filename in ("", ".", "..") or "/" in filename:
            raise ResourceNotFoundError("invalid file name")
        backend = unquote(backend)
        if backend and backend not in state.pool.backends:
            raise ResourceNotFoundError(
                f"no backend {backend!r}; configured: {', '.join(state.pool.backends)}"
            )
        client = state.pool.backends[backend].client if backend else state.comfy
        try:
            return await _comfy_call(client.view(filename, subfolder=subfolder, type=type_))
        except ResourceError as exc:
            if isinstance(exc.__cause__, ComfyNotFoundError):
                where = f"{subfolder}/{filename}" if subfolder else filename
                raise ResourceNotFoundError(f"ComfyUI has no {type_} file {where}") from exc
            raise

    @server.resource(
        "comfy://output/{type}/{filename}{?backend}",
        name="output-file",
        description="A full-size file ComfyUI produced (type: output, temp or input; "
        "backend: when several are configured)",
        mime_type="application/octet-stream",
    )
    async def output_file(type: str, filename: str, backend: str = "") -> bytes:
        return await read_output(type, "", filename, backend)

    @server.resource(
        "comfy://output/{type}/{subfolder}/{filename}{?backend}",
        name="output-file-in-subfolder",
        description="A full-size file in a subfolder (percent-encode a nested one: a%2Fb)",
        mime_type="application/octet-stream",
    )
    async def output_file_in_subfolder(
        type: str, subfolder: str, filename: str, backend: str = ""
    ) -> bytes:
        return await read_output(type, subfolder, filename, backend)

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
