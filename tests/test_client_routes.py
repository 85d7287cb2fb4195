"""ComfyClient routes beyond prompts: users, settings, user data, model folders, metadata, logs,
uploads of masks and resolving outputs. Against the fake ComfyUI, with the recorded shapes."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image

from comfy_mcp.comfy import (
    ComfyClient,
    ComfyHTTPError,
    ComfyNotFoundError,
    MediaKind,
    ModelFolder,
    UploadTooLargeError,
)
from tests.conftest import fixture
from tests.fake_comfyui import FakeComfyUI
from tests.test_client import smoke_graph

pytestmark = pytest.mark.anyio


@pytest.fixture
async def comfy(fake: FakeComfyUI) -> AsyncIterator[ComfyClient]:
    async with ComfyClient(fake.url, poll_interval=0.1, check_interval=0.5) as client:
        yield client


def png(color: str | tuple[int, ...], mode: str = "RGB", size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (size, size), color).save(buffer, format="PNG")
    return buffer.getvalue()


# -- users and settings ----------------------------------------------------------------------


async def test_user_config_is_the_recorded_single_user_shape(comfy: ComfyClient) -> None:
    assert await comfy.get_user_config() == fixture("get_users")["response"]["json"]


async def test_create_user_returns_the_new_id_and_refuses_duplicates(
    comfy: ComfyClient, fake: FakeComfyUI
) -> None:
    user_id = await comfy.create_user("Ada Lovelace")
    assert user_id.startswith("Ada-Lovelace_") and fake.users[user_id] == "Ada Lovelace"
    with pytest.raises(ComfyHTTPError) as caught:
        await comfy.create_user("Ada Lovelace")
    assert caught.value.status == 400 and caught.value.json == {"error": "Duplicate username."}


async def test_settings_round_trip_one_and_all(comfy: ComfyClient, fake: FakeComfyUI) -> None:
    assert await comfy.get_settings() == fixture("get_settings")["response"]["json"]
    assert await comfy.get_setting("Comfy.Unset") is None
    await comfy.store_settings({"Comfy.A": 1, "Comfy.B": "x"})
    await comfy.store_setting("Comfy.B", {"nested": [1, 2]})
    await comfy.store_setting("Comfy.Null", None)
    assert await comfy.get_settings() == {
        "Comfy.A": 1,
        "Comfy.B": {"nested": [1, 2]},
        "Comfy.Null": None,
    }
    assert await comfy.get_setting("Comfy.A") == 1
    posts = [r for r in fake.requests if r["method"] == "POST" and "settings" in r["path"]]
    assert all(r["headers"]["content-type"] == "application/json" for r in posts)


async def test_comfy_user_header_is_sent_only_when_configured(fake: FakeComfyUI) -> None:
    async with ComfyClient(fake.url, user="alice") as comfy:
        await comfy.get_settings()
    async with ComfyClient(fake.url) as comfy:
        await comfy.get_settings()
    first, second = (r for r in fake.requests if r["path"] == "/settings")
    assert first["headers"]["comfy-user"] == "alice"
    assert "comfy-user" not in second["headers"]


async def test_user_data_store_get_list_delete(comfy: ComfyClient, fake: FakeComfyUI) -> None:
    assert await comfy.get_user_data("workflows/none.json") is None
    assert await comfy.list_user_data("workflows") == []  # recorded: 404 "Directory not found"
    path = await comfy.store_user_data("workflows/a b.json", {"nodes": []})
    assert path == "workflows/a b.json"
    assert fake.userdata["workflows/a b.json"] == b'{"nodes": []}'
    info = await comfy.store_user_data("workflows/sub/c.txt", "héllo", full_info=True)
    assert info["path"] == "workflows/sub/c.txt" and info["size"] == len("héllo".encode())
    assert await comfy.get_user_data("workflows/a b.json") == b'{"nodes": []}'
    assert await comfy.list_user_data("workflows") == ["a b.json"]
    assert sorted(await comfy.list_user_data("workflows", recurse=True)) == [
        "a b.json",
        "sub/c.txt",
    ]
    full = await comfy.list_user_data("workflows", full_info=True)
    assert full[0]["path"] == "a b.json"
    with pytest.raises(ComfyHTTPError) as caught:
        await comfy.store_user_data("workflows/a b.json", b"x", overwrite=False)
    assert caught.value.status == 409
    assert await comfy.delete_user_data("workflows/a b.json") is True
    assert await comfy.delete_user_data("workflows/a b.json") is False
    with pytest.raises(ValueError, match="directory is required"):
        await comfy.list_user_data("")


async def test_user_data_path_travels_as_one_segment(comfy: ComfyClient, fake: FakeComfyUI) -> None:
    """ComfyUI's route is /userdata/{file}: one segment, so '/' must be sent as %2F."""
    await comfy.store_user_data("workflows/x.json", b"{}")
    sent = [r for r in fake.requests if r["path"].startswith("/userdata/")][-1]
    assert sent["headers"]["content-type"] == "application/octet-stream"
    assert "overwrite=true" in sent["query"] and "full_info=false" in sent["query"]
    url = comfy.api_url("/userdata/" + "workflows%2Fx.json")
    assert "%2F" in str(httpx.URL(url))


# -- discovery -------------------------------------------------------------------------------


def older_server(routes: dict[str, Any]) -> httpx.AsyncClient:
    """An HTTP client whose transport answers ``routes`` (path → JSON) and 404 otherwise."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path in routes:
            return httpx.Response(200, json=routes[request.url.path])
        return httpx.Response(404)

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


async def test_model_folders_from_experiment_route_and_fallback(comfy: ComfyClient) -> None:
    folders = await comfy.get_model_folders()
    recorded = fixture("get_experiment_models")["response"]["json"]
    assert [f.name for f in folders] == [f["name"] for f in recorded]
    assert folders[0].folders == recorded[0]["folders"]
    models = fixture("get_models")["response"]["json"]
    async with (
        older_server({"/models": models}) as http,
        ComfyClient("http://old.example", http_client=http) as old,
    ):
        fallback = await old.get_model_folders()
    assert ModelFolder(name="checkpoints") in fallback
    assert [f.name for f in fallback] == [m for m in models if m not in ("configs", "custom_nodes")]


async def test_model_files_carry_size_and_times(comfy: ComfyClient) -> None:
    files = await comfy.get_model_files("loras")
    recorded = fixture("get_experiment_models_loras")["response"]["json"]
    assert [f.name for f in files] == [f["name"] for f in recorded]
    assert files[0].path_index == 0 and files[0].size == 0 and files[0].modified
    with pytest.raises(ComfyNotFoundError):
        await comfy.get_model_files("no_such_folder")


async def test_thin_model_lists(comfy: ComfyClient, fake: FakeComfyUI) -> None:
    fake.models["controlnet"] = ["canny.safetensors"]
    fake.models["upscale_models"] = ["4x.pth"]
    fake.models["hypernetworks"] = ["h.pt"]
    assert await comfy.get_sd_models() == fixture("get_models_checkpoints")["response"]["json"]
    assert await comfy.get_vaes() == fixture("get_models_vae")["response"]["json"]
    assert await comfy.get_cnet_models() == ["canny.safetensors"]
    assert await comfy.get_upscale_models() == ["4x.pth"]
    assert await comfy.get_hypernetworks() == ["h.pt"]
    assert await comfy.get_embeddings() == []
    assert await comfy.get_extensions() == fixture("get_extensions")["response"]["json"]


async def test_view_metadata_none_for_404_and_typed_error_for_the_recorded_500(
    comfy: ComfyClient, fake: FakeComfyUI
) -> None:
    assert await comfy.view_metadata("checkpoints", "missing.safetensors") is None
    assert await comfy.view_metadata("checkpoints", "model.ckpt") is None
    with pytest.raises(ComfyHTTPError, match="could not read the safetensors header") as caught:
        await comfy.view_metadata("checkpoints", "sd15-placeholder.safetensors")
    assert caught.value.status == 500
    fake.models_loadable = True
    meta = await comfy.view_metadata("checkpoints", "sd15-placeholder.safetensors")
    assert meta is not None and meta["modelspec.title"] == "sd15-placeholder.safetensors"


async def test_logs_come_from_internal_routes_without_the_api_prefix(fake: FakeComfyUI) -> None:
    async with ComfyClient(fake.url, route_prefix="/api") as comfy:
        await comfy.run(smoke_graph(color=0xABC), timeout=10)
        text = await comfy.get_logs()
        raw = await comfy.get_raw_logs()
    assert "got prompt" in text
    assert raw.entries[-1].m == "got prompt\n" and raw.rows == 24 and raw.cols == 80
    paths = {r["path"] for r in fake.requests}
    assert {"/internal/logs", "/internal/logs/raw", "/api/prompt"} <= paths


async def test_url_builders_keep_prefix_and_leave_credentials_out(fake: FakeComfyUI) -> None:
    from comfy_mcp.comfy import Auth

    auth = Auth(query={"token": "sekret"})
    async with ComfyClient("https://gpu.example/comfy", auth=auth, route_prefix="/api") as c:
        assert c.api_url("/queue") == "https://gpu.example/comfy/api/queue"
        assert c.internal_url("logs") == "https://gpu.example/comfy/internal/logs"
        assert c.ws_url() == f"wss://gpu.example/comfy/ws?clientId={c.client_id}"
        assert c.ws_url(include_auth=True).endswith("&token=sekret")
        assert "sekret" not in c.view_url("a.png", preview="webp;80", channel="rgb")
        assert "preview=webp%3B80&channel=rgb" in c.view_url(
            "a.png", preview="webp;80", channel="rgb"
        )


# -- files -----------------------------------------------------------------------------------


async def test_upload_mask_sends_original_ref_and_stores_the_masked_image(
    comfy: ComfyClient, fake: FakeComfyUI
) -> None:
    base = await comfy.upload_image(png("red"), "base.png")
    mask = png((0, 0, 0, 0), mode="RGBA")
    stored = await comfy.upload_mask(mask, "masked.png", base)
    assert stored.name == "masked.png" and stored.type == "input"
    image = Image.open(io.BytesIO(fake.files("input")["masked.png"]))
    assert image.mode == "RGBA" and image.getpixel((0, 0)) == (255, 0, 0, 0)
    again = await comfy.upload_mask(
        mask, "masked.png", {"filename": "base.png", "type": "input"}, subfolder="m"
    )
    assert again.reference == "m/masked.png"
    with pytest.raises(ValueError, match="filename"):
        await comfy.upload_mask(mask, "x.png", {"type": "input"})


async def test_upload_over_the_known_limit_is_refused_before_sending(
    fake: FakeComfyUI,
) -> None:
    fake.max_upload_size = 1000
    async with ComfyClient(fake.url) as comfy:
        with pytest.raises(UploadTooLargeError, match="HTTP 413"):
            await comfy.upload_image(b"x" * 1001, "big.png")  # limit unknown: the server says
        await comfy.get_features()  # learns max_upload_size (so does the websocket handshake)
        with pytest.raises(UploadTooLargeError, match="max_upload_size of 1000"):
            await comfy.upload_image(b"x" * 1001, "big.png")
    assert [r["path"] for r in fake.requests if "upload" in r["path"]] == ["/upload/image"]


async def test_prompt_outputs_and_resolver_return_every_output_kind(
    comfy: ComfyClient, fake: FakeComfyUI
) -> None:
    """SaveImage (output) and PreviewImage (temp) in one graph: both come back."""
    graph = fixture("workflow_load_scale")
    fake.add_input_file("fixture-upload.png", png("blue", size=16))
    job = await comfy.run(graph, timeout=10)
    files = await comfy.get_prompt_outputs(job.prompt_id)
    assert {f.type for f in files} == {"output", "temp"}
    resolved = await comfy.resolve_outputs(job)
    assert {r.file.type for r in resolved if r.file} == {"output", "temp"}
    assert all(r.url and "/view?" in r.url and r.data is None for r in resolved)
    by_id = await comfy.resolve_outputs(job.prompt_id, as_="bytes")
    assert [r.file for r in by_id] == [r.file for r in resolved]
    for output in by_id:
        assert output.data is not None and output.data.startswith(b"\x89PNG")
        assert output.kind is MediaKind.IMAGE and output.mime_type == "image/png"
    assert await comfy.get_prompt_outputs("no-such-prompt") == []
    assert await comfy.resolve_outputs("no-such-prompt") == []


async def test_resolver_includes_text_and_websocket_only_images() -> None:
    from comfy_mcp.comfy import HistoryEntry, Job, Preview

    entry = HistoryEntry.from_wire(
        "p",
        {
            "prompt": [0, "p", {}, {}, ["2", "3"]],
            "outputs": {"3": {"text": ["a caption"]}},
            "status": {"status_str": "success", "completed": True, "messages": []},
        },
    )
    graph: dict[str, Any] = {
        "1": {"class_type": "KSampler"},
        "2": {"class_type": "SaveImageWebsocket"},
    }
    job = Job("p", graph)
    job.history = entry
    job.previews.append(Preview("image/png", b"live", "p", "1"))  # a sampler preview
    job.previews.append(Preview("image/png", b"final", "p", "2"))
    async with ComfyClient("http://127.0.0.1:9") as comfy:
        resolved = await comfy.resolve_outputs(job)
    assert [(r.node_id, r.kind, r.text, r.data) for r in resolved] == [
        ("3", MediaKind.TEXT, "a caption", None),
        ("2", MediaKind.IMAGE, None, b"final"),
    ]


async def test_extra_data_and_workflow_are_not_mutated(
    comfy: ComfyClient, fake: FakeComfyUI
) -> None:
    extra: dict[str, Any] = {"extra_pnginfo": {"other": 1}}
    await comfy.queue_prompt(smoke_graph(color=3), extra_data=extra, workflow={"nodes": []})
    assert extra == {"extra_pnginfo": {"other": 1}}
    sent = fake.posted_prompts[-1]["extra_data"]["extra_pnginfo"]
    assert sent == {"other": 1, "workflow": {"nodes": []}}
    assert json.dumps(sent)


async def test_request_is_the_escape_hatch_with_auth_prefix_and_typed_errors(
    fake: FakeComfyUI,
) -> None:
    async with ComfyClient(fake.url, route_prefix="/api", user="u1") as comfy:
        response = await comfy.request("GET", "/system_stats", headers={"X-Trace": "1"})
        assert response.json()["system"]["comfyui_version"] == "0.3.64"
        internal = await comfy.request("GET", "/internal/logs", route_prefix="")
        assert isinstance(internal.json(), str)
        with pytest.raises(ComfyNotFoundError):
            await comfy.request("GET", "/no/such/route")
    sent = next(r for r in fake.requests if r["path"] == "/api/system_stats")
    assert sent["headers"]["x-trace"] == "1" and sent["headers"]["comfy-user"] == "u1"


async def test_node_defs_are_cached_until_invalidated(
    comfy: ComfyClient, fake: FakeComfyUI
) -> None:
    def load_image_choices(defs: dict[str, Any]) -> list[str]:
        return list(defs["LoadImage"]["input"]["required"]["image"][0])

    before = load_image_choices(await comfy.get_node_defs())
    await comfy.upload_image(png("green"), "new-upload.png")
    assert load_image_choices(await comfy.get_node_defs()) == before  # cached
    comfy.invalidate_node_defs()
    assert "new-upload.png" in load_image_choices(await comfy.get_node_defs())
    assert [r["path"] for r in fake.requests].count("/object_info") == 2
