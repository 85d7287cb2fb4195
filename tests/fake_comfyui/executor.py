"""The prompt worker: runs queued prompts one at a time and emits ComfyUI's websocket events.

Message order per prompt (ws_success.json and friends)::

    execution_start, execution_cached,
    per node: progress_state(running) → executing → [progress/binary…] → [executed]
              → progress_state(finished)
    execution_success | execution_error | execution_interrupted
    (history written) → status → executing{node: null}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import time
import traceback
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import model_nodes  # noqa: F401 - registers the model node implementations
from . import nodes as node_impls
from .graph import ExecutionList, compute_signatures, is_link
from .nodes import Interrupted, NodeContext, NodeError, NodeOutput
from .progress import ProgressRegistry
from .state import QueueItem

if TYPE_CHECKING:
    from .fake import FakeComfyUI

log = logging.getLogger(__name__)

PREVIEW_IMAGE = 1
PREVIEW_IMAGE_WITH_METADATA = 4
FORMAT_PNG = 2


def now_ms() -> int:
    return int(time.time() * 1000)


def full_type_name(ex: BaseException) -> str:
    module = type(ex).__module__
    return type(ex).__qualname__ if module == "builtins" else f"{module}.{type(ex).__qualname__}"


def format_value(value: Any) -> Any:
    if value is None or isinstance(value, int | float | bool | str):
        return value
    return str(value)


@dataclass
class CacheEntry:
    outputs: tuple[Any, ...]
    ui: dict[str, Any] | None  # {"meta": ..., "output": ...}


class _Failure(Exception):
    def __init__(self, node_id: str, ex: BaseException, details: dict[str, Any]) -> None:
        super().__init__(str(ex))
        self.node_id = node_id
        self.ex = ex
        self.details = details


class Executor:
    def __init__(self, fake: FakeComfyUI) -> None:
        self.fake = fake
        self.cache: dict[str, CacheEntry] = {}
        self.client_id: str | None = None
        self.last_node_id: str | None = None
        self.interrupt_flag = False
        self.running_prompt_id: str | None = None
        self._free_pending = False
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._worker(), name="fake-comfyui-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def interrupt(self) -> None:
        self.interrupt_flag = True

    def free(self, free_memory: bool) -> None:
        """POST /free: the cache is reset on the worker's next loop (now, if idle)."""
        if not free_memory:
            return
        if self.running_prompt_id is None:
            self.cache.clear()
        else:
            self._free_pending = True

    async def _worker(self) -> None:
        queue = self.fake.queue
        while True:
            task_id, item = await queue.get()
            try:
                history_result, status = await self.execute(item)
            except asyncio.CancelledError:
                queue.drop_running(task_id)
                raise
            except Exception:  # a bug in the fake; keep the worker alive
                log.exception("fake executor crashed on prompt %s", item.prompt_id)
                history_result = {"outputs": {}, "meta": {}}
                status = {"status_str": "error", "completed": False, "messages": []}
            self.running_prompt_id = None
            queue.task_done(task_id, history_result, status)
            if self.client_id is not None:
                self.fake.hub.send(
                    "executing", {"node": None, "prompt_id": item.prompt_id}, self.client_id
                )
            if self._free_pending:
                self._free_pending = False
                self.cache.clear()

    # -- one prompt --------------------------------------------------------------------------
    async def execute(self, item: QueueItem) -> tuple[dict[str, Any], dict[str, Any]]:
        prompt, prompt_id = item.prompt, item.prompt_id
        extra_data = {**item.extra_data, **item.sensitive}
        self.interrupt_flag = False
        self.running_prompt_id = prompt_id
        self.client_id = extra_data.get("client_id") if "client_id" in extra_data else None
        messages: list[list[Any]] = []

        def add_message(event: str, data: dict[str, Any], broadcast: bool) -> None:
            data = {**data, "timestamp": now_ms()}
            messages.append([event, data])
            if self.client_id is not None or broadcast:
                self.fake.hub.send(event, data, self.client_id)

        add_message("execution_start", {"prompt_id": prompt_id}, False)
        signatures = compute_signatures(prompt, self._is_changed)
        used = set(signatures.values())
        self.cache = {k: v for k, v in self.cache.items() if k in used}  # classic cache
        cached_nodes = [n for n in prompt if signatures[n] in self.cache]
        add_message("execution_cached", {"nodes": cached_nodes, "prompt_id": prompt_id}, False)

        run = _PromptRun(self, item, extra_data, signatures)
        success = True
        try:
            await run.run_all()
        except _Failure as failure:
            success = False
            node_type = prompt[failure.node_id]["class_type"]
            base = {
                "prompt_id": prompt_id,
                "node_id": failure.node_id,
                "node_type": node_type,
                "executed": list(run.executed),
            }
            if isinstance(failure.ex, Interrupted):
                add_message("execution_interrupted", base, True)
            else:
                add_message("execution_error", {**base, **failure.details}, False)
        else:
            add_message("execution_success", {"prompt_id": prompt_id}, False)

        # 0.3.64 builds history from the UI cache of every node of this prompt, so cached
        # re-runs report the old files (with or without client_id).
        ui_entries = {}
        for node_id in prompt:
            entry = self.cache.get(signatures[node_id])
            if entry is not None and entry.ui is not None:
                ui_entries[node_id] = entry.ui
        history_result = {
            "outputs": {n: info["output"] for n, info in ui_entries.items()},
            "meta": {n: info["meta"] for n, info in ui_entries.items()},
        }
        self.last_node_id = None
        status = {
            "status_str": "success" if success else "error",
            "completed": success,
            "messages": messages,
        }
        return history_result, status

    def _is_changed(self, node_id: str, node: dict[str, Any]) -> Any:
        class_type = node.get("class_type")
        if class_type in node_impls.NEVER_CACHED:
            return uuid.uuid4().hex
        file_input = node_impls.FILE_HASHED_INPUT.get(str(class_type))
        if file_input is not None:
            return node_impls.input_file_hash(
                self.fake.store, node.get("inputs", {}).get(file_input)
            )
        return None


class _PromptRun:
    """State of one execution: node outputs, executed nodes, progress."""

    def __init__(
        self, executor: Executor, item: QueueItem, extra_data: dict[str, Any], sigs: dict[str, str]
    ) -> None:
        self.ex = executor
        self.fake = executor.fake
        self.item = item
        self.prompt = item.prompt
        self.extra_data = extra_data
        self.signatures = sigs
        self.executed: dict[str, None] = {}
        self.outputs: dict[str, tuple[Any, ...]] = {}
        self.progress = ProgressRegistry(
            item.prompt_id,
            lambda data: executor.fake.hub.send("progress_state", data, executor.client_id),
        )

    def _class_info(self, node_id: str) -> dict[str, Any]:
        info: dict[str, Any] = self.fake.object_info_raw.get(self.prompt[node_id]["class_type"], {})
        return info

    async def run_all(self) -> None:
        cache = self.ex.cache
        order = ExecutionList(
            self.prompt,
            is_cached=lambda n: self.signatures.get(n) in cache,
            is_output=lambda n: bool(self._class_info(n).get("output_node")),
        )
        for node_id in self.item.outputs_to_execute:
            order.add_node(node_id)
        while not order.is_empty():
            staged = order.stage()
            if staged is None:
                stuck = next(iter(order.pending))
                err = RuntimeError("Dependency cycle detected")
                raise _Failure(stuck, err, self._error_details(err, None))
            await self.run_node(staged)
            order.complete(staged)

    async def run_node(self, node_id: str) -> None:
        ex, hub, prompt_id = self.ex, self.fake.hub, self.item.prompt_id
        class_type = self.prompt[node_id]["class_type"]
        entry = ex.cache.get(self.signatures[node_id])
        if entry is not None:
            if ex.client_id is not None:
                output = entry.ui["output"] if entry.ui else None
                data = {"node": node_id, "display_node": node_id, "output": output}
                hub.send("executed", {**data, "prompt_id": prompt_id}, ex.client_id)
            self.progress.finish(node_id)
            self.outputs[node_id] = entry.outputs
            return

        self.progress.start(node_id)
        inputs: dict[str, Any] | None = None
        try:
            inputs = self._input_data(node_id)
            if ex.client_id is not None:
                ex.last_node_id = node_id
                data = {"node": node_id, "display_node": node_id, "prompt_id": prompt_id}
                hub.send("executing", data, ex.client_id)
            if ex.interrupt_flag:
                raise Interrupted()
            result = await self._call(node_id, class_type, inputs)
        except Interrupted as err:
            raise _Failure(node_id, err, {}) from None
        except Exception as err:
            log.info("fake node %s (%s) failed: %r", node_id, class_type, err)
            raise _Failure(node_id, err, self._error_details(err, inputs)) from None

        ui_entry = None
        if result.ui:
            meta = {"node_id": node_id, "display_node": node_id, "parent_node": None}
            ui_entry = {"meta": {**meta, "real_node_id": node_id}, "output": result.ui}
            if ex.client_id is not None:
                data = {"node": node_id, "display_node": node_id, "output": result.ui}
                hub.send("executed", {**data, "prompt_id": prompt_id}, ex.client_id)
        ex.cache[self.signatures[node_id]] = CacheEntry(result.outputs, ui_entry)
        self.outputs[node_id] = result.outputs
        self.progress.finish(node_id)
        self.executed[node_id] = None

    def _input_data(self, node_id: str) -> dict[str, Any]:
        """get_input_data: declared inputs only; links resolved; hidden inputs filled."""
        node = self.prompt[node_id]
        spec = self._class_info(node_id).get("input", {})
        values: dict[str, Any] = {}
        raw = node.get("inputs", {})
        for section in ("required", "optional"):
            for name in spec.get(section, {}):
                if name not in raw:
                    continue
                value = raw[name]
                if is_link(value):
                    values[name] = self._upstream(value[0])[int(value[1])]
                else:
                    values[name] = value
        for name, kind in spec.get("hidden", {}).items():
            if kind == "PROMPT":
                values[name] = self.prompt
            elif kind == "EXTRA_PNGINFO":
                values[name] = self.extra_data.get("extra_pnginfo")
            elif kind == "UNIQUE_ID":
                values[name] = node_id
        return values

    def _upstream(self, node_id: str) -> tuple[Any, ...]:
        """Outputs of an upstream node: from this run, or from the cache (cached nodes are
        not scheduled, like in ComfyUI)."""
        if node_id in self.outputs:
            return self.outputs[node_id]
        return self.ex.cache[self.signatures[node_id]].outputs

    async def _call(self, node_id: str, class_type: str, inputs: dict[str, Any]) -> NodeOutput:
        fn = node_impls.NODES.get(class_type)
        ctx = NodeContext(
            node_id=node_id,
            class_type=class_type,
            prompt_id=self.item.prompt_id,
            prompt=self.prompt,
            extra_data=self.extra_data,
            store=self.fake.store,
            models_loadable=self.fake.models_loadable,
            node_delay=self.fake.node_delay,
            progress=lambda v, m, png: self._report_progress(node_id, v, m, png),
            sleep=asyncio.sleep,
        )
        if class_type not in node_impls.PROGRESS_NODES and self.fake.node_delay > 0:
            await asyncio.sleep(self.fake.node_delay)
        if fn is None:
            outputs = self._class_info(node_id).get("output", [])
            return await node_impls.run_unimplemented(ctx, inputs, outputs)
        return await fn(ctx, inputs)

    async def _report_progress(
        self, node_id: str, value: int, total: int, png: bytes | None
    ) -> None:
        """The ProgressBar hook: interrupt check, progress_state, [type 4], progress, [type 1]."""
        ex, hub = self.ex, self.fake.hub
        if ex.interrupt_flag:
            raise Interrupted()
        self.progress.update(node_id, value, total)
        with_metadata = hub.supports_preview_metadata(ex.client_id)
        if png is not None and with_metadata:
            metadata = {
                "node_id": node_id,
                "prompt_id": self.item.prompt_id,
                "display_node_id": node_id,
                "parent_node_id": None,
                "real_node_id": node_id,
                "image_type": "image/png",
            }
            meta = json.dumps(metadata).encode()
            frame = struct.pack(">II", PREVIEW_IMAGE_WITH_METADATA, len(meta)) + meta + png
            hub.send_bytes(frame, ex.client_id)
        data = {"value": value, "max": total, "prompt_id": self.item.prompt_id, "node": node_id}
        hub.send("progress", data, ex.client_id)
        if png is not None and not with_metadata:
            hub.send_bytes(struct.pack(">II", PREVIEW_IMAGE, FORMAT_PNG) + png, ex.client_id)
        await asyncio.sleep(0)

    def _error_details(self, err: BaseException, inputs: dict[str, Any] | None) -> dict[str, Any]:
        if isinstance(err, NodeError):
            type_name, message, tb = err.type_name, err.message, list(err.tb)
        else:
            type_name = full_type_name(err)
            message = f"{err}\n"
            tb = traceback.format_tb(err.__traceback__)
        current_inputs = {k: [format_value(v)] for k, v in (inputs or {}).items()}
        return {
            "exception_message": message,
            "exception_type": type_name,
            "traceback": tb,
            "current_inputs": current_inputs,
            "current_outputs": list(self.prompt),
        }
