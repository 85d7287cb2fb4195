"""In-memory state of the fake server: stored files, the prompt queue and the history."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FILE_KINDS = ("input", "output", "temp")
MAXIMUM_HISTORY_SIZE = 10000
SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")


def safe_relpath(subfolder: str, name: str = "") -> str | None:
    """Join ``subfolder``/``name`` below a root; ``None`` when the result would escape it."""
    joined = posixpath.join(subfolder.replace("\\", "/"), name) if name else subfolder
    joined = joined.replace("\\", "/")
    if joined.startswith("/"):
        return None
    norm = posixpath.normpath(joined) if joined else "."
    if norm == ".." or norm.startswith("../"):
        return None
    return "" if norm == "." else norm


@dataclass
class StoredFile:
    data: bytes
    mtime: float = field(default_factory=time.time)


class FileStore:
    """The input/, output/ and temp/ directories of a ComfyUI install, kept in memory.

    Keys are POSIX relative paths below each root (``"fixtures/fixture-upload.png"``).
    """

    def __init__(self) -> None:
        self._files: dict[str, dict[str, StoredFile]] = {kind: {} for kind in FILE_KINDS}
        self.version = 0

    def files(self, kind: str) -> dict[str, StoredFile]:
        return self._files[kind]

    def put(self, kind: str, relpath: str, data: bytes) -> None:
        self._files[kind][relpath] = StoredFile(bytes(data))
        if kind == "input":  # only input files show up in /object_info (LoadImage's combo)
            self.version += 1

    def get(self, kind: str, relpath: str) -> StoredFile | None:
        return self._files.get(kind, {}).get(relpath)

    def exists(self, kind: str, relpath: str) -> bool:
        return relpath in self._files.get(kind, {})

    def dir_exists(self, kind: str, subfolder: str) -> bool:
        if subfolder == "":
            return True
        prefix = subfolder.rstrip("/") + "/"
        return any(key.startswith(prefix) for key in self._files.get(kind, {}))

    def list_dir(self, kind: str, subfolder: str = "") -> list[str]:
        """Names of the files directly inside ``subfolder``."""
        prefix = f"{subfolder}/" if subfolder else ""
        out = []
        for key in self._files.get(kind, {}):
            if key.startswith(prefix) and "/" not in key[len(prefix) :]:
                out.append(key[len(prefix) :])
        return out

    def wipe(self, kind: str) -> None:
        self._files[kind].clear()
        if kind == "input":
            self.version += 1

    def next_counter(self, kind: str, subfolder: str, filename: str) -> int:
        """SaveImage's counter: highest ``{filename}_NNNNN`` in the folder, plus one."""
        prefix_len = len(filename)
        best = 0
        for name in self.list_dir(kind, subfolder):
            head = name[: prefix_len + 1]
            if head[:-1].lower() != filename.lower() or head[-1:] != "_":
                continue
            try:
                digits = int(name[prefix_len + 1 :].split("_")[0])
            except ValueError:
                digits = 0
            best = max(best, digits)
        return best + 1


@dataclass
class QueueItem:
    number: int | float
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    outputs_to_execute: list[str]
    sensitive: dict[str, Any] = field(default_factory=dict)

    def public(self) -> list[Any]:
        """The 5-element array served by /queue and stored in history ``prompt``."""
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs_to_execute]


class PromptQueue:
    """ComfyUI's PromptQueue: a heap ordered by (number, prompt_id), plus running and history."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self._heap: list[tuple[int | float, str, int, QueueItem]] = []
        self._seq = itertools.count()
        self.running: dict[int, QueueItem] = {}
        self._task_counter = itertools.count()
        self.history: dict[str, dict[str, Any]] = {}
        self.number = 0
        self.flags: dict[str, Any] = {}
        self._wakeup = asyncio.Event()

    # -- queue -------------------------------------------------------------------------------
    def put(self, item: QueueItem) -> None:
        heapq.heappush(self._heap, (item.number, item.prompt_id, next(self._seq), item))
        self._wakeup.set()
        self._on_change()

    async def get(self) -> tuple[int, QueueItem]:
        while not self._heap:
            self._wakeup.clear()
            await self._wakeup.wait()
        item = heapq.heappop(self._heap)[3]
        task_id = next(self._task_counter)
        self.running[task_id] = item
        self._on_change()
        return task_id, item

    def task_done(
        self, task_id: int, history_result: dict[str, Any], status: dict[str, Any]
    ) -> None:
        item = self.running.pop(task_id)
        if len(self.history) > MAXIMUM_HISTORY_SIZE:
            self.history.pop(next(iter(self.history)))
        entry: dict[str, Any] = {"prompt": item.public(), "outputs": {}, "status": status}
        entry.update(history_result)
        self.history[item.prompt_id] = entry
        self._on_change()

    def drop_running(self, task_id: int) -> None:
        """Forget a running item without writing history (restart, worker cancelled)."""
        self.running.pop(task_id, None)

    def pending(self) -> list[QueueItem]:
        """Pending items in heap order (what /queue shows; not sorted)."""
        return [entry[3] for entry in self._heap]

    def current_queue(self) -> tuple[list[QueueItem], list[QueueItem]]:
        return list(self.running.values()), self.pending()

    def tasks_remaining(self) -> int:
        return len(self._heap) + len(self.running)

    def wipe_queue(self) -> None:
        self._heap = []
        self._on_change()

    def delete_queue_item(self, prompt_id: str) -> bool:
        for index, entry in enumerate(self._heap):
            if entry[3].prompt_id == prompt_id:
                if len(self._heap) == 1:
                    self.wipe_queue()
                else:
                    self._heap.pop(index)
                    heapq.heapify(self._heap)
                    self._on_change()
                return True
        return False

    # -- history -----------------------------------------------------------------------------
    def get_history(
        self, prompt_id: str | None = None, max_items: int | None = None, offset: int = -1
    ) -> dict[str, Any]:
        """ComfyUI's PromptQueue.get_history, including its paging arithmetic."""
        if prompt_id is not None:
            if prompt_id in self.history:
                return {prompt_id: self.history[prompt_id]}
            return {}
        out: dict[str, Any] = {}
        if offset < 0 and max_items is not None:
            offset = len(self.history) - max_items
        for index, key in enumerate(self.history):
            if index >= offset:
                out[key] = self.history[key]
                if max_items is not None and len(out) >= max_items:
                    break
        return out

    def wipe_history(self) -> None:
        self.history.clear()

    def delete_history_item(self, prompt_id: str) -> None:
        self.history.pop(prompt_id, None)

    # -- misc --------------------------------------------------------------------------------
    def next_number(self, front: bool) -> int:
        number = -self.number if front else self.number
        self.number += 1
        return number

    def set_flag(self, name: str, value: Any) -> None:
        self.flags[name] = value

    def take_flags(self) -> dict[str, Any]:
        flags, self.flags = self.flags, {}
        return flags
