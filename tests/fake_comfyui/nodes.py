"""Runtime implementations of the node classes the fake can actually execute.

Image nodes compute real pixels with Pillow. Model nodes live in ``model_nodes.py``.
A class from /object_info without an implementation here succeeds with no outputs when it has
no outputs at all (``output == []``), and otherwise fails at run time with a clear
``NotImplementedError`` execution_error.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from . import images as im
from .state import FileStore, safe_relpath


class NodeError(Exception):
    """A node failure with a fixed exception type name and traceback (e.g. the recorded one)."""

    def __init__(self, type_name: str, message: str, tb: list[str]) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.message = message
        self.tb = tb


class Interrupted(Exception):
    """Raised inside a node when /interrupt was received."""


@dataclass
class NodeOutput:
    outputs: tuple[Any, ...] = ()
    ui: dict[str, Any] | None = None


class ImageBatch(list[Image.Image]):
    """A batch of RGB images (ComfyUI's IMAGE tensor [B, H, W, 3])."""

    def __str__(self) -> str:
        if not self:
            return "tensor([])"
        return f"tensor(shape=[{len(self)}, {self[0].height}, {self[0].width}, 3])"


class MaskBatch(list[Image.Image]):
    """A batch of masks, mode L, 255 = 1.0 (ComfyUI's MASK tensor [B, H, W])."""

    def __str__(self) -> str:
        if not self:
            return "tensor([])"
        return f"tensor(shape=[{len(self)}, {self[0].height}, {self[0].width}])"


@dataclass
class Latent:
    """A LATENT. The fake keeps pixel-space images (8x the latent size) instead of tensors."""

    images: list[Image.Image]
    noise_mask: list[Image.Image] | None = None

    def __str__(self) -> str:
        w, h = self.images[0].size if self.images else (0, 0)
        return f"{{'samples': tensor(shape=[{len(self.images)}, 4, {h // 8}, {w // 8}])}}"


ProgressFn = Callable[[int, int, bytes | None], Awaitable[None]]


@dataclass
class NodeContext:
    node_id: str
    class_type: str
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    store: FileStore
    models_loadable: bool
    node_delay: float
    progress: ProgressFn
    sleep: Callable[[float], Awaitable[None]]
    state: dict[str, Any] = field(default_factory=dict)

    def read_input_file(self, name: str) -> bytes:
        """folder_paths.get_annotated_filepath(name) in input/ (or ``[output]``/``[temp]``)."""
        kind, relpath = annotated_path(name, "input")
        stored = self.store.get(kind, relpath) if relpath is not None else None
        if stored is None:
            raise FileNotFoundError(2, "No such file or directory", name)
        return stored.data


NodeFn = Callable[[NodeContext, dict[str, Any]], Awaitable[NodeOutput]]
NODES: dict[str, NodeFn] = {}
# Classes that report ProgressBar steps (node_delay is spread over their steps).
PROGRESS_NODES = {"SaveImageWebsocket", "KSampler", "KSamplerAdvanced"}
# Classes whose IS_CHANGED makes them re-run every time (SaveImageWebsocket returns time.time()).
NEVER_CACHED = {"SaveImageWebsocket"}
# Classes whose IS_CHANGED hashes an input file (cache key changes when the file does).
FILE_HASHED_INPUT = {"LoadImage": "image", "LoadImageMask": "image"}


def node(name: str) -> Callable[[NodeFn], NodeFn]:
    def register(fn: NodeFn) -> NodeFn:
        NODES[name] = fn
        return fn

    return register


def annotated_path(name: str, default_kind: str) -> tuple[str, str | None]:
    """Split ``"sub/x.png [output]"`` into (kind, normalised relative path)."""
    kind = default_kind
    for suffix, k in ((" [output]", "output"), (" [input]", "input"), (" [temp]", "temp")):
        if name.endswith(suffix[1:]):
            kind = k
            name = name[: -len(suffix)]
            break
    return kind, safe_relpath(name)


def input_file_hash(store: FileStore, name: str) -> str:
    kind, relpath = annotated_path(str(name), "input")
    stored = store.get(kind, relpath) if relpath is not None else None
    return hashlib.sha256(stored.data).hexdigest() if stored else "missing"


# -- image nodes ---------------------------------------------------------------------------------
@node("EmptyImage")
async def empty_image(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    batch = im.empty_image(a["width"], a["height"], a["batch_size"], a["color"])
    return NodeOutput((ImageBatch(batch),))


@node("ImageInvert")
async def image_invert(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    return NodeOutput((ImageBatch(im.invert(a["image"])),))


@node("ImageScale")
async def image_scale(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    out = im.scale(a["image"], a["upscale_method"], a["width"], a["height"], a["crop"])
    return NodeOutput((ImageBatch(out),))


@node("ImageScaleBy")
async def image_scale_by(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    return NodeOutput((ImageBatch(im.scale_by(a["image"], a["upscale_method"], a["scale_by"])),))


@node("ImageBlur")
async def image_blur(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    return NodeOutput((ImageBatch(im.blur(a["image"], a["blur_radius"], a["sigma"])),))


@node("ImageCrop")
async def image_crop(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    out = im.crop(a["image"], a["width"], a["height"], a["x"], a["y"])
    return NodeOutput((ImageBatch(out),))


@node("ImageToMask")
async def image_to_mask(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    return NodeOutput((MaskBatch(im.image_to_mask(a["image"], a["channel"])),))


@node("MaskToImage")
async def mask_to_image(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    return NodeOutput((ImageBatch(im.mask_to_image(a["mask"])),))


@node("LoadImage")
async def load_image(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    image, mask = im.load_image(ctx.read_input_file(a["image"]))
    return NodeOutput((ImageBatch([image]), MaskBatch([mask])))


@node("LoadImageMask")
async def load_image_mask(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    mask = im.load_mask(ctx.read_input_file(a["image"]), a["channel"])
    return NodeOutput((MaskBatch([mask]),))


def _png_text(ctx: NodeContext) -> dict[str, str]:
    """SaveImage metadata: the API prompt and every extra_pnginfo key (e.g. the UI workflow)."""
    text = {"prompt": json.dumps(ctx.prompt)}
    extra = ctx.extra_data.get("extra_pnginfo")
    if isinstance(extra, dict):
        for key, value in extra.items():
            text[str(key)] = json.dumps(value)
    return text


def save_images(
    ctx: NodeContext, batch: list[Image.Image], prefix: str, kind: str, compress_level: int
) -> dict[str, Any]:
    """folder_paths.get_save_image_path + SaveImage.save_images, into the in-memory store."""
    if batch and "%" in prefix:
        prefix = prefix.replace("%width%", str(batch[0].width))
        prefix = prefix.replace("%height%", str(batch[0].height))
    norm = safe_relpath(prefix)
    if norm is None or norm == "":
        raise Exception(
            "**** ERROR: Saving image outside the output folder is not allowed.\n"
            f" full_output_folder: {prefix}"
        )
    subfolder, _, filename = norm.rpartition("/")
    counter = ctx.store.next_counter(kind, subfolder, filename)
    text = _png_text(ctx)
    results = []
    for batch_number, img in enumerate(batch):
        name = filename.replace("%batch_num%", str(batch_number))
        file = f"{name}_{counter:05}_.png"
        relpath = f"{subfolder}/{file}" if subfolder else file
        ctx.store.put(kind, relpath, im.encode_png(img, text, compress_level))
        results.append({"filename": file, "subfolder": subfolder, "type": kind})
        counter += 1
    return {"images": results}


@node("SaveImage")
async def save_image(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    prefix = a.get("filename_prefix", "ComfyUI")
    return NodeOutput((), save_images(ctx, a["images"], prefix, "output", 4))


@node("PreviewImage")
async def preview_image(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    suffix = "".join(random.choice("abcdefghijklmnopqrstupvxyz") for _ in range(5))
    return NodeOutput((), save_images(ctx, a["images"], f"ComfyUI_temp_{suffix}", "temp", 1))


@node("SaveImageWebsocket")
async def save_image_websocket(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    batch = a["images"]
    step_delay = ctx.node_delay / max(1, len(batch))
    for step, img in enumerate(batch):
        png = im.encode_png(img, compress_level=1)
        await ctx.progress(step, len(batch), png)
        await ctx.sleep(step_delay)
    return NodeOutput((), None)


@node("EmptyLatentImage")
async def empty_latent_image(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    size = (a["width"] // 8 * 8, a["height"] // 8 * 8)
    return NodeOutput((Latent([Image.new("RGB", size, (128, 128, 128))] * a["batch_size"]),))


async def run_unimplemented(ctx: NodeContext, a: dict[str, Any], outputs: list[Any]) -> NodeOutput:
    if not outputs:
        return NodeOutput((), None)
    raise NotImplementedError(
        f"FakeComfyUI does not implement node class {ctx.class_type!r} "
        "(only the image nodes and the basic model nodes run in the fake)"
    )
