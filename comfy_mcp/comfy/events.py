"""ComfyUI websocket frames as typed events (pure: bytes and text in, events out).

Text frames are ``{"type": str, "data": {...}}``. Binary frames start with a big-endian uint32
event type: 1 is a legacy preview (format code at offset 4: 1=JPEG, 2=PNG; image from offset 8),
4 a preview with metadata (uint32 length at offset 4, that many bytes of JSON, then the image),
3 a text message for a node. Unknown types become :class:`UnknownEvent` and never raise: custom
nodes send their own.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

PREVIEW_IMAGE = 1
TEXT = 3
PREVIEW_IMAGE_WITH_METADATA = 4
_FORMATS = {1: "image/jpeg", 2: "image/png"}

TERMINAL_TYPES = frozenset({"execution_success", "execution_error", "execution_interrupted"})


@dataclass(frozen=True)
class Event:
    """A text frame. ``type`` is ComfyUI's message type, ``data`` its payload, untouched."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def prompt_id(self) -> str | None:
        value = self.data.get("prompt_id")
        return str(value) if value is not None else None

    @property
    def node(self) -> str | None:
        """The node id this event is about (``node`` or ``node_id``), if any."""
        value = self.data.get("node", self.data.get("node_id"))
        return str(value) if value is not None else None

    @property
    def is_prompt_done(self) -> bool:
        """``executing`` with ``node: null`` and a prompt id: the prompt is finished."""
        return (
            self.type == "executing"
            and "node" in self.data
            and self.data["node"] is None
            and self.prompt_id is not None
        )

    @property
    def queue_remaining(self) -> int | None:
        if self.type != "status":
            return None
        status = self.data.get("status") or {}
        value = (status.get("exec_info") or {}).get("queue_remaining")
        return int(value) if isinstance(value, int | float) else None

    @property
    def sid(self) -> str | None:
        value = self.data.get("sid") if self.type == "status" else None
        return str(value) if value is not None else None


@dataclass(frozen=True)
class Preview:
    """A binary image frame: a live sampler preview or a ``SaveImageWebsocket`` output.

    Legacy (type 1) frames carry no ids; the event stream attributes them to the prompt and node
    of the last ``executing`` it saw (``attributed=True``).
    """

    mime_type: str
    image: bytes
    prompt_id: str | None = None
    node_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    attributed: bool = False

    type: str = "preview"


@dataclass(frozen=True)
class NodeText:
    """A binary text frame (type 3): a node's progress text."""

    node_id: str
    text: str
    prompt_id: str | None = None
    type: str = "progress_text"


@dataclass(frozen=True)
class UnknownEvent:
    """A frame we could not interpret; kept so nothing is silently dropped."""

    reason: str
    raw: bytes | str
    type: str = "unknown"


AnyEvent = Event | Preview | NodeText | UnknownEvent


def parse_text(frame: str) -> Event | UnknownEvent:
    """Parse one text frame."""
    try:
        message = json.loads(frame)
    except ValueError:
        return UnknownEvent("not JSON", frame)
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return UnknownEvent("no 'type'", frame)
    data = message.get("data")
    return Event(message["type"], data if isinstance(data, dict) else {})


def parse_binary(frame: bytes) -> Preview | NodeText | UnknownEvent:
    """Parse one binary frame. Never raises."""
    if len(frame) < 8:
        return UnknownEvent(f"binary frame too short ({len(frame)} bytes)", frame)
    (event_type,) = struct.unpack_from(">I", frame, 0)
    if event_type == PREVIEW_IMAGE:
        (fmt,) = struct.unpack_from(">I", frame, 4)
        return Preview(mime_type=_FORMATS.get(fmt, "image/png"), image=frame[8:])
    if event_type == PREVIEW_IMAGE_WITH_METADATA:
        (length,) = struct.unpack_from(">I", frame, 4)
        if 8 + length > len(frame):
            return UnknownEvent("metadata length past the end of the frame", frame)
        try:
            metadata = json.loads(frame[8 : 8 + length].decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return UnknownEvent("metadata is not JSON", frame)
        if not isinstance(metadata, dict):
            return UnknownEvent("metadata is not an object", frame)
        prompt_id = metadata.get("prompt_id")
        node_id = metadata.get("node_id")
        return Preview(
            mime_type=str(metadata.get("image_type") or "image/png"),
            image=frame[8 + length :],
            prompt_id=str(prompt_id) if prompt_id is not None else None,
            node_id=str(node_id) if node_id is not None else None,
            metadata=metadata,
        )
    if event_type == TEXT:
        (length,) = struct.unpack_from(">I", frame, 4)
        if 8 + length > len(frame):
            return UnknownEvent("node id length past the end of the frame", frame)
        try:
            node_id = frame[8 : 8 + length].decode("utf-8")
            text = frame[8 + length :].decode("utf-8")
        except UnicodeDecodeError:
            return UnknownEvent("text frame is not UTF-8", frame)
        return NodeText(node_id=node_id, text=text)
    return UnknownEvent(f"unknown binary event type {event_type}", frame)


def feature_flags_frame() -> str:
    """The first frame we send: asks for previews that carry prompt and node ids (type 4)."""
    return json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
