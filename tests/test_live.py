"""``ComfyClient`` against a real ComfyUI, with model-free graphs. Skipped without COMFYUI_URL.

    COMFYUI_URL=http://127.0.0.1:8188 python -m pytest tests/test_live.py

The server may be shared: other clients' prompts can be queued or running, so prompts here are
queued in front (``front=True``), colours are random (no cache hits), waits are generous, and
nothing asserts on the global queue or history beyond our own prompt ids.
"""

from __future__ import annotations

import io
import os
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
import websockets
from PIL import Image

from comfy_mcp.comfy import (
    ComfyClient,
    ComfyHTTPError,
    ExecutionInterruptedError,
    JobState,
    MediaKind,
    raise_for_job,
)

URL = os.environ.get("COMFYUI_URL", "")
WAIT = 600.0  # seconds: the shared server may be busy with someone else's long prompt
pytestmark = [
    pytest.mark.anyio,
    pytest.mark.live,
    pytest.mark.skipif(not URL, reason="set COMFYUI_URL to run against a real ComfyUI"),
]


@pytest.fixture
async def comfy() -> AsyncIterator[ComfyClient]:
    async with ComfyClient(URL, check_interval=2.0, poll_interval=0.5) as client:
        yield client


def color() -> int:
    return random.randint(0, 0xFFFFFF)


def smoke(
    fill: int, width: int = 64, height: int = 48, prefix: str = "comfy_mcp_live"
) -> dict[str, Any]:
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": width, "height": height, "batch_size": 1, "color": fill},
        },
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


def slow(fill: int, blurs: int = 3, size: int = 1536) -> dict[str, Any]:
    """Seconds per node on a CPU. ImageBlur cannot stop mid-node: an interrupt lands between
    nodes (the running blur finishes, the next one is announced and interrupted)."""
    graph: dict[str, Any] = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": size, "height": size, "batch_size": 1, "color": fill},
        }
    }
    for n in range(2, 2 + blurs):
        graph[str(n)] = {
            "class_type": "ImageBlur",
            "inputs": {"image": [str(n - 1), 0], "blur_radius": 31, "sigma": 10.0},
        }
    graph["9"] = {
        "class_type": "SaveImage",
        "inputs": {"images": [str(1 + blurs), 0], "filename_prefix": "comfy_mcp_live_slow"},
    }
    return graph


def rgb(data: bytes) -> tuple[int, ...]:
    pixel = Image.open(io.BytesIO(data)).convert("RGB").getpixel((0, 0))
    assert isinstance(pixel, tuple)
    return pixel


def split(fill: int) -> tuple[int, int, int]:
    return (fill >> 16) & 0xFF, (fill >> 8) & 0xFF, fill & 0xFF


def inverted(data: bytes, fill: tuple[int, ...]) -> bool:
    """ComfyUI computes in float32 and truncates: a channel may be one below 255 - c."""
    return all(0 <= (255 - c) - p <= 1 for p, c in zip(rgb(data), fill, strict=True))


async def test_smoke_graph_end_to_end_with_view_bytes(comfy: ComfyClient) -> None:
    fill = color()
    job = await comfy.run(smoke(fill, 80, 60), timeout=WAIT, front=True)
    assert job.state is JobState.SUCCEEDED and job.ended_by_event
    (file,) = job.files
    assert file.type == "output" and file.kind is MediaKind.IMAGE and file.node_id == "3"
    data = await comfy.view(file.filename, subfolder=file.subfolder, type=file.type)
    assert Image.open(io.BytesIO(data)).size == (80, 60)
    assert inverted(data, split(fill))
    (resolved,) = await comfy.resolve_outputs(job, as_="bytes")
    assert resolved.data == data and resolved.url == comfy.view_url(file.filename)
    status = await comfy.get_prompt_status(job.prompt_id)
    assert status.state is JobState.SUCCEEDED
    assert await comfy.get_prompt_outputs(job.prompt_id) == job.files


async def test_raw_graph_with_save_and_preview_returns_both_outputs(comfy: ComfyClient) -> None:
    graph = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 32, "height": 32, "batch_size": 2, "color": color()},
        },
        "2": {
            "class_type": "SaveImage",
            "inputs": {"images": ["1", 0], "filename_prefix": "live2"},
        },
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }
    job = await comfy.run(graph, timeout=WAIT, front=True)
    by_type: dict[str, int] = {}
    for file in job.files:
        by_type[file.type] = by_type.get(file.type, 0) + 1
    assert by_type == {"output": 2, "temp": 2}  # a batch of two, from each output node
    for output in await comfy.resolve_outputs(job, as_="bytes"):
        assert output.data is not None and output.data.startswith(b"\x89PNG")


async def test_websocket_only_outputs_and_metadata_previews(comfy: ComfyClient) -> None:
    """SaveImageWebsocket results exist only as binary frames; with feature_flags sent they
    are type-4 frames carrying the prompt and node ids."""
    graph = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 16, "height": 16, "batch_size": 2, "color": color()},
        },
        "2": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}},
    }
    job = await comfy.run(graph, timeout=WAIT, front=True)
    assert job.history is not None and job.history.outputs == {}
    assert len(job.previews) == 2
    assert all(p.prompt_id == job.prompt_id and p.node_id == "2" for p in job.previews)
    assert comfy.events.features.get("supports_preview_metadata") is True
    resolved = await comfy.resolve_outputs(job)
    assert [r.key for r in resolved] == ["websocket", "websocket"]
    assert all(r.data and Image.open(io.BytesIO(r.data)).size == (16, 16) for r in resolved)


async def test_history_paging_and_deleting_our_entries(comfy: ComfyClient) -> None:
    ids = [(await comfy.run(smoke(color()), timeout=WAIT, front=True)).prompt_id for _ in range(3)]
    everything = list(await comfy.get_history())
    positions = [everything.index(pid) for pid in ids]
    assert positions == sorted(positions)  # oldest first
    start = positions[0]
    page = list(await comfy.get_history(max_items=2, offset=start))
    assert page == everything[start : start + 2] and page[0] == ids[0]
    assert ids[-1] in list(await comfy.get_history(max_items=5))
    entry = await comfy.get_history_item(ids[1])
    assert entry is not None and entry.outcome == "success"
    await comfy.delete_items("history", [ids[0]])
    assert await comfy.get_history_item(ids[0]) is None


async def test_interrupting_our_slow_prompt_spares_another_clients_prompt() -> None:
    async with (
        ComfyClient(URL, check_interval=2.0) as ours,
        ComfyClient(URL, check_interval=2.0) as theirs,
    ):
        slow_job = await ours.submit(slow(color()), front=True)
        assert slow_job.receipt is not None
        # Right behind ours, ahead of anything else queued on a shared server.
        other = await theirs.submit(smoke(color()), number=slow_job.receipt.number + 0.5)
        with anyio.fail_after(WAIT):
            while slow_job.node not in ("2", "3"):
                await anyio.sleep(0.05)
        assert await ours.cancel(slow_job.prompt_id) == "interrupted"
        await ours.wait(slow_job, timeout=WAIT)
        assert slow_job.state is JobState.INTERRUPTED
        assert slow_job.interruption is not None
        assert slow_job.interruption["node_type"] in ("ImageBlur", "SaveImage")
        with pytest.raises(ExecutionInterruptedError):
            raise_for_job(slow_job, WAIT)
        await theirs.wait(other, timeout=WAIT)
        assert other.state is JobState.SUCCEEDED and other.files


async def test_cancel_removes_our_queued_prompt(comfy: ComfyClient) -> None:
    running = await comfy.submit(slow(color(), blurs=1), front=True)
    assert running.receipt is not None
    queued = await comfy.submit(smoke(color()), number=running.receipt.number + 0.5)
    assert await comfy.cancel(queued.prompt_id) == "removed"
    assert queued.state is JobState.CANCELLED
    await comfy.wait(running, timeout=WAIT)
    assert running.state is JobState.SUCCEEDED
    assert (await comfy.get_prompt_status(queued.prompt_id)).state is JobState.LOST


async def test_upload_then_load_image_and_mask(comfy: ComfyClient) -> None:
    fill = split(color())
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), fill).save(buffer, format="PNG")
    name = f"comfy_mcp_live_{uuid.uuid4().hex[:8]}.png"
    stored = await comfy.upload_image(buffer.getvalue(), name, subfolder="comfy_mcp_live")
    assert stored.reference == f"comfy_mcp_live/{name}"
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": stored.reference}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {
            "class_type": "SaveImage",
            "inputs": {"images": ["2", 0], "filename_prefix": "live_in"},
        },
    }
    job = await comfy.run(graph, timeout=WAIT, front=True)
    data = await comfy.view(job.files[0].filename, subfolder=job.files[0].subfolder)
    assert Image.open(io.BytesIO(data)).size == (24, 16)
    assert inverted(data, fill)

    mask = io.BytesIO()
    Image.new("RGBA", (24, 16), (0, 0, 0, 0)).save(mask, format="PNG")
    masked = await comfy.upload_mask(
        mask.getvalue(), f"masked_{name}", stored, subfolder="comfy_mcp_live"
    )
    image = Image.open(
        io.BytesIO(await comfy.view(masked.name, subfolder=masked.subfolder, type="input"))
    )
    assert image.mode == "RGBA" and image.getpixel((0, 0))[3] == 0


async def test_users_settings_and_user_data(comfy: ComfyClient) -> None:
    config = await comfy.get_user_config()
    assert config["storage"] == "server"
    assert isinstance(await comfy.get_settings(), dict)
    folder = f"comfy_mcp_live_{uuid.uuid4().hex[:8]}"
    path = await comfy.store_user_data(f"{folder}/a.json", {"ok": True})
    assert path == f"{folder}/a.json"
    assert await comfy.get_user_data(f"{folder}/a.json") == b'{"ok": true}'
    assert await comfy.list_user_data(folder) == ["a.json"]
    with pytest.raises(ComfyHTTPError) as caught:
        await comfy.store_user_data(f"{folder}/a.json", b"x", overwrite=False)
    assert caught.value.status == 409
    assert await comfy.delete_user_data(f"{folder}/a.json") is True
    assert await comfy.get_user_data(f"{folder}/a.json") is None


async def test_discovery_routes(comfy: ComfyClient) -> None:
    stats = await comfy.get_system_stats()
    assert stats["system"]["comfyui_version"]
    assert len(await comfy.get_node_defs()) > 400
    assert "euler" in await comfy.get_samplers()
    assert "karras" in await comfy.get_schedulers()
    folders = {f.name for f in await comfy.get_model_folders()}
    assert {"checkpoints", "loras"} <= folders
    assert "configs" not in folders
    assert isinstance(await comfy.get_sd_models(), list)
    assert await comfy.view_metadata("checkpoints", "no-such-model.safetensors") is None
    assert "got prompt" in await comfy.get_logs() or (await comfy.get_raw_logs()).entries
    raw = await comfy.get_raw_logs()
    assert raw.rows and raw.cols
    assert await comfy.has_jobs_api() is (stats["system"]["comfyui_version"] != "0.3.64")


async def test_run_polling_without_a_websocket(comfy: ComfyClient) -> None:
    job = await comfy.run_polling(smoke(color()), timeout=WAIT, poll_interval=0.2, front=True)
    assert job.state is JobState.SUCCEEDED and job.files
    assert not comfy.events.running


async def test_displacement_by_another_socket_with_our_id_is_repaired() -> None:
    """The real server's behaviour behind §3.5: the newer socket takes the id; when it closes,
    ComfyUI's cleanup deregisters the id even though it is ours again."""
    async with ComfyClient(URL, check_interval=0.5, poll_interval=0.2) as comfy:
        await comfy.connect()
        intruder = await websockets.connect(comfy.ws_url(), max_queue=None, close_timeout=2)
        await intruder.recv()
        first = await comfy.run(smoke(color()), timeout=WAIT, front=True)
        assert first.state is JobState.SUCCEEDED and not first.ended_by_event
        with anyio.fail_after(30):
            while comfy.events.reconnects < 1:
                await anyio.sleep(0.05)
        await intruder.close()
        await anyio.sleep(0.5)
        # Our socket holds the id again, yet the intruder's close deregistered it: orphaned.
        second = await comfy.run(smoke(color()), timeout=WAIT, front=True)
        assert second.state is JobState.SUCCEEDED and not second.ended_by_event
        with anyio.fail_after(30):
            while comfy.events.reconnects < 2:
                await anyio.sleep(0.05)
        third = await comfy.run(smoke(color()), timeout=WAIT, front=True)
        assert third.state is JobState.SUCCEEDED and third.ended_by_event
