"""The MCP layer: tools, resources and prompts over the ComfyUI client and templates."""

from __future__ import annotations

from comfy_mcp.server.app import build_server

__all__ = ["build_server"]
