"""The console script as a real stdio subprocess, driven by a real MCP client."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests.fake_comfyui import FakeComfyUI

pytestmark = pytest.mark.anyio


def console_script() -> str:
    script = Path(sys.executable).parent / "mcp-server-comfyui"
    found = str(script) if script.exists() else shutil.which("mcp-server-comfyui")
    if not found:
        pytest.fail("the mcp-server-comfyui console script is not installed (pip install -e .)")
    return found


async def test_console_script_runs_a_template_end_to_end(fake: FakeComfyUI) -> None:
    params = StdioServerParameters(
        command=console_script(),
        env={
            "COMFYUI_URL": fake.url,
            "COMFY_MCP_LOG_LEVEL": "INFO",
            "PATH": os.environ.get("PATH", ""),
        },
    )
    async with Client(params, mode="legacy") as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"enqueue_workflow", "get_status", "get_outputs"} <= names
        result = await client.call_tool(
            "enqueue_workflow", {"workflow": "smoke", "params": {"width": 32, "height": 32}}
        )
        assert not result.is_error
        assert result.structured_content["status"] == "succeeded"
        assert result.structured_content["outputs"][0]["width"] == 32
        assert any(block.type == "image" for block in result.content)
        status = await client.call_tool(
            "get_status", {"prompt_id": result.structured_content["prompt_id"]}
        )
        assert status.structured_content["status"] == "succeeded"
