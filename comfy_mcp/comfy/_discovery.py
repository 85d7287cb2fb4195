"""Discovery routes of ``ComfyClient``: what the server has (nodes, models, features, logs).

==============================  =================================================================
GET /system_stats               ``{system: {comfyui_version, …}, devices: […]}``
GET /features                   ``{supports_preview_metadata, max_upload_size}`` (0.3.6x+)
GET /object_info[/{class}]      ``{class: def}``; ``{}`` for an unknown class
GET /models[/{folder}]          folder names; file names relative to the folder (404 if unknown)
GET /experiment/models[/{f}]    ``[{name, folders}]``; ``[{name, pathIndex, modified, created,
                                size}]``
GET /view_metadata/{folder}     ``?filename=`` → safetensors ``__metadata__``; 404; 500 when the
                                file cannot be read (recorded on a 0-byte placeholder)
GET /embeddings, /extensions    lists of strings
GET /internal/logs[/raw]        the log as one string; ``{entries: [{t, m}], size: {cols, rows}}``
                                (never under ``/api``)
==============================  =================================================================
"""

from __future__ import annotations

from typing import Any

from comfy_mcp.comfy._core import ClientCore
from comfy_mcp.comfy.endpoint import segment
from comfy_mcp.comfy.errors import ComfyHTTPError, ComfyNotFoundError, ComfyProtocolError
from comfy_mcp.comfy.models import ModelFile, ModelFolder, RawLogs
from comfy_mcp.comfy.nodeinfo import FOLDER_LOADERS, combo_options

# Folders /models lists that hold no models (/experiment/models leaves them out too).
_NOT_MODEL_FOLDERS = ("configs", "custom_nodes")


class DiscoveryRoutes(ClientCore):
    async def get_system_stats(self) -> dict[str, Any]:
        """GET /system_stats: versions (``system.comfyui_version``), RAM, devices and VRAM.

        ``system.argv`` is the server's command line: filter it before showing it to agents.
        """
        return await self._get_object("/system_stats")

    async def get_features(self) -> dict[str, Any]:
        """GET /features (present since 0.3.6x); ``{}`` on servers without it.

        Unknown keys are opaque; a missing key means the feature is absent.
        """
        try:
            data = await self._get_json("/features")
        except ComfyNotFoundError:
            return {}
        if not isinstance(data, dict):
            return {}
        size = data.get("max_upload_size")
        if isinstance(size, int) and size > 0:
            self._max_upload_size = size
        return data

    async def get_node_defs(
        self, node_class: str | None = None, *, refresh: bool = False
    ) -> dict[str, Any]:
        """``/object_info``: the whole map (cached per client) or one class (``{}`` if unknown).

        The cache never holds a failure; combo lists change when files are added, so pass
        ``refresh=True`` or call ``invalidate_node_defs`` after uploads or model changes.
        """
        if node_class is not None:
            if self._node_defs is not None and not refresh and node_class in self._node_defs:
                return {node_class: self._node_defs[node_class]}
            return await self._get_object(f"/object_info/{segment(node_class)}")
        async with self._node_defs_lock:
            if self._node_defs is None or refresh:
                self._node_defs = await self._get_object("/object_info", timeout=self.timeout * 3)
            return self._node_defs

    def invalidate_node_defs(self) -> None:
        """Forget the cached ``/object_info`` (combo lists change when files are added)."""
        self._node_defs = None

    async def get_model_types(self) -> list[str]:
        """GET /models: the model folder names (``configs`` and ``custom_nodes`` left out)."""
        data = await self._get_list("/models")
        return [str(x) for x in data if x not in _NOT_MODEL_FOLDERS]

    async def get_model_folders(self) -> list[ModelFolder]:
        """The model folders with the server paths they are read from.

        GET /experiment/models; servers without it get the ``/models`` names (no paths).
        """
        try:
            data = await self._get_list("/experiment/models", retries=0)
        except ComfyNotFoundError:
            return [ModelFolder(name=name) for name in await self.get_model_types()]
        try:
            return [ModelFolder.model_validate(item) for item in data]
        except ValueError as exc:
            raise ComfyProtocolError(f"unexpected answer to GET /experiment/models: {exc}") from exc

    async def get_models(self, folder: str) -> list[str]:
        """Files in a model folder, subfolders included (``style/anime.safetensors``).

        Uses GET /models/{folder}; on servers without that route, the matching loader's combo in
        ``/object_info``.

        Raises:
            ComfyNotFoundError: the folder does not exist; the message lists the ones that do.
        """
        try:
            data = await self._get_list(f"/models/{segment(folder)}", retries=0)
            return [str(x) for x in data]
        except ComfyNotFoundError as exc:
            try:
                folders = await self.get_model_types()
            except ComfyNotFoundError:
                return await self._models_from_node_defs(folder)
            raise ComfyNotFoundError(
                "GET",
                exc.url,
                404,
                f"no model folder {folder!r}; ComfyUI has: {', '.join(folders)}",
            ) from exc

    async def get_model_files(self, folder: str) -> list[ModelFile]:
        """Files in a model folder with size and times: GET /experiment/models/{folder}.

        Raises:
            ComfyNotFoundError: unknown folder, or a server without the experiment routes.
        """
        data = await self._get_list(f"/experiment/models/{segment(folder)}", retries=0)
        try:
            return [ModelFile.model_validate(item) for item in data]
        except ValueError as exc:
            raise ComfyProtocolError(f"unexpected answer for model folder {folder}: {exc}") from exc

    async def _models_from_node_defs(self, folder: str) -> list[str]:
        if folder == "embeddings":
            return await self.get_embeddings()
        loader = FOLDER_LOADERS.get(folder)
        if loader is None:
            raise ComfyNotFoundError("GET", f"/models/{folder}", 404, f"unknown folder {folder!r}")
        defs = await self.get_node_defs()
        return combo_options(defs.get(loader[0], {}), loader[1]) or []

    async def get_sd_models(self) -> list[str]:
        """Checkpoints (``models/checkpoints``)."""
        return await self.get_models("checkpoints")

    async def get_loras(self) -> list[str]:
        """LoRAs (``models/loras``)."""
        return await self.get_models("loras")

    async def get_vaes(self) -> list[str]:
        """VAEs (``models/vae``). ``VAELoader`` also offers built-ins such as ``pixel_space``."""
        return await self.get_models("vae")

    async def get_cnet_models(self) -> list[str]:
        """ControlNet models (``models/controlnet``)."""
        return await self.get_models("controlnet")

    async def get_upscale_models(self) -> list[str]:
        """Upscale models (``models/upscale_models``)."""
        return await self.get_models("upscale_models")

    async def get_hypernetworks(self) -> list[str]:
        """Hypernetworks (``models/hypernetworks``)."""
        return await self.get_models("hypernetworks")

    async def get_embeddings(self) -> list[str]:
        """GET /embeddings: textual-inversion names, extension stripped."""
        return [str(x) for x in await self._get_list("/embeddings")]

    async def get_extensions(self) -> list[str]:
        """GET /extensions: the frontend extension scripts (``/extensions/core/….js``)."""
        return [str(x) for x in await self._get_list("/extensions")]

    async def get_samplers(self) -> list[str]:
        """KSampler's ``sampler_name`` choices (from ``/object_info/KSampler``)."""
        return await self._ksampler_options("sampler_name")

    async def get_schedulers(self) -> list[str]:
        """KSampler's ``scheduler`` choices (from ``/object_info/KSampler``)."""
        return await self._ksampler_options("scheduler")

    async def _ksampler_options(self, input_name: str) -> list[str]:
        defs = await self.get_node_defs("KSampler")
        return combo_options(defs.get("KSampler", {}), input_name) or []

    async def view_metadata(self, folder: str, filename: str) -> dict[str, Any] | None:
        """The ``__metadata__`` of a safetensors model file (trigger words, training info…).

        Returns None when ComfyUI has none to give: the name does not end in ``.safetensors``,
        the file is not in the folder, or its header has no metadata (all 404).

        Raises:
            ComfyHTTPError: status 500 when ComfyUI cannot read the file's header (recorded on
                an empty file: it is corrupt or not a safetensors file). Raised, not None,
                because it is a broken model file the caller should hear about.
        """
        route = f"/view_metadata/{segment(folder)}"
        try:
            data = await self._get_json(route, params={"filename": filename}, retries=0)
        except ComfyNotFoundError:
            return None
        except ComfyHTTPError as exc:
            if exc.status != 500:
                raise
            raise ComfyHTTPError(
                exc.method,
                exc.url,
                500,
                f"ComfyUI could not read the safetensors header of {folder}/{filename} "
                "(an empty, truncated or non-safetensors file)",
            ) from exc
        return data if isinstance(data, dict) else None

    async def get_logs(self) -> str:
        """GET /internal/logs: ComfyUI's recent log as one string ("time - message" lines).

        ``/internal`` routes are meant for ComfyUI's own frontend and may change.
        """
        data = await self._get_json("/internal/logs", route_prefix="")
        if not isinstance(data, str):
            raise ComfyProtocolError("GET /internal/logs did not answer a string")
        return data

    async def get_raw_logs(self) -> RawLogs:
        """GET /internal/logs/raw: the log records and the server terminal size."""
        data = await self._get_object("/internal/logs/raw", route_prefix="")
        try:
            return RawLogs.model_validate(data)
        except ValueError as exc:
            raise ComfyProtocolError(f"unexpected answer to GET /internal/logs/raw: {exc}") from exc
