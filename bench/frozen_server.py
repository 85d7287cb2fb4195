"""``mcp-server-comfyui`` with ``gc.freeze()`` just before it serves: a proposed fix, measured.

Everything the start path created (the SDK's and our modules, the tools' models: ~90,000
objects) moves to the permanent generation, so the collector's full passes stop walking it
while requests are served. Measure 3 runs this next to the unchanged console script. The fix
itself would be one line in ``comfy_mcp.cli`` before ``server.run("stdio")``.
"""

from __future__ import annotations

import gc
import sys
from typing import Any

from mcp.server.mcpserver import MCPServer

from comfy_mcp.cli import main

_run = MCPServer.run


def _run_frozen(self: MCPServer, *args: Any, **kwargs: Any) -> Any:
    gc.collect()
    gc.freeze()
    return _run(self, *args, **kwargs)


if __name__ == "__main__":
    MCPServer.run = _run_frozen  # type: ignore[method-assign]
    sys.exit(main())
