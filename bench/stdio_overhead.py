"""Measure 2: a tool call over a real stdio subprocess vs the raw floor round trip.

``enqueue_workflow(wait=true)`` through ``mcp.Client`` (``mode="legacy"``: the initialize
handshake and JSON-RPC, as real clients do) to the ``mcp-server-comfyui`` console script, against
the floor client (raw httpx + websockets) running the same graph, interleaved in random order.
The ratio compares wall times of the whole round trip. The MCP call is also run with
``preview=false``, to show what the inline previews cost.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

from mcp import Client, StdioServerParameters

from bench.common import (
    FloorClient,
    Graph,
    Result,
    arguments,
    blur_graph,
    calibrate_blur,
    console_script,
    emit,
    fake_comfyui,
    ms,
    server_env,
    summary,
    tiny_graph,
    unique_color,
)


async def call(client: Client, graph: Graph, *, preview: bool) -> float:
    started = time.perf_counter()
    result = await client.call_tool(
        "enqueue_workflow", {"workflow": graph, "wait": True, "preview": preview}
    )
    took = time.perf_counter() - started
    if result.is_error:
        raise RuntimeError(f"enqueue_workflow failed: {result.content}")
    return took


async def measure(url: str, rounds: dict[str, int], blur_side: int | None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    params = StdioServerParameters(command=console_script(), env=server_env(url))
    async with FloorClient(url) as floor, Client(params, mode="legacy") as client:
        side = blur_side or await calibrate_blur(floor)
        makers: dict[str, Callable[[], Graph]] = {
            "tiny": lambda: tiny_graph(unique_color()),
            "blur": lambda: blur_graph(unique_color(), side=side),
        }
        for job, make in makers.items():
            if not rounds.get(job):
                continue
            for _ in range(3):  # warm-up: object_info, connections, imports done lazily
                await floor.run(make())
                await call(client, make(), preview=True)
            walls: dict[str, list[float]] = {
                "floor": [],
                "mcp stdio": [],
                "mcp stdio, no preview": [],
            }
            for _ in range(rounds[job]):
                order = list(walls)
                random.shuffle(order)
                for variant in order:
                    if variant == "floor":
                        took, _entry = await floor.run(make())
                    else:
                        took = await call(client, make(), preview=variant == "mcp stdio")
                    walls[variant].append(ms(took))
            floor_median = summary(walls["floor"])["median"]
            for variant, values in walls.items():
                s = summary(values)
                rows.append(
                    {
                        "job": job if job == "tiny" else f"blur {side}²",
                        "client": variant,
                        "runs": s["n"],
                        "wall median ms": s["median"],
                        "wall p99 ms": s["p99"],
                        "wall max ms": s["max"],
                        "ratio to floor (median)": round(s["median"] / floor_median, 2),
                    }
                )
    return rows


async def main() -> None:
    args = arguments(__doc__ or "")
    result = Result("stdio_overhead", "2. Overhead over the floor: MCP over stdio vs raw client")
    rounds = {"tiny": 3} if args.smoke else {"tiny": 60, "blur": 20}
    async with fake_comfyui() as fake:
        rows = await measure(fake.url, rounds, blur_side=256 if args.smoke else None)
    result.tables["round trip, fake ComfyUI"] = rows
    for row in rows:
        if row["client"] == "mcp stdio":
            result.target(
                f"{row['job']}: stdio enqueue_workflow(wait) / floor, median",
                row["ratio to floor (median)"],
                1.5,
                "×",
            )
    result.notes.append(
        "One server process for the whole measure (its start-up is measure 4). Wall time from the "
        "call to its answer; the floor's from POST /prompt to the history entry."
    )
    emit(result, args.out)


if __name__ == "__main__":
    asyncio.run(main())
