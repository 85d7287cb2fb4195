"""Typed views of ComfyUI payloads (checked against recordings of ComfyUI 0.3.64).

ComfyUI's JSON is loose: queue items are positional arrays, "not found" is often ``{}``, and
custom nodes add keys. These models parse defensively (extra keys allowed, positional arrays read
by index with extra trailing elements tolerated) and expose the facts callers need.
"""

from __future__ import annotations

import functools
import mimetypes
import posixpath
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class PromptReceipt(_Model):
    """ComfyUI's answer to POST /prompt.

    ``node_errors`` non-empty on a 200 means a *partial accept*: the invalid output branches were
    dropped and only the valid ones will run.
    """

    prompt_id: str
    number: float = 0
    node_errors: dict[str, Any] = Field(default_factory=dict)

    @property
    def partial(self) -> bool:
        return bool(self.node_errors)

    @property
    def dropped_outputs(self) -> list[str]:
        """Output node ids that will not run because of ``node_errors``."""
        dropped: list[str] = []
        for entry in self.node_errors.values():
            for node in entry.get("dependent_outputs", []) if isinstance(entry, dict) else []:
                if str(node) not in dropped:
                    dropped.append(str(node))
        return dropped


class QueueItem(_Model):
    """One queue entry: ComfyUI sends ``[number, prompt_id, prompt, extra_data, outputs]``."""

    number: float
    prompt_id: str
    prompt: dict[str, Any] = Field(default_factory=dict)
    extra_data: dict[str, Any] = Field(default_factory=dict)
    outputs_to_execute: list[str] = Field(default_factory=list)

    @classmethod
    def from_wire(cls, item: Any) -> QueueItem:
        if not isinstance(item, list | tuple) or len(item) < 2:
            raise ValueError(f"queue item is not [number, prompt_id, ...]: {item!r:.200}")
        return cls(
            number=item[0],
            prompt_id=str(item[1]),
            prompt=item[2] if len(item) > 2 and isinstance(item[2], dict) else {},
            extra_data=item[3] if len(item) > 3 and isinstance(item[3], dict) else {},
            outputs_to_execute=[str(x) for x in item[4]] if len(item) > 4 else [],
        )

    @property
    def client_id(self) -> str | None:
        value = self.extra_data.get("client_id")
        return str(value) if value is not None else None


class QueueSnapshot(_Model):
    """GET /queue: the running item(s) and the pending ones, sorted into run order."""

    running: list[QueueItem] = Field(default_factory=list)
    pending: list[QueueItem] = Field(default_factory=list)

    @classmethod
    def from_wire(cls, data: Any) -> QueueSnapshot:
        if not isinstance(data, dict):
            raise ValueError("GET /queue did not answer an object")
        running = [QueueItem.from_wire(i) for i in data.get("queue_running", [])]
        # queue_pending arrives in heap order; lower number runs first.
        pending = sorted(
            (QueueItem.from_wire(i) for i in data.get("queue_pending", [])), key=lambda i: i.number
        )
        return cls(running=running, pending=pending)

    @functools.cached_property
    def _positions(self) -> dict[str, int]:
        # Built once per snapshot: reconciling N jobs against one /queue is then O(N), not
        # O(N²) (a 1,000-job pass took 0.3-0.5 s with a linear scan per job).
        positions = {item.prompt_id: index for index, item in enumerate(self.pending, start=1)}
        positions.update({item.prompt_id: 0 for item in self.running})
        return positions

    def position(self, prompt_id: str) -> int | None:
        """0 when running, 1 for the next to run, …; None when absent."""
        return self._positions.get(prompt_id)

    def is_running(self, prompt_id: str) -> bool:
        return self._positions.get(prompt_id) == 0

    def is_pending(self, prompt_id: str) -> bool:
        return (self._positions.get(prompt_id) or 0) > 0


class MediaKind(StrEnum):
    """What an output file is, from its output key and extension."""

    IMAGE = "image"
    ANIMATION = "animation"
    VIDEO = "video"
    AUDIO = "audio"
    MODEL_3D = "3d"
    TEXT = "text"
    LATENT = "latent"
    OTHER = "other"


_VIDEO_EXT = {".mp4", ".webm", ".mov", ".mkv", ".avi", ".gif"}
_AUDIO_EXT = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac"}
_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
_3D_EXT = {".glb", ".gltf", ".obj", ".ply", ".stl", ".fbx", ".usdz"}


class OutputFile(_Model):
    """One file a prompt produced, as listed in its history ``outputs``."""

    node_id: str
    key: str
    filename: str
    subfolder: str = ""
    type: str = "output"
    kind: MediaKind = MediaKind.OTHER

    @property
    def path(self) -> str:
        """``subfolder/filename`` (just the filename when there is no subfolder)."""
        return posixpath.join(self.subfolder, self.filename) if self.subfolder else self.filename

    @property
    def mime_type(self) -> str:
        guessed, _ = mimetypes.guess_type(self.filename)
        return guessed or "application/octet-stream"


def classify(filename: str, key: str, animated: bool) -> MediaKind:
    ext = posixpath.splitext(filename)[1].lower()
    if ext in _VIDEO_EXT:
        return MediaKind.VIDEO
    if ext in _AUDIO_EXT or key == "audio":
        return MediaKind.AUDIO
    if ext in _3D_EXT or key in ("3d", "mesh"):
        return MediaKind.MODEL_3D
    if ext == ".latent" or key == "latents":
        return MediaKind.LATENT
    if ext in _IMAGE_EXT:
        return MediaKind.ANIMATION if animated else MediaKind.IMAGE
    return MediaKind.OTHER


def output_files(outputs: dict[str, Any]) -> list[OutputFile]:
    """Every file in a history ``outputs`` map, across all list-valued keys (not just images)."""
    files: list[OutputFile] = []
    for node_id, ui in outputs.items():
        if not isinstance(ui, dict):
            continue
        animated = any(bool(x) for x in ui.get("animated", []) if isinstance(x, bool))
        for key, values in ui.items():
            if not isinstance(values, list):
                continue
            for value in values:
                if isinstance(value, dict) and isinstance(value.get("filename"), str):
                    files.append(
                        OutputFile(
                            node_id=str(node_id),
                            key=key,
                            filename=value["filename"],
                            subfolder=str(value.get("subfolder") or ""),
                            type=str(value.get("type") or "output"),
                            kind=classify(value["filename"], key, animated),
                        )
                    )
    return files


def output_texts(outputs: dict[str, Any]) -> dict[str, list[str]]:
    """Text outputs (``{"text": [...]}`` from nodes such as PreviewAny), by node id."""
    texts: dict[str, list[str]] = {}
    for node_id, ui in outputs.items():
        if isinstance(ui, dict) and isinstance(ui.get("text"), list):
            strings = [t for t in ui["text"] if isinstance(t, str)]
            if strings:
                texts[str(node_id)] = strings
    return texts


class HistoryStatus(_Model):
    status_str: str = ""
    completed: bool = False
    messages: list[Any] = Field(default_factory=list)


class HistoryEntry(_Model):
    """One prompt's history record: its graph, its outputs and how it ended."""

    prompt_id: str
    prompt: list[Any] = Field(default_factory=list)
    outputs: dict[str, Any] = Field(default_factory=dict)
    status: HistoryStatus | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_wire(cls, prompt_id: str, entry: Any) -> HistoryEntry:
        if not isinstance(entry, dict):
            raise ValueError(f"history entry for {prompt_id} is not an object")
        return cls(prompt_id=prompt_id, **{k: v for k, v in entry.items() if k != "prompt_id"})

    def _message(self, name: str) -> dict[str, Any] | None:
        for message in self.status.messages if self.status else []:
            if isinstance(message, list) and len(message) == 2 and message[0] == name:
                data = message[1]
                return data if isinstance(data, dict) else {}
        return None

    @property
    def outcome(self) -> str | None:
        """``"success"``, ``"error"``, ``"interrupted"``, or None while unknown.

        Failed and interrupted both have ``status_str == "error"``; the last message's event name
        tells them apart.
        """
        if self.status is None:
            return None
        last = self.status.messages[-1] if self.status.messages else None
        last_name = last[0] if isinstance(last, list) and last else None
        if last_name == "execution_interrupted":
            return "interrupted"
        if last_name == "execution_error" or self.status.status_str == "error":
            return "error"
        if self.status.status_str == "success" or self.status.completed:
            return "success"
        return None

    @property
    def error(self) -> dict[str, Any] | None:
        return self._message("execution_error")

    @property
    def interruption(self) -> dict[str, Any] | None:
        return self._message("execution_interrupted")

    @property
    def cached_nodes(self) -> list[str]:
        data = self._message("execution_cached") or {}
        return [str(n) for n in data.get("nodes", [])]

    @property
    def client_id(self) -> str | None:
        """The client id the prompt was submitted with (None without one)."""
        extra = self.prompt[3] if len(self.prompt) > 3 and isinstance(self.prompt[3], dict) else {}
        value = extra.get("client_id")
        return str(value) if value is not None else None

    @property
    def output_nodes(self) -> list[str]:
        return [str(n) for n in self.prompt[4]] if len(self.prompt) > 4 else []

    @property
    def fully_cached(self) -> bool:
        """True when every output node came from ComfyUI's cache (no new file was written)."""
        outputs = self.output_nodes
        return bool(outputs) and set(outputs) <= set(self.cached_nodes)

    def timestamps(self) -> tuple[int, int] | None:
        """``(execution_start, end)`` in epoch ms, when history recorded both."""
        start = self._message("execution_start")
        end = (
            self._message("execution_success")
            or self._message("execution_error")
            or self._message("execution_interrupted")
        )
        if start and end and "timestamp" in start and "timestamp" in end:
            return int(start["timestamp"]), int(end["timestamp"])
        return None

    @property
    def files(self) -> list[OutputFile]:
        return output_files(self.outputs)


class UploadResult(_Model):
    """What ComfyUI stored for an upload: its ``name`` may differ from the one sent."""

    name: str
    subfolder: str = ""
    type: str = "input"

    @property
    def reference(self) -> str:
        """The value to put in a ``LoadImage`` ``image`` input."""
        return f"{self.subfolder}/{self.name}" if self.subfolder else self.name


class ModelFolder(_Model):
    """A model folder: ``name`` (``checkpoints``, ``loras``…) and, from ``/experiment/models``,
    the absolute server paths it is read from (empty from the ``/models`` fallback).

    The paths are facts about the server's disk: do not show them to untrusted callers.
    """

    name: str
    folders: list[str] = Field(default_factory=list)


class ModelFile(_Model):
    """One file of ``/experiment/models/{folder}``: times are epoch seconds, size in bytes."""

    name: str
    path_index: int = Field(default=0, alias="pathIndex")
    modified: float | None = None
    created: float | None = None
    size: int | None = None


class LogEntry(_Model):
    """One server log record from ``/internal/logs/raw``: ``t`` an ISO timestamp, ``m`` the
    message (with its trailing newline)."""

    t: str = ""
    m: str = ""


class RawLogs(_Model):
    """``/internal/logs/raw``: the records and the server terminal's size (``rows``/``cols``;
    the reference client reads a ``row`` field that does not exist)."""

    entries: list[LogEntry] = Field(default_factory=list)
    size: dict[str, Any] = Field(default_factory=dict)

    @property
    def rows(self) -> int | None:
        value = self.size.get("rows")
        return int(value) if isinstance(value, int | float) else None

    @property
    def cols(self) -> int | None:
        value = self.size.get("cols")
        return int(value) if isinstance(value, int | float) else None


@dataclass(frozen=True)
class ResolvedOutput:
    """One output of a prompt, resolved for use: a file with its ``/view`` URL or bytes, a text,
    or an image that existed only on the websocket (``SaveImageWebsocket``).

    Exactly one of ``file`` / ``text`` is set for history outputs; websocket-only images have
    neither, only ``data``.
    """

    node_id: str
    key: str  # the output key: images, gifs, audio, text…; "websocket" for streamed images
    kind: MediaKind
    mime_type: str
    file: OutputFile | None = None
    url: str | None = None
    data: bytes | None = None
    text: str | None = None
