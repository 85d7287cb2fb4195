"""File routes: uploads, /view, model lists, /view_metadata and /userdata."""

from __future__ import annotations

import hashlib
import json
import mimetypes
import posixpath
import time
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from . import images as im
from .http_util import empty, json_response, read_body, text
from .state import safe_relpath

if TYPE_CHECKING:
    from .fake import FakeComfyUI

FORCED_DOWNLOAD = {
    "text/html",
    "text/html-sandboxed",
    "application/xhtml+xml",
    "text/javascript",
    "text/css",
}


class FileRoutes:
    def __init__(self, fake: FakeComfyUI) -> None:
        self.fake = fake

    def table(self) -> list[tuple[str, Any, list[str]]]:
        return [
            ("/upload/image", self.upload_image, ["POST"]),
            ("/upload/mask", self.upload_mask, ["POST"]),
            ("/view", self.view, ["GET"]),
            ("/view_metadata/{folder_name}", self.view_metadata, ["GET"]),
            ("/models", self.models, ["GET"]),
            ("/models/{folder}", self.models_folder, ["GET"]),
            ("/experiment/models", self.experiment_models, ["GET"]),
            ("/experiment/models/{folder}", self.experiment_models_folder, ["GET"]),
            ("/userdata", self.list_userdata, ["GET"]),
            ("/userdata/{file:path}", self.get_userdata, ["GET"]),
            ("/userdata/{file:path}", self.post_userdata, ["POST"]),
            ("/userdata/{file:path}", self.delete_userdata, ["DELETE"]),
        ]

    # -- uploads -----------------------------------------------------------------------------
    async def _form(self, request: Request) -> Any:
        await read_body(request, self.fake.max_upload_size)
        return await request.form(max_part_size=self.fake.max_upload_size)

    async def upload_image(self, request: Request) -> Response:
        return await self._upload(await self._form(request), mask=False)

    async def upload_mask(self, request: Request) -> Response:
        return await self._upload(await self._form(request), mask=True)

    async def _upload(self, form: Any, mask: bool) -> Response:
        """server.py image_upload(): dedupe by hash, ``name (N).ext`` on clashes."""
        store = self.fake.store
        image = form.get("image")
        kind = form.get("type") or "input"
        if kind not in ("input", "temp", "output"):
            raise UnboundLocalError("cannot access local variable 'type_dir'")
        if not isinstance(image, UploadFile) or not image.filename:
            return empty(400)
        data = await image.read()
        filename = image.filename
        subfolder = str(form.get("subfolder", ""))
        folder = safe_relpath(subfolder)
        target = safe_relpath(folder or "", filename) if folder is not None else None
        if folder is None or target is None:
            return empty(400)
        overwrite = form.get("overwrite")
        duplicate = False
        if overwrite not in ("true", "1"):
            stem, ext = posixpath.splitext(filename)
            counter = 1
            while store.exists(kind, target):
                existing = store.get(kind, target)
                if existing is not None and _sha(existing.data) == _sha(data):
                    duplicate = True
                    break
                filename = f"{stem} ({counter}){ext}"
                target = safe_relpath(folder, filename) or filename
                counter += 1
        if not duplicate:
            if mask:
                self._save_mask(form, data, kind, target)
            else:
                store.put(kind, target, data)
        result = {"name": filename, "subfolder": subfolder, "type": kind}
        self.fake.uploads.append({**result, "size": len(data), "duplicate": duplicate})
        return json_response(result)

    def _save_mask(self, form: Any, data: bytes, kind: str, target: str) -> None:
        """upload_mask's save function: copy the uploaded alpha into ``original_ref``."""
        original_ref = json.loads(form.get("original_ref"))
        name, annotated_kind = _split_annotation(original_ref["filename"])
        if not name or name[0] == "/" or ".." in name:
            return  # the real handler returns a 400 that image_upload ignores: nothing saved
        ref_kind = annotated_kind or original_ref.get("type", "output")
        relpath = safe_relpath(original_ref.get("subfolder", ""), name)
        original = self.fake.store.get(ref_kind, relpath) if relpath is not None else None
        if original is not None:
            self.fake.store.put(kind, target, im.apply_mask_alpha(original.data, data))

    # -- /view -------------------------------------------------------------------------------
    async def view(self, request: Request) -> Response:
        query = request.query_params
        if "filename" not in query:
            return empty(404)
        filename, annotated_kind = _split_annotation(query["filename"])
        if not filename:
            return empty(400)
        if filename[0] == "/" or ".." in filename:
            return empty(400)
        kind = annotated_kind or query.get("type", "output")
        if kind not in ("output", "input", "temp"):
            return empty(400)
        subfolder = ""
        if "subfolder" in query:
            resolved = safe_relpath(query["subfolder"])
            if resolved is None:
                return empty(403)
            subfolder = resolved
        filename = posixpath.basename(filename)
        relpath = f"{subfolder}/{filename}" if subfolder else filename
        stored = self.fake.store.get(kind, relpath)
        if stored is None:
            return empty(404)
        disposition = {"Content-Disposition": f'filename="{filename}"'}
        channel = query.get("channel", "rgba")
        if "preview" in query:
            body, media_type = im.view_preview(stored.data, query["preview"], channel)
            return Response(body, media_type=media_type, headers=disposition)
        if channel == "rgb":
            return Response(im.view_rgb(stored.data), media_type="image/png", headers=disposition)
        if channel == "a":
            return Response(im.view_alpha(stored.data), media_type="image/png", headers=disposition)
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        if content_type in FORCED_DOWNLOAD:
            content_type = "application/octet-stream"
        headers = {
            **disposition,
            "Content-Type": content_type,
            "ETag": f'"{int(stored.mtime * 1e9):x}-{len(stored.data):x}"',
            "Last-Modified": formatdate(stored.mtime, usegmt=True),
            "Accept-Ranges": "bytes",
        }
        return Response(stored.data, headers=headers)

    async def view_metadata(self, request: Request) -> Response:
        folder = request.path_params["folder_name"]
        filename = request.query_params.get("filename")
        if filename is None or not filename.endswith(".safetensors"):
            return empty(404)
        if filename not in self.fake.models.get(folder, []):
            return empty(404)
        if not self.fake.models_loadable:
            # 0-byte placeholder: safetensors_header() fails unhandled → 500
            raise ValueError("safetensors header too small")
        return json_response({"format": "pt", "modelspec.title": filename})

    # -- models ------------------------------------------------------------------------------
    async def models(self, request: Request) -> Response:
        return json_response(list(self.fake.models))

    async def models_folder(self, request: Request) -> Response:
        folder = request.path_params["folder"]
        if folder not in self.fake.models:
            return empty(404)
        return json_response(sorted(self.fake.models[folder]))

    async def experiment_models(self, request: Request) -> Response:
        return json_response(self.fake.experiment_model_folders)

    async def experiment_models_folder(self, request: Request) -> Response:
        folder = request.path_params["folder"]
        if folder not in self.fake.models:
            return empty(404)
        stamp = self.fake.started_at
        entries = [
            {"name": name, "pathIndex": 0, "modified": stamp, "created": stamp, "size": 0}
            for name in sorted(self.fake.models[folder])
        ]
        return json_response(entries)

    # -- userdata ----------------------------------------------------------------------------
    async def list_userdata(self, request: Request) -> Response:
        directory = request.query_params.get("dir", "")
        if not directory:
            return text("Directory not provided", 400)
        base = safe_relpath(directory)
        if base is None:
            return text("Invalid directory", 403)
        prefix = f"{base}/"
        names = [k[len(prefix) :] for k in self.fake.userdata if k.startswith(prefix)]
        if not names:
            return text("Directory not found", 404)
        if request.query_params.get("recurse", "").lower() != "true":
            names = [n for n in names if "/" not in n]
        if request.query_params.get("split", "").lower() == "true":
            return json_response([[n, *n.split("/")] for n in names])
        if request.query_params.get("full_info", "").lower() == "true":
            now = time.time()
            info = [
                {
                    "path": n,
                    "size": len(self.fake.userdata[prefix + n]),
                    "modified": now,
                    "created": now,
                }
                for n in names
            ]
            return json_response(info)
        return json_response(names)

    async def get_userdata(self, request: Request) -> Response:
        path = safe_relpath(request.path_params["file"])
        if path is None:
            return empty(403)
        if path not in self.fake.userdata:
            return empty(404)
        media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        return Response(self.fake.userdata[path], media_type=media_type)

    async def post_userdata(self, request: Request) -> Response:
        path = safe_relpath(request.path_params["file"])
        if path is None:
            return empty(403)
        overwrite = request.query_params.get("overwrite", "true") != "false"
        if not overwrite and path in self.fake.userdata:
            return text("File already exists", 409)
        self.fake.userdata[path] = await read_body(request, self.fake.max_upload_size)
        if request.query_params.get("full_info", "false").lower() == "true":
            now = time.time()
            size = len(self.fake.userdata[path])
            return json_response({"path": path, "size": size, "modified": now, "created": now})
        return json_response(path)

    async def delete_userdata(self, request: Request) -> Response:
        path = safe_relpath(request.path_params["file"])
        if path is None:
            return empty(403)
        if self.fake.userdata.pop(path, None) is None:
            return empty(404)
        return empty(204)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _split_annotation(name: str) -> tuple[str, str | None]:
    for suffix, kind in (("[output]", "output"), ("[input]", "input"), ("[temp]", "temp")):
        if name.endswith(suffix):
            return name[: -len(suffix) - 1], kind
    return name, None
