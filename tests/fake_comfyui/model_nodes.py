"""Model nodes (loaders, text encoding, sampling, VAE).

With ``models_loadable=False`` (the default, like the recording's 0-byte placeholder files) every
loader that reads a model file fails with the recorded ``SafetensorError: header too small``.
With ``models_loadable=True`` loaders return stand-in objects and KSampler "renders" a
deterministic gradient+noise image (seeded by seed, prompt text and model) at the latent size x8,
reporting one ``progress`` event per step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from PIL import Image

from . import images as im
from . import recorded
from .nodes import ImageBatch, Latent, NodeContext, NodeError, NodeOutput, node

_EXECUTOR_FRAMES = 4  # execute → get_output_data → _async_map_node_over_list → process_inputs


@dataclass(frozen=True)
class FakeModel:
    name: str
    loras: tuple[tuple[str, float], ...] = ()

    def __str__(self) -> str:
        return "<comfy.model_patcher.ModelPatcher object>"


@dataclass(frozen=True)
class FakeClip:
    name: str
    loras: tuple[tuple[str, float], ...] = ()
    stop_at_clip_layer: int = -1

    def __str__(self) -> str:
        return "<comfy.sd.CLIP object>"


@dataclass(frozen=True)
class FakeVae:
    name: str

    def __str__(self) -> str:
        return "<comfy.sd.VAE object>"


@dataclass(frozen=True)
class Conditioning:
    text: str

    def __str__(self) -> str:
        return "[[tensor(shape=[1, 77, 768]), {'pooled_output': tensor(shape=[1, 768])}]]"


@dataclass(frozen=True)
class UpscaleModel:
    name: str
    scale: int

    def __str__(self) -> str:
        return "<spandrel.ImageModelDescriptor object>"


def placeholder_error(frame: str | None = None) -> NodeError:
    """The recorded failure of loading a 0-byte .safetensors file.

    ``frame`` replaces the recorded nodes.py frame (load_checkpoint) for other loaders; those
    tracebacks are approximations (never recorded)."""
    rec = recorded.checkpoint_error()
    tb = rec["traceback"]
    if frame is not None:
        tb = [*tb[:_EXECUTOR_FRAMES], frame, *tb[-2:]]
    return NodeError(rec["exception_type"], rec["exception_message"], tb)


def _frame(function: str, code: str) -> str:
    return f'  File "<comfyui-root>/nodes.py", line 0, in {function}\n    {code}\n'


def _require_loadable(ctx: NodeContext, frame: str | None = None) -> None:
    if not ctx.models_loadable:
        raise placeholder_error(frame)


@node("CheckpointLoaderSimple")
async def checkpoint_loader(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    _require_loadable(ctx)
    name = a["ckpt_name"]
    return NodeOutput((FakeModel(name), FakeClip(name), FakeVae(name)))


@node("VAELoader")
async def vae_loader(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    if a["vae_name"] != "pixel_space":
        _require_loadable(ctx, _frame("load_vae", "sd = comfy.utils.load_torch_file(vae_path)"))
    return NodeOutput((FakeVae(a["vae_name"]),))


@node("LoraLoader")
async def lora_loader(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    model, clip = a["model"], a["clip"]
    sm, sc = a["strength_model"], a["strength_clip"]
    if sm == 0 and sc == 0:
        return NodeOutput((model, clip))
    code = "lora = comfy.utils.load_torch_file(lora_path, safe_load=True)"
    _require_loadable(ctx, _frame("load_lora", code))
    name = a["lora_name"]
    new_model = replace(model, loras=(*model.loras, (name, sm)))
    new_clip = replace(clip, loras=(*clip.loras, (name, sc)))
    return NodeOutput((new_model, new_clip))


@node("LoraLoaderModelOnly")
async def lora_loader_model_only(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    model = a["model"]
    if a["strength_model"] == 0:
        return NodeOutput((model,))
    code = "lora = comfy.utils.load_torch_file(lora_path, safe_load=True)"
    _require_loadable(ctx, _frame("load_lora", code))
    return NodeOutput(
        (replace(model, loras=(*model.loras, (a["lora_name"], a["strength_model"]))),)
    )


@node("UpscaleModelLoader")
async def upscale_model_loader(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    code = "sd = comfy.utils.load_torch_file(model_path, safe_load=True)"
    _require_loadable(ctx, _frame("load_model", code))
    match = re.search(r"(\d+)x", a["model_name"])
    return NodeOutput((UpscaleModel(a["model_name"], int(match.group(1)) if match else 4),))


@node("ImageUpscaleWithModel")
async def image_upscale_with_model(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    factor = a["upscale_model"].scale
    out = [
        img.resize((img.width * factor, img.height * factor), Image.Resampling.LANCZOS)
        for img in a["image"]
    ]
    return NodeOutput((ImageBatch(out),))


@node("CLIPTextEncode")
async def clip_text_encode(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    if a.get("clip") is None:
        raise RuntimeError(
            "ERROR: clip input is invalid: None\n\nIf the clip is from a checkpoint loader node "
            "your checkpoint does not contain a valid clip or text encoder model."
        )
    return NodeOutput((Conditioning(str(a["text"])),))


@node("CLIPSetLastLayer")
async def clip_set_last_layer(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    return NodeOutput((replace(a["clip"], stop_at_clip_layer=a["stop_at_clip_layer"]),))


async def _sample(
    ctx: NodeContext, a: dict[str, Any], seed: int, steps: int, denoise: float
) -> NodeOutput:
    model: FakeModel = a["model"]
    latent: Latent = a["latent_image"]
    positive, negative = a["positive"], a["negative"]
    for step in range(steps):
        await ctx.sleep(ctx.node_delay / max(1, steps))
        await ctx.progress(step + 1, steps, None)
    key = "|".join(
        str(x)
        for x in (
            model.name,
            model.loras,
            getattr(positive, "text", ""),
            getattr(negative, "text", ""),
            a.get("cfg"),
            a.get("sampler_name"),
            a.get("scheduler"),
        )
    )
    out = []
    for index, src in enumerate(latent.images):
        gen = im.generated_image(src.width, src.height, seed + index, key)
        if denoise < 1.0:
            gen = Image.blend(src.convert("RGB"), gen, max(0.0, denoise))
        if latent.noise_mask:
            mask = latent.noise_mask[min(index, len(latent.noise_mask) - 1)].resize(src.size)
            gen = Image.composite(gen, src.convert("RGB"), mask)
        out.append(gen)
    return NodeOutput((Latent(out, latent.noise_mask),))


@node("KSampler")
async def ksampler(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    return await _sample(ctx, a, a["seed"], a["steps"], a.get("denoise", 1.0))


@node("KSamplerAdvanced")
async def ksampler_advanced(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    steps = max(0, min(a["steps"], a["end_at_step"]) - a["start_at_step"])
    denoise = steps / a["steps"] if a["steps"] else 1.0
    return await _sample(ctx, a, a["noise_seed"], steps, denoise)


@node("VAEDecode")
async def vae_decode(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    return NodeOutput((ImageBatch(img.convert("RGB") for img in a["samples"].images),))


def _crop8(img: Image.Image) -> Image.Image:
    w, h = img.width // 8 * 8, img.height // 8 * 8
    x, y = (img.width % 8) // 2, (img.height % 8) // 2
    return img.crop((x, y, x + w, y + h)) if (w, h) != img.size else img


@node("VAEEncode")
async def vae_encode(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    return NodeOutput((Latent([_crop8(img) for img in a["pixels"]]),))


@node("VAEEncodeForInpaint")
async def vae_encode_for_inpaint(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    pixels = [_crop8(img) for img in a["pixels"]]
    masks = [m.resize(pixels[0].size) for m in a["mask"]]
    gray = Image.new("RGB", pixels[0].size, (128, 128, 128))
    filled = [
        Image.composite(gray, img, masks[min(i, len(masks) - 1)]) for i, img in enumerate(pixels)
    ]
    return NodeOutput((Latent(filled, masks),))


@node("SetLatentNoiseMask")
async def set_latent_noise_mask(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    return NodeOutput((Latent(list(a["samples"].images), list(a["mask"])),))


def _resize_latent(latent: Latent, method: str, width: int, height: int, crop: str) -> Latent:
    size = (max(8, width // 8 * 8), max(8, height // 8 * 8))
    out = []
    for img in latent.images:
        src = im.center_crop_to_aspect(img, *size) if crop == "center" else img
        out.append(src.resize(size, im.RESAMPLE.get(method, Image.Resampling.BILINEAR)))
    return Latent(out, latent.noise_mask)


@node("LatentUpscale")
async def latent_upscale(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    latent: Latent = a["samples"]
    width, height = a["width"], a["height"]
    if width == 0 and height == 0:
        return NodeOutput((latent,))
    w0, h0 = latent.images[0].size
    if width == 0:
        height = max(64, height)
        width = max(64, round(w0 * height / h0))
    elif height == 0:
        width = max(64, width)
        height = max(64, round(h0 * width / w0))
    else:
        width, height = max(64, width), max(64, height)
    return NodeOutput((_resize_latent(latent, a["upscale_method"], width, height, a["crop"]),))


@node("LatentUpscaleBy")
async def latent_upscale_by(ctx: NodeContext, a: dict[str, Any]) -> NodeOutput:
    latent: Latent = a["samples"]
    w0, h0 = latent.images[0].size
    width = round(w0 / 8 * a["scale_by"]) * 8
    height = round(h0 / 8 * a["scale_by"]) * 8
    return NodeOutput((_resize_latent(latent, a["upscale_method"], width, height, "disabled"),))
