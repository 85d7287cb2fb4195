"""``python -m comfy_mcp``: the same as the ``mcp-server-comfyui`` command."""

import sys

from comfy_mcp.cli import main

sys.exit(main())
