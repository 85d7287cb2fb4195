"""Reading an image an agent hands us, safely: a data URL, bare base64, a local file or a URL.

The MCP server may run on a user's machine or next to ComfyUI on a private network, and the
"image" argument is chosen by a model that may be following instructions hidden in a web page.
So every form is treated as hostile until checked:

- **local files** are read only below the folders the operator listed in ``COMFY_MCP_INPUT_ROOTS``
  (none by default). The path is resolved with symlinks followed and must stay inside a resolved
  root, so ``../`` and symlinks pointing out are refused; only regular files are read, with a cap.
- **URLs** are http(s) only. Every address the host name resolves to must be public (no loopback,
  private, link-local, multicast, reserved or unspecified ranges) unless
  ``COMFY_MCP_ALLOW_PRIVATE_URLS`` is set, and the connection goes to the address that was checked
  (so a DNS answer that changes between the check and the connect cannot smuggle in an internal
  address). Redirects are followed by hand, at most :data:`MAX_REDIRECTS`, each hop checked again.
  The body is streamed with a byte cap and the whole fetch has one deadline.
- **every form** must decode as an image in a format ComfyUI's ``LoadImage`` reads (checked with
  Pillow, decompression bombs refused), and the stored file name is derived from the real format,
  sanitised to a plain basename.

Nothing here imports ``mcp``: failures are :class:`SourceError` (a ``ValueError``) whose message
says what was wrong and how to fix it; the MCP layer turns it into a ``ToolError``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import ipaddress
import logging
import os
import re
import socket
import stat
import unicodedata
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, unquote_to_bytes

import httpx

log = logging.getLogger(__name__)

MAX_REDIRECTS = 3
ROOTS_VAR = "COMFY_MCP_INPUT_ROOTS"
PRIVATE_VAR = "COMFY_MCP_ALLOW_PRIVATE_URLS"
MAX_BYTES_VAR = "COMFY_MCP_MAX_INPUT_BYTES"

# Formats ComfyUI's LoadImage opens without extra software. Anything else is refused, which also
# keeps exotic decoders (EPS would run Ghostscript inside ComfyUI) away from agent-supplied bytes.
_FORMATS: dict[str, tuple[str, str]] = {
    "PNG": (".png", "image/png"),
    "JPEG": (".jpg", "image/jpeg"),
    "MPO": (".jpg", "image/jpeg"),  # phone cameras' multi-picture JPEGs
    "WEBP": (".webp", "image/webp"),
    "GIF": (".gif", "image/gif"),
    "BMP": (".bmp", "image/bmp"),
    "TIFF": (".tiff", "image/tiff"),
}
_FORMAT_LIST = "PNG, JPEG, WebP, GIF, BMP or TIFF"
_OPENERS = ["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"]  # Pillow plugin ids (JPEG yields MPO too)

# Base64 of each accepted format's magic bytes: a string starting with one is surely base64.
_BASE64_MAGIC = ("iVBORw0KGgo", "/9j/", "R0lGOD", "UklGR", "Qk", "SUkq", "TU0A")
_BASE64_CHARS = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._ -]+")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {
    f"{p}{i}" for p in ("COM", "LPT") for i in "123456789"
}


class SourceError(ValueError):
    """The image argument could not be used; the message says why and what to send instead."""


class SourceTooLargeError(SourceError):
    """The image is over the byte limit; ``limit`` is the cap in bytes that was exceeded."""

    def __init__(self, what: str, limit: int, size: int | None = None) -> None:
        self.limit = limit
        self.size = size
        got = f" ({format_size(size)})" if size is not None else ""
        super().__init__(
            f"{what} is too large{got}: the limit is {format_size(limit)}. "
            "Send a smaller or more compressed image (e.g. JPEG or WebP, or fewer pixels)"
        )


@dataclass(frozen=True)
class ImageSource:
    """A checked image: its bytes, a safe file name with the real extension, and what it is."""

    data: bytes
    filename: str
    mime_type: str
    format: str
    width: int
    height: int


def format_size(size: int) -> str:
    """Bytes as a short human figure (``50 MiB``, ``812 KiB``, ``93 bytes``)."""
    if size >= 1 << 20:
        return f"{size / (1 << 20):.3g} MiB"
    if size >= 1 << 10:
        return f"{size / (1 << 10):.3g} KiB"
    return f"{size} bytes"


def looks_like_base64(value: str) -> bool:
    """Whether ``value`` is bare base64 image data rather than a path or a file name.

    A string that starts with the base64 of an image signature is base64. Otherwise it counts
    only when long (64+ characters), made of base64 characters and free of dots, since a path to
    an image file (or a ComfyUI input name) nearly always has an extension.
    """
    compact = "".join(value.split())
    if len(compact) < 16 or not _BASE64_CHARS.fullmatch(compact):
        return False
    return compact.startswith(_BASE64_MAGIC) or len(compact) >= 64


def is_url_or_data(value: str) -> bool:
    """Whether ``value`` starts with a URL scheme (``data:``, ``http:``, ``file:``, …).

    A Windows drive letter (``C:\\``) is not a scheme.
    """
    return bool(_SCHEME.match(value)) and not _WINDOWS_DRIVE.match(value)


def is_local_path(value: str) -> bool:
    """Whether ``value`` is clearly a path on this machine (absolute, ``~``, ``./`` or ``../``)."""
    return (
        value.startswith(("/", "\\", "~", "./", "../", ".\\", "..\\"))
        or bool(_WINDOWS_DRIVE.match(value))
        or os.path.isabs(value)
    )


async def read_image_source(
    source: str,
    *,
    input_roots: Sequence[Path],
    allow_private_urls: bool,
    max_bytes: int,
    timeout: float,
    http: httpx.AsyncClient | None = None,
) -> ImageSource:
    """Read and check the image ``source`` names; raise :class:`SourceError` if it is unusable.

    ``source`` is a ``data:`` URL, bare base64, an http(s) URL, or a path to a file below one of
    ``input_roots`` (a relative path is looked up in each root in turn). ``http`` lets tests
    inject a client; by default a fresh one is made that ignores proxy environment variables,
    since a proxy would resolve names itself and defeat the address checks.
    """
    source = source.strip()
    if not source:
        raise SourceError(
            "the image is empty: give a data URL (data:image/png;base64,...), base64 data, "
            "an http(s) URL, or a path to a file in an allowed folder"
        )
    if source[:5].lower() == "data:":
        data, name = _decode_data_url(source, max_bytes), None
    elif is_url_or_data(source):
        scheme = source.split(":", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise SourceError(
                f"URL scheme {scheme!r} is not accepted: use http(s), a data: URL, base64 data, "
                "or a plain file path (not file://) below an allowed folder"
            )
        data, name = await _fetch_url(source, allow_private_urls, max_bytes, timeout, http)
    elif not is_local_path(source) and looks_like_base64(source):
        data, name = _decode_base64(source, max_bytes, "the base64 image"), None
    else:
        data, name = await asyncio.to_thread(_read_local_file, source, input_roots, max_bytes)
    return await asyncio.to_thread(_check_image, data, name)


# -- data URLs and base64 ----------------------------------------------------------------------


def _decode_data_url(source: str, max_bytes: int) -> bytes:
    header, comma, payload = source.partition(",")
    if not comma:
        raise SourceError(
            "malformed data URL: expected 'data:image/png;base64,<data>' (no comma found)"
        )
    if header.lower().endswith(";base64"):
        return _decode_base64(payload, max_bytes, "the data URL")
    if len(payload) > 3 * max_bytes:  # percent-encoding takes at most 3 characters a byte
        raise SourceTooLargeError("the data URL", max_bytes)
    data = unquote_to_bytes(payload)
    if len(data) > max_bytes:
        raise SourceTooLargeError("the data URL", max_bytes, len(data))
    return data


def _decode_base64(payload: str, max_bytes: int, what: str) -> bytes:
    compact = "".join(unquote(payload).split())
    if len(compact) // 4 * 3 > max_bytes + 2:  # checked before decoding a huge string
        raise SourceTooLargeError(what, max_bytes, len(compact) // 4 * 3)
    compact += "=" * (-len(compact) % 4)
    try:
        if "-" in compact or "_" in compact:
            data = base64.urlsafe_b64decode(compact)
        else:
            data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SourceError(
            f"{what} is not valid base64 ({exc}); send the file's bytes base64-encoded, "
            "e.g. 'data:image/png;base64,iVBORw0KGgo...'"
        ) from None
    if not data:
        raise SourceError(f"{what} decodes to no bytes")
    if len(data) > max_bytes:
        raise SourceTooLargeError(what, max_bytes, len(data))
    return data


# -- local files -------------------------------------------------------------------------------


def _read_local_file(source: str, input_roots: Sequence[Path], max_bytes: int) -> tuple[bytes, str]:
    """Read a regular file that resolves inside one of ``input_roots``."""
    if not input_roots:
        raise SourceError(
            f"reading local files is disabled: the server operator must list the folders agents "
            f"may read images from in {ROOTS_VAR} ({os.pathsep!r}-separated). Otherwise send the "
            "image as base64 / a data URL, or an http(s) URL"
        )
    roots = _resolved_roots(input_roots)
    allowed = ", ".join(str(r) for r in roots) or "(none of the configured folders exist)"
    given = Path(source).expanduser()
    candidates = [given] if given.is_absolute() else [root / given for root in roots]
    inside = False
    for candidate in candidates:
        # Containment is decided before existence, so probing paths outside the roots cannot
        # tell an agent which files exist there.
        try:
            if not _inside(candidate.resolve(strict=False), roots):
                continue
            inside = True
            resolved = candidate.resolve(strict=True)
        except FileNotFoundError:
            continue
        except (OSError, RuntimeError) as exc:  # permission denied, symlink loop
            raise SourceError(f"cannot open {source!r}: {exc}") from None
        if _inside(resolved, roots):
            return _read_regular_file(resolved, source, max_bytes), resolved.name
    if not inside:
        raise SourceError(
            f"{source!r} is outside the folders images may be read from ({allowed}); "
            f"symlinks and '..' are resolved before this check. Copy the file into one of them, "
            f"or ask the operator to add its folder to {ROOTS_VAR}"
        )
    where = "" if given.is_absolute() else f" in any of the allowed folders ({allowed})"
    raise SourceError(f"no such file: {source!r}{where}")

    return _read_regular_file(resolved, source, max_bytes), resolved.name


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path.is_relative_to(root) for root in roots)


def _resolved_roots(input_roots: Sequence[Path]) -> list[Path]:
    roots = []
    for root in input_roots:
        try:
            roots.append(Path(root).expanduser().resolve(strict=True))
        except (OSError, RuntimeError):
            log.warning("%s entry %s does not exist; ignored", ROOTS_VAR, root)
    return roots


def _read_regular_file(path: Path, source: str, max_bytes: int) -> bytes:
    # O_NOFOLLOW: the final component cannot have become a symlink since it was resolved;
    # O_NONBLOCK: a FIFO swapped in cannot hang the read (fstat below refuses it anyway).
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise SourceError(f"cannot open {source!r}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SourceError(f"{source!r} is not a regular file")
        if info.st_size > max_bytes:
            raise SourceTooLargeError(repr(source), max_bytes, info.st_size)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as file:
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise SourceTooLargeError(repr(source), max_bytes)
    return data


# -- URLs --------------------------------------------------------------------------------------


async def _fetch_url(
    source: str,
    allow_private: bool,
    max_bytes: int,
    timeout: float,
    http: httpx.AsyncClient | None,
) -> tuple[bytes, str]:
    try:
        url = httpx.URL(source)
    except (httpx.InvalidURL, ValueError) as exc:
        raise SourceError(f"malformed URL {source!r}: {exc}") from None
    client = http or httpx.AsyncClient(trust_env=False, follow_redirects=False)
    try:
        async with asyncio.timeout(timeout):
            return await _follow(client, url, allow_private, max_bytes, timeout)
    except TimeoutError:
        raise SourceError(
            f"fetching {_show_url(url)} took longer than {timeout:g} s; "
            "use a faster host or send the image as base64"
        ) from None
    finally:
        if http is None:
            await client.aclose()


async def _follow(
    client: httpx.AsyncClient, url: httpx.URL, allow_private: bool, max_bytes: int, timeout: float
) -> tuple[bytes, str]:
    for hop in range(MAX_REDIRECTS + 1):
        target, headers, extensions = await _pinned(url, allow_private)
        try:
            async with client.stream(
                "GET",
                target,
                headers=headers,
                extensions=extensions,
                follow_redirects=False,
                timeout=timeout,
            ) as response:
                if response.is_redirect:
                    location = response.headers.get("location", "")
                    if hop == MAX_REDIRECTS:
                        break
                    url = _redirect_target(url, location)
                    continue
                if not response.is_success:
                    raise SourceError(
                        f"{_show_url(url)} answered HTTP {response.status_code}; "
                        "check the URL, or send the image as base64"
                    )
                return await _read_body(response, url, max_bytes), _url_basename(url)
        except httpx.TimeoutException:
            raise TimeoutError from None  # reported with the overall deadline below
        except httpx.HTTPError as exc:
            raise SourceError(
                f"cannot fetch {_show_url(url)}: {str(exc) or type(exc).__name__}"
            ) from None
    raise SourceError(
        f"{_show_url(url)} redirected more than {MAX_REDIRECTS} times; give the final URL"
    )


def _redirect_target(current: httpx.URL, location: str) -> httpx.URL:
    if not location:
        raise SourceError(f"{_show_url(current)} redirected without a Location header")
    try:
        target = current.join(location)
    except (httpx.InvalidURL, ValueError) as exc:
        raise SourceError(f"{_show_url(current)} redirected to a malformed URL: {exc}") from None
    if target.scheme not in ("http", "https"):
        raise SourceError(
            f"{_show_url(current)} redirected to a {target.scheme!r} URL; only http(s) is followed"
        )
    return target


async def _pinned(
    url: httpx.URL, allow_private: bool
) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """The URL to connect to, plus the Host header and TLS name that keep it the same request.

    With private addresses refused, the host name is resolved here, every address is checked,
    and the request goes to a checked address: httpx would otherwise resolve the name again and
    might get a different (internal) answer.
    """
    if url.scheme not in ("http", "https") or not url.host:
        raise SourceError(f"{_show_url(url)} is not an http(s) URL with a host")
    if allow_private:
        return url, {}, {}
    port = url.port or (443 if url.scheme == "https" else 80)
    addresses = await _resolve(url.host, port)
    if not addresses:
        raise SourceError(f"host {url.host!r} did not resolve to any address")
    for address in addresses:
        if reason := blocked_reason(address):
            what = address if address == url.host else f"{url.host} resolves to {address},"
            raise SourceError(
                f"{_show_url(url)} is refused: {what} {reason}. Internal addresses are off "
                f"limits unless the operator sets {PRIVATE_VAR}=true"
            )
    address = addresses[0]
    if address == url.host.strip("[]"):
        return url, {}, {}
    host_header = url.netloc.decode("ascii").rpartition("@")[2]
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    return url.copy_with(host=address), {"Host": host_header}, extensions


async def _resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (a literal IP resolves to itself)."""
    literal = host.strip("[]")
    try:
        return [str(ipaddress.ip_address(literal))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise SourceError(f"cannot resolve host {host!r}: {exc}") from None
    addresses: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        if address not in addresses:
            addresses.append(address)
    return addresses


def blocked_reason(address: str) -> str | None:
    """Why ``address`` must not be fetched by default, or None when it is a public address.

    IPv6 forms that embed an IPv4 address (mapped, 6to4, Teredo, NAT64) are judged by that address.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in ipaddress.IPv6Network("64:ff9b::/96"):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return blocked_reason(str(embedded))
    checks = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "not a public address"),
    )
    return next((reason for hit, reason in checks if hit), None)


async def _read_body(response: httpx.Response, url: httpx.URL, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise SourceTooLargeError(_show_url(url), max_bytes, int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise SourceTooLargeError(_show_url(url), max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _url_basename(url: httpx.URL) -> str:
    return PurePosixPath(unquote(url.path)).name


def _show_url(url: httpx.URL) -> str:
    """The URL without credentials or query string, for messages and logs."""
    return str(url.copy_with(username=None, password=None, query=None, fragment=None))


# -- checking the bytes ------------------------------------------------------------------------


def _check_image(data: bytes, name: str | None) -> ImageSource:
    """Pillow must recognise ``data`` as an accepted format and find it intact."""
    from PIL import Image, UnidentifiedImageError  # off the server's start-up path

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=_OPENERS) as image:
                fmt = str(image.format)
                width, height = image.size
                image.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise SourceError(
            f"the image has too many pixels (over {Image.MAX_IMAGE_PIXELS} decoded pixels is "
            "treated as a decompression bomb); resize it first"
        ) from None
    except UnidentifiedImageError:
        raise SourceError(
            f"the data is not an image in a format ComfyUI loads ({_FORMAT_LIST}); "
            "check that you sent the file itself, not a web page or an error message"
        ) from None
    except Exception as exc:  # Pillow raises many types for damaged files
        raise SourceError(f"the image is damaged or truncated: {exc}") from None
    if fmt not in _FORMATS or width < 1 or height < 1:
        raise SourceError(f"unsupported image ({fmt}, {width}x{height}); use {_FORMAT_LIST}")
    extension, mime_type = _FORMATS[fmt]
    return ImageSource(
        data=data,
        filename=safe_filename(name, extension, data),
        mime_type=mime_type,
        format=fmt,
        width=width,
        height=height,
    )


def safe_filename(name: str | None, extension: str, data: bytes) -> str:
    """A plain basename for ComfyUI's input folder, ending in ``extension``.

    Directory parts, control and non-ASCII characters, leading dots and Windows device names are
    removed (ComfyUI may run on Windows). With no usable name, the content hash names the file,
    so uploading the same bytes twice maps to the same stored file.
    """
    stem = ""
    if name:
        base = re.split(r"[\\/]", name)[-1]
        base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
        stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
        stem = _UNSAFE_NAME_CHARS.sub("_", stem).strip(" ._-")[:80]
        if stem.upper() in _WINDOWS_RESERVED:
            stem = f"_{stem}"
    if not stem:
        stem = "upload-" + hashlib.sha256(data).hexdigest()[:16]
    return stem + extension
