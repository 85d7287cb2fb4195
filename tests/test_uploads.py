"""Image inputs: every source form, its security rules, and the upload tools end to end.

The first half tests ``read_image_source`` directly; the second drives ``upload_image`` and
``upload_mask`` through a real ``mcp.Client`` against the fake ComfyUI. No test sends traffic
to a non-loopback address: URL refusals happen before any connection, and the public-address
paths use ``httpx.MockTransport`` with a stubbed resolver.
"""

from __future__ import annotations

import base64
import io
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from mcp import Client
from mcp.server.mcpserver.exceptions import ToolError
from PIL import Image

from comfy_mcp.comfy import ComfyClient
from comfy_mcp.server import build_server, sources
from comfy_mcp.server.sources import (
    SourceError,
    SourceTooLargeError,
    blocked_reason,
    looks_like_base64,
    read_image_source,
    safe_filename,
)
from comfy_mcp.server.state import ServerState
from comfy_mcp.server.uploads import register_upload_tools, resolve_image_argument
from comfy_mcp.settings import Settings
from comfy_mcp.templates import TemplateCatalog
from tests.fake_comfyui import FakeComfyUI, run_fake_comfyui

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024


def png(width: int = 8, height: int = 6, color: Any = "red", mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def noise_png(side: int) -> bytes:
    """An incompressible PNG of about 3 * side² bytes."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, "PNG")
    return buffer.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


async def read(source: str, **options: Any) -> sources.ImageSource:
    kwargs: dict[str, Any] = {
        "input_roots": (),
        "allow_private_urls": False,
        "max_bytes": 10 * MiB,
        "timeout": 5.0,
        **options,
    }
    return await read_image_source(source, **kwargs)


# -- a local web server on 127.0.0.1 -------------------------------------------------------------

IMAGE = png(5, 4, "blue")


class _Handler(BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]] = {
        "/pics/cat%20photo.png": (200, {"Content-Type": "image/png"}, IMAGE),
        "/hop": (302, {"Location": "/pics/cat%20photo.png"}, b""),
        "/page": (200, {"Content-Type": "text/html"}, b"<html>not an image</html>"),
        "/missing": (404, {}, b"nope"),
        "/big": (200, {"Content-Type": "image/png"}, b"\x89PNG" + b"\0" * 200_000),
    }

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(1.0)
        status, headers, body = self.routes.get(self.path, (404, {}, b""))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# -- data URLs and base64 ------------------------------------------------------------------------


async def test_data_url_is_decoded_checked_and_named_by_content() -> None:
    data = png(8, 6)
    image = await read(data_url(data))
    assert (image.data, image.mime_type, image.format) == (data, "image/png", "PNG")
    assert (image.width, image.height) == (8, 6)
    assert image.filename.startswith("upload-") and image.filename.endswith(".png")
    assert (await read(data_url(data))).filename == image.filename  # same bytes, same name


async def test_bare_base64_with_line_breaks_is_accepted() -> None:
    encoded = base64.encodebytes(png(30, 30)).decode()  # wrapped at 76 characters
    assert "\n" in encoded
    assert (await read(encoded)).width == 30


async def test_declared_type_is_ignored_and_the_real_format_names_the_file() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "JPEG")
    image = await read(data_url(buffer.getvalue(), "image/png"))
    assert (image.format, image.mime_type) == ("JPEG", "image/jpeg")
    assert image.filename.endswith(".jpg")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("data:image/png;base64,iVBORw0KGgo!!!", "not valid base64"),
        ("data:image/png;base64", "malformed data URL"),
        (data_url(b"hello, this is plain text and not an image"), "not an image"),
        ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB", "damaged or truncated"),
        ("", "the image is empty"),
    ],
)
async def test_bad_inline_data_is_refused_with_a_reason(source: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        await read(source)


async def test_formats_comfyui_cannot_load_are_refused() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "PPM")  # Pillow reads it; LoadImage users should not
    with pytest.raises(SourceError, match="PNG, JPEG, WebP"):
        await read(data_url(buffer.getvalue()))


async def test_inline_data_over_the_cap_is_refused_before_decoding() -> None:
    with pytest.raises(SourceTooLargeError) as caught:
        await read(data_url(png(64, 64)), max_bytes=100)
    assert caught.value.limit == 100


async def test_decompression_bombs_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(SourceError, match="too many pixels"):
        await read(data_url(png(20, 20)))


def test_base64_detection_does_not_mistake_names_or_paths() -> None:
    assert looks_like_base64(base64.b64encode(png()).decode())
    assert not looks_like_base64("photo.png")
    assert not looks_like_base64("sub/folder/photo.png")
    assert not looks_like_base64("example")


def test_file_names_are_plain_safe_basenames() -> None:
    assert safe_filename("../../etc/passwd.png", ".png", b"") == "passwd.png"
    assert safe_filename("C:\\Users\\x\\CON.jpeg", ".jpg", b"") == "_CON.jpg"
    assert safe_filename("héllo wörld?.webp", ".png", b"") == "hello world.png"
    assert safe_filename(".hidden", ".png", b"") == "hidden.png"
    assert safe_filename("...", ".png", b"x").startswith("upload-")


# -- local files ---------------------------------------------------------------------------------


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    """(allowed root holding photo.png, a sibling folder outside it holding secret.png)."""
    root, outside = tmp_path / "inputs", tmp_path / "private"
    root.mkdir()
    outside.mkdir()
    (root / "photo.png").write_bytes(png(7, 7))
    (outside / "secret.png").write_bytes(png(3, 3))
    return root, outside


async def test_local_files_are_refused_when_no_root_is_configured(roots: tuple[Path, Path]) -> None:
    with pytest.raises(SourceError, match="COMFY_MCP_INPUT_ROOTS"):
        await read(str(roots[0] / "photo.png"))


async def test_local_file_inside_a_root_is_read_by_absolute_or_relative_path(
    roots: tuple[Path, Path],
) -> None:
    root, _ = roots
    for source in (str(root / "photo.png"), "photo.png", "./photo.png"):
        image = await read(source, input_roots=(root,))
        assert (image.filename, image.width) == ("photo.png", 7)


async def test_a_misnamed_file_gets_the_extension_of_its_real_format(tmp_path: Path) -> None:
    (tmp_path / "scan.jpeg").write_bytes(png())
    assert (await read("scan.jpeg", input_roots=(tmp_path,))).filename == "scan.png"


@pytest.mark.parametrize(
    "source",
    [
        "../private/secret.png",
        "{root}/../private/secret.png",
        "{outside}/secret.png",
        "/etc/passwd",
    ],
)
async def test_paths_escaping_the_roots_are_refused(roots: tuple[Path, Path], source: str) -> None:
    root, outside = roots
    with pytest.raises(SourceError, match="outside the folders"):
        await read(source.format(root=root, outside=outside), input_roots=(root,))


async def test_symlinks_pointing_out_of_a_root_are_refused(roots: tuple[Path, Path]) -> None:
    root, outside = roots
    (root / "link.png").symlink_to(outside / "secret.png")
    (root / "dirlink").symlink_to(outside)
    for source in ("link.png", str(root / "link.png"), "dirlink/secret.png"):
        with pytest.raises(SourceError, match="outside the folders"):
            await read(source, input_roots=(root,))


async def test_a_symlinked_root_and_links_inside_it_are_fine(roots: tuple[Path, Path]) -> None:
    root, _ = roots
    (root / "alias.png").symlink_to(root / "photo.png")
    linked_root = root.parent / "linked-root"
    linked_root.symlink_to(root)
    assert (await read("alias.png", input_roots=(linked_root,))).width == 7


async def test_missing_files_directories_fifos_and_oversize_files_are_refused(
    roots: tuple[Path, Path],
) -> None:
    root, _ = roots
    (root / "folder").mkdir()
    os.mkfifo(root / "pipe")
    with pytest.raises(SourceError, match="no such file"):
        await read("nothing.png", input_roots=(root,))
    for name in ("folder", "pipe"):
        with pytest.raises(SourceError, match="not a regular file"):
            await read(name, input_roots=(root,))
    with pytest.raises(SourceTooLargeError):
        await read("photo.png", input_roots=(root,), max_bytes=10)


async def test_a_non_image_file_is_refused(roots: tuple[Path, Path]) -> None:
    root, _ = roots
    (root / "notes.png").write_text("definitely not a picture")
    with pytest.raises(SourceError, match="not an image"):
        await read("notes.png", input_roots=(root,))


# -- URLs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x.png",
        "http://10.1.2.3/x.png",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x.png",
        "http://localhost/x.png",
        "http://2130706433/x.png",  # 127.0.0.1 written as a number
        "http://[::ffff:127.0.0.1]/x.png",
        "https://0.0.0.0/x.png",
    ],
)
async def test_internal_addresses_are_refused_by_default(url: str) -> None:
    with pytest.raises(SourceError, match="COMFY_MCP_ALLOW_PRIVATE_URLS"):
        await read(url)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x.png", "gopher://x"])
async def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(SourceError, match="not accepted"):
        await read(url)


def test_address_classification() -> None:
    for public in ("93.184.216.34", "2606:4700:4700::1111"):
        assert blocked_reason(public) is None
    for internal in ("192.168.1.1", "100.64.0.1", "224.0.0.1", "fe80::1", "fc00::1", "240.0.0.1"):
        assert blocked_reason(internal) is not None
    assert blocked_reason("2002:7f00:1::") == "a loopback address"  # 6to4 of 127.0.0.1


async def test_a_local_url_is_fetched_only_when_private_urls_are_allowed(web: str) -> None:
    with pytest.raises(SourceError, match="loopback"):
        await read(f"{web}/pics/cat%20photo.png")
    image = await read(f"{web}/pics/cat%20photo.png", allow_private_urls=True)
    assert (image.data, image.filename) == (IMAGE, "cat photo.png")
    assert (await read(f"{web}/hop", allow_private_urls=True)).data == IMAGE


@pytest.mark.parametrize(
    ("path", "message"),
    [("/page", "not an image"), ("/missing", "HTTP 404"), ("/big", "too large")],
)
async def test_bad_local_urls_say_what_went_wrong(web: str, path: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        await read(f"{web}{path}", allow_private_urls=True, max_bytes=100_000)


async def test_a_slow_url_times_out_with_a_clear_message(web: str) -> None:
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"took longer than 0\.2 s"):
        await read(f"{web}/slow", allow_private_urls=True, timeout=0.2)
    assert time.monotonic() - started < 0.9


@pytest.fixture
def public_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """A stub resolver: host → addresses. Requests go to MockTransport, never to the network."""
    table: dict[str, list[str]] = {}

    async def resolve(host: str, port: int) -> list[str]:
        return table.get(host) or await original(host, port)

    original = sources._resolve
    monkeypatch.setattr(sources, "_resolve", resolve)
    return table


def mock_http(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_public_urls_connect_to_the_checked_address(public_dns: dict[str, list[str]]) -> None:
    public_dns["images.example"] = ["93.184.216.34"]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=IMAGE)

    async with mock_http(handler) as http:
        image = await read("https://images.example/a/b/pic.png?x=1", http=http)
    assert image.filename == "pic.png"
    (request,) = seen
    assert request.url.host == "93.184.216.34"  # pinned: no second DNS lookup by httpx
    assert request.headers["host"] == "images.example"
    assert request.extensions["sni_hostname"] == "images.example"


async def test_a_name_with_any_internal_address_is_refused(
    public_dns: dict[str, list[str]],
) -> None:
    public_dns["mixed.example"] = ["93.184.216.34", "10.0.0.7"]
    with pytest.raises(SourceError, match=r"10\.0\.0\.7, a private address"):
        await read("http://mixed.example/x.png", http=mock_http(lambda r: httpx.Response(500)))


@pytest.mark.parametrize(
    "location", ["http://127.0.0.1:8188/view?filename=x.png", "http://internal.example/x.png"]
)
async def test_redirects_to_internal_addresses_are_refused(
    public_dns: dict[str, list[str]], location: str
) -> None:
    public_dns["images.example"] = ["93.184.216.34"]
    public_dns["internal.example"] = ["192.168.0.10"]

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "93.184.216.34"
        return httpx.Response(302, headers={"Location": location})

    async with mock_http(handler) as http:
        with pytest.raises(SourceError, match="COMFY_MCP_ALLOW_PRIVATE_URLS"):
            await read("http://images.example/start", http=http)


@pytest.mark.parametrize(("hops", "ok"), [(3, True), (4, False)])
async def test_at_most_three_redirects_are_followed(
    public_dns: dict[str, list[str]], hops: int, ok: bool
) -> None:
    public_dns["images.example"] = ["93.184.216.34"]

    def handler(request: httpx.Request) -> httpx.Response:
        step = int(request.url.path.strip("/") or 0)
        if step < hops:
            return httpx.Response(301, headers={"Location": f"/{step + 1}"})
        return httpx.Response(200, content=IMAGE)

    async with mock_http(handler) as http:
        if ok:
            assert (await read("http://images.example/0", http=http)).data == IMAGE
        else:
            with pytest.raises(SourceError, match="redirected more than 3 times"):
                await read("http://images.example/0", http=http)


async def test_a_body_without_length_is_cut_off_at_the_cap(
    public_dns: dict[str, list[str]],
) -> None:
    public_dns["images.example"] = ["93.184.216.34"]

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(1000):
            yield b"\0" * 1024

    async with mock_http(lambda r: httpx.Response(200, content=endless())) as http:
        with pytest.raises(SourceTooLargeError):
            await read("http://images.example/stream", http=http, max_bytes=10_000)


# -- the MCP tools against the fake ComfyUI ------------------------------------------------------


@asynccontextmanager
async def upload_client(fake: FakeComfyUI, **settings_values: Any) -> AsyncIterator[Client]:
    """A real MCP client on our server, wired to ``fake``.

    Settings fields the server does not define yet are set on the frozen dataclass directly.
    The upload tools are registered here unless build_server already does it.
    """
    settings = Settings.from_env({}, comfyui_url=fake.url)
    for name, value in settings_values.items():
        object.__setattr__(settings, name, value)
    async with ComfyClient(fake.url, use_websocket=False) as comfy:
        server = build_server(settings, client=comfy)
        if "upload_image" not in {tool.name for tool in await server.list_tools()}:
            state = ServerState.single(settings, TemplateCatalog([]), comfy)
            register_upload_tools(server, state)
        async with Client(server, raise_exceptions=True) as client:
            yield client


def error_text(result: Any) -> str:
    assert result.is_error, result
    return "\n".join(block.text for block in result.content if block.type == "text")


@pytest.fixture
async def fake() -> AsyncIterator[FakeComfyUI]:
    async with run_fake_comfyui() as server:
        yield server


async def test_upload_tools_are_listed_with_truthful_annotations(fake: FakeComfyUI) -> None:
    async with upload_client(fake) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for name in ("upload_image", "upload_mask"):
        tool = tools[name]
        assert tool.input_schema["required"] == ["image"]
        assert set(tool.input_schema["properties"]) == {
            "image",
            "subfolder",
            "overwrite",
            "backend",
        }
        assert tool.output_schema is not None
        assert "reference" in tool.output_schema["properties"]
        annotations = tool.annotations
        assert annotations is not None
        assert annotations.read_only_hint is False and annotations.destructive_hint is False
        assert annotations.idempotent_hint is False and annotations.open_world_hint is True


async def test_each_source_form_uploads_end_to_end(
    fake: FakeComfyUI, roots: tuple[Path, Path], web: str
) -> None:
    root, _ = roots
    raw = png(9, 5, "green")
    async with upload_client(fake, input_roots=(root,), allow_private_urls=True) as client:
        by_data_url = await client.call_tool("upload_image", {"image": data_url(raw)})
        by_base64 = await client.call_tool(
            "upload_image", {"image": base64.b64encode(raw).decode(), "subfolder": "refs"}
        )
        by_path = await client.call_tool("upload_image", {"image": str(root / "photo.png")})
        by_url = await client.call_tool("upload_image", {"image": f"{web}/pics/cat%20photo.png"})
    first = by_data_url.structured_content
    assert first is not None
    assert first["type"] == "input" and first["subfolder"] == ""
    assert (first["width"], first["height"], first["size_bytes"]) == (9, 5, len(raw))
    assert first["reference"] == first["name"]
    stored = fake.store.get("input", first["name"])
    assert stored is not None and stored.data == raw

    second = by_base64.structured_content
    assert second is not None
    assert second["reference"] == f"refs/{first['name']}"
    assert by_path.structured_content is not None
    assert by_path.structured_content["reference"] == "photo.png"
    assert by_url.structured_content is not None
    assert by_url.structured_content["reference"] == "cat photo.png"
    assert fake.store.get("input", "cat photo.png") is not None


async def test_a_name_clash_returns_the_name_comfyui_chose(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "photo.png").write_bytes(png(4, 4, "red"))
    (tmp_path / "b" / "photo.png").write_bytes(png(4, 4, "blue"))
    async with upload_client(fake, input_roots=(tmp_path,)) as client:
        names = [
            (await client.call_tool("upload_image", {"image": path})).structured_content
            for path in ("a/photo.png", "b/photo.png", "a/photo.png")
        ]
        replaced = await client.call_tool(
            "upload_image", {"image": "b/photo.png", "overwrite": True}
        )
    assert [n["reference"] for n in names if n] == ["photo.png", "photo (1).png", "photo.png"]
    assert replaced.structured_content is not None
    assert replaced.structured_content["reference"] == "photo.png"
    stored = fake.store.get("input", "photo.png")
    assert stored is not None and stored.data == png(4, 4, "blue")


async def test_unsafe_sources_are_refused_through_the_tool(
    fake: FakeComfyUI, roots: tuple[Path, Path]
) -> None:
    root, outside = roots
    (root / "escape.png").symlink_to(outside / "secret.png")
    (root / "notes.png").write_text("not a picture")
    cases = {
        "../private/secret.png": "outside the folders",
        "escape.png": "outside the folders",
        "notes.png": "not an image",
        "http://127.0.0.1:8188/view?filename=x.png": "COMFY_MCP_ALLOW_PRIVATE_URLS",
        "http://169.254.169.254/latest/meta-data": "link-local",
        "http://localhost/x.png": "loopback",
    }
    async with upload_client(fake, input_roots=(root,)) as client:
        for source, message in cases.items():
            text = error_text(await client.call_tool("upload_image", {"image": source}))
            assert message in text and "'image'" in text, (source, text)
        bad_folder = await client.call_tool(
            "upload_image", {"image": "photo.png", "subfolder": "../outside"}
        )
        assert "'subfolder'" in error_text(bad_folder)
    assert fake.uploads == []


async def test_local_paths_need_configured_roots(
    fake: FakeComfyUI, roots: tuple[Path, Path]
) -> None:
    async with upload_client(fake) as client:
        result = await client.call_tool("upload_image", {"image": str(roots[0] / "photo.png")})
    assert "COMFY_MCP_INPUT_ROOTS" in error_text(result)


async def test_oversize_images_are_refused_before_upload_and_on_413() -> None:
    big = noise_png(64)  # about 12 KiB, incompressible
    async with run_fake_comfyui(max_upload_size=8 * 1024) as fake:
        async with upload_client(fake) as client:
            result = await client.call_tool("upload_image", {"image": data_url(big)})
        text = error_text(result)
        assert "too large" in text and "ComfyUI accepts uploads up to 8 KiB" in text
        assert fake.uploads == []

        # A server that does not report its limit: the 413 gets the same message.
        async with ComfyClient(fake.url, use_websocket=False) as comfy:

            async def no_features() -> dict[str, Any]:
                return {}

            comfy.get_features = no_features  # type: ignore[method-assign]
            settings = Settings.from_env({}, comfyui_url=fake.url)
            state = ServerState.single(settings, TemplateCatalog([]), comfy)
            with pytest.raises(ToolError, match=r"too large.*HTTP 413"):
                await resolve_image_argument(state, data_url(big))


async def test_the_input_cap_setting_limits_reads(fake: FakeComfyUI) -> None:
    async with upload_client(fake, max_input_bytes=1000) as client:
        result = await client.call_tool("upload_image", {"image": data_url(noise_png(32))})
    assert "COMFY_MCP_MAX_INPUT_BYTES" in error_text(result)


async def test_masks_are_plain_image_uploads_with_a_channel_hint(fake: FakeComfyUI) -> None:
    transparent = png(8, 8, (0, 0, 0, 0), "RGBA")
    black_and_white = png(8, 8, 255, "L")
    async with upload_client(fake) as client:
        alpha = await client.call_tool("upload_mask", {"image": data_url(transparent)})
        red = await client.call_tool(
            "upload_mask", {"image": data_url(black_and_white), "subfolder": "masks"}
        )
        image = await client.call_tool("upload_image", {"image": data_url(png())})
    assert alpha.structured_content is not None and red.structured_content is not None
    assert alpha.structured_content["mask_channel"] == "alpha"
    assert red.structured_content["mask_channel"] == "red"
    assert red.structured_content["reference"].startswith("masks/")
    assert image.structured_content is not None
    assert image.structured_content["mask_channel"] is None
    stored = fake.store.get("input", red.structured_content["reference"])
    assert stored is not None and stored.data == black_and_white  # stored as sent
    assert [r["path"] for r in fake.requests if "upload" in r["path"]] == ["/upload/image"] * 3


async def test_resolve_image_argument_keeps_names_and_uploads_sources(fake: FakeComfyUI) -> None:
    async with ComfyClient(fake.url, use_websocket=False) as comfy:
        settings = Settings.from_env({}, comfyui_url=fake.url)
        state = ServerState.single(settings, TemplateCatalog([]), comfy)
        for name in ("example.png", "sub/photo.png", "my image (1).webp"):
            assert await resolve_image_argument(state, name) == name
        assert fake.uploads == []
        reference = await resolve_image_argument(state, data_url(png(3, 3)))
        assert reference.startswith("upload-") and fake.store.get("input", reference)
        with pytest.raises(ToolError, match=r"'init_image'.*COMFY_MCP_INPUT_ROOTS"):
            await resolve_image_argument(state, "/tmp/x.png", parameter="init_image")
