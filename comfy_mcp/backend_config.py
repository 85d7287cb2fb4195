"""Which ComfyUI servers the MCP server talks to: one (``COMFYUI_URL``) or several.

Several come from ``COMFYUI_URLS`` (``gpu1=http://a:8188,gpu2=http://b:8188``; the shared
``COMFYUI_TOKEN``/headers/cookies apply to all) or from a JSON file named by
``COMFY_MCP_BACKENDS_FILE`` when each server needs its own credentials::

    {"backends": [
      {"name": "gpu1", "url": "https://gpu1.lan/comfy", "token": "…"},
      {"name": "gpu2", "url": "http://10.0.0.7:8188", "headers": {"X-Key": "…"}}
    ]}
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from comfy_mcp.comfy.endpoint import Auth, Endpoint

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class BackendConfigError(ValueError):
    """A backend definition is invalid; the message names the variable or file and the fix."""


@dataclass(frozen=True)
class BackendSpec:
    """One ComfyUI server: a name agents can use, its URL, and its own credentials (if any)."""

    name: str
    url: str
    auth: Auth = field(default_factory=Auth, repr=False)


def parse_urls(raw: str, shared: Auth) -> tuple[BackendSpec, ...]:
    """``name=url`` or bare ``url`` entries, comma-separated; bare ones are named by host."""
    specs: list[BackendSpec] = []
    for number, part in enumerate((p.strip() for p in raw.split(",")), start=1):
        if not part:
            continue
        name, sep, url = part.partition("=")
        if not sep or "://" in name:
            name, url = _name_from_url(part, number), part
        specs.append(_spec(name.strip(), url.strip(), shared, "COMFYUI_URLS"))
    return _unique(specs, "COMFYUI_URLS")


def load_file(path: Path, shared: Auth) -> tuple[BackendSpec, ...]:
    """Backends from a JSON file; per-backend token/headers/cookies/query override shared ones."""
    where = f"COMFY_MCP_BACKENDS_FILE ({path})"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BackendConfigError(f"{where}: cannot read it: {exc.strerror}") from None
    except ValueError as exc:
        raise BackendConfigError(f"{where}: not valid JSON: {exc}") from None
    entries = document.get("backends") if isinstance(document, dict) else document
    if not isinstance(entries, list) or not entries:
        raise BackendConfigError(f'{where}: expected {{"backends": [{{"name", "url"}}, …]}}')
    specs = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise BackendConfigError(f"{where}: backend #{index + 1} needs a 'url' string")
        name = str(entry.get("name") or _name_from_url(entry["url"], index + 1))
        auth = Auth(
            headers=_strings(entry.get("headers"), where, "headers"),
            cookies=_strings(entry.get("cookies"), where, "cookies"),
            query=_strings(entry.get("query"), where, "query"),
        )
        if isinstance(entry.get("token"), str):
            auth = Auth.bearer(entry["token"]).merged(auth)
        specs.append(_spec(name, entry["url"], shared.merged(auth), where))
    return _unique(specs, where)


def _spec(name: str, url: str, auth: Auth, where: str) -> BackendSpec:
    if not _NAME.match(name):
        raise BackendConfigError(
            f"{where}: backend name {name!r} must be letters, digits, '.', '_' or '-'"
        )
    try:
        Endpoint(url)
    except ValueError as exc:
        raise BackendConfigError(f"{where}: backend {name!r}: {exc}") from None
    return BackendSpec(name=name, url=url, auth=auth)


def _name_from_url(url: str, number: int) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or f"backend{number}").replace(":", "-")
    return f"{host}-{parts.port}" if parts.port else host


def _unique(specs: list[BackendSpec], where: str) -> tuple[BackendSpec, ...]:
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise BackendConfigError(f"{where}: backend name {spec.name!r} is used twice")
        seen.add(spec.name)
    if not specs:
        raise BackendConfigError(f"{where}: no backend given")
    return tuple(specs)


def _strings(value: Any, where: str, key: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise BackendConfigError(f"{where}: '{key}' must be an object of strings")
    return {str(k): v for k, v in value.items()}
