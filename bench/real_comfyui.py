"""Measure 6: the model-free ``smoke`` template end to end against a real ComfyUI.

Skipped unless ``COMFYUI_URL`` (or ``--comfyui-url``) names a running ComfyUI. The console script
runs as a stdio subprocess; an MCP client (``mode="legacy"``) calls
``enqueue_workflow(workflow="smoke", params={...})`` with a new colour each time, with and without
inline previews, alternating in random order with the floor client running the same filled graph.
added = wall time − ComfyUI's own execution time (``execution_success`` − ``execution_start``
from the history entry).
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from mcp import Client, StdioServerParameters

from bench.common import (
    ROOT,
    FloorClient,
    Graph,
    Result,
    arguments,
    console_script,
    emit,
    execution_seconds,
    fetch_history,
    ms,
    server_env,
    summary,
    unique_color,
)

SIDE = 512  # the template's default size


def smoke_graph(color: int) -> Graph:
    """The bundled template's graph with ``color`` set, as the tool would fill it."""
    template = json.loads((ROOT / "workflows" / "smoke.json").read_text(encoding="utf-8"))
    graph: Graph = copy.deepcopy(template["graph"])
    graph["1"]["inputs"].update(width=SIDE, height=SIDE, color=color)
    return graph


async def measure(url: str, rounds: int) -> tuple[list[dict[str, Any]], dict[str, float]]:
    params = StdioServerParameters(command=console_script(), env=server_env(url))
    async with (
        FloorClient(url) as floor,
        Client(params, mode="legacy") as client,
        httpx.AsyncClient(timeout=60, trust_env=False) as http,
    ):

        async def tool(preview: bool) -> tuple[float, dict[str, Any]]:
            arguments = {
                "workflow": "smoke",
                "params": {"color": unique_color(), "width": SIDE, "height": SIDE},
                "preview": preview,
            }
            started = time.perf_counter()
            result = await client.call_tool("enqueue_workflow", arguments)
            wall = time.perf_counter() - started
            content = result.structured_content
            if result.is_error or content is None or content["status"] != "succeeded":
                raise RuntimeError(f"enqueue_workflow failed: {result.content}")
            return wall, await fetch_history(http, url, content["prompt_id"])

        variants: dict[str, Callable[[], Awaitable[tuple[float, dict[str, Any]]]]] = {
            "floor (same graph)": lambda: floor.run(smoke_graph(unique_color())),
            "mcp stdio, smoke template": lambda: tool(True),
            "mcp stdio, smoke template, no preview": lambda: tool(False),
        }
        for run in variants.values():  # warm-up: first prompt, object_info, Pillow
            await run()
        added: dict[str, list[float]] = {name: [] for name in variants}
        walls: dict[str, list[float]] = {name: [] for name in variants}
        execs: list[float] = []
        for _ in range(rounds):
            order = list(variants)
            random.shuffle(order)
            for name in order:
                wall, entry = await variants[name]()
                took = execution_seconds(entry)
                execs.append(ms(took))
                walls[name].append(ms(wall))
                added[name].append(ms(wall - took))
    floor_median = summary(added["floor (same graph)"])["median"]
    rows, medians = [], {}
    for name, values in added.items():
        s = summary(values)
        medians[name] = s["median"]
        rows.append(
            {
                "client": name,
                "runs": s["n"],
                "wall median ms": summary(walls[name])["median"],
                "added median ms": s["median"],
                "added p99 ms": s["p99"],
                "added max ms": s["max"],
                "median − floor ms": round(s["median"] - floor_median, 2),
            }
        )
    medians["exec"] = summary(execs)["median"]
    return rows, medians


async def main() -> None:
    args = arguments(__doc__ or "")
    result = Result("real_comfyui", "6. Against a real ComfyUI: the smoke template end to end")
    if not args.comfyui_url:
        result.notes.append("COMFYUI_URL not set: skipped.")
        emit(result, args.out)
        return
    async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
        stats = (await http.get(f"{args.comfyui_url.rstrip('/')}/system_stats")).json()
    version = stats.get("system", {}).get("comfyui_version", "?")
    devices = ", ".join(str(d.get("type")) for d in stats.get("devices", []))
    rows, medians = await measure(args.comfyui_url.rstrip("/"), 3 if args.smoke else 30)
    result.tables[f"ComfyUI {version} ({devices}), smoke template {SIDE}²"] = rows
    result.notes.append(
        f"ComfyUI's own execution time of the template: {medians['exec']:g} ms at the median. "
        "The tool's result includes fetching the output and encoding its inline preview "
        "(the 'no preview' row still fetches the file to report its size)."
    )
    emit(result, args.out)


if __name__ == "__main__":
    asyncio.run(main())
