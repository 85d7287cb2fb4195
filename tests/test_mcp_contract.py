"""The MCP contract: a real MCP client (``mcp.Client``) against our server wired to the fake ComfyUI.

Each test checks what an agent (or the user behind it) would look at: the status, the image, the
error text that says what to fix.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from mcp import Client
from PIL import Image

from comfy_mcp.server import build_server
from comfy_mcp.settings import Settings
from tests.conftest import fixture
from tests.fake_comfyui import FakeComfyUI, run_fake_comfyui

pytestmark = pytest.mark.anyio

CONTRACT_TOOLS = {
    "list_models",
    "list_loras",
    "list_workflows",
    "enqueue_workflow",
    "get_status",
    "get_outputs",
    "interrupt",
    "free_memory",
}

SMOKE_GRAPH = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 40, "height": 30, "batch_size": 1, "color": 0x3366CC},
    },
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "raw"}},
}


def settings_for(url: str, **overrides: Any) -> Settings:
    return Settings.from_env({}, comfyui_url=url, **{"wait_timeout": 20.0, **overrides})


@pytest.fixture
async def fake() -> AsyncIterator[FakeComfyUI]:
    async with run_fake_comfyui() as server:
        yield server


@pytest.fixture
async def client(fake: FakeComfyUI) -> AsyncIterator[Client]:
    async with Client(build_server(settings_for(fake.url)), raise_exceptions=True) as c:
        yield c


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


async def test_tools_are_the_public_contract_with_truthful_annotations(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) >= CONTRACT_TOOLS
    assert tools["list_models"].annotations.read_only_hint is True
    assert tools["get_status"].annotations.read_only_hint is True
    assert tools["enqueue_workflow"].annotations.read_only_hint is False
    assert tools["enqueue_workflow"].annotations.destructive_hint is False
    assert tools["interrupt"].annotations.destructive_hint is True
    schema = tools["enqueue_workflow"].input_schema
    assert {"workflow", "params", "wait", "timeout_s"} <= set(schema["properties"])
    assert schema["required"] == ["workflow"]
    assert tools["enqueue_workflow"].output_schema is not None


async def test_list_models_reports_what_comfyui_has(client: Client) -> None:
    result = await client.call_tool("list_models", {})
    assert result.structured_content["models"] == [
        "sd15-placeholder.safetensors",
        "sdxl-placeholder.safetensors",
    ]
    loras = await client.call_tool("list_models", {"folder": "loras"})
    assert "style/anime-placeholder.safetensors" in loras.structured_content["models"]
    only_loras = await client.call_tool("list_loras", {})
    assert only_loras.structured_content["models"] == loras.structured_content["models"]


async def test_unknown_model_folder_lists_the_real_ones(client: Client) -> None:
    result = await client.call_tool("list_models", {"folder": "lorass"})
    assert result.is_error
    assert "lorass" in text_of(result) and "loras" in text_of(result)
    assert "upscale_models" in text_of(result)


async def test_list_workflows_shows_templates_and_parameters(client: Client) -> None:
    result = await client.call_tool("list_workflows", {})
    workflows = {w["name"]: w for w in result.structured_content["workflows"]}
    assert {"smoke", "txt2img"} <= set(workflows)
    params = {p["name"] for p in workflows["txt2img"]["parameters"]}
    assert {"prompt", "negative_prompt", "checkpoint", "width", "height", "steps", "cfg"} <= params
    assert {"sampler", "scheduler", "seed"} <= params


async def test_smoke_template_runs_and_returns_the_image(client: Client, fake: FakeComfyUI) -> None:
    result = await client.call_tool(
        "enqueue_workflow", {"workflow": "smoke", "params": {"width": 96, "height": 64}}
    )
    assert not result.is_error, text_of(result)
    report = result.structured_content
    assert report["status"] == "succeeded"
    assert report["workflow"] == "smoke" and report["params"]["width"] == 96
    (output,) = report["outputs"]
    assert output["kind"] == "image" and output["type"] == "output"
    assert (output["width"], output["height"]) == (96, 64)
    assert output["preview"] == "inline"
    images = [b for b in result.content if b.type == "image"]
    assert len(images) == 1
    assert "base64" not in json.dumps(report) and len(json.dumps(report)) < 5000

    # The full-size file through the resource is byte-identical to ComfyUI's /view.
    resource = await client.read_resource(output["resource_uri"])
    import base64

    blob = base64.b64decode(resource.contents[0].blob)
    async with httpx.AsyncClient() as http:
        direct = (await http.get(output["url"])).content
    assert blob == direct
    assert Image.open(io.BytesIO(blob)).size == (96, 64)


async def test_raw_api_graph_runs(client: Client) -> None:
    result = await client.call_tool("enqueue_workflow", {"workflow": SMOKE_GRAPH})
    assert result.structured_content["status"] == "succeeded", text_of(result)
    assert result.structured_content["outputs"][0]["filename"].startswith("raw_")


async def test_status_and_outputs_by_prompt_id(client: Client) -> None:
    run = await client.call_tool("enqueue_workflow", {"workflow": "smoke"})
    prompt_id = run.structured_content["prompt_id"]
    status = await client.call_tool("get_status", {"prompt_id": prompt_id})
    assert status.structured_content["status"] == "succeeded"
    outputs = await client.call_tool("get_outputs", {"prompt_id": prompt_id, "preview": False})
    assert outputs.structured_content["outputs"][0]["preview"] is None
    assert not [b for b in outputs.content if b.type == "image"]
    unknown = await client.call_tool("get_status", {"prompt_id": "no-such-prompt"})
    assert unknown.structured_content["status"] == "unknown"


async def test_unknown_template_is_rejected_with_the_valid_names(
    client: Client, fake: FakeComfyUI
) -> None:
    result = await client.call_tool("enqueue_workflow", {"workflow": "smokey"})
    assert result.is_error
    assert "did you mean 'smoke'" in text_of(result) and "txt2img" in text_of(result)
    assert fake.posted_prompts == []


async def test_bad_parameters_are_rejected_before_queueing(
    client: Client, fake: FakeComfyUI
) -> None:
    result = await client.call_tool(
        "enqueue_workflow", {"workflow": "smoke", "params": {"widht": 64, "height": "tall"}}
    )
    assert result.is_error
    text = text_of(result)
    assert "widht" in text and "did you mean 'width'" in text
    assert "height" in text
    assert fake.posted_prompts == []


async def test_graph_comfyui_rejects_names_node_and_input(client: Client) -> None:
    graph = fixture("workflow_invalid_missing_loadimage_file")
    result = await client.call_tool("enqueue_workflow", {"workflow": graph})
    assert result.is_error
    text = text_of(result)
    assert "nothing was queued" in text
    assert "LoadImage" in text and "'image'" in text and "no-such-upload.png" in text


async def test_execution_error_names_node_and_exception(client: Client) -> None:
    result = await client.call_tool(
        "enqueue_workflow",
        {
            "workflow": "txt2img",
            "params": {"prompt": "a fox", "checkpoint": "sd15-placeholder.safetensors"},
        },
    )
    assert result.is_error
    report = result.structured_content
    assert report["status"] == "failed"
    assert report["error"]["node_type"] == "CheckpointLoaderSimple"
    assert "header too small" in report["error"]["message"]
    assert "CheckpointLoaderSimple" in text_of(result)


async def test_comfyui_down_gives_a_clear_error_and_the_server_survives(
    fake: FakeComfyUI,
) -> None:
    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    async with Client(build_server(settings_for(dead)), raise_exceptions=True) as c:
        result = await c.call_tool("list_models", {})
        assert result.is_error
        assert "cannot reach ComfyUI at http://127.0.0.1:9" in text_of(result)
        again = await c.call_tool("enqueue_workflow", {"workflow": "smoke"})
        assert again.is_error and "cannot reach ComfyUI" in text_of(again)
        listed = await c.call_tool("list_workflows", {})
        assert not listed.is_error


async def test_wait_returns_the_handle_before_the_job_ends(fake: FakeComfyUI) -> None:
    fake.node_delay = 0.4
    async with Client(build_server(settings_for(fake.url)), raise_exceptions=True) as c:
        early = await c.call_tool("enqueue_workflow", {"workflow": "smoke", "timeout_s": 0.3})
        assert not early.is_error
        assert early.structured_content["status"] in ("queued", "running")
        assert "get_status" in early.structured_content["message"]
        prompt_id = early.structured_content["prompt_id"]
        fake.node_delay = 0.0
        for _ in range(50):
            status = await c.call_tool("get_status", {"prompt_id": prompt_id})
            if status.structured_content["status"] == "succeeded":
                break
            import anyio

            await anyio.sleep(0.1)
        assert status.structured_content["status"] == "succeeded"


async def test_progress_notifications_while_waiting(fake: FakeComfyUI) -> None:
    fake.node_delay = 0.4
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with Client(build_server(settings_for(fake.url)), raise_exceptions=True) as c:
        result = await c.call_tool(
            "enqueue_workflow", {"workflow": "smoke"}, progress_callback=on_progress
        )
    assert result.structured_content["status"] == "succeeded"
    assert seen, "no progress notification"
    assert any(m and "running" in m for _, _, m in seen)
    values = [p for p, _, _ in seen]
    assert values == sorted(values)


async def test_interrupt_touches_only_the_named_prompt(fake: FakeComfyUI) -> None:
    fake.node_delay = 0.3
    async with Client(build_server(settings_for(fake.url)), raise_exceptions=True) as c:
        first = await c.call_tool("enqueue_workflow", {"workflow": "smoke", "wait": False})
        second = await c.call_tool("enqueue_workflow", {"workflow": "smoke", "wait": False})
        first_id = first.structured_content["prompt_id"]
        second_id = second.structured_content["prompt_id"]
        # Someone else's prompt, queued behind ours with another client id.
        async with httpx.AsyncClient() as http:
            other = await http.post(
                f"{fake.url}/prompt", json={"prompt": SMOKE_GRAPH, "client_id": "someone-else"}
            )
        other_id = other.json()["prompt_id"]

        removed = await c.call_tool("interrupt", {"prompt_id": second_id})
        assert removed.structured_content["action"] == "removed"
        import anyio

        for _ in range(50):
            status = await c.call_tool("get_status", {"prompt_id": first_id})
            if status.structured_content["status"] == "running":
                break
            await anyio.sleep(0.05)
        stopped = await c.call_tool("interrupt", {"prompt_id": first_id})
        assert stopped.structured_content["action"] == "interrupted"
        for _ in range(100):
            status = await c.call_tool("get_status", {"prompt_id": first_id})
            if status.structured_content["status"] == "interrupted":
                break
            await anyio.sleep(0.05)
        assert status.structured_content["status"] == "interrupted"
        cancelled = await c.call_tool("get_status", {"prompt_id": second_id})
        assert cancelled.structured_content["status"] in ("cancelled", "lost")
        fake.node_delay = 0.0
        for _ in range(100):
            theirs = await c.call_tool("get_status", {"prompt_id": other_id})
            if theirs.structured_content["status"] not in ("queued", "running"):
                break
            await anyio.sleep(0.05)
        assert theirs.structured_content["status"] == "succeeded"


async def test_global_interrupt_needs_an_explicit_all(client: Client, fake: FakeComfyUI) -> None:
    refused = await client.call_tool("interrupt", {})
    assert refused.is_error and "all=true" in text_of(refused)
    assert fake.interrupt_calls == []
    done = await client.call_tool("interrupt", {"all": True})
    assert done.structured_content["action"] == "interrupted_all"
    assert fake.interrupt_calls == [None]


async def test_free_memory_sends_both_flags(client: Client, fake: FakeComfyUI) -> None:
    result = await client.call_tool("free_memory", {"unload_models": True, "free_memory": False})
    assert result.structured_content["unload_models"] is True
    assert fake.free_calls == [{"unload_models": True, "free_memory": False}]


async def test_resources(client: Client) -> None:
    run = await client.call_tool("enqueue_workflow", {"workflow": "smoke"})
    prompt_id = run.structured_content["prompt_id"]
    stats = json.loads((await client.read_resource("comfy://system-stats")).contents[0].text)
    assert stats["system"]["comfyui_version"] == "0.3.64"
    assert "argv" not in stats["system"]
    history = json.loads((await client.read_resource("comfy://history")).contents[0].text)
    assert history["prompts"][-1]["prompt_id"] == prompt_id
    assert history["prompts"][-1]["status"] == "succeeded"
    entry = json.loads(
        (await client.read_resource(f"comfy://history/{prompt_id}")).contents[0].text
    )
    assert entry["outputs"]
    templates = {
        t.uri_template for t in (await client.list_resource_templates()).resource_templates
    }
    assert "comfy://history/{prompt_id}" in templates
