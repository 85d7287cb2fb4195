"""Measure 1: completion latency — what a wait adds on top of ComfyUI's own execution time.

added = wall time of the call − (``execution_success`` − ``execution_start`` from the history
entry). Four clients run the same graphs, interleaved in random order within every round:

- ``floor``: raw httpx + websockets (socket opened first, POST with client id, wait for
  ``executing`` null, GET history): the least any client can add;
- ``client``: ``ComfyClient.run`` (ours, the library);
- ``mcp``: ``enqueue_workflow(wait=true)`` through an in-process MCP client (JSON-RPC,
  ``mode="legacy"``) to our server, previews included;
- ``poll1s``: POST, then GET /history every second (what most ComfyUI MCP servers do).

Two jobs: ``tiny`` (8² EmptyImage → SaveImage, a few ms) and ``blur`` (EmptyImage → ImageBlur
→ ImageScale to 64² → SaveImage, its side calibrated per backend to take about 0.5 s). Every run
gets a new fill colour, so ComfyUI's cache never answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from mcp import Client

from bench.common import (
    FloorClient,
    Graph,
    Poller,
    Result,
    arguments,
    blur_graph,
    calibrate_blur,
    emit,
    execution_seconds,
    fake_comfyui,
    fetch_history,
    ms,
    summary,
    tiny_graph,
    unique_color,
)
from comfy_mcp.comfy import ComfyClient
from comfy_mcp.server import build_server
from comfy_mcp.settings import Settings

OURS = ("client", "mcp")


@dataclass
class Clients:
    """One of each client, all connected to the same backend before the first timed run."""

    url: str
    floor: FloorClient
    comfy: ComfyClient
    mcp: Client
    poller: Poller
    http: httpx.AsyncClient

    async def run(self, variant: str, graph: Graph) -> tuple[float, dict[str, Any]]:
        """Run ``graph`` with one client: (wall seconds, history entry)."""
        if variant == "floor":
            return await self.floor.run(graph)
        if variant == "poll1s":
            return await self.poller.run(graph)
        started = time.perf_counter()
        if variant == "client":
            job = await self.comfy.run(graph, timeout=120)
            wall = time.perf_counter() - started
            prompt_id = job.prompt_id
        else:
            result = await self.mcp.call_tool(
                "enqueue_workflow", {"workflow": graph, "wait": True, "timeout_s": 120}
            )
            wall = time.perf_counter() - started
            if result.is_error or result.structured_content is None:
                raise RuntimeError(f"enqueue_workflow failed: {result.content}")
            prompt_id = result.structured_content["prompt_id"]
        return wall, await fetch_history(self.http, self.url, prompt_id)


@contextlib.asynccontextmanager
async def connected(url: str) -> AsyncIterator[Clients]:
    server = build_server(Settings.from_env({"COMFYUI_URL": url}))
    async with (
        FloorClient(url) as floor,
        ComfyClient(url) as comfy,
        Client(server, mode="legacy") as mcp,
        httpx.AsyncClient(timeout=60, trust_env=False) as http,
    ):
        await comfy.connect()
        poller = Poller(url)
        try:
            yield Clients(url, floor, comfy, mcp, poller, http)
        finally:
            await poller.aclose()


async def measure(
    backend: str, url: str, *, rounds: dict[str, int], poll_every: int, blur_side: int | None
) -> tuple[list[dict[str, Any]], dict[str, dict[str, dict[str, float]]]]:
    """All variants on one backend; returns table rows and the added-latency summaries."""
    rows: list[dict[str, Any]] = []
    added_by_job: dict[str, dict[str, dict[str, float]]] = {}
    async with connected(url) as clients:
        side = blur_side or await calibrate_blur(clients.floor)
        graphs: dict[str, Callable[[], Graph]] = {
            "tiny": lambda: tiny_graph(unique_color()),
            "blur": lambda: blur_graph(unique_color(), side=side),
        }
        for job, make in graphs.items():
            for variant in ("floor", *OURS):  # warm-up: object_info, connections, code paths
                await clients.run(variant, make())
            walls: dict[str, list[float]] = {}
            added: dict[str, list[float]] = {}
            execs: dict[str, list[float]] = {}
            for index in range(rounds[job]):
                order = ["floor", *OURS]
                if index % poll_every == 0:
                    order.append("poll1s")
                random.shuffle(order)
                for variant in order:
                    wall, entry = await clients.run(variant, make())
                    took = execution_seconds(entry)
                    walls.setdefault(variant, []).append(ms(wall))
                    execs.setdefault(variant, []).append(ms(took))
                    added.setdefault(variant, []).append(ms(wall - took))
            stats = {variant: summary(values) for variant, values in added.items()}
            added_by_job[job] = stats
            for variant in ("floor", *OURS, "poll1s"):
                if variant not in stats:
                    continue
                s = stats[variant]
                rows.append(
                    {
                        "backend": backend,
                        "job": job if job == "tiny" else f"blur {side}²",
                        "client": variant,
                        "runs": s["n"],
                        "ComfyUI exec median ms": summary(execs[variant])["median"],
                        "wall median ms": summary(walls[variant])["median"],
                        "added median ms": s["median"],
                        "added p99 ms": s["p99"],
                        "added max ms": s["max"],
                        "added vs floor (median)": round(s["median"] / stats["floor"]["median"], 2),
                        "median − floor ms": round(s["median"] - stats["floor"]["median"], 2),
                    }
                )
    return rows, added_by_job


async def main() -> None:
    args = arguments(__doc__ or "")
    result = Result("latency", "1. Completion latency (added = wall − ComfyUI's execution time)")
    if args.smoke:
        rounds, poll_every, blur_side = {"tiny": 3, "blur": 2}, 3, 256
    else:
        rounds, poll_every, blur_side = {"tiny": 60, "blur": 30}, 4, None
    backends: list[tuple[str, str | None]] = [("fake", None)]
    if args.comfyui_url:
        backends.append(("real", args.comfyui_url))
    else:
        result.notes.append("COMFYUI_URL not set: the real-ComfyUI variant was skipped.")
    rows: list[dict[str, Any]] = []
    for backend, url in backends:
        if url is None:
            async with fake_comfyui() as fake:
                found, stats = await measure(
                    backend, fake.url, rounds=rounds, poll_every=poll_every, blur_side=blur_side
                )
        else:
            found, stats = await measure(
                backend, url, rounds=rounds, poll_every=poll_every, blur_side=blur_side
            )
        rows += found
        for job, by_variant in stats.items():
            floor = by_variant["floor"]["median"]
            for variant in OURS:
                s = by_variant[variant]
                result.target(
                    f"{backend} {job} {variant}: added median ≤ floor + 10 ms",
                    s["median"],
                    round(floor + 10, 2),
                    "ms",
                )
                result.target(f"{backend} {job} {variant}: added max ≤ 60 ms", s["max"], 60, "ms")
    result.tables["completion latency"] = rows
    result.notes.append(
        "Rounds run the clients in a new random order each time; the poller runs every "
        f"{poll_every} rounds (it takes ≥ 1 s a run). The floor's websocket, ours and the MCP "
        "server's stay open through the whole measure."
    )
    emit(result, args.out)


if __name__ == "__main__":
    asyncio.run(main())
