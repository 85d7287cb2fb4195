"""User, settings and user-data routes of ``ComfyClient``.

Which user these act for is the ``Comfy-User`` header (``ComfyClient(user=…)``); ComfyUI honours
it only when started with ``--multi-user`` and otherwise uses its one ``default`` user.

===========================  =====================================================================
GET  /users                  single-user: ``{storage, migrated}``; multi-user: ``{storage, users}``
POST /users                  ``{username}`` → the new user id (JSON string); 400 on a duplicate
GET  /settings[/{id}]        ``{id: value}``; one value, ``null`` when unset
POST /settings[/{id}]        a dict merged into the settings; one JSON value → empty body
GET  /userdata?dir=          file paths relative to ``dir``; 404 text when the dir does not exist
GET  /userdata/{file}        the file's bytes; 404 when missing
POST /userdata/{file}        raw body; ``?overwrite=false`` → 409 when it exists; answers the
                             relative path, or ``{path, size, modified}`` with ``full_info``
DELETE /userdata/{file}      204; 404 when missing
===========================  =====================================================================

``{file}`` is one path segment in ComfyUI's router: a ``/`` in it travels as ``%2F``.
"""

from __future__ import annotations

import json
from typing import Any, Literal, overload

from comfy_mcp.comfy._core import ClientCore, decode_json
from comfy_mcp.comfy.endpoint import segment
from comfy_mcp.comfy.errors import ComfyNotFoundError, ComfyProtocolError

UserData = bytes | str | dict[str, Any] | list[Any]


class UserRoutes(ClientCore):
    async def get_user_config(self) -> dict[str, Any]:
        """GET /users: how users are stored.

        Single-user servers answer ``{"storage": "server", "migrated": bool}``; multi-user ones
        ``{"storage": "server", "users": {user_id: name}}``.
        """
        return await self._get_object("/users")

    async def create_user(self, username: str) -> str:
        """POST /users: create a user and return its id (``name_<uuid>``).

        Meaningful on ``--multi-user`` servers. Note that ComfyUI accepts it in single-user
        mode too, and then writes a ``users.json`` it does not read.

        Raises:
            ComfyHTTPError: 400 ``{"error": "Duplicate username."}``.
        """
        response = await self.request("POST", "/users", json_body={"username": username})
        user_id = decode_json(response, "POST /users")
        if not isinstance(user_id, str):
            raise ComfyProtocolError(f"POST /users answered {user_id!r:.100}, not a user id")
        return user_id

    async def get_settings(self) -> dict[str, Any]:
        """GET /settings: every stored setting of the user (``{}`` when none)."""
        return await self._get_object("/settings")

    async def get_setting(self, setting_id: str) -> Any:
        """GET /settings/{id}: one setting's value, None when unset."""
        return await self._get_json(f"/settings/{segment(setting_id)}")

    async def store_settings(self, settings: dict[str, Any]) -> None:
        """POST /settings: merge ``settings`` into the stored ones (others are kept)."""
        await self.request("POST", "/settings", json_body=dict(settings))

    async def store_setting(self, setting_id: str, value: Any) -> None:
        """POST /settings/{id}: store one setting (any JSON value)."""
        # json_body=None would send no body at all; encode it so None is stored as null.
        await self.request(
            "POST",
            f"/settings/{segment(setting_id)}",
            content=json.dumps(value).encode(),
            headers={"Content-Type": "application/json"},
        )

    async def get_user_data(self, file: str) -> bytes | None:
        """GET /userdata/{file}: a user file's bytes (``workflows/x.json``), None if missing."""
        try:
            response = await self.request("GET", f"/userdata/{segment(file)}", retries=0)
        except ComfyNotFoundError:
            return None
        return response.content

    @overload
    async def store_user_data(
        self,
        file: str,
        data: UserData,
        *,
        overwrite: bool = ...,
        full_info: Literal[False] = ...,
    ) -> str: ...

    @overload
    async def store_user_data(
        self, file: str, data: UserData, *, overwrite: bool = ..., full_info: Literal[True]
    ) -> dict[str, Any]: ...

    async def store_user_data(
        self, file: str, data: UserData, *, overwrite: bool = True, full_info: bool = False
    ) -> str | dict[str, Any]:
        """POST /userdata/{file}: write a user file; parent folders are created.

        ``data`` is sent as-is when bytes, UTF-8 encoded when a string, and as JSON when a dict
        or list (workflows, templates). Returns the stored path relative to the user folder, or
        ``{path, size, modified}`` with ``full_info``.

        Raises:
            ComfyHTTPError: 409 when the file exists and ``overwrite`` is False; 403 for a
                path outside the user folder.
        """
        if isinstance(data, bytes):
            body = data
        elif isinstance(data, str):
            body = data.encode("utf-8")
        else:
            body = json.dumps(data).encode("utf-8")
        response = await self.request(
            "POST",
            f"/userdata/{segment(file)}",
            params={"overwrite": overwrite, "full_info": full_info},
            content=body,
            timeout=self.timeout * 3,
        )
        result = decode_json(response, "POST /userdata")
        if full_info:
            if not isinstance(result, dict):
                raise ComfyProtocolError(f"POST /userdata answered {result!r:.100}")
            return result
        return str(result)

    async def delete_user_data(self, file: str) -> bool:
        """DELETE /userdata/{file}. Returns False when there was no such file."""
        try:
            await self.request("DELETE", f"/userdata/{segment(file)}")
        except ComfyNotFoundError:
            return False
        return True

    @overload
    async def list_user_data(
        self, directory: str, *, recurse: bool = ..., full_info: Literal[False] = ...
    ) -> list[str]: ...

    @overload
    async def list_user_data(
        self, directory: str, *, recurse: bool = ..., full_info: Literal[True]
    ) -> list[dict[str, Any]]: ...

    async def list_user_data(
        self, directory: str, *, recurse: bool = False, full_info: bool = False
    ) -> list[str] | list[dict[str, Any]]:
        """GET /userdata?dir=: the files in a user folder (``workflows``), paths relative to it.

        A folder that does not exist yet lists as ``[]`` (ComfyUI answers 404 "Directory not
        found"). With ``full_info`` each entry is ``{path, size, modified}``.
        """
        if not directory:
            raise ValueError("directory is required (ComfyUI answers 400 without one)")
        params = {"dir": directory, "recurse": recurse, "full_info": full_info}
        try:
            data = await self._get_list("/userdata", params=params, retries=0)
        except ComfyNotFoundError:
            return []
        if full_info:
            return [entry for entry in data if isinstance(entry, dict)]
        return [str(entry) for entry in data]
