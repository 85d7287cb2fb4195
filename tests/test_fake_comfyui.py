"""Tests of the fake ComfyUI against the recorded fixtures, driven with plain httpx + websockets."""

from __future__ import annotations

import asyncio
import io
import json
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
    return [f["type"] if isinstance(f, dict) else "binary" for f in frames]


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
