"""Pillow helpers: the image math of the model-free nodes, PNG encoding, /view re-encoding."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageFilter, ImageOps
from PIL.PngImagePlugin import PngInfo

RESAMPLE = {
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "bislerp": Image.Resampling.BICUBIC,
}

Batch = list[Image.Image]


def empty_image(width: int, height: int, batch_size: int, color: int) -> Batch:
    rgb = ((color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF)
    return [Image.new("RGB", (width, height), rgb) for _ in range(batch_size)]


def invert(images: Batch) -> Batch:
    return [ImageOps.invert(img.convert("RGB")) for img in images]


def center_crop_to_aspect(img: Image.Image, width: int, height: int) -> Image.Image:
    """comfy.utils.common_upscale(crop="center"): crop the source to the target aspect."""
    old_w, old_h = img.size
    old_aspect = old_w / old_h
    new_aspect = width / height
    x = y = 0
    if old_aspect > new_aspect:
        x = round((old_w - old_w * (new_aspect / old_aspect)) / 2)
    elif old_aspect < new_aspect:
        y = round((old_h - old_h * (old_aspect / new_aspect)) / 2)
    return img.crop((x, y, old_w - x, old_h - y))


def scale(images: Batch, method: str, width: int, height: int, crop: str) -> Batch:
    """ImageScale, including the 0 = keep-aspect rule."""
    out = []
    for img in images:
        w, h = width, height
        if w == 0 and h == 0:
            out.append(img)
            continue
        if w == 0:
            w = max(1, round(img.width * h / img.height))
        elif h == 0:
            h = max(1, round(img.height * w / img.width))
        src = center_crop_to_aspect(img, w, h) if crop == "center" else img
        out.append(src.resize((w, h), RESAMPLE.get(method, Image.Resampling.BILINEAR)))
    return out


def scale_by(images: Batch, method: str, factor: float) -> Batch:
    out = []
    for img in images:
        size = (max(1, round(img.width * factor)), max(1, round(img.height * factor)))
        out.append(img.resize(size, RESAMPLE.get(method, Image.Resampling.BILINEAR)))
    return out


def blur(images: Batch, radius: int, sigma: float) -> Batch:
    if radius == 0:
        return list(images)
    return [img.filter(ImageFilter.GaussianBlur(radius=sigma)) for img in images]


def crop(images: Batch, width: int, height: int, x: int, y: int) -> Batch:
    out = []
    for img in images:
        x0 = min(x, img.width - 1)
        y0 = min(y, img.height - 1)
        out.append(img.crop((x0, y0, min(x0 + width, img.width), min(y0 + height, img.height))))
    return out


def encode_png(
    img: Image.Image, text: dict[str, str] | None = None, compress_level: int = 4
) -> bytes:
    info = None
    if text:
        info = PngInfo()
        for key, value in text.items():
            info.add_text(key, value)
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info, compress_level=compress_level)
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def load_image(data: bytes) -> tuple[Image.Image, Image.Image]:
    """LoadImage: (RGB image, mask) where the mask is 1 - alpha (255 = masked)."""
    img = ImageOps.exif_transpose(decode(data)) or decode(data)
    if img.mode == "I":
        img = img.point(lambda i: i * (1 / 255))
    rgb = img.convert("RGB")
    if "A" in img.getbands():
        mask = ImageOps.invert(img.getchannel("A"))
    elif img.mode == "P" and "transparency" in img.info:
        mask = ImageOps.invert(img.convert("RGBA").getchannel("A"))
    else:
        mask = Image.new("L", (64, 64), 0)
    return rgb, mask


def load_mask(data: bytes, channel: str) -> Image.Image:
    """LoadImageMask: the chosen channel; for alpha the mask is inverted like ComfyUI."""
    img = ImageOps.exif_transpose(decode(data)) or decode(data)
    index = {"red": "R", "green": "G", "blue": "B", "alpha": "A"}[channel]
    if img.getbands() != ("R", "G", "B", "A"):
        img = img.convert("RGBA") if img.mode in ("P", "LA", "RGBA") else img.convert("RGB")
    if index not in img.getbands():
        return Image.new("L", (64, 64), 0)
    band = img.getchannel(index)
    return ImageOps.invert(band) if index == "A" else band


def image_to_mask(images: Batch, channel: str) -> Batch:
    index = {"red": 0, "green": 1, "blue": 2, "alpha": 3}[channel]
    out = []
    for img in images:
        rgba = img.convert("RGBA")
        out.append(rgba.split()[index])
    return out


def mask_to_image(masks: Batch) -> Batch:
    return [m.convert("RGB") for m in masks]


def generated_image(width: int, height: int, seed: int, text: str = "") -> Image.Image:
    """A deterministic stand-in for a sampled image: a seeded two-colour gradient plus noise."""
    rng = random.Random(f"{seed}:{text}")
    c1 = tuple(rng.randrange(256) for _ in range(3))
    c2 = tuple(rng.randrange(256) for _ in range(3))
    gradient = Image.linear_gradient("L").rotate(rng.randrange(360)).resize((width, height))
    base = ImageOps.colorize(gradient, c1, c2)
    noise = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    return Image.blend(base, noise, 0.15)


def view_preview(data: bytes, preview: str, channel: str) -> tuple[bytes, str]:
    """/view?preview=fmt;quality: re-encode at full size (webp or jpeg)."""
    parts = preview.split(";")
    fmt = parts[0]
    if fmt not in ("webp", "jpeg") or "a" in channel:
        fmt = "webp"
    quality = int(parts[-1]) if parts[-1].isdigit() else 90
    img = decode(data)
    if fmt == "jpeg" or channel == "rgb":
        img = img.convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format=fmt, quality=quality)
    return buf.getvalue(), f"image/{fmt}"


def view_rgb(data: bytes) -> bytes:
    img = decode(data)
    if img.mode == "RGBA":
        r, g, b, _ = img.split()
        img = Image.merge("RGB", (r, g, b))
    else:
        img = img.convert("RGB")
    return encode_png(img, compress_level=6)


def view_alpha(data: bytes) -> bytes:
    img = decode(data)
    alpha = img.split()[3] if img.mode == "RGBA" else Image.new("L", img.size, 255)
    out = Image.new("RGBA", img.size)
    out.putalpha(alpha)
    return encode_png(out, compress_level=6)


def apply_mask_alpha(original: bytes, mask_upload: bytes) -> bytes:
    """/upload/mask: copy the uploaded image's alpha channel into the original."""
    base = decode(original).convert("RGBA")
    alpha = decode(mask_upload).convert("RGBA").getchannel("A")
    if alpha.size != base.size:
        alpha = alpha.resize(base.size)
    base.putalpha(alpha)
    return encode_png(base, compress_level=4)
