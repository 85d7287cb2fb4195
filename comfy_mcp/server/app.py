"""Building the MCP server: one factory, and a lifespan that owns the ComfyUI client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from mcp.server.mcpserver import MCPServer

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

log = logging.getLogger(__name__)

INSTRUCTIONS = """\
Generate images (and other media) with ComfyUI.
- list_workflows shows the ready templates and their parameters; enqueue_workflow runs one by name
  with params, or runs a raw API-format graph. It waits for the result (default 45 s) and returns
  the image previews; if the prompt is still running it returns the prompt_id: use get_status /
  get_outputs later.
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
    register_template_tools(server, state)
    register_resources(server, state)
    register_prompts(server, state)
    apply_tool_guards(server, settings)  # read-only mode, allow/deny lists
    return server


class ComfyMCPServer(MCPServer):
    """MCPServer that labels each ``comfy://output/...`` blob with its file's MIME type.

    A resource template has one fixed MIME type; outputs are PNG, WebP, MP4, FLAC… so the type
    is set per read, from the file name, where the SDK builds the contents.
    """

    async def read_resource(self, uri: Any, context: Any = None) -> Any:
        result = await super().read_resource(uri, context)
        text = str(uri)
        if text.startswith(OUTPUT_URI_PREFIX) and isinstance(result, list | tuple):
            mime_type = output_mime_type(text)
            return [replace(item, mime_type=mime_type) for item in result]
        return result


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
