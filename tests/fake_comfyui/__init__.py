"""A protocol-faithful fake ComfyUI 0.3.64 for tests.

It answers like the recordings in ``tests/fixtures`` (same JSON shapes, status codes, empty or
text bodies, websocket message order), runs a real queue with a worker, computes images for the
model-free nodes with Pillow, and has fault-injection knobs (``fake.faults``).

Usage::

    async with run_fake_comfyui(node_delay=0.05) as fake:
        async with httpx.AsyncClient(base_url=fake.url) as http:
            await http.post("/prompt", json={"prompt": graph, "client_id": "x"})

Standalone: ``python -m tests.fake_comfyui --port 8188 [--node-delay 0.2] [--models-loadable]``.

Inspection (plain attributes, mutable between requests):
``history``, ``queue_running``, ``queue_pending`` (sorted by number), ``posted_prompts`` (POST
/prompt bodies), ``uploads``, ``interrupt_calls`` (prompt_id or None), ``free_calls``,
``requests`` (method/path/query/headers; websocket handshakes have method "WEBSOCKET"),
``connected_client_ids``, ``files(kind)``, ``store`` (in-memory input/output/temp),
``add_input_file()``, ``models`` (folder -> names; the loader combos follow it), ``node_delay``,
``users``, ``settings``, ``userdata``, ``logs`` (served by /internal/logs[/raw], never under /api).

Newer servers' job API (not in 0.3.64, shape from the research notes): ``FakeComfyUI(jobs_api=True)``
serves ``/api/jobs``, ``/api/jobs/{id}`` and ``POST /api/jobs/{id}/cancel`` (see ``jobs_api.py``);
``jobs_api_cancels`` records the cancels.

Execution: EmptyImage, ImageInvert, ImageScale, ImageScaleBy, ImageBlur, ImageCrop,
ImageToMask, MaskToImage, LoadImage, LoadImageMask, SaveImage, PreviewImage,
SaveImageWebsocket and EmptyLatentImage compute real pixels. Model loaders fail with the
recorded 0-byte SafetensorError unless ``models_loadable=True``; then CheckpointLoaderSimple,
VAELoader, LoraLoader(ModelOnly), UpscaleModelLoader, CLIPTextEncode, CLIPSetLastLayer,
KSampler(Advanced), VAEDecode/Encode(ForInpaint), SetLatentNoiseMask, LatentUpscale(By) and
ImageUpscaleWithModel produce deterministic stand-in images. Any other class from /object_info
succeeds with nothing if it has no outputs, and otherwise fails at run time with an
execution_error (``NotImplementedError``).

Known deviations from the real server: tracebacks of non-recorded errors are approximate or
come from the fake's own code; ``executed`` lists and history output order are deterministic
(sets on the real server); V3 COMBO inputs are validated against their options; a dependency
cycle gives a ``dependency_cycle`` node error (0.3.64 would hit a RecursionError); no 0.35 s
first-prompt delay; the ``server`` header says aiohttp but the transport is uvicorn.
"""

from .fake import FakeComfyUI
from .faults import Faults
from .server import run_fake_comfyui

__all__ = ["FakeComfyUI", "Faults", "run_fake_comfyui"]
