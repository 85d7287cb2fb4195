"""Every environment variable the server reads, with its flag, default and meaning.

One table serves three readers: ``config`` (which variables a client config needs, and which
are secrets to leave as placeholders), the README's configuration table (generated from it by
``scripts/gen_reference.py``), and a test that fails when ``settings.py`` reads a variable this
table does not describe. ``settings.py`` stays the one place that *parses* them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from comfy_mcp.settings import Settings


@dataclass(frozen=True)
class EnvVar:
    """One variable. ``field`` is the Settings attribute it sets (None: it feeds another one);
    ``http`` marks variables that only matter when serving over HTTP, which a stdio client
    config must not carry; ``secret`` values are never printed."""

    name: str
    field: str | None
    meaning: str
    flag: str | None = None
    secret: bool = False
    http: bool = False
    default: str | None = None  # shown instead of the Settings default when set

    def default_text(self) -> str:
        if self.default is not None:
            return self.default
        if self.field is None:
            return "–"
        return format_default(_default_of(self.field))


ENV_VARS: tuple[EnvVar, ...] = (
    # Reaching ComfyUI
    EnvVar(
        "COMFYUI_URL",
        "comfyui_url",
        "ComfyUI base URL, `http(s)://host[:port][/prefix]`",
        flag="--comfyui-url",
    ),
    EnvVar(
        "COMFYUI_URLS",
        "comfyui_urls",
        "several ComfyUI servers, comma-separated `name=url` (or bare URLs); the first is "
        "the default",
    ),
    EnvVar(
        "COMFY_MCP_BACKENDS_FILE",
        "backends_file",
        'a JSON file of servers with their own credentials: `{"backends": [{"name", "url", '
        '"token"}]}`',
    ),
    EnvVar(
        "COMFYUI_TOKEN",
        "comfyui_token",
        "sent as `Authorization: Bearer …` to ComfyUI (for a proxy in front of it)",
        secret=True,
    ),
    EnvVar(
        "COMFYUI_HEADERS",
        "comfyui_headers",
        "extra headers for ComfyUI: JSON object, or `Name: value; Name2: value`",
        secret=True,
    ),
    EnvVar(
        "COMFYUI_COOKIES",
        "comfyui_cookies",
        "cookies for ComfyUI or its proxy: `name=value; name2=value2`",
        secret=True,
    ),
    EnvVar(
        "COMFYUI_QUERY",
        "comfyui_query",
        "query parameters added to every ComfyUI URL (HTTP, websocket, `/view`): `token=abc`",
        secret=True,
    ),
    EnvVar("COMFYUI_USER", "comfyui_user", "`Comfy-User` header (multi-user ComfyUI)"),
    EnvVar("COMFYUI_VERIFY_TLS", "verify_tls", "verify ComfyUI's TLS certificate"),
    EnvVar("COMFY_MCP_HTTP_TIMEOUT", "http_timeout", "seconds for one HTTP call to ComfyUI"),
    # Templates and jobs
    EnvVar(
        "COMFY_MCP_WORKFLOWS_DIR",
        "workflows_dirs",
        "your template folders (several separated by `:`; `;` on Windows), read on each call",
    ),
    EnvVar(
        "COMFY_MCP_WAIT_TIMEOUT",
        "wait_timeout",
        "seconds a tool waits for a result before returning the `prompt_id`",
    ),
    EnvVar("COMFY_MCP_MAX_WAIT_TIMEOUT", "max_wait_timeout", "upper bound for `timeout_s`"),
    EnvVar(
        "COMFY_MCP_TEMPLATE_TOOLS",
        "template_tools",
        "one `run_<template>` tool per template; `false`: templates run through "
        "`enqueue_workflow` only",
    ),
    EnvVar(
        "COMFY_MCP_CANCEL_ON_ABORT",
        "cancel_on_abort",
        "cancel the ComfyUI prompt when the client cancels a waiting call",
    ),
    # Results
    EnvVar(
        "COMFY_MCP_PREVIEW_MAX_SIDE",
        "preview_max_side",
        "longest side of inline previews, px",
    ),
    EnvVar(
        "COMFY_MCP_PREVIEW_BUDGET",
        "preview_budget_bytes",
        "bytes of inline previews per result, all images together",
    ),
    EnvVar(
        "COMFY_MCP_PUBLIC_URL",
        "public_url",
        "base of the `/view` URLs shown to agents, when they reach ComfyUI at another address",
        default="`COMFYUI_URL`",
    ),
    EnvVar(
        "COMFY_MCP_OUTPUT_DIR",
        "output_dir",
        "also save every output file here (absolute path; never overwrites)",
    ),
    # Input images
    EnvVar(
        "COMFY_MCP_INPUT_ROOTS",
        "input_roots",
        "folders (absolute, `:`-separated) whose images `upload_image` may read; none by default",
    ),
    EnvVar(
        "COMFY_MCP_ALLOW_PRIVATE_URLS",
        "allow_private_urls",
        "let `upload_image` fetch URLs on loopback/private/link-local addresses",
    ),
    EnvVar("COMFY_MCP_MAX_INPUT_BYTES", "max_input_bytes", "largest image `upload_image` accepts"),
    EnvVar("COMFY_MCP_FETCH_TIMEOUT", "fetch_timeout", "seconds to fetch an image URL"),
    # Guard rails and logging
    EnvVar(
        "COMFY_MCP_READ_ONLY",
        "read_only",
        "keep only the read-only tools",
        flag="--read-only",
    ),
    EnvVar(
        "COMFY_MCP_TOOLS_ALLOW",
        "tools_allow",
        "keep only these tools (comma-separated names)",
    ),
    EnvVar("COMFY_MCP_TOOLS_DENY", "tools_deny", "remove these tools (comma-separated names)"),
    EnvVar(
        "COMFY_MCP_LOG_LEVEL",
        "log_level",
        "`DEBUG`, `INFO`, `WARNING` or `ERROR`; logs go to stderr only",
        flag="--log-level",
    ),
    # Serving over HTTP
    EnvVar(
        "COMFY_MCP_TRANSPORT",
        "transport",
        "`stdio`, or `http` (streamable HTTP at `/mcp`)",
        flag="--transport",
        http=True,
    ),
    EnvVar("COMFY_MCP_HOST", "http_host", "HTTP listen address", flag="--host", http=True),
    EnvVar("COMFY_MCP_PORT", "http_port", "HTTP port", flag="--port", http=True),
    EnvVar(
        "COMFY_MCP_STATELESS",
        "http_stateless",
        "HTTP without sessions (several replicas behind a load balancer)",
        flag="--stateless",
        http=True,
    ),
    EnvVar(
        "COMFY_MCP_TOKEN",
        "http_token",
        "bearer token HTTP clients must send (≥ 16 characters)",
        secret=True,
        http=True,
    ),
    EnvVar(
        "COMFY_MCP_TOKEN_FILE",
        None,
        "read `COMFY_MCP_TOKEN` from this file (Docker/Compose secrets)",
        http=True,
    ),
    EnvVar(
        "COMFY_MCP_ALLOW_UNAUTHENTICATED",
        "allow_unauthenticated",
        "allow a non-loopback address without a token",
        flag="--allow-unauthenticated",
        http=True,
    ),
    EnvVar(
        "COMFY_MCP_ALLOWED_HOSTS",
        "allowed_hosts",
        "extra `Host` values accepted on `/mcp` (DNS-rebinding protection): `host`, "
        "`host:port`, `host:*`, comma-separated",
        http=True,
    ),
    EnvVar(
        "COMFY_MCP_ALLOWED_ORIGINS",
        "allowed_origins",
        "extra browser `Origin`s accepted: `https://app.example.com`, comma-separated",
        http=True,
    ),
)


def current() -> tuple[EnvVar, ...]:
    """The variables this version of ``Settings`` has (a row may describe one in the works)."""
    names = {f.name for f in fields(Settings)}
    return tuple(var for var in ENV_VARS if var.field is None or var.field in names)


def _default_of(name: str) -> Any:
    for f in fields(Settings):
        if f.name == name:
            if f.default is not MISSING:
                return f.default
            if f.default_factory is not MISSING:
                return f.default_factory()
    return None


def format_default(value: Any) -> str:
    """A default as the README shows it: `45`, `true`, `http://…`, or – for none."""
    if value is None or value == () or value == {}:
        return "–"
    return f"`{format_value(value)}`"


def format_value(value: Any) -> str:
    """A setting as an environment variable spells it (the inverse of ``settings.py``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Path):
        return str(value.absolute())
    if isinstance(value, tuple):
        if all(isinstance(item, Path) for item in value):
            return os.pathsep.join(str(item.absolute()) for item in value)
        return ",".join(str(item) for item in value)
    if isinstance(value, Mapping):
        return "; ".join(f"{k}={v}" for k, v in value.items())
    return str(value)
