"""Measure 5: a 4096×4096 PNG output to its bounded preview.

``comfy_mcp.server.content.make_preview(data, max_side=768, budget=512 KiB)`` on PNGs saved the
way ComfyUI's SaveImage saves them (``compress_level=4``):

- ``photo-like``: smooth colour gradients with fine grain, the kind of content generated images
  have (the target applies to this one);
- ``noise``: pure random pixels, the worst case for PNG decoding (for reference).

Also timed alone: decoding the PNG (``Image.open`` + ``load``), which the preview cannot avoid.
"""

from __future__ import annotations

import io
import time
from typing import Any

from PIL import Image, ImageFilter

from bench.common import Result, arguments, emit, ms, summary
from comfy_mcp.server.content import make_preview

MAX_SIDE, BUDGET = 768, 512 * 1024


def photo_like(side: int) -> bytes:
    """Gradients in three directions plus soft grain, as RGB PNG bytes."""
    horizontal = Image.linear_gradient("L").rotate(90).resize((side, side))
    vertical = Image.linear_gradient("L").resize((side, side))
    grain = Image.effect_noise((side, side), 24).filter(ImageFilter.GaussianBlur(1.2))
    blue = Image.blend(vertical.rotate(45), grain, 0.5)
    image = Image.merge("RGB", (horizontal, Image.blend(vertical, grain, 0.25), blue))
    return _png(image)


def noise(side: int) -> bytes:
    channels = [Image.effect_noise((side, side), 128) for _ in range(3)]
    return _png(Image.merge("RGB", channels))


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=4)
    return buffer.getvalue()


def decode(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.load()


def main() -> None:
    args = arguments(__doc__ or "")
    result = Result("preview", "5. Preview encoding: a 4096² PNG to its bounded preview")
    side, rounds = (1024, 1) if args.smoke else (4096, 7)
    rows: list[dict[str, Any]] = []
    for name, make in (("photo-like", photo_like), ("noise", noise)):
        data = make(side)
        make_preview(data, max_side=MAX_SIDE, budget=BUDGET)  # warm-up: Pillow's plugins
        previews, decodes = [], []
        preview = None
        for _ in range(rounds):
            started = time.perf_counter()
            preview = make_preview(data, max_side=MAX_SIDE, budget=BUDGET)
            previews.append(ms(time.perf_counter() - started))
            started = time.perf_counter()
            decode(data)
            decodes.append(ms(time.perf_counter() - started))
        if preview is None:
            raise RuntimeError(f"no preview for the {name} image")
        s = summary(previews)
        rows.append(
            {
                "image": f"{name} {side}²",
                "PNG MB": round(len(data) / 2**20, 1),
                "runs": s["n"],
                "make_preview median ms": s["median"],
                "max ms": s["max"],
                "of which PNG decode median ms": summary(decodes)["median"],
                "preview": f"{preview.width}×{preview.height} {preview.mime_type}",
                "preview KB": round(len(preview.data) / 1024, 1),
            }
        )
        if name == "photo-like":
            result.target(
                f"make_preview of a {side}² photo-like PNG, median", s["median"], 250, "ms"
            )
    result.tables["make_preview(max_side=768, budget=512 KiB)"] = rows
    result.notes.append(
        "One thread, in this process; the server runs the same function off its event loop."
    )
    emit(result, args.out)


if __name__ == "__main__":
    main()
