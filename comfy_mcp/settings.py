"""All configuration, from the environment and command-line flags, validated in one place.

Every option has an environment variable (for MCP client configs, which pass ``env``) and most
have a flag. A bad value stops start-up with one line naming the variable and what it accepts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from comfy_mcp.backend_config import (
    BackendConfigError,
    BackendSpec,
    load_file,
    parse_urls,
)
from comfy_mcp.comfy.endpoint import Auth, Endpoint


class SettingsError(ValueError):
    """A configuration value is invalid; the message names the variable and the fix."""


@dataclass(frozen=True)
class Settings:
    """The server's configuration. Build it with :meth:`from_env`."""

    comfyui_url: str = "http://127.0.0.1:8188"
    # Several ComfyUI servers (COMFYUI_URLS / COMFY_MCP_BACKENDS_FILE); empty: just comfyui_url.
    comfyui_urls: str | None = field(default=None, repr=False)
    backends_file: Path | None = None
    comfyui_token: str | None = field(default=None, repr=False)
    comfyui_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    comfyui_cookies: Mapping[str, str] = field(default_factory=dict, repr=False)
    comfyui_query: Mapping[str, str] = field(default_factory=dict, repr=False)
    comfyui_user: str | None = None
    verify_tls: bool = True
    workflows_dirs: tuple[Path, ...] = ()
    http_timeout: float = 30.0
    wait_timeout: float = 45.0
    max_wait_timeout: float = 3600.0
    preview_max_side: int = 768
    preview_budget_bytes: int = 512 * 1024
    public_url: str | None = None
    output_dir: Path | None = None
    cancel_on_abort: bool = True
    template_tools: bool = True
    log_level: str = "WARNING"
    input_roots: tuple[Path, ...] = ()
    allow_private_urls: bool = False
    max_input_bytes: int = 50 * 1024 * 1024
    fetch_timeout: float = 20.0
    # Serving MCP (see comfy_mcp.server.http and docs/deployment.md).
    transport: str = "stdio"
    http_host: str = "127.0.0.1"
    http_port: int = 8765
    http_stateless: bool = False
    http_token: str | None = field(default=None, repr=False)
    allow_unauthenticated: bool = False
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    # Guard rails (see comfy_mcp.server.guards).
    read_only: bool = False
    tools_allow: tuple[str, ...] = ()
    tools_deny: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``COMFYUI_*`` / ``COMFY_MCP_*`` variables; ``overrides`` (from flags) win."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        if url := env.get("COMFYUI_URL"):
            values["comfyui_url"] = url
        if urls := env.get("COMFYUI_URLS"):
            values["comfyui_urls"] = urls
        if backends_file := env.get("COMFY_MCP_BACKENDS_FILE"):
            values["backends_file"] = Path(backends_file).expanduser()
        if token := env.get("COMFYUI_TOKEN"):
            values["comfyui_token"] = token
        if headers := env.get("COMFYUI_HEADERS"):
            values["comfyui_headers"] = _parse_headers(headers)
        if cookies := env.get("COMFYUI_COOKIES"):
            values["comfyui_cookies"] = _parse_cookies(cookies)
        if query := env.get("COMFYUI_QUERY"):
            values["comfyui_query"] = _parse_query(query)
        if user := env.get("COMFYUI_USER"):
            values["comfyui_user"] = user
        if "COMFYUI_VERIFY_TLS" in env:
            values["verify_tls"] = _bool(env, "COMFYUI_VERIFY_TLS")
        if dirs := env.get("COMFY_MCP_WORKFLOWS_DIR"):
            values["workflows_dirs"] = tuple(
                Path(p).expanduser() for p in dirs.split(os.pathsep) if p.strip()
            )
        for name, var in (
            ("http_timeout", "COMFY_MCP_HTTP_TIMEOUT"),
            ("wait_timeout", "COMFY_MCP_WAIT_TIMEOUT"),
            ("max_wait_timeout", "COMFY_MCP_MAX_WAIT_TIMEOUT"),
            ("fetch_timeout", "COMFY_MCP_FETCH_TIMEOUT"),
        ):
            if var in env:
                values[name] = _positive_float(env, var)
        if "COMFY_MCP_PREVIEW_MAX_SIDE" in env:
            values["preview_max_side"] = _int(env, "COMFY_MCP_PREVIEW_MAX_SIDE", 16, 4096)
        if "COMFY_MCP_PREVIEW_BUDGET" in env:
            values["preview_budget_bytes"] = _int(env, "COMFY_MCP_PREVIEW_BUDGET", 0, 50_000_000)
        if public := env.get("COMFY_MCP_PUBLIC_URL"):
            values["public_url"] = public
        if out := env.get("COMFY_MCP_OUTPUT_DIR"):
            values["output_dir"] = Path(out).expanduser()
        if "COMFY_MCP_TEMPLATE_TOOLS" in env:
            values["template_tools"] = _bool(env, "COMFY_MCP_TEMPLATE_TOOLS")
        if "COMFY_MCP_CANCEL_ON_ABORT" in env:
            values["cancel_on_abort"] = _bool(env, "COMFY_MCP_CANCEL_ON_ABORT")
        if roots := env.get("COMFY_MCP_INPUT_ROOTS"):
            values["input_roots"] = tuple(
                Path(p).expanduser() for p in roots.split(os.pathsep) if p.strip()
            )
        if "COMFY_MCP_ALLOW_PRIVATE_URLS" in env:
            values["allow_private_urls"] = _bool(env, "COMFY_MCP_ALLOW_PRIVATE_URLS")
        if "COMFY_MCP_MAX_INPUT_BYTES" in env:
            values["max_input_bytes"] = _int(env, "COMFY_MCP_MAX_INPUT_BYTES", 1024, 2**31)
        if level := env.get("COMFY_MCP_LOG_LEVEL"):
            values["log_level"] = level
        values.update(_serving_from_env(env))
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Raise :class:`SettingsError` for any invalid value."""
        self.backends()  # COMFYUI_URLS / COMFY_MCP_BACKENDS_FILE parse, or say why not
        try:
            Endpoint(self.comfyui_url)
        except ValueError as exc:
            raise SettingsError(f"COMFYUI_URL: {exc}") from exc
        if self.public_url is not None:
            try:
                Endpoint(self.public_url)
            except ValueError as exc:
                raise SettingsError(f"COMFY_MCP_PUBLIC_URL: {exc}") from exc
        if self.output_dir is not None and not self.output_dir.is_absolute():
            raise SettingsError(
                f"COMFY_MCP_OUTPUT_DIR must be an absolute path (got {str(self.output_dir)!r})"
            )
        for root in self.input_roots:
            if not root.is_absolute():
                # A relative root would depend on the directory the MCP client starts us in.
                raise SettingsError(
                    f"COMFY_MCP_INPUT_ROOTS entries must be absolute paths (got {str(root)!r})"
                )
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise SettingsError(
                "COMFY_MCP_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR "
                f"(got {self.log_level!r})"
            )
        if self.wait_timeout > self.max_wait_timeout:
            raise SettingsError("COMFY_MCP_WAIT_TIMEOUT must not exceed COMFY_MCP_MAX_WAIT_TIMEOUT")
        self._check_serving()

    def _check_serving(self) -> None:
        if self.transport not in ("stdio", "http"):
            raise SettingsError(
                f"COMFY_MCP_TRANSPORT must be stdio or http (got {self.transport!r})"
            )
        if not self.http_host.strip():
            raise SettingsError("COMFY_MCP_HOST must not be empty (default 127.0.0.1)")
        if not 0 <= self.http_port <= 65535:
            raise SettingsError(
                f"COMFY_MCP_PORT must be between 0 and 65535 (got {self.http_port})"
            )
        if self.http_token is not None and (
            len(self.http_token) < MIN_TOKEN_LENGTH or self.http_token != self.http_token.strip()
        ):
            # The value itself is never echoed: it is a secret even when it is a bad one.
            raise SettingsError(
                f"COMFY_MCP_TOKEN must be at least {MIN_TOKEN_LENGTH} characters without "
                "surrounding spaces; make one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        for pattern in self.allowed_hosts:
            if "/" in pattern or pattern.strip() in ("", "*"):
                raise SettingsError(
                    f"COMFY_MCP_ALLOWED_HOSTS entries are Host values such as "
                    f"mcp.example.com or gpu-box:8765 or gpu-box:* (got {pattern!r})"
                )
        for origin in self.allowed_origins:
            if not origin.startswith(("http://", "https://")):
                raise SettingsError(
                    "COMFY_MCP_ALLOWED_ORIGINS entries look like https://app.example.com "
                    f"(got {origin!r})"
                )

    def secrets(self) -> list[str]:
        """Every configured credential value, for redacting logs (longest first)."""
        values = [self.http_token or "", urlsplit(self.comfyui_url).password or ""]
        values += Endpoint(self.comfyui_url, auth=self.auth()).auth.secrets()
        for spec in self.backends():
            values.append(urlsplit(spec.url).password or "")
            values += Endpoint(spec.url, auth=spec.auth).auth.secrets()
        return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)

    def __repr__(self) -> str:
        # Hand-written so a password in COMFYUI_URL (user:pass@host) never reaches a log line;
        # the other secrets are fields with repr=False.
        parts = []
        for f in fields(self):
            if f.repr:
                value = getattr(self, f.name)
                if f.name == "comfyui_url":
                    value = _without_password(value)
                parts.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(parts)})"

    def backends(self) -> tuple[BackendSpec, ...]:
        """The ComfyUI servers to use, in preference order (the first is the default)."""
        try:
            if self.backends_file is not None:
                return load_file(self.backends_file, self.auth())
            if self.comfyui_urls:
                return parse_urls(self.comfyui_urls, self.auth())
        except BackendConfigError as exc:
            raise SettingsError(str(exc)) from None
        return (BackendSpec(name="default", url=self.comfyui_url, auth=self.auth()),)

    def auth(self) -> Auth:
        """The credentials for ComfyUI: the token as a bearer header, extra headers, cookies and
        query parameters (user:pass in COMFYUI_URL is applied by the Endpoint itself)."""
        auth = Auth(
            headers=dict(self.comfyui_headers),
            cookies=dict(self.comfyui_cookies),
            query=dict(self.comfyui_query),
        )
        if self.comfyui_token:
            auth = Auth.bearer(self.comfyui_token).merged(auth)
        return auth

    def with_overrides(self, **changes: Any) -> Settings:
        updated = replace(self, **changes)
        updated.check()
        return updated


def _parse_headers(raw: str) -> dict[str, str]:
    """``{"Name": "value"}`` as JSON, or ``Name: value`` pairs separated by newlines or ``;``."""
    raw = raw.strip()
    if raw.startswith("{"):
        try:
            parsed = json.loads(raw)
        except ValueError as exc:
            raise SettingsError(f"COMFYUI_HEADERS is not valid JSON: {exc}") from exc
        if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
            raise SettingsError(
                'COMFYUI_HEADERS must be a JSON object of strings: {"Name": "value"}'
            )
        return {str(k): v for k, v in parsed.items()}
    headers: dict[str, str] = {}
    for part in raw.replace("\n", ";").split(";"):
        if not part.strip():
            continue
        name, sep, value = part.partition(":")
        if not sep or not name.strip():
            raise SettingsError(
                f"COMFYUI_HEADERS: {part.strip()!r} is not 'Name: value' "
                '(or give a JSON object: {"Name": "value"})'
            )
        headers[name.strip()] = value.strip()
    return headers


MIN_TOKEN_LENGTH = 16


def _serving_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The transport, HTTP and guard-rail variables (``COMFY_MCP_TRANSPORT`` …)."""
    values: dict[str, Any] = {}
    if transport := env.get("COMFY_MCP_TRANSPORT"):
        values["transport"] = transport
    if host := env.get("COMFY_MCP_HOST"):
        values["http_host"] = host
    if "COMFY_MCP_PORT" in env:
        values["http_port"] = _int(env, "COMFY_MCP_PORT", 0, 65535)
    for name, var in (
        ("http_stateless", "COMFY_MCP_STATELESS"),
        ("allow_unauthenticated", "COMFY_MCP_ALLOW_UNAUTHENTICATED"),
        ("read_only", "COMFY_MCP_READ_ONLY"),
    ):
        if var in env:
            values[name] = _bool(env, var)
    if token := env.get("COMFY_MCP_TOKEN"):
        values["http_token"] = token
    elif token_file := env.get("COMFY_MCP_TOKEN_FILE"):  # Docker/compose secrets
        try:
            values["http_token"] = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(
                f"COMFY_MCP_TOKEN_FILE: cannot read {token_file!r}: {exc}"
            ) from None
    for name, var in (
        ("allowed_hosts", "COMFY_MCP_ALLOWED_HOSTS"),
        ("allowed_origins", "COMFY_MCP_ALLOWED_ORIGINS"),
        ("tools_allow", "COMFY_MCP_TOOLS_ALLOW"),
        ("tools_deny", "COMFY_MCP_TOOLS_DENY"),
    ):
        if var in env:
            values[name] = _csv(env[var])
    return values


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _parse_cookies(raw: str) -> dict[str, str]:
    """``name=value; name2=value2``, as a browser's Cookie header shows them."""
    cookies: dict[str, str] = {}
    for number, part in enumerate(raw.split(";"), 1):
        if not part.strip():
            continue
        name, sep, value = part.strip().partition("=")
        if not sep or not name.strip() or " " in name.strip():
            # The part is not echoed: it may be a cookie value, which is a secret.
            raise SettingsError(
                f"COMFYUI_COOKIES must be 'name=value; name2=value2' (part {number} is not)"
            )
        cookies[name.strip()] = value.strip()
    return cookies


def _parse_query(raw: str) -> dict[str, str]:
    """``token=abc&other=1``: query parameters added to every ComfyUI URL (HTTP, ws, /view)."""
    try:
        pairs = parse_qsl(raw.strip().lstrip("?"), keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise SettingsError(
            "COMFYUI_QUERY must be name=value pairs joined by '&', for example token=abc"
        ) from None
    return dict(pairs)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def _bool(env: Mapping[str, str], var: str) -> bool:
    value = env[var].strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{var} must be true or false (got {env[var]!r})")


def _positive_float(env: Mapping[str, str], var: str) -> float:
    try:
        value = float(env[var])
    except ValueError:
        raise SettingsError(f"{var} must be a number of seconds (got {env[var]!r})") from None
    if value <= 0:
        raise SettingsError(f"{var} must be greater than 0 (got {env[var]!r})")
    return value


def _int(env: Mapping[str, str], var: str, low: int, high: int) -> int:
    try:
        value = int(env[var])
    except ValueError:
        raise SettingsError(f"{var} must be an integer (got {env[var]!r})") from None
    if not low <= value <= high:
        raise SettingsError(f"{var} must be between {low} and {high} (got {value})")
    return value
