"""Measure 3: many simultaneous waiting jobs on one process.

For each N (50, 200, 1,000) and each client, a fresh worker process runs N tiny jobs at once:

- ``floor``: the raw client (one websocket, futures by prompt id);
- ``client``: one ``ComfyClient``, N concurrent ``run()`` calls;
- ``mcp``: our MCP server (built once, sharing one ComfyClient as the HTTP transport does) with
  10 in-process MCP sessions (``mode="legacy"``), N concurrent ``enqueue_workflow(wait)`` calls
  spread over them, previews included. Client and server share the process (and its figures);
- ``mcp stdio``: the ``mcp-server-comfyui`` console script, N concurrent calls over its one stdio
  session. Its figures (CPU, RSS, sockets) are the *server* process's alone.

Each worker first runs 3 jobs one by one (lazy imports such as Pillow, caches, connections),
then submits a *blocker* prompt (thousands of sleeping nodes) and the N jobs. This process
releases the blocker (``POST /interrupt``) once ComfyUI's queue holds all N and the measured
processes are idle: all N calls are then only waiting. ComfyUI runs them one at a time (the
fake's nodes sleep 10 ms each, like a GPU, so its event loop stays free to answer). Per job:
added = when the call returned − ComfyUI's ``execution_success`` timestamp. Throughput =
N / (last return − release). This process samples the fake's own count of websocket
connections and the measured process's TCP connections to the fake; peak RSS is ``VmHWM``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple

import httpx

from bench.common import (
    ROOT,
    FakeProcess,
    Graph,
    Result,
    arguments,
    console_script,
    cpu_seconds,
    emit,
    fake_comfyui,
    fetch_history,
    finished_at,
    ms,
    rss_mb,
    server_env,
    server_pid,
    summary,
    tcp_connections,
    tiny_graph,
    unique_color,
)

VARIANTS = ("floor", "client", "mcp", "mcp stdio")
SESSIONS = 10
REPEATS = {200: 3}  # runs per client for these N (the target's N): one run is noisy
NODE_DELAY = 0.01
SAMPLE_EVERY = 0.1  # seconds between samples of sockets and queue
BLOCKER_CHAINS, BLOCKER_DEPTH = 40, 150  # 6,000 nodes: at most ~60 s; released much earlier
BLOCKER_CLIENT = "bench-blocker"
WARM_UP = 3  # jobs run one by one before the measured ones


# -- the worker (a separate process per run) ------------------------------------------------------


class Meter:
    """Memory and CPU of the measured process (this one, or the stdio server) over the jobs."""

    def __init__(self, pid: int | None, requests: Counter[str]) -> None:
        self.pid = pid or os.getpid()
        self.requests = requests  # served by ComfyUI so far; then: during the jobs
        self.rss_ready = rss_mb(self.pid)  # MB after imports and connecting, before the jobs
        self.started = time.time()  # epoch seconds when the jobs were started
        self._cpu = cpu_seconds(self.pid) or 0.0
        self.cpu = 0.0  # CPU seconds used from the start of the jobs to their end
        self.rss_peak: float | None = None

    def stop(self, requests: Counter[str]) -> None:
        self.requests = requests - self.requests
        self.cpu = (cpu_seconds(self.pid) or 0.0) - self._cpu
        self.rss_peak = rss_mb(self.pid, field_name="VmHWM")


Returned = tuple[str, float]  # (prompt id, epoch seconds when the call returned)
Measured = tuple[list[Returned], Meter]
RunOne = Callable[[int, Graph], Awaitable[Returned]]  # (call index, graph) → Returned


async def run_all(url: str, n: int, run_one: RunOne, pid: int | None = None) -> Measured:
    """Warm up (imports done lazily, caches, connections), block ComfyUI, submit N jobs at once.

    The orchestrator releases the blocker once the N jobs are queued and this process is idle.
    """
    for index in range(WARM_UP):
        await run_one(index, tiny_graph(unique_color()))
    async with httpx.AsyncClient(timeout=60, trust_env=False) as http:
        body = {"prompt": blocker_graph(unique_color()), "client_id": BLOCKER_CLIENT}
        (await http.post(f"{url}/prompt", json=body)).raise_for_status()
        meter = Meter(pid, await _requests(http, url))
        graphs = [tiny_graph(unique_color()) for _ in range(n)]
        done = await asyncio.gather(*(run_one(i, g) for i, g in enumerate(graphs)))
        meter.stop(await _requests(http, url))
    return done, meter


async def _requests(http: httpx.AsyncClient, url: str) -> Counter[str]:
    """HTTP requests the fake has served, by route (bench/fake_server.py counts them); the
    orchestrator's ``GET /prompt`` polls are left out."""
    counts: dict[str, int] = (await http.get(f"{url}/bench/sockets")).json()["requests"]
    return Counter({route: count for route, count in counts.items() if route != "GET /prompt"})


async def _floor_jobs(url: str, n: int) -> Measured:
    from bench.common import FloorClient

    async with FloorClient(url) as floor:

        async def one(_: int, graph: Graph) -> Returned:
            _wall, entry = await floor.run(graph, timeout=600)
            return str(entry["prompt"][1]), time.time()

        return await run_all(url, n, one)


async def _client_jobs(url: str, n: int) -> Measured:
    from comfy_mcp.comfy import ComfyClient

    async with ComfyClient(url) as comfy:

        async def one(_: int, graph: Graph) -> Returned:
            job = await comfy.run(graph, timeout=600)
            return job.prompt_id, time.time()

        return await run_all(url, n, one)


async def _call(session: Any, graph: Graph) -> Returned:
    result = await session.call_tool(
        "enqueue_workflow", {"workflow": graph, "wait": True, "timeout_s": 600}
    )
    returned = time.time()
    if result.is_error or result.structured_content is None:
        raise RuntimeError(f"enqueue_workflow failed: {result.content}")
    if result.structured_content["status"] != "succeeded":
        raise RuntimeError(f"not finished: {result.structured_content['status']}")
    return str(result.structured_content["prompt_id"]), returned


async def _mcp_jobs(url: str, n: int) -> Measured:
    from contextlib import AsyncExitStack

    from mcp import Client

    from comfy_mcp.comfy import ComfyClient
    from comfy_mcp.server import build_server
    from comfy_mcp.settings import Settings

    async with ComfyClient(url) as comfy, AsyncExitStack() as stack:
        server = build_server(Settings.from_env({"COMFYUI_URL": url}), client=comfy)
        sessions = [
            await stack.enter_async_context(Client(server, mode="legacy")) for _ in range(SESSIONS)
        ]

        async def one(index: int, graph: Graph) -> Returned:
            return await _call(sessions[index % SESSIONS], graph)

        return await run_all(url, n, one)


async def _stdio_jobs(url: str, n: int) -> Measured:
    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(command=console_script(), env=server_env(url))
    async with Client(params, mode="legacy") as session:

        async def one(_: int, graph: Graph) -> Returned:
            return await _call(session, graph)

        return await run_all(url, n, one, server_pid(os.getpid()))


async def worker(variant: str, url: str, n: int) -> dict[str, Any]:
    runners: dict[str, Callable[[str, int], Awaitable[Measured]]] = {
        "floor": _floor_jobs,
        "client": _client_jobs,
        "mcp": _mcp_jobs,
        "mcp stdio": _stdio_jobs,
    }
    done, meter = await runners[variant](url, n)
    finished: list[tuple[float, float]] = []  # (returned, execution_success), epoch seconds
    async with httpx.AsyncClient(timeout=60, trust_env=False) as http:
        for prompt_id, returned in done:
            finished.append((returned, finished_at(await fetch_history(http, url, prompt_id))))
    return {
        "finished": finished,
        "started": meter.started,
        "rss_ready": meter.rss_ready,
        "rss_peak": meter.rss_peak,
        "cpu": meter.cpu,
        "requests": meter.requests,
    }


def blocker_graph(color: int) -> Graph:
    """Many distinct chains of ImageInvert (each node sleeps the fake's node delay); chains stay
    short because ComfyUI validates inputs recursively."""
    graph: Graph = {}
    for chain in range(BLOCKER_CHAINS):
        previous = f"{chain}.image"
        graph[previous] = {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": (color + chain) % 2**24},
        }
        for depth in range(BLOCKER_DEPTH):
            node = f"{chain}.{depth}"
            graph[node] = {"class_type": "ImageInvert", "inputs": {"image": [previous, 0]}}
            previous = node
        graph[f"{chain}.save"] = {
            "class_type": "SaveImage",
            "inputs": {"images": [previous, 0], "filename_prefix": "bench_blocker"},
        }
    return graph


# -- the orchestrator ------------------------------------------------------------------------------


class Sampled(NamedTuple):
    ws_peak: int
    tcp_peak: int
    released: float | None  # epoch seconds when the blocker was interrupted
    fake_cpu: float


async def run_worker(
    fake: FakeProcess, variant: str, n: int, tmp: Path, *, patience: float, limit: float
) -> dict[str, Any] | None:
    """Run one worker; sample while it runs; release ComfyUI once all N jobs wait.

    Returns None when the worker did not finish within ``limit`` seconds (it is then killed,
    with its stdio server): a collapse is a result, not a crash of the benchmark.
    """
    out = tmp / f"bench-concurrency-{os.getpid()}-{re.sub(r'[^a-z]+', '-', variant)}-{n}.json"
    log = out.with_suffix(".log")
    async with httpx.AsyncClient(timeout=60, trust_env=False) as http:
        fake_pid = fake.process.pid if fake.process else None
        fake_cpu = cpu_seconds(fake_pid) or 0.0
        with log.open("wb") as stderr:  # the worker's logs, shown if it fails
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.concurrency",
                "--worker",
                variant,
                "--jobs",
                str(n),
                "--url",
                fake.url,
                "--out",
                str(out),
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stderr=stderr,
                start_new_session=True,  # its own process group: it and its server go together
            )
            try:
                async with asyncio.timeout(limit):
                    sampled = await _sample(fake, http, process, n, patience)
            except TimeoutError:
                server = server_pid(process.pid)  # the SDK starts it in a session of its own
                os.killpg(process.pid, signal.SIGKILL)
                if server is not None:
                    os.kill(server, signal.SIGKILL)
                await process.wait()
                return None
            finally:
                tail = log.read_bytes()[-2000:].decode(errors="replace")
                log.unlink(missing_ok=True)
        sampled = sampled._replace(fake_cpu=(cpu_seconds(fake_pid) or 0.0) - fake_cpu)
    try:
        if process.returncode != 0:
            raise RuntimeError(f"the {variant} worker for {n} jobs failed:\n{tail}")
        report = _read_json(out)
    finally:
        out.unlink(missing_ok=True)
    report["sampled"] = sampled
    return report


async def _release_blocker(http: httpx.AsyncClient, url: str) -> bool:
    """Interrupt the blocker if it is running; True when it was."""
    queue = (await http.get(f"{url}/queue")).json()
    for item in queue["queue_running"]:
        if item[3].get("client_id") == BLOCKER_CLIENT:
            await http.post(f"{url}/interrupt", json={"prompt_id": item[1]})
            return True
    return False


async def _sample(
    fake: FakeProcess,
    http: httpx.AsyncClient,
    process: asyncio.subprocess.Process,
    n: int,
    patience: float,
) -> Sampled:
    """Every SAMPLE_EVERY s until the worker exits: sockets, and whether to release the blocker.

    The blocker is released once ComfyUI's queue holds all N jobs *and* the worker has gone
    idle (under 5% CPU over one sample): every call has submitted and is now only waiting.
    After ``patience`` seconds it is released anyway.
    """
    port = int(fake.url.rsplit(":", 1)[1])
    ws_peak, tcp_peak, released = 0, 0, None
    deadline = time.monotonic() + patience  # release anyway by then
    cpu_before, at_before = 0.0, time.monotonic()
    while process.returncode is None:
        # The process holding the ComfyUI connections: the worker, or its stdio server.
        pids = [process.pid, *filter(None, [server_pid(process.pid)])]
        sockets = await fake.sockets(http)
        ws_peak = max(ws_peak, sockets["connections"])
        tcp_peak = max(tcp_peak, tcp_connections(port, pids[-1]) or 0)
        cpu_now, at_now = sum(cpu_seconds(p) or 0.0 for p in pids), time.monotonic()
        busy = (cpu_now - cpu_before) / max(at_now - at_before, 1e-3)
        cpu_before, at_before = cpu_now, at_now
        if released is None:
            queue = (await http.get(f"{fake.url}/prompt")).json()
            queued = queue["exec_info"]["queue_remaining"] >= n + 1
            if ((queued and busy < 0.05) or time.monotonic() > deadline) and (
                await _release_blocker(http, fake.url)
            ):
                released = time.time()
        try:
            async with asyncio.timeout(SAMPLE_EVERY):
                await process.wait()
        except TimeoutError:
            continue
    return Sampled(ws_peak, tcp_peak, released, 0.0)


def _read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def row(n: int, variant: str, report: dict[str, Any]) -> dict[str, Any]:
    sampled: Sampled = report["sampled"]
    requests: dict[str, int] = report["requests"]
    finished: list[list[float]] = report["finished"]
    added = summary([ms(returned - success) for returned, success in finished])
    last = max(returned for returned, _ in finished)
    released = sampled.released or report["started"]
    return {
        "jobs": n,
        "client": variant,
        "all waiting after s": round(released - report["started"], 2),
        "jobs/s after release": round(n / (last - released), 1),
        "added p50 ms": added["median"],
        "added p99 ms": added["p99"],
        "added max ms": added["max"],
        "CPU ms/job": round(report["cpu"] / n * 1000, 1),
        "CPU s (fake)": round(sampled.fake_cpu, 2),
        "ComfyUI requests/job": round(sum(requests.values()) / n, 2),
        "of which": ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(requests.items())),
        "RSS ready MB": report["rss_ready"],
        "RSS peak MB": report["rss_peak"],
        "websockets (fake side, peak)": sampled.ws_peak,
        "TCP conns to ComfyUI (peak)": sampled.tcp_peak,
    }


async def main() -> None:
    args = arguments(__doc__ or "")
    result = Result("concurrency", "3. Concurrency: N simultaneous waiting jobs, one process")
    sizes = (20,) if args.smoke else (50, 200, 1000)
    rows: list[dict[str, Any]] = []
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    for n in sizes:
        repeats = 1 if args.smoke else REPEATS.get(n, 1)
        runs: dict[str, list[dict[str, Any] | None]] = {variant: [] for variant in VARIANTS}
        # A healthy run takes N × ~25 ms after the release; give it several times that.
        limit = 60 + 0.15 * n
        async with fake_comfyui(node_delay=NODE_DELAY) as fake:  # fresh: no history piles up
            for repeat in range(repeats):
                shift = repeat % len(VARIANTS)  # a different client goes first each time
                for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                    runs[variant].append(
                        await run_worker(
                            fake, variant, n, tmp, patience=15 if args.smoke else 90, limit=limit
                        )
                    )
        for variant, reports in runs.items():
            finished = [r for r in reports if r is not None]
            if len(finished) < len(reports):
                result.notes.append(
                    f"{n} jobs, {variant}: {len(reports) - len(finished)} of {len(reports)} "
                    f"runs did not finish within {limit:.0f} s (killed)."
                )
            if n == 200 and variant != "floor":
                result.target(
                    f"200 jobs {variant}: runs not finished in time",
                    len(reports) - len(finished),
                    0,
                )
            if not finished:
                rows.append({"jobs": n, "client": variant, "jobs/s after release": 0.0})
                continue
            found = [row(n, variant, report) for report in finished]
            found.sort(key=lambda r: float(r["added p99 ms"]))
            chosen = found[len(found) // 2]  # the run with the median p99
            if len(found) > 1:
                chosen["p99 of each run"] = ", ".join(f"{r['added p99 ms']:g}" for r in found)
            rows.append(chosen)
            if any(r["sampled"].released is None for r in finished):
                result.notes.append(f"{n} {variant}: the blocker ended before all jobs queued")
            if variant == "floor":
                continue
            result.target(
                f"{n} jobs {variant}: websockets to the backend",
                max(r["websockets (fake side, peak)"] for r in found),
                1,
            )
            if n == 200:
                result.target(
                    f"200 jobs {variant}: p99 added latency (median run)",
                    chosen["added p99 ms"],
                    50,
                    "ms",
                )
                result.target(
                    f"200 jobs {variant}: peak RSS", max(r["RSS peak MB"] for r in found), 150, "MB"
                )
    floors = {r["jobs"]: r for r in rows if r["client"] == "floor"}
    for r in rows:
        floor = floors[r["jobs"]]
        if not floor["jobs/s after release"]:
            continue
        r["throughput vs floor"] = round(
            r["jobs/s after release"] / floor["jobs/s after release"], 2
        )
        if "added p99 ms" in r:
            r["p99 − floor p99 ms"] = round(r["added p99 ms"] - floor["added p99 ms"], 2)
    result.tables["N simultaneous tiny jobs on the fake ComfyUI (nodes sleep 10 ms)"] = rows
    result.notes.append(
        "Each run is a fresh worker process; with several runs (200 jobs: "
        f"{REPEATS[200]}, the clients taking turns to go first) the row shows the run with the "
        "median p99. 'all waiting after': from the first submission to the release (all N "
        "queued, the measured process idle). 'CPU ms/job' and 'RSS' are the measured process's "
        "over the N jobs ('RSS ready': after warm-up, before them); for 'mcp stdio' that is the "
        "server alone, for 'mcp' server and 10 client sessions together. 'ComfyUI "
        "requests/job': every HTTP request the fake served during the jobs, divided by N."
    )
    emit(result, args.out)


def _worker_main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", choices=VARIANTS, required=True)
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    report = asyncio.run(worker(args.worker, args.url, args.jobs))
    args.out.write_text(json.dumps(report), encoding="utf-8")


if __name__ == "__main__":
    if "--worker" in sys.argv:
        _worker_main()
    else:
        asyncio.run(main())
