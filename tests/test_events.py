"""Websocket frames → events → job state, replaying transcripts recorded from ComfyUI 0.3.64."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from comfy_mcp.comfy import Event, Job, JobState, NodeText, Preview, UnknownEvent
from comfy_mcp.comfy.events import parse_binary, parse_text
from comfy_mcp.comfy.jobs import JobRegistry
from comfy_mcp.comfy.models import HistoryEntry
from tests.conftest import fixture

PNG = bytes.fromhex("89504e470d0a1a0a") + b"rest-of-png"


def replay(name: str, registry: JobRegistry) -> list[Any]:
    """Feed a recorded transcript's text frames through the parser into ``registry``."""
    events = []
    for message in fixture(name)["messages"]:
        if message["frame"] == "text":
            event = parse_text(json.dumps(message["msg"]))
            events.append(event)
            if isinstance(event, Event):
                registry.dispatch(event)
    return events


def history_entry(name: str) -> HistoryEntry:
    data = fixture(name)["response"]["json"]
    ((prompt_id, entry),) = data.items()
    return HistoryEntry.from_wire(prompt_id, entry)


def test_success_transcript_ends_the_job_only_on_executing_null() -> None:
    recording = fixture("ws_success")
    registry = JobRegistry()
    job = registry.register(Job(recording["prompt_id"]))
    messages = [m["msg"] for m in recording["messages"] if m["frame"] == "text"]
    for message in messages[:-1]:
        registry.dispatch(parse_text(json.dumps(message)))  # type: ignore[arg-type]
        assert not job.ended.is_set(), f"ended early on {message['type']}"
    assert job.state is JobState.RUNNING
    registry.dispatch(parse_text(json.dumps(messages[-1])))  # type: ignore[arg-type]
    assert job.ended.is_set()
    job.apply_history(history_entry("get_history_prompt_success"))
    assert job.state is JobState.SUCCEEDED
    assert [f.filename for f in job.files] == ["fixture_empty_00001_.png"]


def test_events_of_other_prompts_are_ignored() -> None:
    registry = JobRegistry()
    job = registry.register(Job("someone-else"))
    replay("ws_execution_error", registry)
    assert job.state is JobState.UNKNOWN and not job.ended.is_set()
    assert job.error is None


def test_execution_error_is_recorded_with_node_and_exception() -> None:
    recording = fixture("ws_execution_error")
    registry = JobRegistry()
    job = registry.register(Job(recording["prompt_id"]))
    replay("ws_execution_error", registry)
    assert job.ended.is_set()
    assert job.error is not None
    assert job.error["node_type"] == "CheckpointLoaderSimple"
    job.apply_history(history_entry("get_history_prompt_execution_error"))
    assert job.state is JobState.FAILED
    assert "header too small" in job.error["exception_message"]


def test_interrupted_history_is_told_apart_from_failure() -> None:
    job = Job("x")
    job.apply_history(history_entry("get_history_prompt_interrupted"))
    assert job.state is JobState.INTERRUPTED
    assert job.interruption is not None and job.interruption["node_type"]


def test_cached_history_is_reported_as_cached() -> None:
    job = Job("x")
    job.apply_history(history_entry("get_history_prompt_cached"))
    assert job.state is JobState.CACHED


def test_progress_events_update_step_and_node() -> None:
    recording = fixture("ws_interrupted_mid_node")
    registry = JobRegistry()
    job = registry.register(
        Job(recording["prompt_id"], {"2": {"class_type": "SaveImageWebsocket"}})
    )
    replay("ws_interrupted_mid_node", registry)
    assert job.interruption is not None and job.interruption["node_id"] == "2"
    assert job.max == 100
    assert job.progress().node_type == "SaveImageWebsocket"


def test_reconnect_executing_without_prompt_id_does_not_end_anything() -> None:
    event = parse_text(json.dumps({"type": "executing", "data": {"node": "2"}}))
    assert isinstance(event, Event) and event.prompt_id is None and not event.is_prompt_done


def test_handshake_status_carries_sid() -> None:
    first = fixture("ws_handshake")["messages"][0]["msg"]
    event = parse_text(json.dumps(first))
    assert isinstance(event, Event)
    assert event.sid == fixture("ws_handshake")["client_id"]
    assert event.queue_remaining == 0


def test_legacy_preview_reads_format_at_offset_4() -> None:
    frame = struct.pack(">II", 1, 1) + PNG
    event = parse_binary(frame)
    assert isinstance(event, Preview)
    assert event.mime_type == "image/jpeg" and event.image == PNG


def test_metadata_preview_matches_the_recorded_layout() -> None:
    recorded = next(
        m for m in fixture("ws_binary_preview_metadata")["messages"] if m["frame"] == "binary"
    )
    metadata = json.dumps(recorded["metadata"]).encode()
    frame = struct.pack(">II", 4, len(metadata)) + metadata + PNG
    assert frame[:4].hex() == recorded["first8_hex"][:8]
    event = parse_binary(frame)
    assert isinstance(event, Preview)
    assert event.prompt_id == recorded["metadata"]["prompt_id"]
    assert event.node_id == "2" and event.mime_type == "image/png" and event.image == PNG


def test_legacy_preview_is_attributed_to_the_last_executing_node() -> None:
    registry = JobRegistry()
    job = registry.register(Job("p1"))
    registry.dispatch(Event("executing", {"node": "5", "prompt_id": "p1"}))
    registry.dispatch(parse_binary(struct.pack(">II", 1, 2) + PNG))  # type: ignore[arg-type]
    assert len(job.previews) == 1
    assert job.previews[0].node_id == "5" and job.previews[0].attributed


def test_text_frame() -> None:
    frame = struct.pack(">II", 3, 2) + b"12" + "héllo".encode()
    event = parse_binary(frame)
    assert isinstance(event, NodeText) and event.node_id == "12" and event.text == "héllo"


@pytest.mark.parametrize(
    "frame",
    [b"", b"\x00\x00", struct.pack(">II", 9, 0), struct.pack(">II", 4, 999) + b"{}"],
)
def test_bad_binary_frames_become_unknown_events(frame: bytes) -> None:
    assert isinstance(parse_binary(frame), UnknownEvent)


@given(st.binary(max_size=64))
def test_binary_parser_never_raises(frame: bytes) -> None:
    parse_binary(frame)


@given(st.text(max_size=200))
def test_text_parser_never_raises(frame: str) -> None:
    parse_text(frame)


@given(
    st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=20), max_size=5),
    st.binary(max_size=64),
)
def test_metadata_frames_round_trip(metadata: dict[str, str], image: bytes) -> None:
    raw = json.dumps(metadata).encode()
    event = parse_binary(struct.pack(">II", 4, len(raw)) + raw + image)
    assert isinstance(event, Preview)
    assert event.metadata == metadata and event.image == image


def test_reconnect_frame_is_attributed_to_our_only_running_job() -> None:
    """After a reconnect ComfyUI sends ``executing {node}`` without a prompt id; a legacy
    preview that follows belongs to the one prompt of ours that is running."""
    registry = JobRegistry()
    job = registry.register(Job("p1"))
    job.state = JobState.RUNNING
    registry.register(Job("p2"))  # queued, not running
    registry.dispatch(parse_text(json.dumps({"type": "executing", "data": {"node": "7"}})))  # type: ignore[arg-type]
    registry.dispatch(parse_binary(struct.pack(">II", 1, 2) + PNG))  # type: ignore[arg-type]
    assert job.previews and job.previews[0].node_id == "7" and job.previews[0].prompt_id == "p1"


def test_the_end_event_is_remembered_even_after_history_settled_the_job() -> None:
    job = Job("p1")
    job.apply_history(history_entry("get_history_prompt_success"))
    assert job.done and not job.ended_by_event
    job.feed(Event("executing", {"node": None, "prompt_id": "p1"}))
    assert job.ended_by_event


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(st.text(max_size=20), st.dictionaries(st.text(max_size=8), json_values, max_size=5))
def test_text_frames_keep_type_and_data_untouched(kind: str, data: dict[str, Any]) -> None:
    event = parse_text(json.dumps({"type": kind, "data": data}))
    assert isinstance(event, Event) and event.type == kind and event.data == data


@given(st.integers(min_value=0, max_value=2**32 - 1), st.binary(max_size=40))
def test_legacy_previews_take_the_format_from_offset_4(fmt: int, image: bytes) -> None:
    event = parse_binary(struct.pack(">II", 1, fmt) + image)
    assert isinstance(event, Preview) and event.image == image
    assert event.mime_type == {1: "image/jpeg"}.get(fmt, "image/png")
