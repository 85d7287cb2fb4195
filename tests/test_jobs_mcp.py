"""Job lifecycle through MCP: cancel on abort, waiting again, the queue tools, load and soak."""

from __future__ import annotations

import gc
import os
from typing import Any

import anyio
import pytest
from mcp import Client

from comfy_mcp.comfy import ComfyClient, Job, JobState
from comfy_mcp.server import build_server
from tests.fake_comfyui import FakeComfyUI
from tests.test_client import smoke_graph
from tests.test_mcp_contract import settings_for, text_of

pytestmark = pytest.mark.anyio


async def status_of(client: Client, prompt_id: str) -> str:
    result = await client.call_tool("get_status", {"prompt_id": prompt_id})
    return str(result.structured_content["status"])


async def wait_status(client: Client, prompt_id: str, wanted: set[str]) -> str:
    with anyio.fail_after(15):
        while (status := await status_of(client, prompt_id)) not in wanted:
            await anyio.sleep(0.05)
    return status


async def call_then_abort(client: Client, fake: FakeComfyUI) -> str:
    """Start a waiting enqueue_workflow, and cancel the call once the prompt is posted and
    running (not on a timer, which a loaded machine can outrun)."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.call_tool, "enqueue_workflow", {"workflow": "smoke"})
        with anyio.fail_after(15):
            while not fake.queue_running:
                await anyio.sleep(0.02)
        tg.cancel_scope.cancel()
    return str(fake.posted_prompts[0]["prompt_id"])


async def test_cancelling_a_waiting_call_cancels_the_prompt(fake: FakeComfyUI) -> None:
    fake.node_delay = 1.0  # three nodes: time enough for the cancel to land on a loaded machine
    async with Client(build_server(settings_for(fake.url))) as client:
        prompt_id = await call_then_abort(client, fake)
        status = await wait_status(client, prompt_id, {"interrupted", "cancelled", "succeeded"})
        assert status == "interrupted"
        assert fake.interrupt_calls == [prompt_id]


async def test_cancel_on_abort_can_be_turned_off(fake: FakeComfyUI) -> None:
    fake.node_delay = 0.3
    settings = settings_for(fake.url, cancel_on_abort=False)
    async with Client(build_server(settings)) as client:
        prompt_id = await call_then_abort(client, fake)
        assert await wait_status(client, prompt_id, {"succeeded", "interrupted"}) == "succeeded"
    assert fake.interrupt_calls == []


async def test_wait_for_job_picks_up_a_running_prompt(fake: FakeComfyUI) -> None:
    fake.node_delay = 0.3
    seen: list[str | None] = []

    async def on_progress(_: float, __: float | None, message: str | None) -> None:
        seen.append(message)

    async with Client(build_server(settings_for(fake.url))) as client:
        early = await client.call_tool("enqueue_workflow", {"workflow": "smoke", "timeout_s": 0.2})
        prompt_id = early.structured_content["prompt_id"]
        assert early.structured_content["status"] in ("queued", "running")
        done = await client.call_tool(
            "wait_for_job", {"prompt_id": prompt_id}, progress_callback=on_progress
        )
        assert done.structured_content["status"] == "succeeded", text_of(done)
        assert done.structured_content["outputs"]
        assert any(b.type == "image" for b in done.content)
    assert seen


async def test_queue_tools_tell_ours_apart_and_leave_others_alone(fake: FakeComfyUI) -> None:
    fake.node_delay = 0.3
    import httpx

    async with Client(build_server(settings_for(fake.url))) as client:
        mine = [
            (
                await client.call_tool("enqueue_workflow", {"workflow": "smoke", "wait": False})
            ).structured_content["prompt_id"]
            for _ in range(3)
        ]
        async with httpx.AsyncClient() as http:
            theirs = (
                await http.post(
                    f"{fake.url}/prompt", json={"prompt": smoke_graph(color=9), "client_id": "x"}
                )
            ).json()["prompt_id"]
        queue = (await client.call_tool("get_queue", {})).structured_content
        entries = {e["prompt_id"]: e for e in queue["running"] + queue["pending"]}
        assert all(entries[pid]["ours"] for pid in mine)
        assert entries[theirs]["ours"] is False
        assert [e["position"] for e in queue["pending"]] == list(
            range(1, len(queue["pending"]) + 1)
        )

        cancelled = (await client.call_tool("cancel_all_queued", {})).structured_content
        assert set(cancelled["removed"]) == set(mine[1:])
        assert theirs not in cancelled["removed"]
        fake.node_delay = 0
        assert await wait_status(client, theirs, {"succeeded"}) == "succeeded"
        assert await status_of(client, mine[1]) in ("cancelled", "lost")


async def test_queue_resource(fake: FakeComfyUI) -> None:
    import json

    async with Client(build_server(settings_for(fake.url))) as client:
        queue = json.loads((await client.read_resource("comfy://queue")).contents[0].text)
    assert queue["running"] == [] and queue["pending"] == []


async def test_200_jobs_from_several_sessions_share_one_websocket(fake: FakeComfyUI) -> None:
    server = build_server(settings_for(fake.url, wait_timeout=120.0))
    reports: dict[int, Any] = {}

    async def session(first: int) -> None:
        async with Client(server) as client, anyio.create_task_group() as tg:
            for n in range(first, first + 50):
                tg.start_soon(one, client, n)

    async def one(client: Client, n: int) -> None:
        result = await client.call_tool(
            "enqueue_workflow",
            {"workflow": "smoke", "params": {"width": 8 + n % 32, "color": n}, "preview": False},
        )
        reports[n] = result.structured_content

    async with anyio.create_task_group() as tg:
        for first in range(0, 200, 50):
            tg.start_soon(session, first)
    assert len(reports) == 200
    for n, report in reports.items():
        assert report["status"] == "succeeded", report["message"]
        assert report["params"]["color"] == n
        assert report["outputs"][0]["width"] == 8 + n % 32
    handshakes = [r for r in fake.requests if r["method"] == "WEBSOCKET"]
    assert len(handshakes) == 1, "the sessions must share one websocket"


def rss_bytes() -> int:
    """Resident memory of this process (Linux /proc; the soak test is skipped elsewhere)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
async def test_soak_2000_jobs_memory_stays_bounded(fake: FakeComfyUI) -> None:
    async with ComfyClient(fake.url, max_finished_jobs=100) as comfy:

        async def batch(start: int) -> None:
            async def one(n: int) -> None:
                job = await comfy.run(smoke_graph(color=n, width=4, height=4), timeout=60)
                assert job.state is JobState.SUCCEEDED

            async with anyio.create_task_group() as tg:
                for n in range(start, start + 100):
                    tg.start_soon(one, n)

        with anyio.fail_after(110):
            for start in range(0, 1000, 100):
                await batch(start)
            gc.collect()
            after_1000 = rss_bytes()
            for start in range(1000, 2000, 100):
                await batch(start)
            gc.collect()
            after_2000 = rss_bytes()
        live_jobs = sum(1 for o in gc.get_objects() if isinstance(o, Job))
        assert len(comfy.jobs) <= 100
        assert live_jobs <= 110, f"{live_jobs} Job objects still alive"
        # The fake's own history grows too (1000 entries, a few MB): the client must not add
        # more than a small constant on top.
        assert after_2000 - after_1000 < 16 * 1024 * 1024, (after_1000, after_2000)
