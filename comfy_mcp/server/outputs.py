"""Collecting a finished job's outputs: metadata for every file, previews for images."""

from __future__ import annotations

import logging

from mcp.types import ImageContent

from comfy_mcp.comfy import ComfyClient, ComfyError, Endpoint, Job
from comfy_mcp.comfy.models import OutputFile, output_texts
from comfy_mcp.server.content import (
    OutputItem,
    image_facts,
    make_preview,
    output_resource_uri,
    previewable,
)

log = logging.getLogger(__name__)

MAX_FETCH_BYTES = 256 * 1024 * 1024


async def collect_outputs(
    comfy: ComfyClient,
    job: Job,
    *,
    public: Endpoint,
    previews: bool,
    max_side: int,
    budget: int,
) -> tuple[list[OutputItem], list[ImageContent], dict[str, list[str]]]:
    """Every output file of ``job`` with its metadata, plus inline previews within ``budget``."""
    items: list[OutputItem] = []
    images: list[ImageContent] = []
    remaining = budget if previews else 0
    for file in job.files:
        item = _item(file, public)
        if previewable(file):
            try:
                data = await comfy.view(
                    file.filename,
                    subfolder=file.subfolder,
                    type=file.type,
                    max_bytes=MAX_FETCH_BYTES,
                )
            except ComfyError as exc:
                log.info("cannot fetch %s for a preview: %s", file.path, exc)
                items.append(item)
                continue
            item.size_bytes = len(data)
            facts = image_facts(data)
            if facts is not None:
                item.width, item.height = facts.width, facts.height
            if remaining > 0:
                preview = make_preview(data, max_side=max_side, budget=remaining)
                if preview is not None:
                    remaining -= len(preview.data)
                    item.preview = "inline"
                    images.append(_image_content(preview.data, preview.mime_type))
        items.append(item)
    texts = output_texts(job.history.outputs) if job.history else {}
    return items, images, texts


def _item(file: OutputFile, public: Endpoint) -> OutputItem:
    return OutputItem(
        node_id=file.node_id,
        filename=file.filename,
        subfolder=file.subfolder,
        type=file.type,
        kind=str(file.kind),
        mime_type=file.mime_type,
        resource_uri=output_resource_uri(file),
        url=public.view_url(
            file.filename, subfolder=file.subfolder, type=file.type, include_auth=False
        ),
    )


def _image_content(data: bytes, mime_type: str) -> ImageContent:
    import base64

    return ImageContent(
        type="image", data=base64.b64encode(data).decode("ascii"), mime_type=mime_type
    )
