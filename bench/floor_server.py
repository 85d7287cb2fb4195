"""The startup floor: the smallest useful MCP server on the same SDK, one tool, stdio.

Measure 4 starts it side by side with ``mcp-server-comfyui``: whatever ours takes beyond this is
what our code and our own dependencies add to the SDK's import and start-up time.
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

server = MCPServer("floor", log_level="WARNING")


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


if __name__ == "__main__":
    server.run("stdio")
