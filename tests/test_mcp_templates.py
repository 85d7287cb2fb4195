"""Templates through MCP: one typed tool per template, prompts, user template folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from comfy_mcp.server import build_server
from tests.fake_comfyui import FakeComfyUI
from tests.test_mcp_contract import settings_for, text_of

pytestmark = pytest.mark.anyio


async def test_each_template_is_a_typed_tool(fake: FakeComfyUI) -> None:
    async with Client(build_server(settings_for(fake.url))) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert {"run_smoke", "run_txt2img", "run_txt2img_lora", "run_upscale"} <= set(tools)
        schema = tools["run_txt2img"].input_schema
        assert schema["properties"]["width"]["type"] == "integer"
        assert schema["properties"]["width"]["default"] == 512
        assert schema["properties"]["steps"]["minimum"] == 1
        assert schema["required"] == ["checkpoint"]
        assert tools["run_txt2img_lora"].input_schema["properties"]["loras"]["type"] == "array"
        result = await client.call_tool("run_smoke", {"width": 24, "height": 16})
        assert result.structured_content["status"] == "succeeded", text_of(result)
        assert result.structured_content["outputs"][0]["width"] == 24
        bad = await client.call_tool("run_smoke", {"width": 0})
        assert bad.is_error and "width" in text_of(bad)


async def test_live_choices_are_enforced_with_the_valid_list(fake: FakeComfyUI) -> None:
    async with Client(build_server(settings_for(fake.url))) as client:
        result = await client.call_tool(
            "run_txt2img", {"checkpoint": "sd15-placeholder.safetensors", "sampler": "eulr"}
        )
        assert result.is_error
        text = text_of(result)
        assert "did you mean 'euler'" in text and "dpmpp_2m" in text
        missing = await client.call_tool("run_txt2img", {"checkpoint": "nope.safetensors"})
        assert "sd15-placeholder.safetensors" in text_of(missing)
    assert fake.posted_prompts == []


async def test_seed_is_random_by_default_and_reported(fake: FakeComfyUI) -> None:
    fake.models_loadable = True
    async with Client(build_server(settings_for(fake.url))) as client:
        args = {"checkpoint": "sd15-placeholder.safetensors", "steps": 2, "width": 64, "height": 64}
        first = await client.call_tool("run_txt2img", args)
        second = await client.call_tool("run_txt2img", args)
        assert first.structured_content["status"] == "succeeded", text_of(first)
        seeds = [r.structured_content["params"]["seed"] for r in (first, second)]
        assert seeds[0] != seeds[1] and all(0 <= s < 2**53 for s in seeds)
        exact = await client.call_tool("run_txt2img", {**args, "seed": 2**64 - 1})
        assert exact.structured_content["params"]["seed"] == 2**64 - 1
    posted = fake.posted_prompts[-1]["prompt"]
    assert any(n["inputs"].get("seed") == 2**64 - 1 for n in posted.values())


async def test_user_template_folder_with_a_plain_api_export(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    export = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 32, "height": 32, "batch_size": 1, "color": 7},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "mine"}},
    }
    (tmp_path / "My Export.json").write_text(json.dumps(export))
    settings = settings_for(fake.url, workflows_dirs=(tmp_path,))
    async with Client(build_server(settings)) as client:
        listed = await client.call_tool("list_workflows", {})
        mine = next(w for w in listed.structured_content["workflows"] if w["name"] == "my_export")
        assert mine["inferred"] is True
        assert {"width", "height"} <= {p["name"] for p in mine["parameters"]}
        result = await client.call_tool(
            "enqueue_workflow", {"workflow": "my_export", "params": {"width": 20}}
        )
        assert result.structured_content["status"] == "succeeded", text_of(result)
        assert result.structured_content["outputs"][0]["width"] == 20


async def test_prompts_name_the_real_tools_and_templates(fake: FakeComfyUI) -> None:
    async with Client(build_server(settings_for(fake.url))) as client:
        names = {p.name for p in (await client.list_prompts()).prompts}
        assert {"generate_image", "vary_or_upscale", "make_template"} <= names
        prompt = await client.get_prompt("generate_image", {"description": "a red fox"})
        text = prompt.messages[0].content.text
        assert "a red fox" in text and "enqueue_workflow" in text and "txt2img_sdxl" in text


async def test_workflow_resources(fake: FakeComfyUI) -> None:
    async with Client(build_server(settings_for(fake.url))) as client:
        listing = json.loads((await client.read_resource("comfy://workflows")).contents[0].text)
        assert "smoke" in {w["name"] for w in listing["workflows"]}
        one = json.loads((await client.read_resource("comfy://workflows/smoke")).contents[0].text)
        assert one["graph"]["1"]["class_type"] == "EmptyImage"


UI_SMOKE = {
    "last_node_id": 3,
    "last_link_id": 2,
    "nodes": [
        {
            "id": 1,
            "type": "EmptyImage",
            "mode": 0,
            "inputs": [],
            "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}],
            "widgets_values": [24, 12, 1, 255],
        },
        {
            "id": 2,
            "type": "ImageInvert",
            "mode": 0,
            "inputs": [{"name": "image", "type": "IMAGE", "link": 1}],
            "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [2]}],
            "widgets_values": [],
        },
        {
            "id": 3,
            "type": "SaveImage",
            "mode": 0,
            "inputs": [{"name": "images", "type": "IMAGE", "link": 2}],
            "outputs": [],
            "widgets_values": ["from_ui"],
        },
    ],
    "links": [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"]],
    "groups": [],
    "version": 0.4,
}


async def test_editor_format_workflow_is_converted_and_runs(fake: FakeComfyUI) -> None:
    async with Client(build_server(settings_for(fake.url))) as client:
        result = await client.call_tool("enqueue_workflow", {"workflow": UI_SMOKE})
        assert result.structured_content["status"] == "succeeded", text_of(result)
        (output,) = result.structured_content["outputs"]
        assert output["filename"].startswith("from_ui_")
        assert (output["width"], output["height"]) == (24, 12)
    posted = fake.posted_prompts[-1]["prompt"]
    assert posted["1"]["inputs"] == {"width": 24, "height": 12, "batch_size": 1, "color": 255}


async def test_editor_workflow_with_unknown_node_names_it(fake: FakeComfyUI) -> None:
    broken = json.loads(json.dumps(UI_SMOKE))
    broken["nodes"][1]["type"] = "FancyCustomInvert"
    async with Client(build_server(settings_for(fake.url))) as client:
        result = await client.call_tool("enqueue_workflow", {"workflow": broken})
    assert result.is_error
    assert "FancyCustomInvert" in text_of(result) and "2" in text_of(result)
    assert fake.posted_prompts == []


async def test_unknown_arguments_are_refused_not_ignored(fake: FakeComfyUI) -> None:
    async with Client(build_server(settings_for(fake.url))) as client:
        misspelled = await client.call_tool("run_smoke", {"widht": 100})
        assert misspelled.is_error
        assert "'widht' (did you mean 'width'?)" in text_of(misspelled)
        foreign = await client.call_tool("run_smoke", {"seed": 3})
        assert foreign.is_error and "no argument 'seed'" in text_of(foreign)
        wrapped = await client.call_tool("enqueue_workflow", {"workflow": "smoke", "parms": {}})
        assert wrapped.is_error and "did you mean 'params'" in text_of(wrapped)
    assert fake.posted_prompts == []


async def test_zero_timeout_returns_the_handle_with_its_queue_position(fake: FakeComfyUI) -> None:
    fake.node_delay = 0.3
    async with Client(build_server(settings_for(fake.url))) as client:
        first = await client.call_tool("run_smoke", {"timeout_s": 0, "color": 1})
        second = await client.call_tool("run_smoke", {"timeout_s": 0, "color": 2})
        assert first.structured_content["status"] in ("queued", "running")
        assert second.structured_content["status"] == "queued"
        assert second.structured_content["queue_position"] == 1  # next to run
        assert "wait_for_job" in second.structured_content["message"]
        done = await client.call_tool(
            "wait_for_job", {"prompt_id": second.structured_content["prompt_id"]}
        )
        assert done.structured_content["status"] == "succeeded"
        status = await client.call_tool(
            "get_status", {"prompt_id": second.structured_content["prompt_id"]}
        )
        assert "get_outputs" in status.structured_content["message"]
        history = json.loads((await client.read_resource("comfy://history")).contents[0].text)
        assert {p["status"] for p in history["prompts"]} == {"succeeded"}


async def test_lora_names_get_a_did_you_mean(fake: FakeComfyUI) -> None:
    async with Client(build_server(settings_for(fake.url))) as client:
        result = await client.call_tool(
            "run_txt2img_lora",
            {"checkpoint": "sd15-placeholder.safetensors", "loras": [{"name": "detail"}]},
        )
    assert result.is_error
    assert "did you mean 'detail-placeholder.safetensors'" in text_of(result)


async def test_a_model_added_while_serving_is_accepted(fake: FakeComfyUI) -> None:
    fake.models_loadable = True
    args = {"steps": 1, "width": 64, "height": 64}
    async with Client(build_server(settings_for(fake.url))) as client:
        first = await client.call_tool(
            "run_txt2img", {**args, "checkpoint": "sd15-placeholder.safetensors"}
        )
        assert first.structured_content["status"] == "succeeded", text_of(first)
        fake.models["checkpoints"] = [*fake.models["checkpoints"], "new-model.safetensors"]
        added = await client.call_tool(
            "run_txt2img", {**args, "checkpoint": "new-model.safetensors"}
        )
        assert added.structured_content["status"] == "succeeded", text_of(added)
        missing = await client.call_tool("run_txt2img", {**args, "checkpoint": "nope.safetensors"})
        assert missing.is_error and "new-model.safetensors" in text_of(missing)
