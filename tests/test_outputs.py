"""Outputs an agent can afford: bounded previews, full files through resources, local copies."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from PIL import Image

from comfy_mcp.server import build_server
from comfy_mcp.server.content import make_preview
from tests.fake_comfyui import FakeComfyUI
from tests.test_mcp_contract import settings_for, text_of

pytestmark = pytest.mark.anyio


def noise_png(width: int, height: int) -> bytes:
    """An image that does not compress: the hard case for a byte budget."""
    image = Image.effect_noise((width, height), 100).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def decoded_images(result: Any) -> list[bytes]:
    return [base64.b64decode(b.data) for b in result.content if b.type == "image"]


def test_a_4096_square_png_gets_a_preview_under_the_budget() -> None:
    data = noise_png(4096, 4096)
    preview = make_preview(data, max_side=768, budget=512 * 1024)
    assert preview is not None
    assert len(preview.data) <= 512 * 1024
    assert max(preview.width, preview.height) <= 768
    image = Image.open(io.BytesIO(preview.data))
    assert image.format == "WEBP" and image.size == (preview.width, preview.height)


def test_a_tiny_budget_shrinks_the_preview_or_gives_none() -> None:
    data = noise_png(1024, 1024)
    small = make_preview(data, max_side=768, budget=20_000)
    assert small is None or len(small.data) <= 20_000
    assert make_preview(data, max_side=768, budget=0) is None


def test_one_pixel_and_non_images() -> None:
    one = make_preview(noise_png(1, 1), max_side=768, budget=10_000)
    assert one is not None and (one.width, one.height) == (1, 1)
    assert make_preview(b"RIFF....WAVEfmt not an image", max_side=768, budget=10_000) is None


async def upload(fake: FakeComfyUI, name: str, data: bytes) -> None:
    fake.add_input_file(name, data)


def ten_outputs_graph(image: str) -> dict[str, Any]:
    graph: dict[str, Any] = {"1": {"class_type": "LoadImage", "inputs": {"image": image}}}
    for n in range(10):
        graph[str(n + 2)] = {
            "class_type": "SaveImage",
            "inputs": {"images": ["1", 0], "filename_prefix": f"ten/out{n}"},
        }
    return graph


async def test_ten_outputs_share_the_budget(fake: FakeComfyUI) -> None:
    await upload(fake, "noise.png", noise_png(1024, 768))
    budget = 150_000
    settings = settings_for(fake.url, preview_budget_bytes=budget)
    async with Client(build_server(settings)) as client:
        result = await client.call_tool(
            "enqueue_workflow", {"workflow": ten_outputs_graph("noise.png")}
        )
    assert result.structured_content["status"] == "succeeded", text_of(result)
    outputs = result.structured_content["outputs"]
    assert len(outputs) == 10
    previews = decoded_images(result)
    assert sum(len(p) for p in previews) <= budget
    assert len(previews) == 10, "every output should get a share of the budget"
    assert all(o["preview"] == "inline" for o in outputs)
    assert all((o["width"], o["height"]) == (1024, 768) for o in outputs)
    assert {o["subfolder"] for o in outputs} == {"ten"}


async def test_big_output_full_file_is_byte_identical_through_the_resource(
    fake: FakeComfyUI,
) -> None:
    original = noise_png(2048, 2048)
    await upload(fake, "big.png", original)
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "big.png"}},
        "2": {
            "class_type": "SaveImage",
            "inputs": {"images": ["1", 0], "filename_prefix": "a/b/big"},
        },
    }
    async with Client(build_server(settings_for(fake.url))) as client:
        result = await client.call_tool("enqueue_workflow", {"workflow": graph})
        (output,) = result.structured_content["outputs"]
        (preview,) = decoded_images(result)
        assert len(preview) <= 512 * 1024
        assert max(Image.open(io.BytesIO(preview)).size) == 768
        assert output["subfolder"] == "a/b"
        assert "/a%2Fb/" in output["resource_uri"]
        resource = await client.read_resource(output["resource_uri"])
    content = resource.contents[0]
    assert content.mime_type == "image/png"
    full = base64.b64decode(content.blob)
    assert full == fake.files("output")["a/b/" + output["filename"]]
    assert Image.open(io.BytesIO(full)).size == (2048, 2048)


async def test_previews_can_be_turned_off_or_resized(fake: FakeComfyUI) -> None:
    async with Client(build_server(settings_for(fake.url))) as client:
        off = await client.call_tool("enqueue_workflow", {"workflow": "smoke", "preview": False})
        assert decoded_images(off) == []
        small = await client.call_tool(
            "enqueue_workflow",
            {"workflow": "smoke", "params": {"width": 1000, "height": 500}, "preview": 100},
        )
        (image,) = decoded_images(small)
        assert Image.open(io.BytesIO(image)).size == (100, 50)


async def test_outputs_are_saved_under_the_output_dir_only(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    settings = settings_for(fake.url, output_dir=tmp_path)
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("enqueue_workflow", {"workflow": "smoke"})
        (output,) = result.structured_content["outputs"]
        again = await client.call_tool(
            "get_outputs", {"prompt_id": result.structured_content["prompt_id"]}
        )
    saved = Path(output["saved_path"])
    assert saved.is_file() and tmp_path in saved.parents
    assert saved.read_bytes() == fake.files("output")[output["filename"]]
    assert again.structured_content["outputs"][0]["saved_path"] == str(saved)
    assert len(list(tmp_path.rglob("*.png"))) == 1


def test_saved_names_cannot_escape(tmp_path: Path) -> None:
    from comfy_mcp.comfy import Job
    from comfy_mcp.comfy.models import OutputFile
    from comfy_mcp.server.outputs import save_output

    job = Job("../../etc")
    evil = OutputFile(node_id="../1", key="images", filename="../../x.png", subfolder="../..")
    path = save_output(tmp_path, job, evil, b"data")
    assert tmp_path.resolve() in path.resolve().parents
    assert path.read_bytes() == b"data"


async def test_missing_output_file_is_listed_without_preview(fake: FakeComfyUI) -> None:
    from mcp import MCPError

    async with Client(build_server(settings_for(fake.url))) as client:
        result = await client.call_tool("enqueue_workflow", {"workflow": "smoke"})
        (output,) = result.structured_content["outputs"]
        del fake.store.files("output")[output["filename"]]
        again = await client.call_tool(
            "get_outputs", {"prompt_id": result.structured_content["prompt_id"]}
        )
        with pytest.raises(MCPError, match="no output file"):
            await client.read_resource(output["resource_uri"])
    (listed,) = again.structured_content["outputs"]
    assert listed["filename"] == output["filename"]
    assert listed["preview"] is None and listed["size_bytes"] is None
