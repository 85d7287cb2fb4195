"""Serving MCP over streamable HTTP: the ASGI app around the SDK's transport, and its guards.

Stdio trusts whoever started the process; HTTP trusts whoever can reach the port. So this module
adds what the SDK leaves to us (see docs/deployment.md):

- a bearer-token gate (``COMFY_MCP_TOKEN``, compared in constant time). Once a token is set it is
  required on every path except ``/`` (a help text) and ``/healthz`` (for orchestrators);
- a refusal to listen on anything but loopback without a token, unless explicitly overridden
  (:func:`check_exposure`);
- DNS-rebinding protection always on: the SDK checks ``Host`` and ``Origin`` on ``/mcp``
  against :func:`allowed_hosts` (loopback names, the bound host, and
  ``COMFY_MCP_ALLOWED_HOSTS``). The SDK turns it on by itself only for a loopback bind;
- responses as SSE streams (never ``json_response``), because that is what carries progress
  notifications while a workflow runs.

The MCP endpoint is ``/mcp``; ``--stateless`` serves it without sessions so several replicas can
sit behind a load balancer (ComfyUI's queue and history are the state).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from comfy_mcp import __version__
from comfy_mcp.comfy.endpoint import Endpoint
from comfy_mcp.settings import Settings, SettingsError

log = logging.getLogger(__name__)

MCP_PATH = "/mcp"
HEALTH_PATH = "/healthz"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
# Probing ComfyUI from /healthz: bounded, and cached so a busy orchestrator does not hammer it.
PROBE_TIMEOUT = 1.5
PROBE_TTL = 5.0


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``)."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings) -> None:
    """Refuse to serve HTTP beyond loopback without a token (unless explicitly allowed).

    Anyone who reaches an open port could queue work, read outputs and free GPU memory, so the
    safe default is to fail at start-up with the fix in one line.
    """
    if settings.http_token or settings.allow_unauthenticated or is_loopback(settings.http_host):
        return
    raise SettingsError(
        f"refusing to serve MCP on {settings.http_host} without a token: set COMFY_MCP_TOKEN "
        "(python -c 'import secrets; print(secrets.token_urlsafe(32))'), bind 127.0.0.1, or "
        "set COMFY_MCP_ALLOW_UNAUTHENTICATED=true (--allow-unauthenticated) if something in "
        "front of this server authenticates"
    )


def allowed_hosts(settings: Settings) -> list[str]:
    """``Host`` values accepted on ``/mcp``: loopback names on any port, the bound host on our
    port (any port when binding port 0), then ``COMFY_MCP_ALLOWED_HOSTS``.

    Loopback names are safe on every port: a rebinding attack needs a name the attacker
    controls, and this way ``docker run -p 9000:8765`` works without configuration.
    """
    hosts = [f"{name}:*" for name in LOOPBACK_NAMES]
    bound = settings.http_host.strip()
    if bound not in ("0.0.0.0", "::", "[::]", "") and not is_loopback(bound):  # noqa: S104
        if ":" in bound and not bound.startswith("["):
            bound = f"[{bound}]"
        hosts.append(f"{bound}:{settings.http_port or '*'}")
    return hosts + [h for h in settings.allowed_hosts if h not in hosts]


def allowed_origins(settings: Settings) -> list[str]:
    """Browser ``Origin`` values accepted: http(s) on every allowed host, plus
    ``COMFY_MCP_ALLOWED_ORIGINS``. Requests without an Origin (non-browser clients) pass."""
    origins = [
        f"{scheme}://{host}" for host in allowed_hosts(settings) for scheme in ("http", "https")
    ]
    return origins + [o for o in settings.allowed_origins if o not in origins]


def transport_security(settings: Settings) -> TransportSecuritySettings:
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=allowed_hosts(settings),
        allowed_origins=allowed_origins(settings),
    )


class BearerGate:
    """Pure ASGI: requires ``Authorization: Bearer <token>`` on every request but the open paths.

    Pure ASGI rather than Starlette's BaseHTTPMiddleware so SSE responses stream untouched, and
    lifespan scopes pass straight through (the app's lifespan runs the MCP session manager).
    """

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self.app = app
        self._expected = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self._expected is None
            or scope["type"] not in ("http", "websocket")
            or _is_open(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        provided = _bearer(scope)
        if provided is not None and hmac.compare_digest(provided, self._expected):
            await self.app(scope, receive, send)
            return
        client = scope.get("client") or ("?", 0)
        log.info(
            "refused %s %s from %s: %s bearer token",
            scope.get("method", "WEBSOCKET"),
            scope["path"],
            client[0],
            "missing" if provided is None else "wrong",
        )
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        challenge = 'Bearer realm="mcp-server-comfyui"'
        if provided is not None:
            challenge += ', error="invalid_token"'
        response = JSONResponse(
            {
                "error": "invalid_token" if provided is not None else "unauthorized",
                "error_description": "this server requires 'Authorization: Bearer <token>' "
                "with the token set in COMFY_MCP_TOKEN",
            },
            status_code=401,
            headers={"WWW-Authenticate": challenge},
        )
        await response(scope, receive, send)


def _is_open(path: str) -> bool:
    # /.well-known/ is left open so OAuth-aware clients probing for metadata get a plain 404
    # (there is none: this server takes a static token) instead of a second 401.
    return path in ("/", HEALTH_PATH) or path.startswith("/.well-known/")


def _bearer(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            scheme, _, credential = value.strip().partition(b" ")
            if scheme.lower() == b"bearer" and credential.strip():
                return bytes(credential.strip())
            return b""
    return None


class ComfyUIProbe:
    """Is ComfyUI answering? One bounded ``GET /system_stats``, cached for :data:`PROBE_TTL`.

    Concurrent health checks share one probe. The answer is ``reachable``, ``unauthorized``
    (credentials refused), ``unreachable`` or ``error`` (another status).
    """

    def __init__(self, settings: Settings) -> None:
        first = settings.backends()[0]  # the default backend (COMFYUI_URL or the first of many)
        self._endpoint = Endpoint(first.url, auth=first.auth)
        self._verify = settings.verify_tls
        self._lock = anyio.Lock()
        self._cached: tuple[float, str] | None = None

    async def state(self) -> str:
        async with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < PROBE_TTL:
                return self._cached[1]
            state = await self._probe()
            self._cached = (time.monotonic(), state)
            return state

    async def _probe(self) -> str:
        try:
            with anyio.fail_after(PROBE_TIMEOUT + 0.5):
                async with httpx.AsyncClient(
                    timeout=PROBE_TIMEOUT, verify=self._verify, headers=self._endpoint.headers()
                ) as http:
                    response = await http.get(self._endpoint.http_url("/system_stats"))
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            log.debug("health probe: %s", self._endpoint.redact(str(exc) or type(exc).__name__))
            return "unreachable"
        if response.status_code == 200:
            return "reachable"
        if response.status_code in (401, 403) or response.is_redirect:
            return "unauthorized"
        return "error"


def build_http_app(server: MCPServer, settings: Settings) -> Starlette:
    """The ASGI app: ``/mcp`` (streamable HTTP, SSE), ``/`` (help), ``/healthz``, behind the gate.

    The app's lifespan runs the SDK's session manager, which enters the server's own lifespan
    (the ComfyUI client) once for the whole app, in stateful and stateless mode alike.
    """
    mcp_app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=settings.http_stateless,
        json_response=False,  # SSE: progress notifications need it
        transport_security=transport_security(settings),
        host=settings.http_host,
    )
    probe = ComfyUIProbe(settings)
    token_required = settings.http_token is not None

    async def home(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        auth = (
            "required: send 'Authorization: Bearer <token>' (the COMFY_MCP_TOKEN value)"
            if token_required
            else "none (no COMFY_MCP_TOKEN is set)"
        )
        header = ' --header "Authorization: Bearer <token>"' if token_required else ""
        text = (
            f"mcp-server-comfyui {__version__}: an MCP server for ComfyUI.\n\n"
            f"MCP endpoint (streamable HTTP): {base}{MCP_PATH}\n"
            f"Authentication: {auth}\n"
            f"Health: {base}{HEALTH_PATH}\n\n"
            "This address is for MCP clients, not browsers. For example:\n"
            f"  claude mcp add --transport http comfyui {base}{MCP_PATH}{header}\n"
        )
        return PlainTextResponse(text)

    async def health(request: Request) -> Response:
        comfyui = await probe.state()
        body: dict[str, Any] = {"status": "ok", "version": __version__, "comfyui": comfyui}
        # A readiness probe may insist on ComfyUI; liveness (the default) does not, since
        # restarting this server would not bring ComfyUI back.
        required = request.query_params.get("comfyui") == "required"
        status = 503 if required and comfyui != "reachable" else 200
        return JSONResponse(body, status_code=status)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with server.session_manager.run():
            yield

    return Starlette(
        routes=[
            Route("/", home, methods=["GET", "HEAD"]),
            Route(HEALTH_PATH, health, methods=["GET", "HEAD"]),
            *mcp_app.routes,
        ],
        middleware=[Middleware(BearerGate, token=settings.http_token)],
        lifespan=lifespan,
    )


def serve_http(server: MCPServer, settings: Settings) -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM). Raises SettingsError for an unsafe bind."""
    check_exposure(settings)
    app = build_http_app(server, settings)
    if not settings.http_token and not is_loopback(settings.http_host):
        log.warning(
            "serving MCP on %s without a token (COMFY_MCP_ALLOW_UNAUTHENTICATED is set)",
            settings.http_host,
        )
    log.info(
        "serving MCP over streamable HTTP on %s:%d%s (%s, token %s)",
        settings.http_host,
        settings.http_port,
        MCP_PATH,
        "stateless" if settings.http_stateless else "stateful",
        "required" if settings.http_token else "not set",
    )
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # our logging setup (stderr, redaction) applies to uvicorn too
        access_log=settings.log_level.upper() == "DEBUG",
        lifespan="on",
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    uvicorn.Server(config).run()
