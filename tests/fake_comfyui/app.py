"""Routes of the fake server: prompt, queue, history, info endpoints and the websocket."""

from __future__ import annotations

import copy
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from . import files
from .faults import FaultMiddleware
from .http_util import empty, guarded, json_response, read_json, text
from .hub import Connection
from .jobs_api import JobsApiRoutes
from .state import SENSITIVE_EXTRA_DATA_KEYS, QueueItem

if TYPE_CHECKING:
    from .fake import FakeComfyUI

log = logging.getLogger(__name__)

INDEX_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ComfyUI</title></head>
<body><div id="vue-app"></div><p>Fake ComfyUI 0.3.64 (test double)</p></body></html>
"""


class Routes:
    def __init__(self, fake: FakeComfyUI) -> None:
        self.fake = fake

    # -- prompt ------------------------------------------------------------------------------
    async def get_prompt(self, request: Request) -> Response:
        return json_response(self.fake.queue_info())

    async def post_prompt(self, request: Request) -> Response:
        fake = self.fake
        json_data = await read_json(request, fake.max_upload_size)
        fake.posted_prompts.append(copy.deepcopy(json_data))
        queue = fake.queue
        if "number" in json_data:
            number: int | float = float(json_data["number"])
        else:
            number = queue.next_number(
                bool(json_data.get("front")) if "front" in json_data else False
            )
        if "prompt" not in json_data:
            error = {
                "type": "no_prompt",
                "message": "No prompt provided",
                "details": "No prompt provided",
                "extra_info": {},
            }
            return json_response({"error": error, "node_errors": {}}, 400)
        prompt = json_data["prompt"]
        prompt_id = str(json_data.get("prompt_id", uuid.uuid4()))
        targets = json_data.get("partial_execution_targets")
        result = fake.validator().validate_prompt(prompt, targets)
        extra_data = json_data.get("extra_data", {})
        if "client_id" in json_data:
            extra_data["client_id"] = json_data["client_id"]
        if not result.ok:
            log.warning("invalid prompt: %s", result.error)
            return json_response({"error": result.error, "node_errors": result.node_errors}, 400)
        sensitive = {k: extra_data.pop(k) for k in SENSITIVE_EXTRA_DATA_KEYS if k in extra_data}
        fake.log("got prompt")
        item = QueueItem(number, prompt_id, prompt, extra_data, result.good_outputs, sensitive)
        queue.put(item)
        body = {"prompt_id": prompt_id, "number": number, "node_errors": result.node_errors}
        return json_response(body)

    # -- queue -------------------------------------------------------------------------------
    async def get_queue(self, request: Request) -> Response:
        running, pending = self.fake.queue.current_queue()
        return json_response(
            {
                "queue_running": [item.public() for item in running],
                "queue_pending": [item.public() for item in pending],
            }
        )

    async def post_queue(self, request: Request) -> Response:
        json_data = await read_json(request, self.fake.max_upload_size)
        queue = self.fake.queue
        if json_data.get("clear"):
            queue.wipe_queue()
        if "delete" in json_data:
            for prompt_id in json_data["delete"]:
                queue.delete_queue_item(prompt_id)
        return empty()

    async def post_interrupt(self, request: Request) -> Response:
        fake = self.fake
        try:
            json_data: Any = await read_json(request, fake.max_upload_size)
        except json.JSONDecodeError:
            json_data = {}
        prompt_id = json_data.get("prompt_id")
        fake.interrupt_calls.append(prompt_id)
        if prompt_id:
            running, _ = fake.queue.current_queue()
            if any(item.prompt_id == prompt_id for item in running):
                log.info("Interrupting prompt %s", prompt_id)
                fake.executor.interrupt()
            else:
                log.info("Prompt %s is not currently running, skipping interrupt", prompt_id)
        else:
            log.info("Global interrupt (no prompt_id specified)")
            fake.executor.interrupt()
        return empty()

    async def post_free(self, request: Request) -> Response:
        json_data = await read_json(request, self.fake.max_upload_size)
        unload_models = json_data.get("unload_models", False)
        free_memory = json_data.get("free_memory", False)
        self.fake.free_calls.append({"unload_models": unload_models, "free_memory": free_memory})
        self.fake.executor.free(bool(free_memory))
        return empty()

    # -- history -----------------------------------------------------------------------------
    async def get_history(self, request: Request) -> Response:
        raw_max = request.query_params.get("max_items")
        raw_offset = request.query_params.get("offset")
        max_items = int(raw_max) if raw_max is not None else None
        offset = int(raw_offset) if raw_offset is not None else -1
        history = self.fake.queue.get_history(max_items=max_items, offset=offset)
        return json_response(history)

    async def get_history_item(self, request: Request) -> Response:
        prompt_id = request.path_params["prompt_id"]
        return json_response(self.fake.queue.get_history(prompt_id=prompt_id))

    async def post_history(self, request: Request) -> Response:
        json_data = await read_json(request, self.fake.max_upload_size)
        queue = self.fake.queue
        if json_data.get("clear"):
            queue.wipe_history()
        if "delete" in json_data:
            for prompt_id in json_data["delete"]:
                queue.delete_history_item(prompt_id)
        return empty()

    # -- info --------------------------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        return HTMLResponse(INDEX_HTML)

    async def object_info(self, request: Request) -> Response:
        return Response(self.fake.object_info_bytes(), media_type="application/json; charset=utf-8")

    async def object_info_class(self, request: Request) -> Response:
        node_class = request.path_params["node_class"]
        info = self.fake.object_info()
        return json_response({node_class: info[node_class]} if node_class in info else {})

    async def system_stats(self, request: Request) -> Response:
        return json_response(self.fake.system_stats)

    async def features(self, request: Request) -> Response:
        return json_response(
            {"supports_preview_metadata": True, "max_upload_size": self.fake.max_upload_size}
        )

    async def embeddings(self, request: Request) -> Response:
        return json_response([])

    async def extensions(self, request: Request) -> Response:
        return json_response(self.fake.extensions)

    async def users(self, request: Request) -> Response:
        return json_response({"storage": "server", "migrated": True})

    async def post_users(self, request: Request) -> Response:
        """user_manager.py: works in single-user mode too (it writes users.json)."""
        username = (await read_json(request, self.fake.max_upload_size))["username"]
        if username in self.fake.users.values():
            return json_response({"error": "Duplicate username."}, 400)
        name = username.strip()
        if not name:
            raise ValueError("username not provided")
        user_id = re.sub("[^a-zA-Z0-9-_]+", "-", name) + "_" + str(uuid.uuid4())
        self.fake.users[user_id] = name
        return json_response(user_id)

    async def get_settings(self, request: Request) -> Response:
        return json_response(self.fake.settings)

    async def post_settings(self, request: Request) -> Response:
        self.fake.settings.update(await read_json(request, self.fake.max_upload_size))
        return empty()

    async def get_setting(self, request: Request) -> Response:
        return json_response(self.fake.settings.get(request.path_params["id"]))

    async def post_setting(self, request: Request) -> Response:
        value = await read_json(request, self.fake.max_upload_size)
        self.fake.settings[request.path_params["id"]] = value
        return empty()

    async def internal_logs(self, request: Request) -> Response:
        return json_response("".join(f"{e['t']} - {e['m']}" for e in self.fake.logs))

    async def internal_logs_raw(self, request: Request) -> Response:
        return json_response({"entries": self.fake.logs, "size": {"cols": 80, "rows": 24}})

    # -- websocket ---------------------------------------------------------------------------
    async def websocket(self, websocket: WebSocket) -> None:
        fake = self.fake
        hub = fake.hub  # a restart replaces the hub; this socket stays with the old one
        await websocket.accept()
        sid = websocket.query_params.get("clientId", "") or uuid.uuid4().hex
        conn = Connection(websocket, sid)
        hub.register(conn)
        hub.send_to(conn, "status", {"status": fake.queue_info(), "sid": sid})
        executor = fake.executor
        if executor.client_id == sid and executor.last_node_id is not None:
            hub.send_to(conn, "executing", {"node": executor.last_node_id})
        first_message = True
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                raw = message.get("text")
                if raw is None:
                    continue  # binary frames are ignored
                try:
                    data = json.loads(raw)
                    if first_message and data.get("type") == "feature_flags":
                        conn.feature_flags = dict(data.get("data", {}))
                        flags = {
                            "supports_preview_metadata": True,
                            "max_upload_size": fake.max_upload_size,
                        }
                        hub.send_to(conn, "feature_flags", flags)
                    first_message = False
                except json.JSONDecodeError:
                    log.warning("Invalid JSON received from client %s: %s", sid, raw)
                except Exception as exc:
                    log.error("Error processing WebSocket message: %s", exc)
        except WebSocketDisconnect:
            pass
        finally:
            # Faithful to ComfyUI: this pops the id even if a newer socket took it over.
            hub.unregister(conn)
            await conn.stop_writer()


def build_app(fake: FakeComfyUI) -> Any:
    r = Routes(fake)
    f = files.FileRoutes(fake)
    table: list[tuple[str, Any, list[str]]] = [
        ("/", r.index, ["GET"]),
        ("/prompt", r.get_prompt, ["GET"]),
        ("/prompt", r.post_prompt, ["POST"]),
        ("/queue", r.get_queue, ["GET"]),
        ("/queue", r.post_queue, ["POST"]),
        ("/interrupt", r.post_interrupt, ["POST"]),
        ("/free", r.post_free, ["POST"]),
        ("/history", r.get_history, ["GET"]),
        ("/history", r.post_history, ["POST"]),
        ("/history/{prompt_id}", r.get_history_item, ["GET"]),
        ("/object_info", r.object_info, ["GET"]),
        ("/object_info/{node_class}", r.object_info_class, ["GET"]),
        ("/system_stats", r.system_stats, ["GET"]),
        ("/features", r.features, ["GET"]),
        ("/embeddings", r.embeddings, ["GET"]),
        ("/extensions", r.extensions, ["GET"]),
        ("/users", r.users, ["GET"]),
        ("/users", r.post_users, ["POST"]),
        ("/settings", r.get_settings, ["GET"]),
        ("/settings", r.post_settings, ["POST"]),
        ("/settings/{id}", r.get_setting, ["GET"]),
        ("/settings/{id}", r.post_setting, ["POST"]),
        *f.table(),
    ]
    routes: list[BaseRoute] = []
    for base in ("", "/api"):
        for path, handler, methods in table:
            full = (base + path) if path != "/" else (base + "/")
            routes.append(Route(full, guarded(handler), methods=methods))
        routes.append(WebSocketRoute(base + "/ws", r.websocket))
    # Served once, with their own spelling: /internal is a sub-app (never under /api), the
    # newer job API exists only under /api.
    unprefixed = [
        ("/internal/logs", r.internal_logs, ["GET"]),
        ("/internal/logs/raw", r.internal_logs_raw, ["GET"]),
    ]
    if fake.jobs_api:
        unprefixed += JobsApiRoutes(fake).table()
    for path, handler, methods in unprefixed:
        routes.append(Route(path, guarded(handler), methods=methods))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        fake.start_worker()
        yield

    async def not_found(request: Request, exc: Exception) -> Response:
        return text("404: Not Found", 404)

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return text("405: Method Not Allowed", 405)

    handlers: dict[Any, Any] = {404: not_found, 405: not_allowed}
    if fake.prefix:
        inner = Starlette(routes=routes, exception_handlers=handlers)
        app = Starlette(
            routes=[Mount(fake.prefix, app=inner)], exception_handlers=handlers, lifespan=lifespan
        )
    else:
        app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    return FaultMiddleware(app, fake)
