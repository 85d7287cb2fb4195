"""Every bundled template runs end to end against the fake ComfyUI (model nodes enabled)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from mcp import Client
from PIL import Image

from comfy_mcp.server import build_server
from comfy_mcp.templates import TemplateCatalog
from tests.fake_comfyui import FakeComfyUI
from tests.test_mcp_contract import settings_for, text_of

pytestmark = pytest.mark.anyio

CHECKPOINT = "sd15-placeholder.safetensors"
ARGUMENTS: dict[str, dict[str, Any]] = {
    "smoke": {"width": 32, "height": 24},
    "txt2img": {"checkpoint": CHECKPOINT, "steps": 2, "width": 64, "height": 64},
    "txt2img_sdxl": {
        "checkpoint": "sdxl-placeholder.safetensors",
        "steps": 2,
        "width": 64,
        "height": 64,
    },
    "txt2img_lora": {
        "checkpoint": CHECKPOINT,
        "steps": 2,
        "width": 64,
        "height": 64,
        "loras": [
            {"name": "detail-placeholder.safetensors", "strength": 0.7},
            {"name": "style/anime-placeholder.safetensors"},
        ],
    },
    "hires_fix": {
        "checkpoint": CHECKPOINT,
        "steps": 2,
        "hires_steps": 2,
        "width": 64,
        "height": 64,
    },
    "img2img": {"checkpoint": CHECKPOINT, "image": "input.png", "steps": 2},
    "inpaint": {"checkpoint": CHECKPOINT, "image": "input.png", "mask": "mask.png", "steps": 2},
    "upscale": {"image": "input.png", "upscale_model": "4x-placeholder.pth"},
}


def png(size: tuple[int, int], color: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_every_bundled_template_is_covered() -> None:
    assert set(TemplateCatalog([]).names()) == set(ARGUMENTS)


@pytest.mark.parametrize("name", sorted(ARGUMENTS))
async def test_bundled_template_runs(fake: FakeComfyUI, name: str) -> None:
    fake.models_loadable = True
    fake.models["upscale_models"] = ["4x-placeholder.pth"]
    fake.add_input_file("input.png", png((64, 48), "orange"))
    fake.add_input_file("mask.png", png((64, 48), "white"))
    async with Client(build_server(settings_for(fake.url))) as client:
        result = await client.call_tool(f"run_{name}", ARGUMENTS[name])
    report = result.structured_content
    assert report["status"] == "succeeded", text_of(result)
    assert report["workflow"] == name
    assert report["outputs"], "a template must produce at least one file"
    assert all(o["kind"] == "image" and o["width"] for o in report["outputs"])
    if name == "txt2img_lora":
        graph = fake.posted_prompts[-1]["prompt"]
        loaders = [n for n in graph.values() if n["class_type"] == "LoraLoader"]
        assert [n["inputs"]["lora_name"] for n in loaders] == [
            "detail-placeholder.safetensors",
            "style/anime-placeholder.safetensors",
        ]
