"""The command line: ``mcp-server-comfyui [serve|check|workflows]``.

stdout belongs to the MCP stdio protocol while serving, so everything here logs to stderr, and
only the non-serving commands print results to stdout. Log lines pass through a formatter that
replaces every configured secret (tokens, cookies, passwords) with ``***``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from comfy_mcp import __version__
from comfy_mcp.settings import Settings, SettingsError

log = logging.getLogger("comfy_mcp")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    command = args.command or "serve"
    try:
        settings = Settings.from_env(
            comfyui_url=args.comfyui_url,
            log_level=args.log_level,
            transport=args.transport,
            http_host=args.host,
            http_port=args.port,
            http_stateless=args.stateless,
            allow_unauthenticated=args.allow_unauthenticated,
            read_only=args.read_only,
        )
    except SettingsError as exc:
        print(f"mcp-server-comfyui: {exc}", file=sys.stderr)
        return 2
    _configure_logging(settings.log_level, settings.secrets())
    if command == "serve":
        try:
            return _serve(settings)
        except SettingsError as exc:  # an unsafe bind, an unknown tool name in a guard list
            print(f"mcp-server-comfyui: {exc}", file=sys.stderr)
            return 2
    if command == "check":
        return asyncio.run(_check(settings))
    if command == "workflows":
        return _workflows(settings)
    parser.error(f"unknown command {command!r}")
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcp-server-comfyui",
        description="An MCP server for ComfyUI. Without a command it serves MCP over stdio.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--comfyui-url",
        metavar="URL",
        help="ComfyUI base URL (env COMFYUI_URL; default http://127.0.0.1:8188)",
    )
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="log level on stderr (env COMFY_MCP_LOG_LEVEL; default WARNING)",
    )
    _serve_flags(parser, default=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # The serve flags work before or after "serve"; SUPPRESS keeps the subcommand from
    # overwriting values given before it with its own defaults.
    _serve_flags(sub.add_parser("serve", help="serve MCP (stdio by default; --transport http)"))
    sub.add_parser("check", help="check that ComfyUI is reachable and usable")
    sub.add_parser("workflows", help="list the workflow templates and their parameters")
    return parser


def _serve_flags(parser: argparse.ArgumentParser, default: Any = argparse.SUPPRESS) -> None:
    """Flags of ``serve``; each one overrides its environment variable. ``None`` = not given."""
    group = parser.add_argument_group("serving")
    group.add_argument(
        "--transport",
        choices=["stdio", "http"],
        default=default,
        help="stdio (default) or streamable HTTP at /mcp (env COMFY_MCP_TRANSPORT)",
    )
    group.add_argument(
        "--host", default=default, help="HTTP bind address (env COMFY_MCP_HOST; default 127.0.0.1)"
    )
    group.add_argument(
        "--port", type=int, default=default, help="HTTP port (env COMFY_MCP_PORT; default 8765)"
    )
    for flag, env, text in (
        ("--stateless", "COMFY_MCP_STATELESS", "HTTP without sessions, for several replicas"),
        (
            "--allow-unauthenticated",
            "COMFY_MCP_ALLOW_UNAUTHENTICATED",
            "serve HTTP beyond loopback without COMFY_MCP_TOKEN",
        ),
        ("--read-only", "COMFY_MCP_READ_ONLY", "keep only the read-only tools"),
    ):
        group.add_argument(
            flag, action="store_const", const=True, default=default, help=f"{text} (env {env})"
        )


class _RedactingFormatter(logging.Formatter):
    """Formats as usual, then replaces every secret, tracebacks included."""

    def __init__(self, fmt: str, secrets: Sequence[str]) -> None:
        super().__init__(fmt)
        self._secrets = sorted(secrets, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _configure_logging(level: str, secrets: Sequence[str] = ()) -> None:
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format=fmt)
    if secrets:
        for handler in logging.getLogger().handlers:
            handler.setFormatter(_RedactingFormatter(fmt, secrets))
    for noisy in ("httpx", "httpcore", "websockets"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def _serve(settings: Settings) -> int:
    from comfy_mcp.server import build_server

    if settings.transport == "http":
        from comfy_mcp.server.http import check_exposure, serve_http

        check_exposure(settings)  # before building anything: fail fast with the fix
        serve_http(build_server(settings), settings)
        return 0
    server = build_server(settings)
    server.run("stdio")
    return 0


async def _check(settings: Settings) -> int:
    from comfy_mcp.comfy import ComfyClient, ComfyError

    ok = True
    async with ComfyClient(
        settings.comfyui_url, auth=settings.auth(), timeout=min(settings.http_timeout, 10)
    ) as comfy:
        try:
            stats = await comfy.get_system_stats()
            system = stats.get("system", {})
            devices = ", ".join(str(d.get("name")) for d in stats.get("devices", []))
            print(
                f"ok    ComfyUI {system.get('comfyui_version', '?')} at {comfy.endpoint.base_url}"
            )
            print(f"ok    devices: {devices or 'none reported'}")
        except ComfyError as exc:
            print(f"FAIL  {exc}")
            return 1
        try:
            await comfy.connect()
            print("ok    websocket connected")
        except ComfyError as exc:
            ok = False
            print(f"FAIL  websocket: {exc} (prompts will be followed by polling)")
        for folder in ("checkpoints", "loras"):
            try:
                print(f"ok    {folder}: {len(await comfy.get_models(folder))} files")
            except ComfyError as exc:
                print(f"warn  {folder}: {exc}")
    return 0 if ok else 1


def _workflows(settings: Settings) -> int:
    from comfy_mcp.templates import TemplateCatalog

    catalog = TemplateCatalog(list(settings.workflows_dirs))
    print(json.dumps([t.summary() for t in catalog.templates()], indent=2))
    for path, reason in catalog.errors().items():
        print(f"could not load {path}: {reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
