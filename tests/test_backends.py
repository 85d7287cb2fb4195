"""Several ComfyUI backends behind one MCP server, and several MCP replicas sharing them."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from comfy_mcp.server import build_server
from comfy_mcp.settings import Settings, SettingsError
from tests.fake_comfyui import FakeComfyUI, run_fake_comfyui
from tests.test_client import smoke_graph
from tests.test_mcp_contract import text_of

pytestmark = pytest.mark.anyio


def settings_for(fakes: dict[str, FakeComfyUI], **overrides: Any) -> Settings:
    urls = ",".join(f"{name}={fake.url}" for name, fake in fakes.items())
    return Settings.from_env({"COMFYUI_URLS": urls}, wait_timeout=20.0, **overrides)


@contextlib.asynccontextmanager
async def fakes(*names: str) -> AsyncIterator[tuple[dict[str, FakeComfyUI], dict[str, Any]]]:
    """Start one fake per name; the second dict holds exit stacks to kill one mid-test."""
    stacks = {name: contextlib.AsyncExitStack() for name in names}
    started = {}
    try:
        for name in names:
            started[name] = await stacks[name].enter_async_context(run_fake_comfyui())
        yield started, stacks
    finally:
        for stack in stacks.values():
            await stack.aclose()


def test_backend_settings_parse_and_fail_clearly(tmp_path: Path) -> None:
    settings = Settings.from_env({"COMFYUI_URLS": "gpu1=http://a:8188, http://b.lan:9000"})
    assert [(b.name, b.url) for b in settings.backends()] == [
        ("gpu1", "http://a:8188"),
        ("b.lan-9000", "http://b.lan:9000"),
    ]
    with pytest.raises(SettingsError, match="used twice"):
        Settings.from_env({"COMFYUI_URLS": "x=http://a:1,x=http://b:2"})
    with pytest.raises(SettingsError, match=r"backend 'gpu2'.*http:// or https://"):
        Settings.from_env({"COMFYUI_URLS": "gpu2=ftp://a"})
    file = tmp_path / "backends.json"
    file.write_text(
        json.dumps(
            {"backends": [{"name": "one", "url": "https://one/comfy", "token": "s3cret-one"}]}
        )
    )
    (spec,) = Settings.from_env({"COMFY_MCP_BACKENDS_FILE": str(file)}).backends()
    assert spec.name == "one" and spec.auth.headers["Authorization"] == "Bearer s3cret-one"
    assert "s3cret-one" in Settings.from_env({"COMFY_MCP_BACKENDS_FILE": str(file)}).secrets()
    file.write_text("{not json")
    with pytest.raises(SettingsError, match="not valid JSON"):
        Settings.from_env({"COMFY_MCP_BACKENDS_FILE": str(file)})


async def test_jobs_go_to_the_shortest_queue_and_stay_pinned() -> None:
    async with fakes("a", "b") as (started, _):
        started["a"].node_delay = 0.3
        async with httpx.AsyncClient() as http:
            for color in range(3):  # someone keeps backend a busy
                await http.post(
                    f"{started['a'].url}/prompt",
                    json={"prompt": smoke_graph(color=color), "client_id": "busy"},
                )
        async with Client(build_server(settings_for(started))) as client:
            result = await client.call_tool("enqueue_workflow", {"workflow": "smoke"})
            report = result.structured_content
            assert report["status"] == "succeeded", text_of(result)
            assert report["backend"] == "b"
            assert "?backend=b" in report["outputs"][0]["resource_uri"]
            blob = await client.read_resource(report["outputs"][0]["resource_uri"])
            assert blob.contents[0].mime_type == "image/png"
            status = await client.call_tool("get_status", {"prompt_id": report["prompt_id"]})
            assert status.structured_content["backend"] == "b"
            named = await client.call_tool(
                "enqueue_workflow", {"workflow": "smoke", "backend": "a", "wait": False}
            )
            assert named.structured_content["backend"] == "a"
            bad = await client.call_tool("enqueue_workflow", {"workflow": "smoke", "backend": "c"})
            assert bad.is_error and "configured backends: a, b" in text_of(bad)


async def test_a_job_goes_where_its_model_is() -> None:
    async with fakes("a", "b") as (started, _):
        for fake in started.values():
            fake.models_loadable = True
        started["b"].models["checkpoints"] = [
            *started["b"].models["checkpoints"],
            "only-b.safetensors",
        ]
        async with Client(build_server(settings_for(started))) as client:
            listed = await client.call_tool("list_models", {})
            assert listed.structured_content["locations"]["only-b.safetensors"] == ["b"]
            assert listed.structured_content["locations"]["sd15-placeholder.safetensors"] == [
                "a",
                "b",
            ]
            result = await client.call_tool(
                "run_txt2img",
                {"checkpoint": "only-b.safetensors", "steps": 1, "width": 64, "height": 64},
            )
            assert result.structured_content["status"] == "succeeded", text_of(result)
            assert result.structured_content["backend"] == "b"


async def test_a_dead_backend_is_skipped_and_reported() -> None:
    async with fakes("a", "b", "c") as (started, stacks):
        async with Client(build_server(settings_for(started))) as client:
            started["b"].node_delay = 0.4
            pinned = await client.call_tool(
                "enqueue_workflow", {"workflow": "smoke", "backend": "b", "wait": False}
            )
            await stacks["b"].aclose()  # backend b dies with the job on it
            backends = (await client.call_tool("list_backends", {})).structured_content
            reach = {b["name"]: b["reachable"] for b in backends["backends"]}
            assert reach == {"a": True, "b": False, "c": True}
            for color in range(3):
                run = await client.call_tool(
                    "enqueue_workflow", {"workflow": "smoke", "params": {"color": color}}
                )
                assert run.structured_content["status"] == "succeeded", text_of(run)
                assert run.structured_content["backend"] in ("a", "c")
            models = (await client.call_tool("list_models", {})).structured_content
            assert set(models["unavailable"]) == {"b"}
            lost = await client.call_tool(
                "get_status", {"prompt_id": pinned.structured_content["prompt_id"]}
            )
            assert lost.is_error
            assert "runs on backend 'b', which cannot be reached" in text_of(lost)
            unknown = await client.call_tool("get_status", {"prompt_id": "never-submitted"})
            assert unknown.is_error and "unreachable now: b" in text_of(unknown)


async def test_two_replicas_answer_for_each_others_prompts() -> None:
    async with fakes("a", "b") as (started, _):
        started["a"].node_delay = started["b"].node_delay = 0.25
        settings = settings_for(started)
        async with (
            Client(build_server(settings)) as first,
            Client(build_server(settings)) as second,
        ):
            queued = await first.call_tool(
                "enqueue_workflow",
                {"workflow": "smoke", "params": {"width": 40, "color": 7}, "wait": False},
            )
            prompt_id = queued.structured_content["prompt_id"]
            doomed = await first.call_tool(
                "enqueue_workflow",
                {
                    "workflow": "smoke",
                    "backend": queued.structured_content["backend"],
                    "wait": False,
                },
            )
            stopped = await second.call_tool(
                "interrupt", {"prompt_id": doomed.structured_content["prompt_id"]}
            )
            assert stopped.structured_content["action"] in ("removed", "interrupted")
            with anyio.fail_after(15):
                while True:
                    status = await second.call_tool("get_status", {"prompt_id": prompt_id})
                    if status.structured_content["status"] == "succeeded":
                        break
                    await anyio.sleep(0.1)
            assert status.structured_content["backend"] == queued.structured_content["backend"]
            outputs = await second.call_tool("get_outputs", {"prompt_id": prompt_id})
            report = outputs.structured_content
            assert report["outputs"][0]["width"] == 40
            assert report["workflow"] == "smoke" and report["params"]["color"] == 7
