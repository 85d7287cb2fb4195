"""``python -m tests.fake_comfyui --port 8188 [--node-delay 0.2] [--models-loadable]``."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from .fake import FakeComfyUI
from .server import SERVER_HEADER


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the fake ComfyUI 0.3.64 standalone.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--prefix", default="")
    parser.add_argument("--node-delay", type=float, default=0.0)
    parser.add_argument("--models-loadable", action="store_true")
    parser.add_argument("--max-upload-size", type=int, default=100 * 1024 * 1024)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    fake = FakeComfyUI(
        prefix=args.prefix,
        node_delay=args.node_delay,
        models_loadable=args.models_loadable,
        max_upload_size=args.max_upload_size,
    )
    fake.url = f"http://{args.host}:{args.port}{fake.prefix}"
    logging.getLogger(__name__).info("fake ComfyUI at %s", fake.url)
    uvicorn.run(
        fake.app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        lifespan="on",
        server_header=False,
        headers=[("server", SERVER_HEADER)],
    )


if __name__ == "__main__":
    main()
