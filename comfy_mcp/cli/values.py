"""Turning ``run``'s ``--set key=value`` arguments into values for a template.

Scalars stay text: :meth:`Template.fill` converts them by the parameter's type and reports every
bad one at once, in the same words an agent gets from the MCP tools. Only what text cannot say
is decoded here (LoRA stacks, more spellings of booleans), and image parameters that name a file
on this machine are uploaded to ComfyUI first.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from comfy_mcp.cli import console
from comfy_mcp.comfy import Auth, ComfyClient
from comfy_mcp.settings import Settings
from comfy_mcp.templates import Parameter, Template


class UsageError(ValueError):
    """A wrong template name or ``--set`` value: exit status 2, nothing was queued."""


def pick_backend(
    settings: Settings, name: str | None, *, flag_url: str | None = None
) -> tuple[str, Auth]:
    """The ComfyUI server to run on: ``--comfyui-url`` if given, else the backend called
    ``name``, else the first configured one (the server's default too)."""
    if flag_url:
        return settings.comfyui_url, settings.auth()
    specs = settings.backends()
    if name is None:
        return specs[0].url, specs[0].auth
    for spec in specs:
        if spec.name == name:
            return spec.url, spec.auth
    names = ", ".join(spec.name for spec in specs)
    raise UsageError(f"no backend {name!r}; configured: {names} (COMFYUI_URLS)")


def parse_assignments(template: Template, assignments: Sequence[str]) -> dict[str, Any]:
    """``["steps=20", "loras=[…]"]`` → values for :meth:`Template.fill`.

    Scalars stay text: ``fill`` converts them by the parameter's type and reports every bad
    one at once, in the same words an agent gets. Only what text cannot say is decoded here:
    LoRA stacks (JSON, or ``name:strength,name2``) and a few more spellings of booleans.
    Unknown names pass through so ``fill`` can suggest the closest valid one.
    """
    values: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--set takes KEY=VALUE (got {item!r}), for example --set steps=20")
        if key in values:
            raise UsageError(f"--set {key}=… is given twice")
        try:
            parameter = template.parameter(key)
        except KeyError:
            values[key] = raw
            continue
        values[key] = parse_value(parameter, raw)
    return values


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def parse_value(parameter: Parameter, raw: str) -> Any:
    if parameter.type == "boolean":
        lowered = raw.strip().lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        return raw
    if parameter.type == "lora_stack":
        return _lora_stack(parameter.name, raw)
    return raw


def _lora_stack(name: str, raw: str) -> Any:
    text = raw.strip()
    if not text:
        return []
    if text.startswith(("[", "{")):
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            raise UsageError(
                f"--set {name}: not valid JSON ({exc}); for example "
                f'--set \'{name}=[{{"name": "detail.safetensors", "strength": 0.7}}]\''
            ) from None
        return [parsed] if isinstance(parsed, dict) else parsed
    stack: list[dict[str, Any]] = []
    for part in text.split(","):
        lora, sep, strength = part.strip().rpartition(":")
        if sep and lora and _is_number(strength):
            stack.append({"name": lora, "strength": float(strength)})
        elif part.strip():
            stack.append({"name": part.strip()})
    return stack


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


async def upload_local_images(
    comfy: ComfyClient, template: Template, values: dict[str, Any]
) -> dict[str, Any]:
    """Image parameters naming a file on this machine: upload it, use ComfyUI's name for it.

    The person at the shell chose the path, so no input-root restriction applies here (unlike
    the MCP tools, whose image arguments come from a model). Anything else is passed on as the
    name of a file already in ComfyUI's input folder.
    """
    resolved = dict(values)
    for parameter in template.parameters:
        value = resolved.get(parameter.name)
        if parameter.type != "image" or not isinstance(value, str) or not value.strip():
            continue
        path = _local_file(parameter.name, value)
        if path is None:
            continue
        data = await asyncio.to_thread(path.read_bytes)
        result = await comfy.upload_image(data, path.name)
        console.stderr().print(f"uploaded {path} as {result.reference}", markup=False)
        resolved[parameter.name] = result.reference
    return resolved


def _local_file(name: str, value: str) -> Path | None:
    """The file ``value`` names on this machine; None when it is a ComfyUI input name."""
    path = Path(value).expanduser()
    if path.is_file():
        return path
    if value.startswith(("/", "./", "../", "~")) or re.match(r"^[A-Za-z]:[\\/]", value):
        raise UsageError(f"--set {name}: no such file: {value}")
    return None
