"""The MCP server against a real ComfyUI (model-free workflows). Skipped without COMFYUI_URL.

COMFYUI_URL=http://127.0.0.1:8188 python -m pytest tests/test_live_mcp.py
"""

from __future__ import annotations

import base64
import os
import random

import anyio
import httpx
import pytest
from mcp import Client

from comfy_mcp.server import build_server
from comfy_mcp.settings import Settings
from tests.test_mcp_contract import text_of
from tests.test_mcp_templates import UI_SMOKE

URL = os.environ.get("COMFYUI_URL", "")
pytestmark = [
    pytest.mark.anyio,
    pytest.mark.live,
    pytest.mark.skipif(not URL, reason="set COMFYUI_URL to run against a real ComfyUI"),
]


def server() -> object:
    return build_server(Settings.from_env({}, comfyui_url=URL, wait_timeout=60.0))


def slow_graph(color: int) -> dict[str, object]:
    """Seconds on a CPU: blurs of a large image (ImageBlur finishes its node before stopping)."""
    graph: dict[str, object] = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 1536, "height": 1536, "batch_size": 1, "color": color},
        }
    }
    previous = "1"
    for n in range(2, 7):
        graph[str(n)] = {
            "class_type": "ImageBlur",
            "inputs": {"image": [previous, 0], "blur_radius": 31, "sigma": 10.0},
        }
        previous = str(n)
    graph["9"] = {
        "class_type": "SaveImage",
        "inputs": {"images": [previous, 0], "filename_prefix": "comfy_mcp_live_slow"},
    }
    return graph


async def test_smoke_template_and_full_file() -> None:
    color = random.randint(0, 0xFFFFFF)
    async with Client(server()) as client:  # type: ignore[arg-type]
        result = await client.call_tool(
            "enqueue_workflow",
            {"workflow": "smoke", "params": {"width": 200, "height": 120, "color": color}},
        )
        assert result.structured_content["status"] == "succeeded", text_of(result)
        (output,) = result.structured_content["outputs"]
        assert (output["width"], output["height"]) == (200, 120)
        assert any(b.type == "image" for b in result.content)
        blob = await client.read_resource(output["resource_uri"])
        async with httpx.AsyncClient() as http:
            direct = (await http.get(output["url"])).content
        assert base64.b64decode(blob.contents[0].blob) == direct
        status = await client.call_tool(
            "get_status", {"prompt_id": result.structured_content["prompt_id"]}
        )
        assert status.structured_content["status"] == "succeeded"


async def test_raw_graph_with_two_outputs_and_editor_format() -> None:
    color = random.randint(0, 0xFFFFFF)
    graph = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": color},
        },
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {
            "class_type": "SaveImage",
            "inputs": {"images": ["2", 0], "filename_prefix": "comfy_mcp_live"},
        },
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }
    async with Client(server()) as client:  # type: ignore[arg-type]
        result = await client.call_tool("enqueue_workflow", {"workflow": graph})
        assert result.structured_content["status"] == "succeeded", text_of(result)
        types = sorted(o["type"] for o in result.structured_content["outputs"])
        assert types == ["output", "temp"]
        ui = dict(UI_SMOKE)
        ui["nodes"] = [dict(n) for n in UI_SMOKE["nodes"]]  # type: ignore[call-overload]
        ui["nodes"][0]["widgets_values"] = [24, 12, 1, color]
        converted = await client.call_tool("enqueue_workflow", {"workflow": ui})
        assert converted.structured_content["status"] == "succeeded", text_of(converted)


async def test_interrupt_stops_our_slow_prompt_and_nobody_elses() -> None:
    async with Client(server()) as client:  # type: ignore[arg-type]
        ours = await client.call_tool(
            "enqueue_workflow",
            {"workflow": slow_graph(random.randint(0, 0xFFFFFF)), "wait": False},
        )
        prompt_id = ours.structured_content["prompt_id"]
        async with httpx.AsyncClient() as http:
            theirs = (
                await http.post(
                    f"{URL}/prompt",
                    json={
                        "prompt": {
                            "1": {
                                "class_type": "EmptyImage",
                                "inputs": {
                                    "width": 8,
                                    "height": 8,
                                    "batch_size": 1,
                                    "color": random.randint(0, 0xFFFFFF),
                                },
                            },
                            "2": {
                                "class_type": "SaveImage",
                                "inputs": {"images": ["1", 0], "filename_prefix": "someone_else"},
                            },
                        },
                        "client_id": "someone-else",
                    },
                )
            ).json()["prompt_id"]
        with anyio.fail_after(30):
            while (
                await client.call_tool("get_status", {"prompt_id": prompt_id})
            ).structured_content["status"] != "running":
                await anyio.sleep(0.1)
        stopped = await client.call_tool("interrupt", {"prompt_id": prompt_id})
        assert stopped.structured_content["action"] == "interrupted"
        done = await client.call_tool("wait_for_job", {"prompt_id": prompt_id, "timeout_s": 60})
        assert done.structured_content["status"] == "interrupted", text_of(done)
        with anyio.fail_after(60):
            while True:
                other = await client.call_tool("get_status", {"prompt_id": theirs})
                if other.structured_content["status"] not in ("queued", "running"):
                    break
                await anyio.sleep(0.2)
        assert other.structured_content["status"] == "succeeded"
