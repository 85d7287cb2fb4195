"""A protocol-faithful fake ComfyUI 0.3.64 for tests.

It answers like the recordings in ``tests/fixtures`` (same JSON shapes, status codes, empty or
text bodies, websocket message order), runs a real queue with a worker, computes images for
the model-free nodes with Pillow, and has fault-injection knobs (``fake.faults``).

Usage::

    async with run_fake_comfyui(node_delay=0.05) as fake:
        httpx.post(f"{fake.url}/prompt", json={...})

Standalone: ``python -m tests.fake_comfyui --port 8188 [--node-delay 0.2] [--models-loadable]``.
"""

from .fake import FakeComfyUI
from .faults import Faults
from .server import run_fake_comfyui

__all__ = ["FakeComfyUI", "Faults", "run_fake_comfyui"]
