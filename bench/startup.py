"""Measure 4: start-up (process start → the answer to ``tools/list`` over stdio) and idle memory.

``mcp-server-comfyui`` against ``bench/floor_server.py`` (a one-tool ``MCPServer`` on the same
SDK), started alternately in random order. Each start is timed by a minimal JSON-RPC driver on
the pipes (``initialize``, then ``notifications/initialized`` + ``tools/list`` once initialize is
answered), so no client library's own cost is in the figure. Idle RSS is read from /proc half a
second after the answer.

Import times come from the real start path: the server runs once with ``PYTHONPROFILEIMPORTTIME``
(what ``-X importtime`` does) through the same handshake; self times are summed per top-level
package. The optional dependencies (Pillow, rich, uvicorn, starlette) must not be among them.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import subprocess
import sys
import time
from collections import defaultdict
from typing import Any

from bench.common import (
    ROOT,
    Result,
    arguments,
    console_script,
    emit,
    fake_comfyui,
    ms,
    rss_mb,
    server_env,
    summary,
)

LINE_LIMIT = 16 * 1024 * 1024  # one JSON-RPC message per line; tools/list is long
OPTIONAL = ("PIL", "rich", "uvicorn", "starlette")
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "0"},
    },
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
TOOLS_LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


def commands(url: str) -> dict[str, tuple[list[str], dict[str, str]]]:
    base = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}
    return {
        "ours": ([console_script()], base | server_env(url)),
        "floor": ([sys.executable, str(ROOT / "bench" / "floor_server.py")], base),
    }


async def _answer(stdout: asyncio.StreamReader, wanted: int) -> dict[str, Any]:
    while True:
        line = await stdout.readline()
        if not line:
            raise RuntimeError("the server closed stdout before answering")
        message: dict[str, Any] = json.loads(line)
        if message.get("id") == wanted:
            return message


async def start_once(command: list[str], env: dict[str, str]) -> tuple[float, float, float | None]:
    """Start one server; (seconds to the initialize answer, to the tools/list answer, idle RSS)."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
        limit=LINE_LIMIT,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        async with asyncio.timeout(60):
            process.stdin.write(json.dumps(INITIALIZE).encode() + b"\n")
            await process.stdin.drain()
            await _answer(process.stdout, 1)
            initialized = time.perf_counter() - started
            process.stdin.write(
                json.dumps(INITIALIZED).encode() + b"\n" + json.dumps(TOOLS_LIST).encode() + b"\n"
            )
            await process.stdin.drain()
            answer = await _answer(process.stdout, 2)
            listed = time.perf_counter() - started
            if not answer.get("result", {}).get("tools"):
                raise RuntimeError(f"tools/list answered {answer!r:.300}")
            await asyncio.sleep(0.5)
            rss = rss_mb(process.pid)
    finally:
        process.stdin.close()
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
    return initialized, listed, rss


async def import_profile(command: list[str], env: dict[str, str]) -> str:
    """The stderr of one start with PYTHONPROFILEIMPORTTIME=1, through the handshake."""
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env | {"PYTHONPROFILEIMPORTTIME": "1"},
        cwd=ROOT,
        limit=LINE_LIMIT,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(json.dumps(INITIALIZE).encode() + b"\n")
    await process.stdin.drain()
    async with asyncio.timeout(60):
        await _answer(process.stdout, 1)
        process.stdin.write(
            json.dumps(INITIALIZED).encode() + b"\n" + json.dumps(TOOLS_LIST).encode() + b"\n"
        )
        await process.stdin.drain()
        await _answer(process.stdout, 2)
        process.stdin.close()
        _, stderr = await process.communicate()
    return stderr.decode(errors="replace")


_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def per_package(importtime: str) -> tuple[dict[str, float], dict[str, float]]:
    """(self ms summed per top-level package, cumulative ms of each top-level import)."""
    own: dict[str, float] = defaultdict(float)
    cumulative: dict[str, float] = {}
    for line in importtime.splitlines():
        found = _LINE.match(line)
        if not found:
            continue
        self_us, cumulative_us, indent, module = found.groups()
        top = module.split(".")[0]
        own[top] += int(self_us) / 1000
        if len(indent) == 1 and "." not in module:  # imported directly by the script
            cumulative[top] = cumulative.get(top, 0.0) + int(cumulative_us) / 1000
    return dict(own), cumulative


def python_x_importtime() -> tuple[dict[str, float], float]:
    """``python -X importtime -c "import comfy_mcp.server"``, as the issue asks: (per package
    self ms, total ms of that import)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import comfy_mcp.server"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    own, _ = per_package(done.stderr)
    total = 0.0
    for line in done.stderr.splitlines():
        found = _LINE.match(line)
        if found and found.group(4) == "comfy_mcp.server":
            total = int(found.group(2)) / 1000
    return own, total


async def main() -> None:
    args = arguments(__doc__ or "")
    result = Result("startup", "4. Start-up to tools/list over stdio, and idle memory")
    rounds = 1 if args.smoke else 15
    async with fake_comfyui() as fake:
        variants = commands(fake.url)
        if not args.smoke:  # warm the OS file cache for both
            await start_once(*variants["ours"])
            await start_once(*variants["floor"])
        times: dict[str, list[float]] = {name: [] for name in variants}
        inits: dict[str, list[float]] = {name: [] for name in variants}
        rss: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(rounds):
            order = list(variants)
            random.shuffle(order)
            for name in order:
                initialized, listed, memory = await start_once(*variants[name])
                inits[name].append(ms(initialized))
                times[name].append(ms(listed))
                if memory is not None:
                    rss[name].append(memory)
        profiles = {name: per_package(await import_profile(*variants[name])) for name in variants}

    rows = []
    for name in variants:
        s = summary(times[name])
        rows.append(
            {
                "server": name,
                "starts": s["n"],
                "to initialize median ms": summary(inits[name])["median"],
                "to tools/list median ms": s["median"],
                "p99 ms": s["p99"],
                "min ms": s["min"],
                "idle RSS median MB": summary(rss[name])["median"],
            }
        )
    result.tables["start-up, side by side"] = rows
    start_ratio = summary(times["ours"])["median"] / summary(times["floor"])["median"]
    rss_ratio = summary(rss["ours"])["median"] / summary(rss["floor"])["median"]
    result.target("start-up to tools/list: ours / floor, median", start_ratio, 1.15, "×")
    result.target("idle RSS: ours / floor, median", rss_ratio, 1.2, "×")

    ours, floor = profiles["ours"][0], profiles["floor"][0]
    packages = sorted(ours, key=lambda top: -ours[top])
    result.tables["import time on the stdio start path (self time summed per package)"] = [
        {
            "package": top,
            "ours ms": round(ours[top], 1),
            "floor ms": round(floor.get(top, 0.0), 1),
            "only ours": top not in floor,
        }
        for top in packages
        if ours[top] >= 2.0 or top not in floor
    ][:40]
    loaded = [name for name in OPTIONAL if name in ours]
    result.target(
        "optional packages imported on the stdio start path (" + ", ".join(OPTIONAL) + ")",
        len(loaded),
        0,
    )
    by_floor = [name for name in OPTIONAL if name in floor]
    result.target(
        "of those, imported by ours but not by the floor (the SDK alone)",
        len([name for name in loaded if name not in by_floor]),
        0,
    )
    result.notes.append(
        f"Start path of ours imports: {', '.join(loaded) or 'none'} of {', '.join(OPTIONAL)}; "
        f"the floor (the SDK alone) imports: {', '.join(by_floor) or 'none'}. Total import self "
        f"time: ours {sum(ours.values()):.0f} ms, floor {sum(floor.values()):.0f} ms (inflated "
        "by the profiling itself)."
    )
    direct, total = python_x_importtime()
    result.notes.append(
        f'`python -X importtime -c "import comfy_mcp.server"`: {total:.0f} ms; of the optional '
        f"packages it imports: {', '.join(n for n in OPTIONAL if n in direct) or 'none'}."
    )
    emit(result, args.out)


if __name__ == "__main__":
    asyncio.run(main())
