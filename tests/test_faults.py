"""Jobs survive faults: dropped sockets, restarts, hung or broken servers, a stolen client id."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
import websockets

from comfy_mcp.comfy import (
    ComfyAuthError,
    ComfyClient,
    ComfyProtocolError,
    ComfyTimeoutError,
    JobState,
)
from tests.fake_comfyui import FakeComfyUI
from tests.test_client import smoke_graph

pytestmark = pytest.mark.anyio


async def wait_running(job: Any) -> None:
    with anyio.fail_after(10):
        while job.state is not JobState.RUNNING:
            await anyio.sleep(0.02)


async def test_dropped_websocket_mid_job_reconnects_and_completes(fake: FakeComfyUI) -> None:
    fake.node_delay = 0.3
    async with ComfyClient(fake.url, check_interval=30) as comfy:
        job = await comfy.submit(smoke_graph(color=501))
        await wait_running(job)
        await fake.drop_websockets()
        await comfy.wait(job, timeout=15)
        assert job.state is JobState.SUCCEEDED
        assert job.files and job.files[0].filename.startswith("t_")
        assert comfy.events.reconnects >= 1
        assert comfy.client_id in fake.connected_client_ids


async def test_restart_mid_job_reports_lost_without_hanging(fake: FakeComfyUI) -> None:
    fake.node_delay = 0.5
    async with ComfyClient(fake.url, poll_interval=0.2, check_interval=0.5) as comfy:
        job = await comfy.submit(smoke_graph(color=502))
        await wait_running(job)
        await fake.restart()
        with anyio.fail_after(10):
            await comfy.wait(job, timeout=8)
        assert job.state is JobState.LOST


async def test_hung_server_times_out_with_a_clear_message(fake: FakeComfyUI) -> None:
    fake.faults.hang_http = True
    async with ComfyClient(fake.url, timeout=0.5) as comfy:
        with (
            anyio.fail_after(10),
            pytest.raises(ComfyTimeoutError, match=r"GET .*/queue timed out"),
        ):
            await comfy.get_queue()
    fake.faults.hang_http = False


async def test_get_is_retried_on_500(fake: FakeComfyUI) -> None:
    fake.faults.http_errors["/queue"] = 2
    async with ComfyClient(fake.url) as comfy:
        queue = await comfy.get_queue()
    assert queue.running == []
    assert [r["path"] for r in fake.requests if r["method"] == "GET"].count("/queue") == 3


async def test_post_prompt_is_never_retried_on_500(fake: FakeComfyUI) -> None:
    fake.faults.http_errors["/prompt"] = 1
    async with ComfyClient(fake.url) as comfy:
        with pytest.raises(Exception, match="HTTP 500"):
            await comfy.submit(smoke_graph(color=503))
    posts = [r for r in fake.requests if r["method"] == "POST" and r["path"] == "/prompt"]
    assert len(posts) == 1


async def test_malformed_json_is_a_protocol_error(fake: FakeComfyUI) -> None:
    fake.faults.malformed_json.add("/system_stats")
    async with ComfyClient(fake.url) as comfy:
        with pytest.raises(ComfyProtocolError, match="malformed JSON"):
            await comfy.get_system_stats()


async def test_polling_mode_without_websocket(fake: FakeComfyUI) -> None:
    async with ComfyClient(fake.url, use_websocket=False, poll_interval=0.05) as comfy:
        job = await comfy.run(smoke_graph(color=504), timeout=10)
        assert job.state is JobState.SUCCEEDED
        assert not comfy.events.running
    assert fake.connected_client_ids == []


async def test_websocket_refused_falls_back_to_polling(fake: FakeComfyUI) -> None:
    fake.faults.reject_ws_status = 404
    async with ComfyClient(fake.url, poll_interval=0.05) as comfy:
        job = await comfy.run(smoke_graph(color=505), timeout=10)
    assert job.state is JobState.SUCCEEDED


async def test_websocket_auth_refusal_is_an_auth_error(fake: FakeComfyUI) -> None:
    fake.faults.reject_ws_status = 403
    async with ComfyClient(fake.url) as comfy:
        with pytest.raises(ComfyAuthError, match="403"):
            await comfy.submit(smoke_graph(color=506))


async def test_silent_socket_is_covered_by_http_checks(fake: FakeComfyUI) -> None:
    async with ComfyClient(fake.url, check_interval=0.3) as comfy:
        await comfy.connect()
        fake.faults.ws_silent = True
        job = await comfy.run(smoke_graph(color=507), timeout=10)
    assert job.state is JobState.SUCCEEDED


async def test_another_client_taking_our_id_does_not_hang_our_jobs(fake: FakeComfyUI) -> None:
    fake.node_delay = 0.2
    async with ComfyClient(fake.url, check_interval=0.5) as comfy:
        job = await comfy.submit(smoke_graph(color=508))
        ws_url = comfy.endpoint.ws_url(comfy.client_id)
        async with websockets.connect(ws_url) as intruder:
            await intruder.recv()
            await comfy.wait(job, timeout=10)
        assert job.state is JobState.SUCCEEDED


async def test_auth_profile_reaches_http_websocket_and_view(fake: FakeComfyUI) -> None:
    from comfy_mcp.comfy import Auth

    fake.faults.require_headers = {"Authorization": "Bearer sekret"}
    fake.faults.require_query = {"token": "q1"}
    auth = Auth(headers={"Authorization": "Bearer sekret"}, query={"token": "q1"})
    async with ComfyClient(fake.url, auth=auth) as comfy:
        job = await comfy.run(smoke_graph(color=509), timeout=10)
        data = await comfy.view(job.files[0].filename)
        assert data.startswith(b"\x89PNG")
    async with ComfyClient(fake.url) as anonymous:
        with pytest.raises(ComfyAuthError) as caught:
            await anonymous.get_queue()
    assert "sekret" not in str(caught.value)
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{fake.url}/queue")).status_code == 401
