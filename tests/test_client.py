"""ComfyClient against the fake ComfyUI: routes, jobs, and the recorded quirks."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from PIL import Image

from comfy_mcp.comfy import (
    ComfyClient,
    ComfyConnectionError,
    ComfyNotFoundError,
    ExecutionInterruptedError,
    JobState,
    PromptRejectedError,
    raise_for_job,
)
from tests.conftest import fixture
from tests.fake_comfyui import FakeComfyUI

pytestmark = pytest.mark.anyio


def smoke_graph(
    color: int = 0x112233, width: int = 48, height: int = 32, prefix: str = "t"
) -> dict[str, Any]:
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": width, "height": height, "batch_size": 1, "color": color},
        },
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


@pytest.fixture
async def comfy(fake: FakeComfyUI) -> AsyncIterator[ComfyClient]:
    async with ComfyClient(fake.url, poll_interval=0.1, check_interval=0.5) as client:
        yield client


async def test_run_returns_outputs_from_history_and_real_png(comfy: ComfyClient) -> None:
    job = await comfy.run(smoke_graph(color=0x000000, width=40, height=30), timeout=10)
    assert job.state is JobState.SUCCEEDED
    (file,) = job.files
    assert file.filename == "t_00001_.png" and file.type == "output" and file.node_id == "3"
    data = await comfy.view(file.filename, subfolder=file.subfolder, type=file.type)
    image = Image.open(io.BytesIO(data))
    assert image.size == (40, 30)
    assert image.convert("RGB").getpixel((0, 0)) == (255, 255, 255)  # black, inverted


async def test_identical_prompt_is_reported_cached(comfy: ComfyClient) -> None:
    first = await comfy.run(smoke_graph(color=5), timeout=10)
    again = await comfy.run(smoke_graph(color=5), timeout=10)
    assert first.state is JobState.SUCCEEDED
    assert again.state is JobState.CACHED
    assert [f.filename for f in again.files] == [f.filename for f in first.files]


async def test_rejection_keeps_node_errors_whole(comfy: ComfyClient, fake: FakeComfyUI) -> None:
    graph = fixture("workflow_invalid_value_too_big")
    with pytest.raises(PromptRejectedError) as caught:
        await comfy.submit(graph)
    error = caught.value
    assert error.error_type == "prompt_outputs_failed_validation"
    ((node_id, entry),) = error.node_errors.items()
    assert entry["errors"][0]["type"] == "value_bigger_than_max"
    assert f"node {node_id} (EmptyImage), input 'width'" in str(error)
    assert comfy.jobs.get(fake.posted_prompts[-1].get("prompt_id", "")) is None


async def test_partial_accept_is_partial(comfy: ComfyClient) -> None:
    job = await comfy.run(fixture("workflow_partially_invalid"), timeout=10)
    assert job.state is JobState.PARTIAL
    assert job.receipt is not None and job.receipt.dropped_outputs


async def test_prompt_id_and_client_id_are_sent(comfy: ComfyClient, fake: FakeComfyUI) -> None:
    job = await comfy.submit(smoke_graph(color=77))
    body = fake.posted_prompts[-1]
    assert body["client_id"] == comfy.client_id
    assert body["prompt_id"] == job.prompt_id
    assert len(job.prompt_id) == 36 and job.prompt_id == job.prompt_id.lower()
    await comfy.wait(job, timeout=10)
    assert job.done


async def test_wait_times_out_with_the_job_still_running(fake: FakeComfyUI) -> None:
    fake.node_delay = 0.5
    async with ComfyClient(fake.url) as comfy:
        job = await comfy.submit(smoke_graph(color=99))
        start = anyio.current_time()
        await comfy.wait(job, timeout=0.3)
        assert anyio.current_time() - start < 1.5
        assert not job.done and job.state in (JobState.QUEUED, JobState.RUNNING)
        fake.node_delay = 0
        await comfy.wait(job, timeout=10)
        assert job.state is JobState.SUCCEEDED


async def test_interrupt_targets_only_our_running_prompt(fake: FakeComfyUI) -> None:
    fake.node_delay = 0.3
    async with ComfyClient(fake.url) as comfy:
        job = await comfy.submit(smoke_graph(color=1234))
        for _ in range(100):
            if job.state is JobState.RUNNING:
                break
            await anyio.sleep(0.02)
        assert await comfy.cancel(job.prompt_id) == "interrupted"
        await comfy.wait(job, timeout=10)
        assert job.state is JobState.INTERRUPTED
        assert fake.interrupt_calls == [job.prompt_id]
        with pytest.raises(ExecutionInterruptedError):
            raise_for_job(job, 10)


async def test_cancel_removes_a_queued_prompt(fake: FakeComfyUI) -> None:
    fake.node_delay = 0.3
    async with ComfyClient(fake.url) as comfy:
        running = await comfy.submit(smoke_graph(color=1))
        queued = await comfy.submit(smoke_graph(color=2))
        assert await comfy.cancel(queued.prompt_id) == "removed"
        assert queued.state is JobState.CANCELLED
        fake.node_delay = 0
        await comfy.wait(running, timeout=10)
        assert running.state is JobState.SUCCEEDED
        assert fake.interrupt_calls == []


async def test_history_paging_matches_comfyui(comfy: ComfyClient) -> None:
    ids = [(await comfy.run(smoke_graph(color=c), timeout=10)).prompt_id for c in (10, 11, 12, 13)]
    assert list(await comfy.get_history()) == ids
    assert list(await comfy.get_history(max_items=1)) == ids[-1:]
    assert list(await comfy.get_history(max_items=2, offset=1)) == ids[1:3]
    await comfy.delete_items("history", [ids[0]])
    assert await comfy.get_history_item(ids[0]) is None
    await comfy.clear_items("history")
    assert await comfy.get_history() == {}


async def test_queue_snapshot_and_remaining(fake: FakeComfyUI) -> None:
    fake.node_delay = 0.3
    async with ComfyClient(fake.url) as comfy:
        jobs = [await comfy.submit(smoke_graph(color=c)) for c in (21, 22, 23)]
        queue = await comfy.get_queue()
        assert queue.position(jobs[0].prompt_id) == 0
        assert [i.prompt_id for i in queue.pending] == [j.prompt_id for j in jobs[1:]]
        assert await comfy.get_queue_remaining() == 3
        await comfy.clear_items("queue")
        queue = await comfy.get_queue()
        assert queue.pending == [] and len(queue.running) == 1
        fake.node_delay = 0


async def test_models_discovery(comfy: ComfyClient) -> None:
    assert await comfy.get_models("checkpoints") == [
        "sd15-placeholder.safetensors",
        "sdxl-placeholder.safetensors",
    ]
    assert "style/anime-placeholder.safetensors" in await comfy.get_loras()
    with pytest.raises(ComfyNotFoundError, match=r"ComfyUI has: .*loras"):
        await comfy.get_models("no_such_folder")
    assert "checkpoints" in await comfy.get_model_types()
    assert "configs" not in await comfy.get_model_types()
    assert "euler" in await comfy.get_samplers()
    assert "karras" in await comfy.get_schedulers()
    defs = await comfy.get_node_defs()
    assert len(defs) == 478
    assert await comfy.get_node_defs("NoSuchNode") == {}
    assert (await comfy.get_features())["max_upload_size"] == 104857600
    assert (await comfy.get_system_stats())["system"]["comfyui_version"] == "0.3.64"


async def test_free_always_sends_a_body(comfy: ComfyClient, fake: FakeComfyUI) -> None:
    await comfy.free()
    await comfy.free(unload_models=True, free_memory=True)
    assert fake.free_calls == [
        {"unload_models": False, "free_memory": False},
        {"unload_models": True, "free_memory": True},
    ]


async def test_upload_uses_the_name_comfyui_returns(comfy: ComfyClient) -> None:
    def png(color: str) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", (4, 4), color).save(buffer, format="PNG")
        return buffer.getvalue()

    first = await comfy.upload_image(png("red"), "in.png")
    same = await comfy.upload_image(png("red"), "in.png")
    other = await comfy.upload_image(png("blue"), "in.png")
    assert first.name == "in.png" and same.name == "in.png"
    assert other.name == "in (1).png"
    nested = await comfy.upload_image(png("red"), "in.png", subfolder="sub")
    assert nested.reference == "sub/in.png"
    assert await comfy.view("in (1).png", type="input") == png("blue")


async def test_unreachable_server_is_an_error_not_an_empty_list() -> None:
    async with ComfyClient("http://127.0.0.1:9", timeout=2) as comfy:
        with pytest.raises(
            ComfyConnectionError, match=r"cannot reach ComfyUI at http://127\.0\.0\.1:9"
        ):
            await comfy.get_queue()
        with pytest.raises(ComfyConnectionError):
            await comfy.submit(smoke_graph())


async def test_events_iterator_and_callbacks(comfy: ComfyClient) -> None:
    seen: list[str] = []
    unsubscribe = comfy.on("executing", lambda e: seen.append(getattr(e, "node", None) or "end"))
    job = await comfy.run(smoke_graph(color=31337), timeout=10)
    unsubscribe()
    assert seen == ["1", "2", "3", "end"]
    events = []

    async def collect() -> None:
        async for event in comfy.iter_events(prompt_id=job2.prompt_id):
            events.append(event.type)
            if event.type == "execution_success":
                return

    job2 = await comfy.submit(smoke_graph(color=4242))
    with anyio.fail_after(10):
        await collect()
    assert events[0] in ("execution_start", "execution_cached")
    assert "executed" in events
    assert job.state is JobState.SUCCEEDED


async def test_many_concurrent_jobs_get_their_own_outputs(comfy: ComfyClient) -> None:
    results: dict[int, Any] = {}

    async def one(color: int) -> None:
        results[color] = await comfy.run(smoke_graph(color=color, prefix=f"c{color}"), timeout=30)

    async with anyio.create_task_group() as tg:
        for color in range(50):
            tg.start_soon(one, color)
    assert len(results) == 50
    for color, job in results.items():
        assert job.state is JobState.SUCCEEDED
        assert job.files[0].filename.startswith(f"c{color}_")
