"""Tests of the fake ComfyUI against the recorded fixtures, driven with plain httpx + websockets."""

from __future__ import annotations

import asyncio
import io
import json
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import websockets
from PIL import Image

from tests.fake_comfyui import FakeComfyUI, recorded, run_fake_comfyui

pytestmark = pytest.mark.anyio

WAIT = 10.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def fake() -> AsyncIterator[FakeComfyUI]:
    async with run_fake_comfyui() as server:
        yield server


@pytest.fixture
async def http(fake: FakeComfyUI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url, timeout=WAIT) as client:
        yield client


class Ws:
    """A websocket that is read continuously (see the protocol note §8)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.frames: list[Any] = []
        self.closed = asyncio.Event()
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, client_id: str | None = None, flags: bool = False) -> Ws:
        ws_url = url.replace("http://", "ws://") + "/ws"
        if client_id is not None:
            ws_url += f"?clientId={client_id}"
        conn = await websockets.connect(ws_url, max_queue=None, max_size=None)
        if flags:
            frame = {"type": "feature_flags", "data": {"supports_preview_metadata": True}}
            await conn.send(json.dumps(frame))
        ws = cls(conn)
        await ws.wait_for(lambda f: isinstance(f, dict) and f["type"] == "status")
        return ws

    async def _read(self) -> None:
        try:
            async for raw in self.conn:
                self.frames.append(raw if isinstance(raw, bytes) else json.loads(raw))
                self._changed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()
            self._changed.set()

    async def wait_for(self, pred: Callable[[Any], bool], start: int = 0) -> int:
        """Index of the first frame at/after ``start`` matching ``pred``."""

        async def scan() -> int:
            while True:
                for index in range(start, len(self.frames)):
                    if pred(self.frames[index]):
                        return index
                if self.closed.is_set():
                    raise AssertionError("socket closed")
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(scan(), WAIT)

    async def wait_done(self, prompt_id: str) -> list[Any]:
        """Frames up to the final ``executing {node: null}`` of ``prompt_id``."""
        end = await self.wait_for(
            lambda f: (
                isinstance(f, dict)
                and f["type"] == "executing"
                and f["data"].get("node") is None
                and f["data"].get("prompt_id") == prompt_id
            )
        )
        return self.frames[: end + 1]

    async def close(self) -> None:
        await self.conn.close()
        self._task.cancel()


def types(frames: list[Any]) -> list[str]:
    return [
        f["type"] if isinstance(f, dict) else f"<binary type {struct.unpack('>I', f[:4])[0]}>"
        for f in frames
    ]


def since_submit(frames: list[Any]) -> list[Any]:
    """Drop the handshake frames (status with sid, feature_flags)."""
    return [
        f
        for f in frames
        if not (isinstance(f, dict) and (f["type"] == "feature_flags" or "sid" in f["data"]))
    ]


def normalize(value: Any, prompt_id: str) -> Any:
    """Replace a prompt id and the timestamps so transcripts can be compared."""
    if isinstance(value, dict):
        return {k: (0 if k == "timestamp" else normalize(v, prompt_id)) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v, prompt_id) for v in value]
    return "<pid>" if value == prompt_id else value


def recorded_frames(name: str) -> tuple[list[Any], str]:
    data = recorded.fixture(name)
    return [m["msg"] for m in data["messages"] if m["frame"] == "text"], data["prompt_id"]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(data)).size


async def submit(
    http: httpx.AsyncClient, workflow: dict[str, Any] | str, client_id: str | None, **extra: Any
) -> str:
    prompt = recorded.workflow(workflow) if isinstance(workflow, str) else workflow
    body: dict[str, Any] = {"prompt": prompt, **extra}
    if client_id is not None:
        body["client_id"] = client_id
    response = await http.post("/prompt", json=body)
    assert response.status_code == 200, response.text
    prompt_id: str = response.json()["prompt_id"]
    return prompt_id


async def wait_history(http: httpx.AsyncClient, prompt_id: str) -> dict[str, Any]:
    for _ in range(500):
        body = (await http.get(f"/history/{prompt_id}")).json()
        if body:
            entry: dict[str, Any] = body[prompt_id]
            return entry
        await asyncio.sleep(0.01)
    raise AssertionError(f"no history for {prompt_id}")


def upload_png(size: tuple[int, int] = (40, 30), color: tuple[int, ...] = (10, 200, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA" if len(color) == 4 else "RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


# -- handshake ---------------------------------------------------------------------------------
async def test_handshake_sid_and_feature_flags(fake: FakeComfyUI) -> None:
    ws = await Ws.open(fake.url, "client-a", flags=True)
    await ws.wait_for(lambda f: f["type"] == "feature_flags")
    expected = recorded.fixture("ws_handshake_feature_flags")["messages"]
    got = ws.frames[:2]
    assert [f["type"] for f in got] == [m["msg"]["type"] for m in expected]
    assert got[0]["data"] == {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "client-a"}
    assert got[1] == expected[1]["msg"]
    anonymous = await Ws.open(fake.url)
    sid = anonymous.frames[0]["data"]["sid"]
    assert len(sid) == 32 and int(sid, 16) >= 0
    assert sorted(fake.connected_client_ids) == sorted(["client-a", sid])
    await ws.close()
    await anonymous.close()


# -- runs compared with the recorded transcripts -----------------------------------------------
async def test_success_then_cached_match_recording(
    fake: FakeComfyUI, http: httpx.AsyncClient
) -> None:
    ws = await Ws.open(fake.url, "c1")
    first = await submit(http, "empty_save", "c1")
    frames = since_submit(await ws.wait_done(first))
    expected, rec_id = recorded_frames("ws_success")
    assert normalize(frames, first) == normalize(expected, rec_id)
    entry = await wait_history(http, first)
    want = recorded.response_json("get_history_prompt_success")[rec_id]
    entry["prompt"][3] = want["prompt"][3]  # client id differs
    assert normalize(entry, first) == normalize(want, rec_id)

    start = len(ws.frames)
    second = await submit(http, "empty_save", "c1")
    frames = (await ws.wait_done(second))[start:]
    expected, rec_id = recorded_frames("ws_cached")
    assert normalize(frames, second) == normalize(expected, rec_id)
    assert list(fake.files("output")) == ["fixture_empty_00001_.png"]

    # /free with free_memory resets the cache: the same prompt runs again and writes _00002_
    free = await http.post("/free", json={"unload_models": True, "free_memory": True})
    assert (free.status_code, free.content, "content-type" in free.headers) == (200, b"", False)
    start = len(ws.frames)
    third = await submit(http, "empty_save", "c1")
    frames = (await ws.wait_done(third))[start:]
    assert types(frames) == recorded.fixture("ws_after_free")["message_types"]
    assert "fixture_empty_00002_.png" in fake.files("output")
    await ws.close()


async def test_execution_error_matches_recording(
    fake: FakeComfyUI, http: httpx.AsyncClient
) -> None:
    ws = await Ws.open(fake.url, "c1")
    prompt_id = await submit(http, "checkpoint_error", "c1")
    frames = since_submit(await ws.wait_done(prompt_id))
    expected, rec_id = recorded_frames("ws_execution_error")
    got = normalize(frames, prompt_id)
    want = normalize(expected, rec_id)
    for frame in (got, want):  # current_outputs is a set on the real server
        frame[6]["data"]["current_outputs"] = sorted(frame[6]["data"]["current_outputs"])
    assert got == want
    entry = await wait_history(http, prompt_id)
    recorded_entry = recorded.response_json("get_history_prompt_execution_error")[rec_id]
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
    assert [m[0] for m in entry["status"]["messages"]] == [
        m[0] for m in recorded_entry["status"]["messages"]
    ]
    assert (entry["outputs"], entry["meta"]) == ({}, {})
    await ws.close()


@pytest.mark.parametrize(
    "name",
    [
        "bad_link_source",
        "invalid_class",
        "missing_class_type",
        "missing_input",
        "missing_loadimage_file",
        "no_outputs",
        "type_mismatch",
        "value_not_in_list",
        "value_too_big",
    ],
)
async def test_validation_errors_match_recording(
    fake: FakeComfyUI, http: httpx.AsyncClient, name: str
) -> None:
    ws = await Ws.open(fake.url, "c1")
    response = await http.post(
        "/prompt", json={"prompt": recorded.workflow(f"invalid_{name}"), "client_id": "c1"}
    )
    want = recorded.fixture(f"post_prompt_400_{name}")["response"]
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == want["json"]
    # same serialisation as aiohttp (the recorded lengths differ only where paths were redacted)
    assert response.content == json.dumps(want["json"]).encode()
    await asyncio.sleep(0.05)
    assert len(ws.frames) == 1  # ws_validation_error.json: nothing is sent
    await ws.close()


async def test_no_prompt_and_number_counter(fake: FakeComfyUI, http: httpx.AsyncClient) -> None:
    response = await http.post("/prompt", json={"client_id": "x"})
    assert response.status_code == 400
    assert response.json() == recorded.response_json("post_prompt_400_no_prompt")
    bad = {"prompt": recorded.workflow("invalid_no_outputs")}
    assert (await http.post("/prompt", json=bad)).status_code == 400
    ok = await http.post("/prompt", json={"prompt": recorded.workflow("empty_save")})
    assert ok.json()["number"] == 2  # rejected prompts consumed 0 and 1
    front = await http.post(
        "/prompt", json={"prompt": recorded.workflow("empty_save"), "front": True}
    )
    assert front.json()["number"] == -3
    custom = await http.post(
        "/prompt",
        json={"prompt": recorded.workflow("empty_save"), "prompt_id": "my-id", "number": 7},
    )
    assert custom.json() == {"prompt_id": "my-id", "number": 7.0, "node_errors": {}}
    assert len(fake.posted_prompts) == 5


async def test_partial_accept(fake: FakeComfyUI, http: httpx.AsyncClient) -> None:
    ws = await Ws.open(fake.url, "c1")
    response = await http.post(
        "/prompt", json={"prompt": recorded.workflow("partially_invalid"), "client_id": "c1"}
    )
    want = recorded.response_json("post_prompt_200_with_node_errors")
    assert response.status_code == 200
    assert response.json()["node_errors"] == want["node_errors"]
    prompt_id = response.json()["prompt_id"]
    frames = since_submit(await ws.wait_done(prompt_id))
    assert types(frames) == recorded.fixture("ws_partially_invalid")["message_types"]
    entry = await wait_history(http, prompt_id)
    assert entry["prompt"][4] == ["2"]
    assert list(entry["outputs"]) == ["2"]
    await ws.close()


async def test_no_client_id_only_broadcasts(fake: FakeComfyUI, http: httpx.AsyncClient) -> None:
    observer = await Ws.open(fake.url, "observer")
    prompt_id = await submit(http, "no_client_id", None)
    entry = await wait_history(http, prompt_id)
    await observer.wait_for(
        lambda f: (
            f["type"] == "status" and f["data"]["status"]["exec_info"]["queue_remaining"] == 0
        ),
        start=2,
    )
    await asyncio.sleep(0.05)
    assert (
        types(since_submit(observer.frames)) == recorded.fixture("ws_no_client_id")["message_types"]
    )
    assert entry["prompt"][3] == {}
    await observer.close()


async def test_other_clients_see_only_status(fake: FakeComfyUI, http: httpx.AsyncClient) -> None:
    owner = await Ws.open(fake.url, "owner")
    observer = await Ws.open(fake.url, "observer")
    prompt_id = await submit(http, "observer", "owner")
    await owner.wait_done(prompt_id)
    await asyncio.sleep(0.05)
    expected = recorded.fixture("ws_observer_other_client")["message_types"]
    assert types(since_submit(observer.frames)) == expected
    await owner.close()
    await observer.close()


async def test_invert_scale_and_view(fake: FakeComfyUI, http: httpx.AsyncClient) -> None:
    ws = await Ws.open(fake.url, "c1")
    prompt_id = await submit(http, "invert_scale", "c1")
    frames = since_submit(await ws.wait_done(prompt_id))
    assert types(frames) == recorded.fixture("ws_invert_scale")["message_types"]
    view = await http.get(
        "/view", params={"filename": "fixture_invert_scale_00001_.png", "type": "output"}
    )
    assert view.status_code == 200
    assert view.headers["content-type"] == "image/png"
    assert view.headers["content-disposition"] == 'filename="fixture_invert_scale_00001_.png"'
    assert png_size(view.content) == (256, 192)
    img = Image.open(io.BytesIO(view.content))
    assert img.getpixel((10, 10)) == (255, 255, 0)  # blue (255) inverted
    assert json.loads(img.info["prompt"]) == recorded.workflow("invert_scale")
    await ws.close()


async def test_preview_writes_temp_files(fake: FakeComfyUI, http: httpx.AsyncClient) -> None:
    ws = await Ws.open(fake.url, "c1")
    prompt_id = await submit(http, "preview", "c1")
    frames = since_submit(await ws.wait_done(prompt_id))
    assert types(frames) == recorded.fixture("ws_preview")["message_types"]
    images = (await wait_history(http, prompt_id))["outputs"]["2"]["images"]
    assert [i["type"] for i in images] == ["temp", "temp"]
    assert images[0]["filename"].startswith("ComfyUI_temp_")
    assert images[0]["filename"].endswith("_00001_.png")
    view = await http.get("/view", params={**images[1]})
    assert png_size(view.content) == (64, 64)
    await ws.close()


async def test_history_paging(fake: FakeComfyUI, http: httpx.AsyncClient) -> None:
    assert (await http.get("/history")).json() == {}
    ids = []
    for color in range(4):
        workflow = recorded.workflow("empty_save")
        workflow["1"]["inputs"]["color"] = color
        ids.append(await submit(http, workflow, None))
    for prompt_id in ids:
        await wait_history(http, prompt_id)
    assert list((await http.get("/history")).json()) == ids
    assert list((await http.get("/history", params={"max_items": 1})).json()) == ids[-1:]
    paged = (await http.get("/history", params={"max_items": 2, "offset": 1})).json()
    assert list(paged) == ids[1:3]
    assert list((await http.get("/history", params={"offset": 2})).json()) == ids[2:]
    assert (await http.get("/history/unknown")).json() == {}
    delete = await http.post("/history", json={"delete": [ids[0]]})
    assert (delete.status_code, delete.content) == (200, b"")
    assert (await http.get(f"/history/{ids[0]}")).json() == {}
    await http.post("/history", json={"clear": True})
    assert (await http.get("/history")).json() == {}


# -- queue, interrupt ----------------------------------------------------------------------------
def slow_blur(color: int = 1, size: int = 64) -> dict[str, Any]:
    workflow = recorded.workflow("slow_blur")
    workflow["1"]["inputs"].update(width=size, height=size, color=color)
    return workflow


async def test_queue_ops_and_targeted_interrupt(fake: FakeComfyUI, http: httpx.AsyncClient) -> None:
    fake.node_delay = 0.1
    ws = await Ws.open(fake.url, "c1")
    a = await submit(http, slow_blur(1), "c1")
    await ws.wait_for(lambda f: f["type"] == "executing" and f["data"].get("node") == "1")
    b = await submit(http, slow_blur(2), "c1")
    c = await submit(http, slow_blur(3), "c1", prompt_id="fixture-custom-prompt-id-c")
    d = await submit(http, slow_blur(4), "c1", front=True)
    assert c == "fixture-custom-prompt-id-c"
    queue = (await http.get("/queue")).json()
    assert [item[1] for item in queue["queue_running"]] == [a]
    assert sorted(item[0] for item in queue["queue_pending"]) == [-3, 1, 2]
    assert queue["queue_pending"][0][1] == d  # heap order: front item first
    assert queue["queue_running"][0][3:] == [{"client_id": "c1"}, ["6"]]
    assert (await http.get("/prompt")).json() == {"exec_info": {"queue_remaining": 4}}

    deleted = await http.post("/queue", json={"delete": [c]})
    assert (deleted.status_code, deleted.content) == (200, b"")
    assert {i[1] for i in (await http.get("/queue")).json()["queue_pending"]} == {b, d}
    await http.post("/queue", json={"clear": True})
    assert (await http.get("/queue")).json()["queue_pending"] == []
    assert (await http.post("/interrupt", json={"prompt_id": "not-running"})).content == b""
    await ws.wait_for(lambda f: f["type"] == "executing" and f["data"].get("node") == "2")
    await http.post("/interrupt", json={"prompt_id": a})
    frames = await ws.wait_done(a)
    interrupted = next(f for f in frames if f["type"] == "execution_interrupted")
    assert interrupted["data"]["node_id"] == "3"
    assert sorted(interrupted["data"]["executed"]) == ["1", "2"]
    assert types(frames[-3:]) == ["execution_interrupted", "status", "executing"]
    assert [
        f["data"]["status"]["exec_info"]["queue_remaining"] for f in frames if f["type"] == "status"
    ][-6:] == [2, 3, 4, 3, 1, 0]
    entry = await wait_history(http, a)
    assert entry["status"]["status_str"] == "error"
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"
    assert fake.interrupt_calls == ["not-running", a]
    assert (await http.get("/queue")).json() == recorded.response_json("get_queue_after_clear") | {
        "queue_running": []
    }
    await ws.close()


async def test_global_interrupt_between_nodes(fake: FakeComfyUI, http: httpx.AsyncClient) -> None:
    fake.node_delay = 0.05
    ws = await Ws.open(fake.url, "c1")
    prompt_id = await submit(http, slow_blur(), "c1")
    await ws.wait_for(lambda f: f["type"] == "executing" and f["data"].get("node") == "3")
    assert (await http.post("/interrupt")).status_code == 200
    frames = since_submit(await ws.wait_done(prompt_id))
    expected, rec_id = recorded_frames("ws_interrupted")
    assert types(frames) == recorded.fixture("ws_interrupted")["message_types"]
    got, want = normalize(frames[-4:], prompt_id), normalize(expected[-4:], rec_id)
    for frame in (got[1], want[1]):
        frame["data"]["executed"] = sorted(frame["data"]["executed"])
    assert got == want
    assert "fixture_slow_00001_.png" not in fake.files("output")
    await ws.close()


async def test_interrupt_mid_node_stops_within_a_step(
    fake: FakeComfyUI, http: httpx.AsyncClient
) -> None:
    fake.node_delay = 1.0  # SaveImageWebsocket spreads it over its 100 steps
    ws = await Ws.open(fake.url, "c1")
    workflow = recorded.workflow("websocket_image_big_batch")
    workflow["1"]["inputs"].update(width=16, height=16)
    prompt_id = await submit(http, workflow, "c1")
    await ws.wait_for(
        lambda f: isinstance(f, dict) and f["type"] == "progress" and f["data"]["value"] == 3
    )
    await http.post("/interrupt")
    frames = since_submit(await ws.wait_done(prompt_id))
    progress = [
        f["data"]["value"] for f in frames if isinstance(f, dict) and f["type"] == "progress"
    ]
    assert 3 <= progress[-1] < 99
    assert isinstance(frames[-4], bytes)  # the last preview, then:
    assert types(frames[-3:]) == ["execution_interrupted", "status", "executing"]
    data = frames[-3]["data"]
    assert (data["node_id"], data["node_type"], data["executed"]) == (
        "2",
        "SaveImageWebsocket",
        ["1"],
    )
    await ws.close()


async def test_interrupt_while_idle_has_no_effect(
    fake: FakeComfyUI, http: httpx.AsyncClient
) -> None:
    await http.post("/interrupt")
    prompt_id = await submit(http, "empty_save", None)
    assert (await wait_history(http, prompt_id))["status"]["status_str"] == "success"


# -- binary frames, reconnect ---------------------------------------------------------------------
async def test_binary_preview_legacy_and_metadata(
    fake: FakeComfyUI, http: httpx.AsyncClient
) -> None:
    legacy = await Ws.open(fake.url, "legacy")
    prompt_id = await submit(http, "websocket_image", "legacy")
    frames = since_submit(await legacy.wait_done(prompt_id))
    assert types(frames) == recorded.fixture("ws_binary_preview_legacy")["message_types"]
    binary = [f for f in frames if isinstance(f, bytes)]
    assert [b[:8].hex() for b in binary] == ["0000000100000002"] * 2
    assert png_size(binary[0][8:]) == (32, 32)
    assert (await wait_history(http, prompt_id))["outputs"] == {}

    flagged = await Ws.open(fake.url, "flagged", flags=True)
    prompt_id = await submit(http, "websocket_image", "flagged")
    frames = await flagged.wait_done(prompt_id)
    assert types(frames) == recorded.fixture("ws_binary_preview_metadata")["message_types"]
    frame = next(f for f in frames if isinstance(f, bytes))
    event, length = struct.unpack(">II", frame[:8])
    metadata = json.loads(frame[8 : 8 + length])
    recorded_meta = next(
        m
        for m in recorded.fixture("ws_binary_preview_metadata")["messages"]
        if m["frame"] == "binary"
    )
    assert event == 4
    assert normalize(metadata, prompt_id) == normalize(
        recorded_meta["metadata"], recorded_meta["metadata"]["prompt_id"]
    )
    assert length == recorded_meta["metadata_length"]  # same JSON layout, 36-char prompt id
    assert png_size(frame[8 + length :]) == (32, 32)
    cached = next(f for f in frames if isinstance(f, dict) and f["type"] == "execution_cached")
    assert cached["data"]["nodes"] == ["1"]  # EmptyImage cached, SaveImageWebsocket never
    await legacy.close()
    await flagged.close()


async def test_reconnect_same_client_id_takes_over(
    fake: FakeComfyUI, http: httpx.AsyncClient
) -> None:
    fake.node_delay = 0.1
    first = await Ws.open(fake.url, "same")
    prompt_id = await submit(http, "reconnect", "same")
    await first.wait_for(lambda f: f["type"] == "executing" and f["data"].get("node") == "2")
    second = await Ws.open(fake.url, "same")
    assert second.frames[1] == {"type": "executing", "data": {"node": "2"}}
    frames = await second.wait_done(prompt_id)
    expected = recorded.fixture("ws_reconnect_same_client_id")["connection_2"]["message_types"]
    assert types(frames) == expected
    count = len(first.frames)
    await asyncio.sleep(0.05)
    assert len(first.frames) == count and types(first.frames)[-1] == "executing"
    assert not first.closed.is_set()
    await second.close()
    await first.close()


# -- uploads and /view ------------------------------------------------------------------------------
async def test_upload_rename_dedupe_subfolder(fake: FakeComfyUI, http: httpx.AsyncClient) -> None:
    original, other = upload_png(), upload_png(color=(1, 2, 3))
    files = {"image": ("fixture-upload.png", original, "image/png")}
    first = await http.post("/upload/image", files=files)
    assert first.json() == recorded.response_json("post_upload_image")
    again = await http.post("/upload/image", files=files)
    assert again.json() == recorded.response_json("post_upload_image_duplicate_same_bytes")
    clash = await http.post(
        "/upload/image", files={"image": ("fixture-upload.png", other, "image/png")}
    )
    assert clash.json() == recorded.response_json("post_upload_image_name_clash")
    sub = await http.post(
        "/upload/image",
        files={"image": ("fixture-upload.png", other, "image/png")},
        data={"overwrite": "true", "subfolder": "fixtures", "type": "input"},
    )
    assert sub.json() == recorded.response_json("post_upload_image_subfolder_overwrite")
    missing = await http.post("/upload/image", data={"type": "input"})
    assert (missing.status_code, missing.content) == (400, b"")
    info = (await http.get("/object_info/LoadImage")).json()
    assert info == recorded.response_json("get_object_info_LoadImage_after_upload")
    assert set(fake.files("input")) == {
        "example.png",
        "fixture-upload.png",
        "fixture-upload (1).png",
        "fixtures/fixture-upload.png",
    }
    view = await http.get(
        "/view", params={"filename": "fixture-upload.png", "subfolder": "fixtures", "type": "input"}
    )
    assert view.content == other

    ws = await Ws.open(fake.url, "c1")
    prompt_id = await submit(http, "load_scale", "c1")
    frames = since_submit(await ws.wait_done(prompt_id))
    assert types(frames) == recorded.fixture("ws_load_scale")["message_types"]
    executing = [f["data"]["node"] for f in frames if f["type"] == "executing"]
    assert executing == ["1", "4", "2", "3", None]  # the preview runs as soon as it can
    out = await http.get("/view", params={"filename": "fixture_load_scale_00001_.png"})
    assert png_size(out.content) == (80, 60)
    start = len(ws.frames)
    prompt_id = await submit(http, "load_subfolder", "c1")
    frames = (await ws.wait_done(prompt_id))[start:]
    assert types(frames) == recorded.fixture("ws_load_subfolder")["message_types"]
    outputs = (await wait_history(http, prompt_id))["outputs"]
    assert outputs["2"]["images"][0]["subfolder"] == "fixtures"
    await ws.close()


async def test_upload_too_large_and_mask() -> None:
    async with (
        run_fake_comfyui(max_upload_size=2048) as fake,
        httpx.AsyncClient(base_url=fake.url) as http,
    ):
        big = await http.post("/upload/image", files={"image": ("big.png", b"x" * 5000)})
        assert big.status_code == 413
        assert (await http.get("/features")).json()["max_upload_size"] == 2048
        await http.post("/upload/image", files={"image": ("base.png", upload_png())})
        mask = await http.post(
            "/upload/mask",
            files={"image": ("masked.png", upload_png(color=(0, 0, 0, 100)))},
            data={"original_ref": json.dumps({"filename": "base.png", "type": "input"})},
        )
        assert mask.json() == {"name": "masked.png", "subfolder": "", "type": "input"}
        stored = Image.open(io.BytesIO(fake.files("input")["masked.png"]))
        assert stored.mode == "RGBA" and stored.getpixel((0, 0)) == (10, 200, 30, 100)


async def test_view_errors_and_variants(fake: FakeComfyUI, http: httpx.AsyncClient) -> None:
    prompt_id = await submit(http, "empty_save", None)
    await wait_history(http, prompt_id)
    for name in ("get_view_no_filename", "get_view_not_found", "get_view_path_traversal"):
        request = recorded.fixture(name)["request"]
        response = await http.get(request["path"], params=request.get("query"))
        want = recorded.fixture(name)["response"]
        assert (response.status_code, response.content) == (want["status"], b""), name
    base = {"filename": "fixture_empty_00001_.png", "type": "output"}
    webp = await http.get("/view", params={**base, "preview": "webp;50"})
    assert webp.headers["content-type"] == "image/webp" and webp.content[:4] == b"RIFF"
    alpha = await http.get("/view", params={**base, "channel": "a"})
    assert alpha.headers["content-type"] == "image/png" and png_size(alpha.content) == (64, 64)
    api = await http.get("/api/view", params=base)
    assert api.headers["etag"] and api.headers["accept-ranges"] == "bytes"
    assert (await http.get("/view", params={**base, "subfolder": "../x"})).status_code == 403
    annotated = await http.get("/view", params={"filename": "example.png [input]"})
    assert png_size(annotated.content) == (64, 64)


# -- info endpoints ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "get_object_info_KSampler",
        "get_object_info_SaveImage",
        "get_object_info_LoadImage",
        "get_object_info_CheckpointLoaderSimple",
        "get_object_info_unknown",
        "get_models",
        "get_models_checkpoints",
        "get_models_loras",
        "get_models_vae",
        "get_models_unknown_folder",
        "get_experiment_models",
        "get_embeddings",
        "get_extensions",
        "get_features",
        "get_users",
        "get_settings",
        "get_userdata_no_dir",
        "get_userdata_workflows",
        "get_view_metadata_checkpoint",
        "get_system_stats",
        "get_queue_empty",
        "get_prompt",
        "get_history_empty",
        "get_history_prompt_unknown",
    ],
)
async def test_get_routes_match_recording(http: httpx.AsyncClient, name: str) -> None:
    fixture = recorded.fixture(name)
    request, want = fixture["request"], fixture["response"]
    response = await http.get(request["path"], params=request.get("query"))
    assert response.status_code == want["status"]
    if "json" in want:
        assert response.headers["content-type"] == want["headers"]["content-type"]
        assert response.json() == want["json"]
    else:
        assert response.text == want["text"]
        assert response.headers.get("content-type") == want["headers"].get("content-type")
    api = await http.get("/api" + request["path"], params=request.get("query"))
    assert (api.status_code, api.content) == (response.status_code, response.content)


async def test_full_object_info_and_index(http: httpx.AsyncClient) -> None:
    info = (await http.get("/object_info")).json()
    assert info == recorded.object_info()
    assert len(info) == 478
    for path in ("/", "/api/"):
        page = await http.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    broken = await http.post("/free")  # bodyless POST: the real handler fails
    assert broken.status_code == 500
    assert broken.text == "500 Internal Server Error\n\nServer got itself in trouble"
    assert (await http.get("/no/such/route")).status_code == 404


async def test_prefix_applies_to_every_route() -> None:
    async with run_fake_comfyui(prefix="/comfy") as fake:
        assert fake.url.endswith("/comfy")
        async with httpx.AsyncClient(base_url=fake.url) as http:
            assert (await http.get("/queue")).status_code == 200
            assert (await http.get("/api/queue")).status_code == 200
            root = fake.url.rsplit("/comfy", 1)[0]
            assert (await http.get(root + "/queue")).status_code == 404
            ws = await Ws.open(fake.url, "p1")
            prompt_id = await submit(http, "empty_save", "p1")
            await ws.wait_done(prompt_id)
            await ws.close()


async def test_models_loadable_txt2img() -> None:
    workflow = {
        "4": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": "sd15-placeholder.safetensors"},
        },
        "10": {
            "class_type": "LoraLoader",
            "inputs": {
                "model": ["4", 0],
                "clip": ["4", 1],
                "lora_name": "style/anime-placeholder.safetensors",
                "strength_model": 0.8,
                "strength_clip": 1.0,
            },
        },
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["10", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["10", 1]}},
        "5": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": 64, "height": 48, "batch_size": 2},
        },
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["10", 0],
                "seed": 42,
                "steps": 4,
                "cfg": 7.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
                "denoise": 1.0,
            },
        },
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {
            "class_type": "SaveImage",
            "inputs": {"images": ["8", 0], "filename_prefix": "t2i/run"},
        },
    }
    async with (
        run_fake_comfyui(models_loadable=True) as fake,
        httpx.AsyncClient(base_url=fake.url) as http,
    ):
        ws = await Ws.open(fake.url, "m1")
        prompt_id = await submit(http, workflow, "m1")
        frames = await ws.wait_done(prompt_id)
        steps = [f["data"]["value"] for f in frames if f["type"] == "progress"]
        assert steps == [1, 2, 3, 4]
        images = (await wait_history(http, prompt_id))["outputs"]["9"]["images"]
        assert [(i["subfolder"], i["filename"]) for i in images] == [
            ("t2i", "run_00001_.png"),
            ("t2i", "run_00002_.png"),
        ]
        first = fake.files("output")["t2i/run_00001_.png"]
        second = fake.files("output")["t2i/run_00002_.png"]
        assert png_size(first) == (64, 48) and first != second
        meta = await http.get(
            "/view_metadata/checkpoints", params={"filename": "sd15-placeholder.safetensors"}
        )
        assert meta.status_code == 200
        await ws.close()


# -- faults ------------------------------------------------------------------------------------------
async def test_fault_http_errors_malformed_and_delay(
    fake: FakeComfyUI, http: httpx.AsyncClient
) -> None:
    fake.faults.http_errors["/queue"] = 2
    for _ in range(2):
        failed = await http.get("/api/queue")
        assert failed.status_code == 500
        assert failed.text == "500 Internal Server Error\n\nServer got itself in trouble"
    assert (await http.get("/queue")).status_code == 200
    assert fake.faults.http_errors == {}

    fake.faults.malformed_json.add("/prompt")
    response = await http.post("/prompt", json={"prompt": recorded.workflow("empty_save")})
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert len(fake.posted_prompts) == 1  # the prompt was accepted all the same
    fake.faults.malformed_json.clear()

    fake.faults.http_delay = 0.2
    loop = asyncio.get_running_loop()
    started = loop.time()
    await http.get("/prompt")
    assert loop.time() - started >= 0.2
    fake.faults.http_delay = 0.0

    fake.faults.hang_http = True
    with pytest.raises(httpx.ReadTimeout):
        await http.get("/prompt", timeout=0.2)
    pending = asyncio.create_task(http.get("/system_stats"))
    await asyncio.sleep(0.1)
    assert not pending.done()
    fake.faults.hang_http = False
    assert (await pending).status_code == 200


async def test_fault_auth_gate(fake: FakeComfyUI, http: httpx.AsyncClient) -> None:
    fake.faults.require_headers = {"Authorization": "Bearer sekret"}
    fake.faults.require_query = {"token": "q1"}
    fake.faults.require_cookies = {"session": "c1"}
    assert (await http.get("/queue")).status_code == 401
    ok = await http.get(
        "/queue",
        params={"token": "q1"},
        headers={"Authorization": "Bearer sekret", "Cookie": "session=c1"},
    )
    assert ok.status_code == 200
    view = await http.get("/view", params={"filename": "example.png", "type": "input"})
    assert view.status_code == 401
    ws_url = fake.url.replace("http://", "ws://")
    with pytest.raises(websockets.InvalidStatus) as denied:
        await websockets.connect(ws_url + "/ws?clientId=x&token=q1")
    assert denied.value.response.status_code == 401
    conn = await websockets.connect(
        ws_url + "/ws?clientId=x&token=q1",
        additional_headers={"Authorization": "Bearer sekret", "Cookie": "session=c1"},
    )
    assert json.loads(await conn.recv())["data"]["sid"] == "x"
    await conn.close()


async def test_fault_websocket_reject_silent_and_drop(
    fake: FakeComfyUI, http: httpx.AsyncClient
) -> None:
    ws_url = fake.url.replace("http://", "ws://") + "/ws?clientId=w1"
    fake.faults.reject_ws_status = 403
    with pytest.raises(websockets.InvalidStatus) as denied:
        await websockets.connect(ws_url)
    assert denied.value.response.status_code == 403
    fake.faults.reject_ws_status = None

    fake.faults.ws_silent = True
    silent = await websockets.connect(ws_url)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(silent.recv(), 0.2)
    await silent.close()
    fake.faults.ws_silent = False

    fake.node_delay = 0.05
    ws = await Ws.open(fake.url, "w1")
    prompt_id = await submit(http, "reconnect", "w1")
    await ws.wait_for(lambda f: f["type"] == "executing" and f["data"].get("node") == "2")
    await fake.drop_websockets()
    await asyncio.wait_for(ws.closed.wait(), WAIT)
    assert ws.conn.close_code == 1006  # abrupt: no close frame
    assert fake.connected_client_ids == []
    entry = await wait_history(http, prompt_id)  # the job finished while nobody listened
    assert entry["status"]["status_str"] == "success"


async def test_fault_restart_keeps_port_loses_state(
    fake: FakeComfyUI, http: httpx.AsyncClient
) -> None:
    first = await submit(http, "empty_save", None)
    await wait_history(http, first)
    fake.node_delay = 0.2
    ws = await Ws.open(fake.url, "r1")
    running = await submit(http, slow_blur(), "r1")
    await submit(http, slow_blur(2), "r1")
    url = fake.url
    await fake.restart()
    await asyncio.wait_for(ws.closed.wait(), WAIT)
    assert fake.url == url
    async with httpx.AsyncClient(base_url=url) as fresh:
        assert (await fresh.get("/history")).json() == {}
        assert (await fresh.get(f"/history/{running}")).json() == {}
        assert (await fresh.get("/queue")).json() == recorded.response_json("get_queue_empty")
        fake.node_delay = 0.0
        again = await fresh.post("/prompt", json={"prompt": recorded.workflow("empty_save")})
        assert again.json()["number"] == 0  # the counter restarts too
        entry = await wait_history(fresh, again.json()["prompt_id"])
        # not cached after a restart, and the output counter continues from the files on disk
        assert entry["outputs"]["2"]["images"][0]["filename"] == "fixture_empty_00002_.png"


async def test_cached_rerun_without_client_id_reports_old_outputs(
    fake: FakeComfyUI, http: httpx.AsyncClient
) -> None:
    first = await wait_history(http, await submit(http, "no_client_id", None))
    second = await wait_history(http, await submit(http, "no_client_id", None))
    assert second["outputs"] == first["outputs"]
    assert second["status"]["messages"][1][1]["nodes"] == ["1", "2"]


async def test_closing_a_displaced_socket_orphans_the_new_one(fake: FakeComfyUI) -> None:
    """ComfyUI's cleanup pops the client id when the OLD socket closes (protocol note §3.5)."""
    old = await Ws.open(fake.url, "dup")
    new = await Ws.open(fake.url, "dup")
    assert fake.connected_client_ids == ["dup"]
    await old.close()
    await asyncio.sleep(0.05)
    assert fake.connected_client_ids == []
    assert not new.closed.is_set()
    assert [r["method"] for r in fake.requests].count("WEBSOCKET") == 2
    await new.close()


async def test_unrecorded_validation_errors(http: httpx.AsyncClient) -> None:
    small = recorded.workflow("empty_save")
    small["1"]["inputs"]["width"] = 0
    body = (await http.post("/prompt", json={"prompt": small})).json()
    error = body["node_errors"]["1"]["errors"][0]
    assert (error["type"], error["message"], error["details"]) == (
        "value_smaller_than_min",
        "Value 0 smaller than min of 1",
        "width",
    )
    inner = recorded.workflow("invert_scale")
    inner["2"]["inputs"]["image"] = ["99", 0]
    body = (await http.post("/prompt", json={"prompt": inner})).json()
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert body["node_errors"]["2"]["errors"][0]["type"] == "exception_during_inner_validation"
    assert body["node_errors"]["2"]["dependent_outputs"] == ["4"]
    typed = recorded.workflow("empty_save")
    typed["1"]["inputs"]["height"] = "48"  # converted like the real server
    response = await http.post("/prompt", json={"prompt": typed})
    assert response.status_code == 200
    queued = (await wait_history(http, response.json()["prompt_id"]))["prompt"][2]
    assert queued["1"]["inputs"]["height"] == 48
