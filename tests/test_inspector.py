"""A real third-party client: the official MCP Inspector (``--cli`` mode) drives the installed
console script over stdio against the fake ComfyUI.

Our other tests use the Python SDK's own client, which shares code (and could share mistakes)
with the server side. The Inspector is the TypeScript SDK: if it lists, calls and reads
correctly, so do the clients built on it. It is installed pinned by ``scripts/install_inspector.sh``
(``.ci/run`` does that when ``npm`` is present); without Node or the install the test is skipped,
but a ``MCP_INSPECTOR_BIN`` that points nowhere fails it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.fake_comfyui import FakeComfyUI

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
INSTALLER = ROOT / "scripts" / "install_inspector.sh"


def inspector() -> str:
    """The ``mcp-inspector`` command, or skip with how to get it."""
    configured = os.environ.get("MCP_INSPECTOR_BIN")
    if configured:
        if not Path(configured).is_file():
            pytest.fail(f"MCP_INSPECTOR_BIN={configured} does not exist")
        return configured
    if shutil.which("node") is None:
        pytest.skip("node is not installed (the MCP Inspector is a Node.js program)")
    version = re.search(r"^VERSION=(\S+)$", INSTALLER.read_text(encoding="utf-8"), re.MULTILINE)
    assert version is not None
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    default_dir = Path(
        os.environ.get("MCP_INSPECTOR_DIR")
        or cache / "mcp-server-comfyui" / f"inspector-{version.group(1)}"
    )
    found = default_dir / "node_modules" / ".bin" / "mcp-inspector"
    if not found.is_file():
        pytest.skip("the MCP Inspector is not installed: run bash scripts/install_inspector.sh")
    return str(found)


def console_script() -> str:
    script = Path(sys.executable).parent / "mcp-server-comfyui"
    found = str(script) if script.exists() else shutil.which("mcp-server-comfyui")
    if not found:
        pytest.fail("the mcp-server-comfyui console script is not installed (pip install -e .)")
    return found


async def inspect(fake: FakeComfyUI, *arguments: str, expect_rc: int = 0) -> Any:
    """One Inspector CLI call: it spawns the server over stdio, runs one method, prints JSON."""
    argv = [inspector(), "--cli", "-e", f"COMFYUI_URL={fake.url}", console_script(), *arguments]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMFYUI_", "COMFY_MCP_"))}
    with anyio.fail_after(60):
        result = await anyio.run_process(argv, env=env, check=False)
    stdout, stderr = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == expect_rc, f"rc {result.returncode}\n{stdout}\n{stderr}"
    return json.loads(stdout)


async def test_inspector_lists_calls_and_reads_over_stdio(fake: FakeComfyUI) -> None:
    # --strict: the Inspector's schema portability checks (rc != 0 on findings).
    listed = await inspect(fake, "--method", "tools/list", "--strict")
    tools = {tool["name"]: tool for tool in listed["tools"]}
    assert {"enqueue_workflow", "get_status", "list_workflows", "run_smoke"} <= set(tools)
    smoke = tools["run_smoke"]["inputSchema"]
    assert smoke["properties"]["width"]["type"] == "integer"
    assert tools["list_models"]["annotations"]["readOnlyHint"] is True

    called = await inspect(
        fake,
        "--method",
        "tools/call",
        "--tool-name",
        "run_smoke",
        "--tool-arg",
        "width=32",
        "height=24",
        "color=255",
    )
    assert called["isError"] is False
    report = called["structuredContent"]
    assert report["status"] == "succeeded" and report["workflow"] == "smoke"
    assert (report["outputs"][0]["width"], report["outputs"][0]["height"]) == (32, 24)
    assert any(block["type"] == "image" for block in called["content"])

    generic = await inspect(
        fake,
        "--method",
        "tools/call",
        "--tool-name",
        "enqueue_workflow",
        "--tool-arg",
        "workflow=smoke",
        'params={"width": 16, "height": 16, "color": 1}',
    )
    assert generic["structuredContent"]["status"] == "succeeded"
    assert len(fake.posted_prompts) == 2

    read = await inspect(fake, "--method", "resources/read", "--uri", "comfy://workflows")
    [contents] = read["contents"]
    assert contents["uri"] == "comfy://workflows"
    names = {w["name"] for w in json.loads(contents["text"])["workflows"]}
    assert {"smoke", "txt2img"} <= names


async def test_inspector_sees_a_tool_error_as_an_error(fake: FakeComfyUI) -> None:
    # A bad argument is an MCP tool error (isError), which the Inspector exits 5 on.
    failed = await inspect(
        fake,
        "--method",
        "tools/call",
        "--tool-name",
        "enqueue_workflow",
        "--tool-arg",
        "workflow=smok",
        expect_rc=5,
    )
    assert failed["isError"] is True
    assert "did you mean 'smoke'" in failed["content"][0]["text"]
    assert fake.posted_prompts == []
