"""Turning a job's outputs into what an agent can afford to receive.

Structured results carry metadata only (file names, kinds, sizes, links), never base64. Images
also come back as inline previews: downscaled (longest side ``max_side``) and re-encoded as WebP,
all previews of one result together kept under ``budget_bytes``. Full-size files stay reachable
through the ``comfy://output/...`` resource and the ``/view`` URL.

Pillow is imported on first use, so it stays off the server's start-up path.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, Field

from comfy_mcp.comfy.models import MediaKind, OutputFile

log = logging.getLogger(__name__)

# Quality/size steps tried in order until a preview fits what is left of the budget.
_ATTEMPTS = ((1.0, 80), (1.0, 60), (0.75, 60), (0.5, 55), (0.35, 50), (0.25, 45))


class OutputItem(BaseModel):
    """One output file, as reported to the agent."""

    node_id: str = Field(description="Id of the node that produced the file")
    filename: str
    subfolder: str = ""
    type: str = Field(description="ComfyUI folder: output, temp or input")
    kind: str = Field(description="image, animation, video, audio, 3d, text, latent or other")
    mime_type: str
    resource_uri: str = Field(description="Read this MCP resource for the full-size file")
    url: str = Field(description="ComfyUI /view URL of the full-size file")
    width: int | None = None
    height: int | None = None
    size_bytes: int | None = None
    preview: str | None = Field(
        default=None, description="'inline' when a downscaled preview is in this result"
    )
    saved_path: str | None = Field(
        default=None, description="Local copy, when COMFY_MCP_OUTPUT_DIR is set"
    )


def output_resource_uri(file: OutputFile, backend: str | None = None) -> str:
    """``comfy://output/{type}/[{subfolder}/]{filename}[?backend=name]``; a nested subfolder is
    percent-encoded so the URI still matches the resource template."""
    parts = (
        [file.type, file.subfolder, file.filename] if file.subfolder else [file.type, file.filename]
    )
    uri = "comfy://output/" + "/".join(quote(part, safe="") for part in parts)
    return f"{uri}?backend={quote(backend, safe='')}" if backend else uri


@dataclass(frozen=True)
class Preview:
    data: bytes
    mime_type: str
    width: int
    height: int


@dataclass(frozen=True)
class ImageFacts:
    width: int
    height: int


def image_facts(data: bytes) -> ImageFacts | None:
    """Width and height of an image, or None when Pillow cannot read it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return ImageFacts(image.width, image.height)
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def make_preview(data: bytes, *, max_side: int, budget: int) -> Preview | None:
    """A WebP preview of ``data`` no larger than ``budget`` bytes, or None if none fits."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if budget <= 0:
        return None
    try:
        opened = Image.open(io.BytesIO(data))
        opened.draft("RGB", (max_side, max_side))  # cheap downscale while decoding JPEGs
        opened.load()
        image: Image.Image = opened
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        log.info("no preview: %s", exc)
        return None
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    # Decoding a big PNG is the floor (about 0.5 s for 4096² here); everything after it works
    # on the small image: a fast integer reduce first (reducing_gap), then LANCZOS, and the
    # EXIF rotation applied to the thumbnail rather than the full-size copy.
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=1.5)
    image = ImageOps.exif_transpose(image)
    for scale, quality in _ATTEMPTS:
        candidate = image
        if scale < 1.0:
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            candidate = image.resize(size, Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        candidate.save(buffer, format="WEBP", quality=quality, method=2)
        if buffer.tell() <= budget:
            return Preview(buffer.getvalue(), "image/webp", candidate.width, candidate.height)
    return None


def previewable(file: OutputFile) -> bool:
    return file.kind in (
        MediaKind.IMAGE,
        MediaKind.ANIMATION,
    ) and not file.filename.lower().endswith((".tif", ".tiff"))


def describe_outputs(items: list[OutputItem], texts: dict[str, list[str]]) -> str:
    """A short text summary of outputs for the agent (the structured part has the details)."""
    if not items and not texts:
        return "No output files."
    lines = []
    for item in items:
        size = f" {item.width}×{item.height}" if item.width and item.height else ""
        lines.append(f"- {item.kind}{size}: {item.filename} → {item.resource_uri}")
    for node_id, values in texts.items():
        for value in values:
            lines.append(f"- text from node {node_id}: {value[:500]}")
    return "\n".join(lines)


def jsonable(value: Any) -> Any:
    """Make a value JSON-safe for structured content (bytes are never inlined)."""
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value
