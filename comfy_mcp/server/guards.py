"""Guard rails: read-only mode and a tool allowlist / denylist.

A shared deployment often wants agents to look but not touch (``COMFY_MCP_READ_ONLY``), or to
lose one sharp tool (``COMFY_MCP_TOOLS_DENY=free_memory``). Tools are removed from the server
after registration, so a removed tool is simply absent: it is not listed, and calling it gets
the SDK's "Unknown tool" answer. Nothing is checked per call, so nothing can be forgotten.

Read-only keeps exactly the tools annotated ``read_only_hint=True``: the annotations are the
single source of truth, and tests check that they are truthful.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from mcp.server.mcpserver import MCPServer

from comfy_mcp.settings import Settings, SettingsError

log = logging.getLogger(__name__)


def apply_tool_guards(server: MCPServer, settings: Settings) -> list[str]:
    """Remove the tools that ``settings`` does not allow; returns the removed names.

    Raises :class:`SettingsError` when the allow or deny list names a tool that does not exist
    (a typo would otherwise silently leave a tool enabled), listing the real names.
    """
    if not (settings.read_only or settings.tools_allow or settings.tools_deny):
        return []
    tools = {tool.name: tool for tool in server._tool_manager.list_tools()}
    _check_names("COMFY_MCP_TOOLS_ALLOW", settings.tools_allow, tools)
    _check_names("COMFY_MCP_TOOLS_DENY", settings.tools_deny, tools)
    allowed = set(settings.tools_allow)
    removed: list[str] = []
    for name, tool in tools.items():
        read_only = tool.annotations is not None and tool.annotations.read_only_hint is True
        if (
            (allowed and name not in allowed)
            or name in settings.tools_deny
            or (settings.read_only and not read_only)
        ):
            server.remove_tool(name)
            removed.append(name)
    if removed:
        log.info("tools disabled by configuration: %s", ", ".join(sorted(removed)))
    if len(removed) == len(tools):
        log.warning("every tool is disabled by configuration; only resources and prompts remain")
    return removed


def _check_names(variable: str, names: Iterable[str], tools: Iterable[str]) -> None:
    known = sorted(tools)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SettingsError(
            f"{variable} names unknown tools: {', '.join(unknown)}. "
            f"The tools are: {', '.join(known)}"
        )
