"""``FakeComfyUI``: the state, the ASGI app and the fault/inspection helpers."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from starlette.types import Scope

from . import images as im
from . import recorded
from .app import build_app
from .executor import Executor
from .faults import Faults
from .hub import Hub
from .state import FileStore, PromptQueue, QueueItem
from .validation import PromptValidator

if TYPE_CHECKING:
    from .server import UvicornRunner

log = logging.getLogger(__name__)


def _log_time() -> str:
    return datetime.datetime.now().isoformat()


DEFAULT_MAX_UPLOAD_SIZE = 100 * 1024 * 1024
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")

# (class, input) → model folder: these combos in /object_info follow ``FakeComfyUI.models``.
MODEL_COMBOS: dict[tuple[str, str], str] = {
    ("CheckpointLoaderSimple", "ckpt_name"): "checkpoints",
    ("CheckpointLoader", "ckpt_name"): "checkpoints",
    ("unCLIPCheckpointLoader", "ckpt_name"): "checkpoints",
    ("ImageOnlyCheckpointLoader", "ckpt_name"): "checkpoints",
    ("LoraLoader", "lora_name"): "loras",
    ("LoraLoaderModelOnly", "lora_name"): "loras",
    ("VAELoader", "vae_name"): "vae",
    ("UpscaleModelLoader", "model_name"): "upscale_models",
}
INPUT_FILE_COMBOS = (("LoadImage", "image"), ("LoadImageMask", "image"))


class FakeComfyUI:
    """A protocol-faithful fake ComfyUI 0.3.64 (see the package docstring)."""

    def __init__(
        self,
        *,
        prefix: str = "",
        node_delay: float = 0.0,
        models_loadable: bool = False,
        max_upload_size: int = DEFAULT_MAX_UPLOAD_SIZE,
        jobs_api: bool = False,
    ) -> None:
        prefix = prefix.strip()
        self.prefix = ("/" + prefix.strip("/")) if prefix.strip("/") else ""
        self.node_delay = node_delay
        self.models_loadable = models_loadable
        self.max_upload_size = max_upload_size
        self.jobs_api = jobs_api  # serve the newer /api/jobs routes (not in 0.3.64)
        self.faults = Faults()
        self.url = ""
        self.started_at = time.time()

        self.store = FileStore()
        self.store.put(
            "input", "example.png", im.encode_png(im.empty_image(64, 64, 1, 0x808080)[0])
        )
        self.models: dict[str, list[str]] = {
            folder: [] for folder in recorded.response_json("get_models")
        }
        for folder in ("checkpoints", "loras", "vae"):
            self.models[folder] = list(recorded.response_json(f"get_models_{folder}"))
        self.object_info_raw: dict[str, Any] = recorded.object_info()
        self.system_stats: dict[str, Any] = recorded.system_stats()
        self.extensions: list[str] = recorded.response_json("get_extensions")
        self.experiment_model_folders: list[Any] = recorded.response_json("get_experiment_models")
        self.settings: dict[str, Any] = {}
        self.userdata: dict[str, bytes] = {}
        self.users: dict[str, str] = {"default": "default"}
        self.logs: list[dict[str, str]] = [
            {"t": _log_time(), "m": "Starting server\n"},
            {"t": _log_time(), "m": "To see the GUI go to: http://127.0.0.1:8188\n"},
        ]
        self.cancelled_prompts: set[str] = set()
        self.jobs_api_cancels: list[str] = []

        # inspection helpers for tests
        self.posted_prompts: list[Any] = []
        self.uploads: list[dict[str, Any]] = []
        self.interrupt_calls: list[str | None] = []
        self.free_calls: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []

        self.hub = Hub(lambda: self.faults.ws_silent)
        self.queue = PromptQueue(self._queue_updated)
        self.executor = Executor(self)
        self._object_info_cache: tuple[Any, dict[str, Any], bytes] | None = None
        self.app = build_app(self)
        self._runner: UvicornRunner | None = None

    # -- state views for tests -------------------------------------------------------------
    @property
    def history(self) -> dict[str, dict[str, Any]]:
        return self.queue.history

    @property
    def queue_running(self) -> list[QueueItem]:
        return list(self.queue.running.values())

    @property
    def queue_pending(self) -> list[QueueItem]:
        return sorted(self.queue.pending(), key=lambda item: (item.number, item.prompt_id))

    @property
    def connected_client_ids(self) -> list[str]:
        return self.hub.connected_ids()

    def files(self, kind: str = "output") -> dict[str, bytes]:
        """Stored files of ``input``/``output``/``temp`` by relative path."""
        return {path: f.data for path, f in self.store.files(kind).items()}

    def add_input_file(self, name: str, data: bytes) -> None:
        """Put a file into input/ directly (as if it had been uploaded)."""
        self.store.put("input", name, data)

    def record_request(self, scope: Scope) -> None:
        """Log an HTTP request (or a websocket handshake, method ``"WEBSOCKET"``)."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.requests.append(
            {
                "method": scope.get("method", "WEBSOCKET"),
                "path": scope["path"],
                "query": scope.get("query_string", b"").decode("latin-1"),
                "headers": headers,
            }
        )

    # -- internals used by the routes ------------------------------------------------------
    def log(self, message: str) -> None:
        """Append a record to the server log served by /internal/logs (capped like ComfyUI's)."""
        self.logs.append({"t": _log_time(), "m": message + "\n"})
        del self.logs[:-300]

    def queue_info(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": self.queue.tasks_remaining()}}

    def _queue_updated(self) -> None:
        self.hub.send("status", {"status": self.queue_info()}, None)

    def start_worker(self) -> None:
        self.executor.start()

    def _input_file_exists(self, name: str) -> bool:
        from .nodes import annotated_path

        kind, relpath = annotated_path(name, "input")
        return relpath is not None and self.store.exists(kind, relpath)

    def validator(self) -> PromptValidator:
        return PromptValidator(self.object_info(), self._input_file_exists)

    def object_info(self) -> dict[str, Any]:
        """The recorded /object_info with live combos (input files, ``models``)."""
        return self._object_info()[1]

    def object_info_bytes(self) -> bytes:
        return self._object_info()[2]

    def _object_info(self) -> tuple[Any, dict[str, Any], bytes]:
        key = (self.store.version, json.dumps(self.models, sort_keys=True))
        if self._object_info_cache is not None and self._object_info_cache[0] == key:
            return self._object_info_cache
        info = dict(self.object_info_raw)
        inputs = sorted(
            name for name in self.store.list_dir("input") if name.lower().endswith(IMAGE_EXTENSIONS)
        )
        for class_type, input_name in INPUT_FILE_COMBOS:
            self._patch_combo(info, class_type, input_name, inputs)
        for (class_type, input_name), folder in MODEL_COMBOS.items():
            names = sorted(self.models.get(folder, []))
            if class_type == "VAELoader":
                names = [*names, "pixel_space"]
            self._patch_combo(info, class_type, input_name, names)
        self._object_info_cache = (key, info, json.dumps(info).encode())
        return self._object_info_cache

    @staticmethod
    def _patch_combo(info: dict[str, Any], class_type: str, name: str, options: list[str]) -> None:
        if class_type not in info:
            return
        entry = copy.deepcopy(info[class_type])
        for section in ("required", "optional"):
            spec = entry["input"].get(section, {}).get(name)
            if spec is None:
                continue
            if spec[0] == "COMBO":
                spec[1]["options"] = list(options)
            else:
                spec[0] = list(options)
        info[class_type] = entry

    # -- faults ----------------------------------------------------------------------------
    async def drop_websockets(self) -> None:
        """Close every websocket abruptly (no close frame). Jobs keep running."""
        connections = list(self.hub.all_connections)
        self.hub.sockets.clear()
        for conn in connections:
            conn.closed = True
            aborted = self._runner is not None and self._runner.abort_peer(conn.peer)
            if not aborted:
                await conn.close(1011)
            else:
                await conn.stop_writer()

    async def restart(self, downtime: float = 0.0) -> None:
        """Like a process restart on the same port: queue, history, cache, temp files and
        sockets are lost (inputs, outputs, settings survive, as on disk). With ``downtime``
        the port refuses connections for that long."""
        await self.executor.stop()
        connections = list(self.hub.all_connections)
        self.hub.sockets.clear()
        self.hub = Hub(lambda: self.faults.ws_silent)
        for conn in connections:
            await conn.stop_writer()
        if self._runner is not None:
            if downtime > 0:
                await self._runner.stop()
            else:
                self._runner.abort_all()
        self.queue = PromptQueue(self._queue_updated)
        self.executor = Executor(self)
        self.store.wipe("temp")
        if downtime > 0:
            await asyncio.sleep(downtime)
        if self._runner is not None and downtime > 0:
            await self._runner.start()
        self.executor.start()

    async def aclose(self) -> None:
        await self.executor.stop()
        for conn in list(self.hub.all_connections):
            with contextlib.suppress(Exception):
                await conn.stop_writer()
