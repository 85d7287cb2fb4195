"""Following prompts: polling-only runs, prompt status, the newer /api/jobs routes, and taking
the client id back after another socket displaced ours."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
import websockets

from comfy_mcp.comfy import (
    AnyEvent,
    ComfyClient,
    ComfyTimeoutError,
    JobState,
    Progress,
)
from tests.fake_comfyui import FakeComfyUI, run_fake_comfyui
from tests.test_client import smoke_graph

pytestmark = pytest.mark.anyio


@pytest.fixture
async def fake_jobs_api() -> AsyncIterator[FakeComfyUI]:
    """A fake of a newer ComfyUI: it also serves /api/jobs."""
    async with run_fake_comfyui(jobs_api=True) as server:
        yield server


async def wait_for(predicate: Any, seconds: float = 10) -> None:
    with anyio.fail_after(seconds):
        while not predicate():
            await anyio.sleep(0.02)


def requests_to(fake: FakeComfyUI, path: str, method: str = "GET") -> int:
    return sum(1 for r in fake.requests if r["path"] == path and r["method"] == method)


# -- polling ---------------------------------------------------------------------------------


async def test_run_polling_never_opens_the_websocket(fake: FakeComfyUI) -> None:
    fake.node_delay = 0.05
    async with ComfyClient(fake.url, poll_interval=10) as comfy:
        seen: list[JobState] = []
        job = await comfy.run_polling(
            smoke_graph(color=601),
            timeout=10,
            poll_interval=0.05,
            on_progress=lambda p: seen.append(p.state),
        )
        assert job.state is JobState.SUCCEEDED and job.files
        assert not comfy.events.running
    assert requests_to(fake, "/ws", "WEBSOCKET") == 0
    assert seen[-1] is JobState.SUCCEEDED


async def test_wait_with_poll_interval_finishes_even_on_a_silent_socket(fake: FakeComfyUI) -> None:
    async with ComfyClient(fake.url, check_interval=60) as comfy:
        await comfy.connect()
        fake.faults.ws_silent = True
        job = await comfy.submit(smoke_graph(color=602))
        with anyio.fail_after(5):
            await comfy.wait(job, timeout=30, poll_interval=0.1)
        assert job.state is JobState.SUCCEEDED


async def test_timeout_error_names_the_prompt_to_resume(fake: FakeComfyUI) -> None:
    fake.node_delay = 0.5
    async with ComfyClient(fake.url) as comfy:
        with pytest.raises(ComfyTimeoutError) as caught:
            await comfy.run(smoke_graph(color=603), timeout=0.2)
        prompt_id = caught.value.prompt_id
        assert prompt_id is not None
        fake.node_delay = 0
        job = await comfy.wait(prompt_id, timeout=10)
        assert job.state is JobState.SUCCEEDED


# -- status ----------------------------------------------------------------------------------


async def test_prompt_status_of_queued_running_finished_and_unknown(fake: FakeComfyUI) -> None:
    fake.node_delay = 0.3
    async with ComfyClient(fake.url) as comfy:
        first = await comfy.submit(smoke_graph(color=611))
        second = await comfy.submit(smoke_graph(color=612))
        await wait_for(lambda: fake.queue_running)
        running = await comfy.get_prompt_status(first.prompt_id)
        queued = await comfy.get_prompt_status(second.prompt_id)
        assert running.state is JobState.RUNNING and running.queue_position == 0
        assert queued.state is JobState.QUEUED and queued.queue_position == 1
        assert running is not first and comfy.jobs.get(first.prompt_id) is first
        fake.node_delay = 0
        await comfy.wait(second, timeout=10)
        done = await comfy.get_prompt_status(second.prompt_id)
        assert done.state is JobState.SUCCEEDED and done.files
        lost = await comfy.get_prompt_status("no-such-prompt")
        assert lost.state is JobState.LOST
        assert comfy.jobs.get("no-such-prompt") is None


async def test_on_progress_and_once(fake: FakeComfyUI) -> None:
    fake.node_delay = 0.05
    async with ComfyClient(fake.url) as comfy:
        job = await comfy.submit(smoke_graph(color=613))
        updates: list[Progress] = []
        remove = comfy.on_progress(updates.append, job.prompt_id)
        firsts: list[AnyEvent] = []
        comfy.once("executing", firsts.append, prompt_id=job.prompt_id)
        await comfy.wait(job, timeout=10)
        remove()
    assert len(firsts) == 1
    assert {u.prompt_id for u in updates} == {job.prompt_id}
    assert any(u.state is JobState.RUNNING and u.node for u in updates)
    assert updates[-1].state is JobState.SUCCEEDED


# -- the newer /api/jobs routes ----------------------------------------------------------------


async def test_classic_server_is_probed_once_and_classic_routes_are_used(
    fake: FakeComfyUI,
) -> None:
    async with ComfyClient(fake.url) as comfy:
        job = await comfy.run(smoke_graph(color=621), timeout=10)
        for _ in range(3):
            assert (await comfy.get_prompt_status(job.prompt_id)).state is JobState.SUCCEEDED
        assert await comfy.has_jobs_api() is False
    assert requests_to(fake, "/api/jobs") == 1
    assert requests_to(fake, f"/history/{job.prompt_id}") >= 3


async def test_non_json_jobs_route_means_absent() -> None:
    """A proxy or SPA answering 200 HTML for unknown paths is not a job API."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<!doctype html><html></html>")

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http,
        ComfyClient("http://spa.example", http_client=http) as comfy,
    ):
        assert await comfy.has_jobs_api() is False


async def test_jobs_api_gives_status_without_queue_or_history_requests(
    fake_jobs_api: FakeComfyUI,
) -> None:
    fake = fake_jobs_api
    fake.node_delay = 0.3
    async with ComfyClient(fake.url, check_interval=60) as comfy:
        assert await comfy.has_jobs_api() is True
        first = await comfy.submit(smoke_graph(color=631))
        second = await comfy.submit(smoke_graph(color=632))
        await wait_for(lambda: fake.queue_running)
        queue_reads = requests_to(fake, "/queue")
        assert (await comfy.get_prompt_status(first.prompt_id)).state is JobState.RUNNING
        assert (await comfy.get_prompt_status(second.prompt_id)).state is JobState.QUEUED
        assert (await comfy.get_prompt_status("nope")).state is JobState.LOST  # classic fallback
        assert requests_to(fake, "/queue") == queue_reads + 1  # only for the unknown id
        fake.node_delay = 0
        await comfy.wait(second, timeout=10)
        status = await comfy.get_prompt_status(second.prompt_id)
        assert status.state is JobState.SUCCEEDED and status.files == second.files
    assert requests_to(fake, "/api/jobs") == 1
    assert requests_to(fake, f"/api/jobs/{first.prompt_id}") == 1


async def test_jobs_api_cancel_of_pending_and_running_prompts(fake_jobs_api: FakeComfyUI) -> None:
    fake = fake_jobs_api
    fake.node_delay = 0.3
    async with ComfyClient(fake.url) as comfy:
        running = await comfy.submit(smoke_graph(color=641))
        pending = await comfy.submit(smoke_graph(color=642))
        await wait_for(lambda: running.state is JobState.RUNNING)
        assert await comfy.cancel(pending.prompt_id) == "removed"
        assert pending.state is JobState.CANCELLED
        status = await comfy.get_prompt_status(pending.prompt_id)
        assert status.state is JobState.CANCELLED  # the API's "cancelled" status
        assert await comfy.cancel(running.prompt_id) == "interrupted"
        await comfy.wait(running, timeout=10)
        assert running.state is JobState.INTERRUPTED  # it had started: interrupted, not cancelled
        assert await comfy.cancel(running.prompt_id) == "finished"
        assert await comfy.cancel("nope") == "unknown"
    assert fake.jobs_api_cancels == [pending.prompt_id, running.prompt_id]
    assert fake.interrupt_calls == []  # no classic interrupt was needed
    assert not any(r["path"] == "/queue" and r["method"] == "POST" for r in fake.requests)


async def test_jobs_api_is_probed_again_after_a_reconnect(fake_jobs_api: FakeComfyUI) -> None:
    fake = fake_jobs_api
    async with ComfyClient(fake.url) as comfy:
        await comfy.connect()
        assert await comfy.has_jobs_api()
        assert await comfy.has_jobs_api()
        assert requests_to(fake, "/api/jobs") == 1
        await fake.drop_websockets()
        await wait_for(lambda: comfy.events.reconnects >= 1)
        await wait_for(lambda: comfy._jobs_api is None or requests_to(fake, "/api/jobs") == 2)
        assert await comfy.has_jobs_api()
        assert requests_to(fake, "/api/jobs") == 2


# -- displacement --------------------------------------------------------------------------------


async def test_displaced_socket_is_taken_back_and_gets_events_again(fake: FakeComfyUI) -> None:
    """Another socket with our client id takes our events (ComfyUI keeps one socket per id) and,
    when it closes, deregisters the id altogether. Our jobs must still complete, and the client
    must notice and reconnect so that later prompts are followed over the websocket again."""
    fake.node_delay = 0.05
    async with ComfyClient(fake.url, check_interval=0.3, poll_interval=0.1) as comfy:
        await comfy.connect()
        ws_ends: list[str | None] = []
        comfy.on("execution_success", lambda e: ws_ends.append(getattr(e, "prompt_id", None)))
        intruder = await websockets.connect(
            comfy.endpoint.ws_url(comfy.client_id), max_queue=None, close_timeout=1
        )
        await intruder.recv()
        first = await comfy.run(smoke_graph(color=651), timeout=10)
        assert first.state is JobState.SUCCEEDED and not first.ended_by_event
        await wait_for(lambda: comfy.events.reconnects == 1)  # took the id back
        assert comfy.displacement_reconnects == 1

        # The intruder leaves; ComfyUI's cleanup pops the id, which is ours by now.
        await intruder.close()
        await wait_for(lambda: comfy.client_id not in fake.connected_client_ids)
        second = await comfy.run(smoke_graph(color=652), timeout=10)
        assert second.state is JobState.SUCCEEDED and not second.ended_by_event
        await wait_for(lambda: comfy.events.reconnects == 2)
        assert comfy.displacement_reconnects == 2

        third = await comfy.run(smoke_graph(color=653), timeout=10)
        assert third.state is JobState.SUCCEEDED and third.ended_by_event
        assert ws_ends == [third.prompt_id]
        assert comfy.client_id in fake.connected_client_ids


async def test_long_silence_while_our_prompt_runs_triggers_a_reconnect(fake: FakeComfyUI) -> None:
    fake.node_delay = 0.3
    async with ComfyClient(fake.url, check_interval=0.2) as comfy:
        await comfy.connect()
        fake.hub.sockets.pop(comfy.client_id)  # as if another socket had taken and dropped it
        job = await comfy.submit(smoke_graph(color=661))
        await comfy.wait(job, timeout=10)
        assert job.state is JobState.SUCCEEDED
        assert comfy.displacement_reconnects >= 1
        again = await comfy.run(smoke_graph(color=662), timeout=10)
        assert again.ended_by_event


# -- budgets, lifecycle, interrupts ------------------------------------------------------------


async def test_run_budget_starts_when_the_prompt_runs_not_when_it_is_queued(
    fake: FakeComfyUI,
) -> None:
    fake.node_delay = 0.25
    async with ComfyClient(fake.url) as comfy:
        await comfy.submit(smoke_graph(color=671))  # ~0.75 s in front of ours
        job = await comfy.submit(smoke_graph(color=672))
        await comfy.wait(job, timeout=10, run_timeout=0.3)
        assert job.state is JobState.RUNNING and job.started_at is not None  # stopped waiting
        queued_for = job.started_at - (job.accepted_at or 0)
        assert queued_for > 0.4  # the queue time did not count against the run budget
        await comfy.wait(job, timeout=10)
        assert job.state is JobState.SUCCEEDED


async def test_refresh_settles_over_http_and_reports_lost(fake: FakeComfyUI) -> None:
    async with ComfyClient(fake.url, use_websocket=False) as comfy:
        receipt = await comfy.queue_prompt(smoke_graph(color=673))
        await wait_for(lambda: receipt.prompt_id in fake.history)
        job = await comfy.refresh(receipt.prompt_id)
        assert job.state is JobState.SUCCEEDED and comfy.jobs.get(receipt.prompt_id) is job
        assert (await comfy.refresh("gone")).state is JobState.LOST


async def test_targeted_interrupt_ignores_other_ids_and_global_interrupt_stops_anything(
    fake: FakeComfyUI,
) -> None:
    fake.node_delay = 0.2
    async with ComfyClient(fake.url) as comfy, ComfyClient(fake.url) as other:
        theirs = await other.submit(smoke_graph(color=674))
        await wait_for(lambda: theirs.state is JobState.RUNNING)
        await comfy.interrupt("not-running")  # ComfyUI ignores it
        await other.wait(theirs, timeout=10)
        assert theirs.state is JobState.SUCCEEDED
        again = await other.submit(smoke_graph(color=675))
        await wait_for(lambda: again.state is JobState.RUNNING)
        await comfy.interrupt_all()  # not ours, stopped anyway: hence opt-in only
        await other.wait(again, timeout=10)
        assert again.state is JobState.INTERRUPTED
    assert fake.interrupt_calls == ["not-running", None]


async def test_disconnect_keeps_rest_and_polls_jobs_and_aclose_is_final(fake: FakeComfyUI) -> None:
    from comfy_mcp.comfy import ClientClosedError

    comfy = ComfyClient(fake.url, poll_interval=0.05, use_websocket=True)
    await comfy.connect()
    await comfy.disconnect()
    assert not comfy.events.running
    comfy.use_websocket = False  # keep it closed: follow by polling
    job = await comfy.run(smoke_graph(color=676), timeout=10)
    assert job.state is JobState.SUCCEEDED and not job.ended_by_event
    await comfy.aclose()
    await comfy.aclose()  # idempotent
    with pytest.raises(ClientClosedError):
        await comfy.get_queue()


async def test_reconnects_give_up_after_the_configured_attempts(fake: FakeComfyUI) -> None:
    async with ComfyClient(fake.url, ws_max_attempts=2, ws_max_backoff=0.05) as comfy:
        await comfy.connect()
        fake.faults.reject_ws_status = 500
        await fake.drop_websockets()
        await wait_for(lambda: not comfy.events.running)
        assert not comfy.events.connected.is_set()
        fake.faults.reject_ws_status = None
        job = await comfy.run(smoke_graph(color=677), timeout=10)  # reopens the socket
        assert job.ended_by_event and comfy.events.running


async def test_forget_jobs_api_probes_again(fake_jobs_api: FakeComfyUI) -> None:
    async with ComfyClient(fake_jobs_api.url) as comfy:
        assert await comfy.has_jobs_api()
        comfy.forget_jobs_api()
        assert await comfy.has_jobs_api()
    assert requests_to(fake_jobs_api, "/api/jobs") == 2


async def test_adopted_prompt_of_another_client_is_no_sign_of_displacement(
    fake: FakeComfyUI,
) -> None:
    """Another client's prompt never reaches our socket: its end over HTTP is expected."""
    fake.node_delay = 0.1
    async with (
        ComfyClient(fake.url, check_interval=0.2) as comfy,
        ComfyClient(fake.url) as other,
    ):
        await comfy.connect()
        theirs = await other.submit(smoke_graph(color=681))
        job = await comfy.wait(theirs.prompt_id, timeout=10)
        assert job.state is JobState.SUCCEEDED and not job.ended_by_event
        await anyio.sleep(0.4)
        assert comfy.displacement_reconnects == 0
