"""mcp-server-comfyui: an MCP server and an async Python client for ComfyUI.

The package has three layers, imports pointing down only:

* ``comfy_mcp.server``    the MCP tools, resources and prompts (needs ``mcp``);
* ``comfy_mcp.templates`` workflow templates: typed parameters, fill, validation (pure Python);
* ``comfy_mcp.comfy``     the async ComfyUI client (``httpx`` + ``websockets``), usable on its own.
"""

from __future__ import annotations

from comfy_mcp.comfy import (
    ComfyClient,
    ComfyError,
    Job,
    JobState,
)

__version__ = "0.1.0"

__all__ = ["ComfyClient", "ComfyError", "Job", "JobState", "__version__"]
