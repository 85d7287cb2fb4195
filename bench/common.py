"""What every benchmark shares: statistics, graphs, the floor and poller clients, processes.

Run the measures through ``python bench/run.py`` (or one of them with ``python -m bench.<name>``
from the repository root). Each measure prints one JSON document (see :func:`emit`) that
``run.py`` turns into ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import random
import shutil
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent
Graph = dict[str, Any]

# -- statistics --------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(values: list[float]) -> dict[str, float]:
    """n, median, p99, min and max of ``values`` (milliseconds in, milliseconds out)."""
    if not values:
        return {"n": 0, "median": math.nan, "p99": math.nan, "min": math.nan, "max": math.nan}
    return {
        "n": len(values),
        "median": percentile(values, 50),
        "p99": percentile(values, 99),
        "min": min(values),
        "max": max(values),
    }


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


# -- graphs --------------------------------------------------------------------------------------

_colors = itertools.count(random.randrange(1 << 24))


def unique_color() -> int:
    """A fill colour no earlier run of this process used, so ComfyUI's cache never answers."""
    return next(_colors) % (1 << 24)


def tiny_graph(color: int, side: int = 8) -> Graph:
    """The ~5 ms job: EmptyImage → SaveImage."""
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": side, "height": side, "batch_size": 1, "color": color},
        },
        "2": {
            "class_type": "SaveImage",
            "inputs": {"images": ["1", 0], "filename_prefix": "bench_tiny"},
        },
    }


def blur_graph(color: int, side: int = 1024, radius: int = 15, out: int = 64) -> Graph:
    """The ~0.5 s job: a side² EmptyImage → ImageBlur → ImageScale to out² → SaveImage."""
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": side, "height": side, "batch_size": 1, "color": color},
        },
        "2": {
            "class_type": "ImageBlur",
            "inputs": {"image": ["1", 0], "blur_radius": radius, "sigma": 5.0},
        },
        "3": {
            "class_type": "ImageScale",
            "inputs": {
                "image": ["2", 0],
                "upscale_method": "bilinear",
                "width": out,
                "height": out,
                "crop": "disabled",
            },
        },
        "4": {
            "class_type": "SaveImage",
            "inputs": {"images": ["3", 0], "filename_prefix": "bench_blur"},
        },
    }


JOBS: dict[str, Callable[[int], Graph]] = {"tiny": tiny_graph, "blur": blur_graph}


# -- history timestamps ----------------------------------------------------------------------------


def _timestamps(entry: dict[str, Any]) -> dict[str, float]:
    """Event name → epoch seconds, from a history entry's ``status.messages``."""
    found: dict[str, float] = {}
    for message in entry.get("status", {}).get("messages", []):
        if isinstance(message, list) and len(message) == 2 and isinstance(message[1], dict):
            stamp = message[1].get("timestamp")
            if isinstance(stamp, int | float):
                found[str(message[0])] = stamp / 1000
    return found


def execution_seconds(entry: dict[str, Any]) -> float:
    """ComfyUI's own execution time: ``execution_success`` − ``execution_start``."""
    stamps = _timestamps(entry)
    return stamps["execution_success"] - stamps["execution_start"]


def finished_at(entry: dict[str, Any]) -> float:
    """When ComfyUI says the prompt succeeded, in epoch seconds (millisecond resolution)."""
    return _timestamps(entry)["execution_success"]


async def fetch_history(http: httpx.AsyncClient, base_url: str, prompt_id: str) -> dict[str, Any]:
    """The history entry of a finished prompt (raises if it has none)."""
    response = await http.get(f"{base_url}/history/{prompt_id}")
    response.raise_for_status()
    entry: dict[str, Any] = response.json()[prompt_id]
    return entry


# -- the floor and the poller ------------------------------------------------------------------


class FloorClient:
    """The least a websocket client can do: one socket opened first, POST with its client id
    and a prompt id it chose, wait for ``executing`` with ``node: null``, GET the history.

    Nothing else: no validation, no models, no reconnects. It is what ours is compared with.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = uuid.uuid4().hex
        self.http = httpx.AsyncClient(timeout=60, trust_env=False)
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiting: dict[str, asyncio.Future[None]] = {}

    async def __aenter__(self) -> FloorClient:
        ws_url = self.base_url.replace("http", "ws", 1) + f"/ws?clientId={self.client_id}"
        self._ws = await connect(ws_url, max_size=None, compression=None)
        await self._ws.recv()  # the first status frame: the socket is registered
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._ws is not None:
            await self._ws.close()
        await self.http.aclose()

    async def _read(self) -> None:
        assert self._ws is not None
        async for frame in self._ws:
            if not isinstance(frame, str):
                continue
            message = json.loads(frame)
            data = message.get("data") or {}
            if message.get("type") == "executing" and data.get("node") is None:
                future = self._waiting.pop(str(data.get("prompt_id")), None)
                if future is not None and not future.done():
                    future.set_result(None)

    async def run(self, graph: Graph, timeout: float = 120) -> tuple[float, dict[str, Any]]:
        """Run one prompt; returns (wall seconds from POST to history, history entry)."""
        prompt_id = str(uuid.uuid4())
        done = asyncio.get_running_loop().create_future()
        self._waiting[prompt_id] = done
        started = time.perf_counter()
        body = {"prompt": graph, "client_id": self.client_id, "prompt_id": prompt_id}
        response = await self.http.post(f"{self.base_url}/prompt", json=body)
        response.raise_for_status()
        async with asyncio.timeout(timeout):
            await done
        entry = await fetch_history(self.http, self.base_url, prompt_id)
        return time.perf_counter() - started, entry


async def calibrate_blur(floor: FloorClient, target: float = 0.5) -> int:
    """The EmptyImage side that makes the blur job take about ``target`` seconds on this backend
    (ComfyUI's time grows with the pixel count)."""
    side = 1024
    for _ in range(3):
        _, entry = await floor.run(blur_graph(unique_color(), side=side))
        took = max(execution_seconds(entry), 0.005)
        side = int(min(4096, max(128, side * (target / took) ** 0.5)) // 64 * 64)
    return side


class Poller:
    """What most ComfyUI MCP servers do: POST, then GET /history/{id} every ``interval`` s."""

    def __init__(self, base_url: str, interval: float = 1.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.interval = interval
        self.http = httpx.AsyncClient(timeout=60, trust_env=False)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def run(self, graph: Graph, timeout: float = 120) -> tuple[float, dict[str, Any]]:
        prompt_id = str(uuid.uuid4())
        started = time.perf_counter()
        body = {"prompt": graph, "client_id": uuid.uuid4().hex, "prompt_id": prompt_id}
        (await self.http.post(f"{self.base_url}/prompt", json=body)).raise_for_status()
        deadline = started + timeout
        while time.perf_counter() < deadline:
            await asyncio.sleep(self.interval)
            response = await self.http.get(f"{self.base_url}/history/{prompt_id}")
            entry = response.json().get(prompt_id)
            if entry and entry.get("status", {}).get("completed"):
                return time.perf_counter() - started, entry
        raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout} s")


# -- processes -----------------------------------------------------------------------------------


@dataclass
class FakeProcess:
    """The fake ComfyUI in its own process (``bench/fake_server.py``): its work and memory stay
    out of the process being measured."""

    node_delay: float = 0.0
    url: str = ""
    process: asyncio.subprocess.Process | None = field(default=None, repr=False)

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.fake_server",
            "--node-delay",
            str(self.node_delay),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self.process.stdout is not None
        async with asyncio.timeout(30):
            line = (await self.process.stdout.readline()).decode().strip()
        if not line.startswith("http"):
            raise RuntimeError(f"the fake ComfyUI did not start (it said {line!r})")
        self.url = line

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                async with asyncio.timeout(10):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    async def sockets(self, http: httpx.AsyncClient) -> dict[str, Any]:
        """The fake's own count of websocket connections and registered client ids."""
        response = await http.get(f"{self.url}/bench/sockets")
        result: dict[str, Any] = response.json()
        return result


@contextlib.asynccontextmanager
async def fake_comfyui(node_delay: float = 0.0) -> AsyncIterator[FakeProcess]:
    fake = FakeProcess(node_delay=node_delay)
    try:
        await fake.start()
        yield fake
    finally:
        await fake.stop()


def console_script() -> str:
    """The installed ``mcp-server-comfyui`` next to this interpreter (or on PATH)."""
    script = Path(sys.executable).parent / "mcp-server-comfyui"
    found = str(script) if script.exists() else shutil.which("mcp-server-comfyui")
    if not found:
        raise SystemExit("mcp-server-comfyui is not installed: pip install -e '.[dev]'")
    return found


def server_env(comfyui_url: str, **extra: str) -> dict[str, str]:
    """The environment a stdio server gets: the SDK merges it over a minimal default env."""
    return {"COMFYUI_URL": comfyui_url, "PATH": os.environ.get("PATH", ""), **extra}


def server_pid(parent: int) -> int | None:
    """Our MCP server process among ``parent``'s children (Linux), if any."""
    try:
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        for child in children:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"mcp-server-comfyui" in command:
                return int(child)
    except OSError:
        return None
    return None


def rss_mb(pid: int | None = None, field_name: str = "VmRSS") -> float | None:
    """Resident memory of a process in MB from /proc (``VmHWM`` for the peak); None elsewhere."""
    path = Path(f"/proc/{pid or os.getpid()}/status")
    try:
        for line in path.read_text().splitlines():
            if line.startswith(field_name + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def cpu_seconds(pid: int | None = None) -> float | None:
    """User + system CPU time a process has used so far, from /proc (Linux); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid or os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tcp_connections(remote_port: int, pid: int | None = None) -> int | None:
    """Established TCP connections of a process to ``remote_port`` on loopback (Linux only)."""
    fd_dir = Path(f"/proc/{pid or os.getpid()}/fd")
    try:
        inodes = set()
        for fd in fd_dir.iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        count = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(OSError):
                for line in Path(table).read_text().splitlines()[1:]:
                    parts = line.split()
                    remote, state, inode = parts[2], parts[3], parts[9]
                    if (
                        state == "01"
                        and inode in inodes
                        and int(remote.split(":")[1], 16) == (remote_port)
                    ):
                        count += 1
        return count
    except OSError:
        return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- command line and output ----------------------------------------------------------------------


def arguments(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: seconds, not minutes")
    parser.add_argument(
        "--comfyui-url",
        default=os.environ.get("COMFYUI_URL"),
        help="a real ComfyUI for the 'real' variants (env COMFYUI_URL); skipped without it",
    )
    parser.add_argument("--out", type=Path, help="write the JSON result here instead of stdout")
    return parser.parse_args()


@dataclass
class Result:
    """One measure's outcome: tables of figures, targets met or missed, and notes."""

    measure: str
    title: str
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def target(self, name: str, value: float, limit: float, unit: str = "") -> None:
        """Record a target: met when ``value <= limit``."""
        self.targets.append(
            {
                "target": name,
                "measured": round(value, 3),
                "limit": limit,
                "unit": unit,
                "met": bool(value <= limit),
            }
        )


def emit(result: Result, out: Path | None) -> None:
    text = json.dumps(result.__dict__, indent=2, default=str)
    if out is None:
        print(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
