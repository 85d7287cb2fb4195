"""Collecting a finished job's outputs: metadata for every file, previews for images, and
(optionally) a copy of each file in a local folder."""

from __future__ import annotations

import base64
import functools
import logging
import re
from pathlib import Path

import anyio
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
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


async def collect_outputs(
    comfy: ComfyClient,
    job: Job,
    *,
    public: Endpoint,
    previews: bool,
    max_side: int,
    budget: int,
    save_dir: Path | None = None,
    backend: str | None = None,
) -> tuple[list[OutputItem], list[ImageContent], dict[str, list[str]]]:
    """Every output file of ``job`` with its metadata, plus inline previews within ``budget``.

    The budget is shared: each image may use an equal share of what is left, so ten outputs
    all get a preview instead of the first one taking everything. Decoding and encoding run in
    a worker thread, so a 4K image does not stall other sessions' events.
    """
    files = job.files
    items: list[OutputItem] = []
    images: list[ImageContent] = []
    remaining = budget if previews else 0
    waiting_previews = sum(1 for f in files if previewable(f))
    for file in files:
        item = _item(file, public, backend)
        items.append(item)
        wants_preview = previewable(file)
        if not wants_preview and save_dir is None:
            continue
        try:
            data = await comfy.view(
                file.filename, subfolder=file.subfolder, type=file.type, max_bytes=MAX_FETCH_BYTES
            )
        except ComfyError as exc:
            log.info("cannot fetch %s: %s", file.path, exc)
            continue
        item.size_bytes = len(data)
        if save_dir is not None:
            item.saved_path = str(
                await anyio.to_thread.run_sync(save_output, save_dir, job, file, data)
            )
        if not wants_preview:
            continue
        facts = await anyio.to_thread.run_sync(image_facts, data)
        if facts is not None:
            item.width, item.height = facts.width, facts.height
        share = remaining // max(1, waiting_previews)
        waiting_previews -= 1
        if share <= 0:
            continue
        preview = await anyio.to_thread.run_sync(
            functools.partial(make_preview, data, max_side=max_side, budget=share)
        )
        if preview is not None:
            remaining -= len(preview.data)
            item.preview = "inline"
            images.append(
                ImageContent(
                    type="image",
                    data=base64.b64encode(preview.data).decode("ascii"),
                    mime_type=preview.mime_type,
                )
            )
    texts = output_texts(job.history.outputs) if job.history else {}
    return items, images, texts


def save_output(root: Path, job: Job, file: OutputFile, data: bytes) -> Path:
    """Write ``data`` under ``root/<prompt id>/`` with a name that cannot escape or collide.

    Names keep only ``[A-Za-z0-9._-]`` and are prefixed with the node id; an existing file is
    never overwritten (a second call for the same job returns the file already saved).
    """
    folder = root / _safe(job.prompt_id)
    folder.mkdir(parents=True, exist_ok=True)
    stem = _safe(f"{file.node_id}_{file.subfolder.replace('/', '_')}_{file.filename}".strip("_"))
    target = folder / stem
    resolved_root = root.resolve()
    if resolved_root not in target.resolve().parents:
        raise ValueError(f"refusing to write outside {root}: {target}")
    try:
        with open(target, "xb") as out:
            out.write(data)
    except FileExistsError:
        pass
    return target


def _safe(name: str) -> str:
    cleaned = _UNSAFE.sub("_", name).strip("._") or "file"
    return cleaned[:200]


def _item(file: OutputFile, public: Endpoint, backend: str | None) -> OutputItem:
    return OutputItem(
        node_id=file.node_id,
        filename=file.filename,
        subfolder=file.subfolder,
        type=file.type,
        kind=str(file.kind),
        mime_type=file.mime_type,
        resource_uri=output_resource_uri(file, backend),
        url=public.view_url(
            file.filename, subfolder=file.subfolder, type=file.type, include_auth=False
        ),
    )
