"""Tools that put an agent's images into ComfyUI's input folder: ``upload_image``, ``upload_mask``.

An agent cannot write files on the ComfyUI machine, yet img2img, inpaint and upscale templates
need an input file name. These tools read the image the agent names (see
:mod:`comfy_mcp.server.sources` for the accepted forms and the security rules), upload it with
POST /upload/image, and return the name ComfyUI actually stored: it renames on clashes, so the
returned ``reference`` is the value to pass on, never the name we sent.

Masks go through /upload/image too. ComfyUI's /upload/mask is the mask editor's route: it needs an
``original_ref`` to an already uploaded image and writes the mask into that image's alpha
channel, which is not what an agent holding a black-and-white mask wants. A mask uploaded as a
plain image is read by ``LoadImageMask`` (the inpaint template's ``mask`` parameter) from the
channel in ``mask_channel``; the result suggests which one fits the file.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from comfy_mcp.comfy import ComfyClient
from comfy_mcp.comfy.errors import ComfyHTTPError, UploadTooLargeError
from comfy_mcp.server.errors import tool_errors
from comfy_mcp.server.sources import (
    MAX_BYTES_VAR,
    ImageSource,
    SourceError,
    SourceTooLargeError,
    format_size,
    is_local_path,
    is_url_or_data,
    looks_like_base64,
    read_image_source,
)
from comfy_mcp.server.state import ServerState

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_SIZE = 100 * 1024 * 1024  # ComfyUI's default, when /features does not say
# ComfyUI's limit applies to the whole multipart body; leave room for the form fields around
# the file so a file just under the limit is not refused by the server.
MULTIPART_OVERHEAD = 4096

UPLOADS = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)

_SUBFOLDER_PART = re.compile(r"[A-Za-z0-9._ -]+")

ImageArgument = Annotated[
    str,
    Field(
        min_length=1,
        description="The image: a data URL ('data:image/png;base64,...'), bare base64 of the "
        "file, an http(s) URL of a public host, or a path to a file inside a folder the server "
        "allows (COMFY_MCP_INPUT_ROOTS). PNG, JPEG, WebP, GIF, BMP or TIFF.",
    ),
]
SubfolderArgument = Annotated[
    str,
    Field(
        max_length=200,
        description="Subfolder of ComfyUI's input folder to store it in, e.g. 'masks'; "
        "'' (default) for the top level",
    ),
]
OverwriteArgument = Annotated[
    bool,
    Field(
        description="Replace an existing file of the same name. By default a clash gets a "
        "new name such as 'photo (1).png'; use the returned reference either way"
    ),
]


BackendArgument = Annotated[
    str | None,
    Field(description="ComfyUI backend to upload to (several configured); default: the first"),
]


class UploadedImage(BaseModel):
    """What ComfyUI stored; ``reference`` is the value to pass on."""

    name: str = Field(description="Stored file name (ComfyUI renames clashes: this is the truth)")
    subfolder: str
    type: str = Field(description="ComfyUI folder type: 'input'")
    reference: str = Field(
        description="Put this in a LoadImage 'image' input or a template's image parameter "
        "(subfolder/name when there is a subfolder)"
    )
    width: int
    height: int
    size_bytes: int
    mask_channel: Literal["alpha", "red"] | None = Field(
        default=None,
        description="upload_mask only: the channel LoadImageMask should read (the inpaint "
        "template's mask_channel): 'alpha' when the file has transparency (transparent pixels "
        "are repainted), else 'red' (white pixels are repainted)",
    )


def register_upload_tools(server: MCPServer, state: ServerState) -> None:
    """Add ``upload_image`` and ``upload_mask`` to ``server``."""

    @server.tool(title="Upload an input image", annotations=UPLOADS)
    async def upload_image(
        image: ImageArgument,
        subfolder: SubfolderArgument = "",
        overwrite: OverwriteArgument = False,
        backend: BackendArgument = None,
    ) -> UploadedImage:
        """Upload an image to ComfyUI's input folder for img2img, upscale or inpaint workflows.

        Returns the stored reference to pass as the workflow's image parameter.
        """
        client = state.pool.named(backend).client if backend else None
        return await upload_source(
            state, image, subfolder=subfolder, overwrite=overwrite, client=client
        )

    @server.tool(title="Upload a mask image", annotations=UPLOADS)
    async def upload_mask(
        image: ImageArgument,
        subfolder: SubfolderArgument = "",
        overwrite: OverwriteArgument = False,
        backend: BackendArgument = None,
    ) -> UploadedImage:
        """Upload an inpainting mask (same size as the image it masks) to ComfyUI's input folder.

        White pixels (or transparent ones, with mask_channel 'alpha') mark the area to repaint.
        Pass the returned reference as the inpaint template's 'mask' and mask_channel as its
        'mask_channel'.
        """
        client = state.pool.named(backend).client if backend else None
        return await upload_source(
            state, image, subfolder=subfolder, overwrite=overwrite, mask=True, client=client
        )


async def upload_source(
    state: ServerState,
    image: str,
    *,
    subfolder: str = "",
    overwrite: bool = False,
    mask: bool = False,
    argument: str = "image",
    client: ComfyClient | None = None,
) -> UploadedImage:
    """Read the image ``image`` names, check it, upload it; raise ToolError on any failure.

    ``argument`` names the tool argument or template parameter in error messages; ``client`` is
    the backend to upload to (the default backend when None).
    """
    client = client or state.comfy
    with tool_errors():
        folder = _check_subfolder(subfolder)
        limit = await _upload_limit(client)
        source = await _read(state, image, limit, argument)
        if len(source.data) + MULTIPART_OVERHEAD > limit:
            raise ToolError(_too_large(argument, len(source.data), limit, server=True))
        try:
            stored = await client.upload_image(
                source.data, source.filename, subfolder=folder, overwrite=overwrite
            )
        except UploadTooLargeError as exc:
            raise ToolError(
                f"{argument!r}: the image is too large ({format_size(len(source.data))}): "
                "ComfyUI refused the upload with HTTP 413 (its max_upload_size, or a proxy's "
                "body limit). Send a smaller or more compressed image (JPEG or WebP, or fewer "
                "pixels)"
            ) from exc
    channel = await asyncio.to_thread(_mask_channel, source.data) if mask else None
    log.info(
        "uploaded %s (%s, %dx%d) as %s",
        source.filename,
        format_size(len(source.data)),
        source.width,
        source.height,
        stored.reference,
    )
    return UploadedImage(
        name=stored.name,
        subfolder=stored.subfolder,
        type=stored.type,
        reference=stored.reference,
        width=source.width,
        height=source.height,
        size_bytes=len(source.data),
        mask_channel=channel,
    )


async def resolve_image_argument(
    state: ServerState, value: str, *, parameter: str = "image", client: ComfyClient | None = None
) -> str:
    """The ComfyUI input reference for a template's image parameter, uploading when needed.

    A plain name (``photo.png``, ``sub/photo.png``) already names a file in ComfyUI's input
    folder and is returned unchanged. A data URL, base64, URL or local path (absolute, ``~``,
    ``./``) is read, checked and uploaded, and the stored reference is returned. Raises
    ToolError naming ``parameter`` when the image cannot be used.
    """
    if not (is_url_or_data(value) or is_local_path(value) or looks_like_base64(value)):
        return value
    uploaded = await upload_source(state, value, argument=parameter, client=client)
    return uploaded.reference


async def _read(state: ServerState, image: str, upload_limit: int, argument: str) -> ImageSource:
    settings = state.settings
    max_input = settings.max_input_bytes
    roots = settings.input_roots
    server_cap = max(upload_limit - MULTIPART_OVERHEAD, 1)
    try:
        return await read_image_source(
            image,
            input_roots=roots,
            allow_private_urls=settings.allow_private_urls,
            max_bytes=min(max_input, server_cap),
            timeout=settings.fetch_timeout,
        )
    except SourceTooLargeError as exc:
        by_server = server_cap < max_input
        limit = upload_limit if by_server else max_input
        raise ToolError(_too_large(argument, exc.size, limit, server=by_server)) from exc
    except SourceError as exc:
        raise ToolError(f"{argument!r}: {exc}") from exc


async def _upload_limit(client: ComfyClient) -> int:
    """ComfyUI's ``max_upload_size`` from /features, or its default when it does not say."""
    try:
        features = await client.get_features()
    except ComfyHTTPError as exc:  # a proxy that blocks /features should not block uploads
        log.debug("GET /features failed (%s); assuming the default upload limit", exc)
        return DEFAULT_MAX_UPLOAD_SIZE
    value = features.get("max_upload_size")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return DEFAULT_MAX_UPLOAD_SIZE


def _too_large(argument: str, size: int | None, limit: int, *, server: bool) -> str:
    got = f" ({format_size(size)})" if size is not None else ""
    who = (
        "ComfyUI accepts uploads up to"
        if server
        else f"this server reads images up to ({MAX_BYTES_VAR})"
    )
    return (
        f"{argument!r}: the image is too large{got}: {who} {format_size(limit)}. "
        "Send a smaller or more compressed image (JPEG or WebP, or fewer pixels)"
    )


def _check_subfolder(subfolder: str) -> str:
    """A relative folder below ComfyUI's input folder, with ``/`` separators.

    ComfyUI refuses escaping paths with a bare 400; checking here says what is wrong.
    """
    folder = subfolder.replace("\\", "/").strip().strip("/")
    if not folder:
        return ""
    parts = folder.split("/")
    if (
        subfolder.strip().startswith(("/", "\\"))
        or re.match(r"^[A-Za-z]:", folder)
        or any(p in ("", ".", "..") or not _SUBFOLDER_PART.fullmatch(p) for p in parts)
    ):
        raise ToolError(
            f"'subfolder' must be a relative folder name inside ComfyUI's input folder, made of "
            f"letters, digits, '.', '_', '-' and spaces, such as 'masks' or 'refs/faces' "
            f"(got {subfolder!r})"
        )
    return folder


def _mask_channel(data: bytes) -> Literal["alpha", "red"]:
    """'alpha' when some pixel is not fully opaque (the mask lives in transparency), else 'red'."""
    from PIL import Image  # off the server's start-up path

    with Image.open(io.BytesIO(data)) as image:
        if "A" not in image.getbands() and "transparency" not in image.info:
            return "red"
        alpha = image.convert("RGBA").getchannel("A")
        low, _high = alpha.getextrema()
    return "alpha" if isinstance(low, int) and low < 255 else "red"
