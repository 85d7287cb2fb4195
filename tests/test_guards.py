"""Guard rails: read-only mode and the tool allowlist / denylist, seen by an MCP client."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from comfy_mcp.cli import main
from comfy_mcp.server import build_server
from comfy_mcp.settings import Settings, SettingsError

pytestmark = pytest.mark.anyio

# Nothing is called on ComfyUI in these tests: listing tools needs no backend.
NO_COMFYUI = "http://127.0.0.1:9"


def settings_with(**overrides: Any) -> Settings:
    return Settings.from_env({}, comfyui_url=NO_COMFYUI, **overrides)


async def tools_of(settings: Settings) -> dict[str, Any]:
    async with Client(build_server(settings), raise_exceptions=True) as c:
        return {t.name: t for t in (await c.list_tools()).tools}


async def test_by_default_every_tool_is_there() -> None:
    tools = await tools_of(settings_with())
    assert {"enqueue_workflow", "interrupt", "free_memory", "upload_image", "run_smoke"} <= set(
        tools
    )


async def test_read_only_keeps_exactly_the_read_only_tools() -> None:
    everything = await tools_of(settings_with())
    tools = await tools_of(settings_with(read_only=True))
    expected = {n for n, t in everything.items() if t.annotations.read_only_hint is True}
    assert set(tools) == expected
    assert {"list_models", "list_workflows", "get_status", "get_outputs"} <= set(tools)
    assert not {"enqueue_workflow", "interrupt", "free_memory", "upload_image"} & set(tools)
    assert not any(name.startswith("run_") for name in tools)


async def test_a_removed_tool_cannot_be_called() -> None:
    async with Client(build_server(settings_with(read_only=True)), raise_exceptions=True) as c:
        result = await c.call_tool("free_memory", {})
    assert result.is_error
    assert "free_memory" in result.content[0].text


async def test_deny_removes_only_the_named_tools() -> None:
    everything = await tools_of(settings_with())
    tools = await tools_of(settings_with(tools_deny=("free_memory", "interrupt")))
    assert set(tools) == set(everything) - {"free_memory", "interrupt"}


async def test_allow_keeps_only_the_named_tools() -> None:
    tools = await tools_of(settings_with(tools_allow=("list_models", "run_smoke", "get_status")))
    assert set(tools) == {"list_models", "run_smoke", "get_status"}


async def test_allow_deny_and_read_only_combine() -> None:
    tools = await tools_of(
        settings_with(
            tools_allow=("list_models", "get_status", "enqueue_workflow"),
            tools_deny=("get_status",),
            read_only=True,
        )
    )
    assert set(tools) == {"list_models"}


def test_unknown_tool_names_are_a_startup_error_listing_the_real_ones() -> None:
    with pytest.raises(SettingsError) as denied:
        build_server(settings_with(tools_deny=("free_memry",)))
    message = str(denied.value)
    assert message.startswith("COMFY_MCP_TOOLS_DENY names unknown tools: free_memry.")
    assert "free_memory" in message and "enqueue_workflow" in message
    with pytest.raises(SettingsError, match="COMFY_MCP_TOOLS_ALLOW names unknown tools: nope"):
        build_server(settings_with(tools_allow=("list_models", "nope")))


def test_guard_lists_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "COMFY_MCP_TOOLS_DENY": "free_memory, interrupt,",
            "COMFY_MCP_TOOLS_ALLOW": "list_models",
            "COMFY_MCP_READ_ONLY": "true",
        }
    )
    assert settings.tools_deny == ("free_memory", "interrupt")
    assert settings.tools_allow == ("list_models",)
    assert settings.read_only is True
    with pytest.raises(SettingsError, match="COMFY_MCP_READ_ONLY"):
        Settings.from_env({"COMFY_MCP_READ_ONLY": "maybe"})


def test_cli_reports_an_unknown_tool_name_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COMFY_MCP_TOOLS_DENY", "free_memry")
    monkeypatch.setenv("COMFYUI_URL", NO_COMFYUI)
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "COMFY_MCP_TOOLS_DENY names unknown tools: free_memry" in err
    assert err.count("\n") == 1
