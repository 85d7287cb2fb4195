"""Building the MCP server: one factory, and a lifespan that owns the ComfyUI client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from comfy_mcp import __version__
from comfy_mcp.comfy import ComfyClient, Endpoint
from comfy_mcp.server.backends import Backend, BackendPool
from comfy_mcp.server.guards import apply_tool_guards
from comfy_mcp.server.prompts import register_prompts
from comfy_mcp.server.resources import OUTPUT_URI_PREFIX, output_mime_type, register_resources
from comfy_mcp.server.state import ServerState
from comfy_mcp.server.template_tools import register_template_tools
from comfy_mcp.server.tools import register_tools
from comfy_mcp.server.uploads import register_upload_tools
from comfy_mcp.settings import Settings
from comfy_mcp.templates import TemplateCatalog
from comfy_mcp.templates.errors import closest

log = logging.getLogger(__name__)

INSTRUCTIONS = """\
Generate images (and other media) with ComfyUI.
- list_workflows shows the ready templates and their parameters; enqueue_workflow runs one by name
  with params (run_<template> tools take the same parameters directly), or runs an API-format
  graph or an editor workflow. It waits for the result (default 45 s) and returns the image
  previews; if the prompt is still running it returns the prompt_id: call wait_for_job with it
  (get_status checks without waiting, get_outputs lists the files).
- list_models / list_loras give the exact file names ComfyUI accepts for model parameters.
- interrupt stops one prompt by id. Full-size files: read the comfy://output/... resource links.
- upload_image / upload_mask put an image (data URL, base64, http(s) URL, or an allowed local
  file) into ComfyUI's input folder; pass the returned `reference` as a workflow's image
  parameter. Image parameters of templates also accept those forms directly.
"""


def build_server(
    settings: Settings | None = None, *, client: ComfyClient | None = None
) -> MCPServer:
    """A ready MCPServer. ``client`` lets tests inject a ComfyClient (not closed by us)."""
    settings = settings or Settings.from_env()
    catalog = TemplateCatalog(list(settings.workflows_dirs))
    state = ServerState(settings=settings, catalog=catalog)

    shared = _SharedClient(state, client)

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[ServerState]:
        # The SDK enters the lifespan once per in-process session (once per app over HTTP):
        # sessions share one ComfyClient, and so one websocket; the last one out closes it.
        await shared.acquire()
        try:
            yield state
        finally:
            await shared.release()

    server = ComfyMCPServer(
        "comfyui",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level=settings.log_level.upper(),  # type: ignore[arg-type]
    )
    register_tools(server, state)
    register_upload_tools(server, state)
    if settings.template_tools:
        register_template_tools(server, state)
    register_resources(server, state)
    register_prompts(server, state)
    apply_tool_guards(server, settings)  # read-only mode, allow/deny lists
    return server


class ComfyMCPServer(MCPServer):
    """MCPServer with two corrections that agents need.

    * Unknown argument names are refused (with a "did you mean"): the SDK ignores them, so a
      misspelled ``stpes`` would silently run with the default and waste a generation.
    * Each ``comfy://output/...`` blob carries its file's MIME type: a resource template has one
      fixed type, and outputs are PNG, WebP, MP4, FLAC…
    """

    _argument_names: dict[str, frozenset[str]] | None = None

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        if self._argument_names is None or name not in self._argument_names:
            self._argument_names = {
                tool.name: frozenset((tool.input_schema or {}).get("properties", {}))
                for tool in await self.list_tools()
            }
        known = self._argument_names.get(name)
        if known is not None:
            unknown = [key for key in arguments if key not in known]
            if unknown:
                raise ToolError(describe_unknown_arguments(name, unknown, sorted(known)))
        return await super().call_tool(name, arguments, context)

    async def read_resource(self, uri: Any, context: Any = None) -> Any:
        result = await super().read_resource(uri, context)
        text = str(uri)
        if text.startswith(OUTPUT_URI_PREFIX) and isinstance(result, list | tuple):
            mime_type = output_mime_type(text)
            return [replace(item, mime_type=mime_type) for item in result]
        return result


def describe_unknown_arguments(tool: str, unknown: list[str], known: list[str]) -> str:
    parts = []
    for key in unknown:
        hint = closest(key, known)
        parts.append(f"'{key}'" + (f" (did you mean '{hint}'?)" if hint else ""))
    return (
        f"{tool} has no argument {', '.join(parts)}; its arguments are: {', '.join(known)}. "
        "Nothing was run."
    )


class _SharedClient:
    """Reference-counted ownership of the server's ComfyClients (one per backend)."""

    def __init__(self, state: ServerState, injected: ComfyClient | None) -> None:
        self.state = state
        self.injected = injected
        self.users = 0
        self.lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self.lock:
            self.users += 1
            if self.state.backends is None:
                self.state.backends = BackendPool(self._open())

    def _open(self) -> list[Backend]:
        settings = self.state.settings
        specs = settings.backends()
        backends = []
        for index, spec in enumerate(specs):
            if index == 0 and self.injected is not None:
                client = self.injected
            else:
                client = ComfyClient(
                    spec.url,
                    auth=spec.auth,
                    user=settings.comfyui_user,
                    timeout=settings.http_timeout,
                    verify=settings.verify_tls,
                )
            # COMFY_MCP_PUBLIC_URL is where agents reach the (first) ComfyUI's /view.
            public = settings.public_url if index == 0 and settings.public_url else spec.url
            backends.append(Backend(spec.name, client, Endpoint(public)))
            log.info("backend %s: ComfyUI at %s", spec.name, client.endpoint.base_url)
        return backends

    async def release(self) -> None:
        async with self.lock:
            self.users -= 1
            pool = self.state.backends
            if self.users > 0 or pool is None:
                return
            self.state.backends = None
            for backend in pool.backends.values():
                if backend.client is not self.injected:
                    await backend.client.aclose()
