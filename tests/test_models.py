"""Parsing recorded payloads into typed models."""

from __future__ import annotations

from comfy_mcp.comfy import HistoryEntry, MediaKind, QueueSnapshot
from comfy_mcp.comfy.models import PromptReceipt, output_files, output_texts
from tests.conftest import fixture


def test_queue_pending_is_sorted_into_run_order() -> None:
    queue = QueueSnapshot.from_wire(fixture("get_queue_running_and_pending")["response"]["json"])
    assert [item.number for item in queue.pending] == [-24, 22, 23]
    assert len(queue.running) == 1
    running_id = queue.running[0].prompt_id
    assert queue.position(running_id) == 0
    assert queue.position(queue.pending[0].prompt_id) == 1
    assert queue.position("nope") is None
    assert queue.running[0].client_id


def test_partial_accept_lists_dropped_outputs() -> None:
    receipt = PromptReceipt.model_validate(
        fixture("post_prompt_200_with_node_errors")["response"]["json"]
    )
    assert receipt.partial
    assert receipt.dropped_outputs


def test_history_entry_facts() -> None:
    data = fixture("get_history_prompt_load_scale")["response"]["json"]
    ((pid, raw),) = data.items()
    entry = HistoryEntry.from_wire(pid, raw)
    assert entry.outcome == "success"
    files = {f.filename: f for f in entry.files}
    assert {f.type for f in files.values()} == {"output", "temp"}
    start, end = entry.timestamps() or (0, 0)
    assert end >= start > 0


def test_output_files_cover_every_list_key_and_kind() -> None:
    outputs = {
        "9": {"images": [{"filename": "a.png", "subfolder": "x/y", "type": "output"}]},
        "10": {
            "images": [{"filename": "clip.webp", "subfolder": "", "type": "output"}],
            "animated": [True],
        },
        "11": {
            "gifs": [{"filename": "v.mp4", "subfolder": "", "type": "output", "fullpath": "/x"}]
        },
        "12": {"audio": [{"filename": "s.flac", "subfolder": "", "type": "temp"}]},
        "13": {"text": ["hello"]},
        "14": {"mesh": [{"filename": "m.glb", "subfolder": "3d", "type": "output"}]},
    }
    files = {f.filename: f for f in output_files(outputs)}
    assert files["a.png"].kind is MediaKind.IMAGE and files["a.png"].path == "x/y/a.png"
    assert files["clip.webp"].kind is MediaKind.ANIMATION
    assert files["v.mp4"].kind is MediaKind.VIDEO and files["v.mp4"].mime_type == "video/mp4"
    assert files["s.flac"].kind is MediaKind.AUDIO and files["s.flac"].type == "temp"
    assert files["m.glb"].kind is MediaKind.MODEL_3D
    assert output_texts(outputs) == {"13": ["hello"]}


def test_error_history_without_messages_is_not_success() -> None:
    entry = HistoryEntry.from_wire("p", {"status": {"status_str": "error", "messages": []}})
    assert entry.outcome == "error"
    assert HistoryEntry.from_wire("p", {"outputs": {}}).outcome is None
