"""The fake ComfyUI in its own process, for the benchmarks: ``python -m bench.fake_server``.

It prints its base URL on stdout once it listens (on a free loopback port), then serves until
terminated. Besides the fake's routes it answers ``GET /bench/sockets`` with its own count of
websocket connections (so a benchmark can check "one websocket per backend" from the far side)
and the number of HTTP requests it has served, by method and first path segment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from collections import Counter
from typing import Any

from tests.fake_comfyui import FakeComfyUI
from tests.fake_comfyui.server import UvicornRunner


def with_socket_route(fake: FakeComfyUI) -> Any:
    inner = fake.app
    requests: Counter[str] = Counter()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/bench/sockets":
            body = json.dumps(
                {
                    "client_ids": fake.connected_client_ids,
                    "connections": len(fake.hub.all_connections),
                    "requests": requests,
                }
            ).encode()
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "http":
            route = "/" + scope["path"].strip("/").split("/")[0]
            requests[f"{scope['method']} {route}"] += 1
        await inner(scope, receive, send)

    return app


async def serve(node_delay: float) -> None:
    fake = FakeComfyUI(node_delay=node_delay)
    runner = UvicornRunner(with_socket_route(fake))
    fake.start_worker()
    await runner.start()
    print(f"http://127.0.0.1:{runner.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await fake.aclose()
    await runner.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--node-delay", type=float, default=0.0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.node_delay))


if __name__ == "__main__":
    main()
