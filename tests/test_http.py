"""Serving MCP over streamable HTTP, and reaching a ComfyUI that sits behind an auth proxy.

The HTTP tests run the real app under uvicorn on a loopback port and talk to it with the SDK's
client (``streamable_http_client`` + ``mcp.Client``) and with plain HTTP requests for the
refusals (401, 421, 403) an MCP client would only see as a failed connection.
"""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import time
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import httpx2
import pytest
import uvicorn
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

from comfy_mcp.cli import _RedactingFormatter, main
from comfy_mcp.server import build_server
from comfy_mcp.server.http import (
    allowed_hosts,
    allowed_origins,
    build_http_app,
    check_exposure,
    is_loopback,
)
from comfy_mcp.settings import Settings, SettingsError
from tests.fake_comfyui import FakeComfyUI, run_fake_comfyui

pytestmark = pytest.mark.anyio

TOKEN = "test-token-0123456789abcdef"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


def settings_for(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"wait_timeout": 20.0, "transport": "http", "http_port": 0}
    return Settings.from_env({}, comfyui_url=url, **{**values, **overrides})


class _QuietServer(uvicorn.Server):
    """No signal handlers: it runs inside pytest's event loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[str]:
    """The HTTP app for ``settings`` under uvicorn on 127.0.0.1:<free port>; yields the base URL."""
    app = build_http_app(build_server(settings), settings)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    server = _QuietServer(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        with anyio.fail_after(10):
            while not server.started:
                await anyio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True


@asynccontextmanager
async def mcp_client(base: str, token: str | None = TOKEN) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
    ):
        yield client


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


# -- MCP over HTTP ----------------------------------------------------------------------------


async def test_with_the_token_tools_work_and_progress_arrives(fake: FakeComfyUI) -> None:
    fake.node_delay = 0.3
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with serving(settings_for(fake.url, http_token=TOKEN)) as base, mcp_client(base) as c:
        tools = {t.name for t in (await c.list_tools()).tools}
        assert {"enqueue_workflow", "get_status", "list_models"} <= tools
        result = await c.call_tool(
            "enqueue_workflow", {"workflow": "smoke"}, progress_callback=on_progress
        )
        assert result.structured_content["status"] == "succeeded", text_of(result)
        assert [b for b in result.content if b.type == "image"]
        status = await c.call_tool(
            "get_status", {"prompt_id": result.structured_content["prompt_id"]}
        )
        assert status.structured_content["status"] == "succeeded"
    assert seen, "no progress notification over HTTP"
    values = [p for p, _, _ in seen]
    assert values == sorted(values)


async def test_missing_or_wrong_token_is_refused_with_401(fake: FakeComfyUI) -> None:
    async with serving(settings_for(fake.url, http_token=TOKEN)) as base:
        async with httpx.AsyncClient() as http:
            missing = await http.post(f"{base}/mcp", json=INITIALIZE, headers=MCP_HEADERS)
            wrong = await http.post(
                f"{base}/mcp",
                json=INITIALIZE,
                headers={**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}x"},
            )
            basic = await http.post(
                f"{base}/mcp",
                json=INITIALIZE,
                headers={**MCP_HEADERS, "Authorization": f"Basic {TOKEN}"},
            )
            right = await http.post(
                f"{base}/mcp",
                json=INITIALIZE,
                headers={**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"},
            )
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert "COMFY_MCP_TOKEN" in missing.json()["error_description"]
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_token"
        assert basic.status_code == 401
        assert TOKEN not in wrong.text
        assert right.status_code == 200

        # The SDK client without the header gets nowhere either.
        # (an MCPError "Server returned an error response", inside task-group exception groups)
        with pytest.raises((MCPError, ExceptionGroup)):
            async with mcp_client(base, token=None) as c:
                await c.list_tools()


async def test_bad_host_gets_421_and_bad_origin_403(fake: FakeComfyUI) -> None:
    auth = {**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"}
    async with serving(settings_for(fake.url, http_token=TOKEN)) as base:
        port = base.rsplit(":", 1)[1]
        async with httpx.AsyncClient() as http:
            rebinding = await http.post(
                f"{base}/mcp", json=INITIALIZE, headers={**auth, "Host": f"evil.example:{port}"}
            )
            cross_site = await http.post(
                f"{base}/mcp", json=INITIALIZE, headers={**auth, "Origin": "http://evil.example"}
            )
            same_site = await http.post(
                f"{base}/mcp", json=INITIALIZE, headers={**auth, "Origin": base}
            )
            by_name = await http.post(
                f"{base}/mcp", json=INITIALIZE, headers={**auth, "Host": f"localhost:{port}"}
            )
    assert rebinding.status_code == 421
    assert cross_site.status_code == 403
    assert same_site.status_code == 200
    assert by_name.status_code == 200


async def test_configured_allowed_host_is_accepted(fake: FakeComfyUI) -> None:
    settings = settings_for(fake.url, http_token=TOKEN, allowed_hosts=("mcp.example.com",))
    auth = {**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"}
    async with serving(settings) as base, httpx.AsyncClient() as http:
        ok = await http.post(
            f"{base}/mcp",
            json=INITIALIZE,
            headers={**auth, "Host": "mcp.example.com", "Origin": "https://mcp.example.com"},
        )
        other = await http.post(
            f"{base}/mcp", json=INITIALIZE, headers={**auth, "Host": "other.example.com"}
        )
    assert ok.status_code == 200
    assert other.status_code == 421


async def test_root_explains_the_endpoint_and_healthz_is_open(fake: FakeComfyUI) -> None:
    settings = settings_for(fake.url, http_token=TOKEN)
    async with serving(settings) as base, httpx.AsyncClient() as http:
        home = await http.get(f"{base}/")
        health = await http.get(f"{base}/healthz")
        ready = await http.get(f"{base}/healthz?comfyui=required")
        missing = await http.get(f"{base}/nothing-here")
    assert home.status_code == 200 and home.headers["content-type"].startswith("text/plain")
    assert f"{base}/mcp" in home.text
    assert "Authentication: required" in home.text and TOKEN not in home.text
    assert health.status_code == 200
    assert health.json()["status"] == "ok" and health.json()["comfyui"] == "reachable"
    assert ready.status_code == 200
    assert missing.status_code == 401  # everything but / and /healthz needs the token


async def test_healthz_is_quick_when_comfyui_is_down_or_hangs(fake: FakeComfyUI) -> None:
    async with serving(settings_for("http://127.0.0.1:9")) as base, httpx.AsyncClient() as http:
        home = await http.get(f"{base}/")
        down = await http.get(f"{base}/healthz")
        ready = await http.get(f"{base}/healthz?comfyui=required")
    assert "Authentication: none" in home.text
    assert down.status_code == 200 and down.json()["comfyui"] == "unreachable"
    assert ready.status_code == 503

    fake.faults.hang_http = True
    try:
        async with serving(settings_for(fake.url)) as base, httpx.AsyncClient() as http:
            started = time.monotonic()
            hung = await http.get(f"{base}/healthz")
            elapsed = time.monotonic() - started
            cached_start = time.monotonic()
            again = await http.get(f"{base}/healthz")
            cached_elapsed = time.monotonic() - cached_start
    finally:
        fake.faults.hang_http = False
    assert hung.json()["comfyui"] == "unreachable" and elapsed < 2.5
    assert again.json()["comfyui"] == "unreachable" and cached_elapsed < 0.5


async def test_stateless_mode_serves_calls_and_progress(fake: FakeComfyUI) -> None:
    fake.node_delay = 0.3
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    settings = settings_for(fake.url, http_token=TOKEN, http_stateless=True)
    async with serving(settings) as base:
        async with httpx.AsyncClient() as http:
            raw = await http.post(
                f"{base}/mcp",
                json=INITIALIZE,
                headers={**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"},
            )
        assert raw.status_code == 200 and "mcp-session-id" not in raw.headers
        async with mcp_client(base) as c:
            result = await c.call_tool(
                "enqueue_workflow", {"workflow": "smoke"}, progress_callback=on_progress
            )
            assert result.structured_content["status"] == "succeeded", text_of(result)
        # Another client (as if on another replica) answers for the same prompt id.
        async with mcp_client(base) as other:
            status = await other.call_tool(
                "get_status", {"prompt_id": result.structured_content["prompt_id"]}
            )
            assert status.structured_content["status"] == "succeeded"
    assert seen


async def test_without_a_token_loopback_serves_openly(fake: FakeComfyUI) -> None:
    async with serving(settings_for(fake.url)) as base, mcp_client(base, token=None) as c:
        result = await c.call_tool("list_models", {})
        assert result.structured_content["count"] == 2


# -- refusing unsafe configurations (nothing is bound) ----------------------------------------


def test_public_bind_without_a_token_is_refused() -> None:
    with pytest.raises(SettingsError) as refused:
        check_exposure(Settings(http_host="0.0.0.0"))
    message = str(refused.value)
    assert "COMFY_MCP_TOKEN" in message and "COMFY_MCP_ALLOW_UNAUTHENTICATED" in message
    assert "\n" not in message
    for host in ("::", "192.168.1.20", "gpu-box.lan"):
        with pytest.raises(SettingsError):
            check_exposure(Settings(http_host=host))
    check_exposure(Settings(http_host="0.0.0.0", http_token=TOKEN))
    check_exposure(Settings(http_host="0.0.0.0", allow_unauthenticated=True))
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"):
        check_exposure(Settings(http_host=host))
        assert is_loopback(host)


def test_cli_refuses_a_public_bind_without_a_token(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "--transport", "http", "--host", "0.0.0.0"])
    assert code == 2
    err = capsys.readouterr().err
    assert "refusing to serve MCP on 0.0.0.0 without a token" in err
    assert err.count("\n") == 1


def test_allowed_hosts_default_to_loopback_names_plus_the_bound_host() -> None:
    loopback = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    assert allowed_hosts(Settings(http_host="127.0.0.1", http_port=8765)) == loopback
    hosts = allowed_hosts(Settings(http_host="192.168.1.20", http_port=8765))
    assert hosts == [*loopback, "192.168.1.20:8765"]
    assert allowed_hosts(Settings(http_host="fd00::5", http_port=0))[-1] == "[fd00::5]:*"
    wildcard = allowed_hosts(
        Settings(http_host="0.0.0.0", http_port=8765, allowed_hosts=("mcp.example.com",))
    )
    assert wildcard == [*loopback, "mcp.example.com"]
    origins = allowed_origins(Settings(allowed_origins=("https://app.example.com",)))
    assert "http://localhost:*" in origins and "https://app.example.com" in origins


def test_serving_settings_from_the_environment(tmp_path: Any) -> None:
    settings = Settings.from_env(
        {
            "COMFY_MCP_TRANSPORT": "http",
            "COMFY_MCP_HOST": "0.0.0.0",
            "COMFY_MCP_PORT": "9000",
            "COMFY_MCP_STATELESS": "true",
            "COMFY_MCP_TOKEN": TOKEN,
            "COMFY_MCP_ALLOWED_HOSTS": "mcp.example.com, gpu:*",
            "COMFY_MCP_READ_ONLY": "yes",
        }
    )
    assert settings.transport == "http" and settings.http_port == 9000
    assert settings.http_stateless and settings.read_only
    assert settings.allowed_hosts == ("mcp.example.com", "gpu:*")
    assert TOKEN not in repr(settings)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    assert Settings.from_env({"COMFY_MCP_TOKEN_FILE": str(token_file)}).http_token == TOKEN
    for env, variable in (
        ({"COMFY_MCP_TRANSPORT": "sse"}, "COMFY_MCP_TRANSPORT"),
        ({"COMFY_MCP_PORT": "http"}, "COMFY_MCP_PORT"),
        ({"COMFY_MCP_TOKEN": "short"}, "COMFY_MCP_TOKEN"),
        ({"COMFY_MCP_ALLOWED_HOSTS": "*"}, "COMFY_MCP_ALLOWED_HOSTS"),
        ({"COMFY_MCP_ALLOWED_HOSTS": "https://x.example"}, "COMFY_MCP_ALLOWED_HOSTS"),
        ({"COMFY_MCP_TOKEN_FILE": str(tmp_path / "nope")}, "COMFY_MCP_TOKEN_FILE"),
        ({"COMFYUI_COOKIES": "justsecretvalue"}, "COMFYUI_COOKIES"),
        ({"COMFYUI_QUERY": "token"}, "COMFYUI_QUERY"),
    ):
        with pytest.raises(SettingsError) as bad:
            Settings.from_env(env)
        assert variable in str(bad.value)
        assert "short" not in str(bad.value) and "justsecretvalue" not in str(bad.value)


def test_secrets_stay_out_of_repr_and_logs() -> None:
    settings = Settings.from_env(
        {
            "COMFYUI_URL": "https://alice:pa55word@gpu.example/comfy",
            "COMFYUI_COOKIES": "session=c00kie-secret; theme=dark",
            "COMFYUI_QUERY": "token=query-secret",
            "COMFYUI_HEADERS": "X-Api-Key: header-secret",
            "COMFY_MCP_TOKEN": TOKEN,
        }
    )
    text = repr(settings)
    for secret in ("pa55word", "c00kie-secret", "query-secret", "header-secret", TOKEN):
        assert secret not in text
        assert secret in settings.secrets()
    assert "alice:***@gpu.example" in text
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "url %s token %s", ("?token=query-secret", TOKEN), None
    )
    formatted = _RedactingFormatter("%(message)s", settings.secrets()).format(record)
    assert formatted == "url ?token=*** token ***"


# -- ComfyUI behind a proxy: prefix, basic auth, header, cookie, query token -------------------


PROXY_USER, PROXY_PASSWORD = "alice", "pa55-word-secret"
BASIC = "Basic " + base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()


def _guard(fake: FakeComfyUI) -> None:
    fake.faults.require_headers = {"Authorization": BASIC, "X-Proxy-Key": "header-secret-1"}
    fake.faults.require_query = {"token": "query-secret-1"}
    fake.faults.require_cookies = {"session": "cookie-secret-1"}


def _proxied_env(fake: FakeComfyUI, query: str = "token=query-secret-1") -> dict[str, str]:
    scheme, rest = fake.url.split("://", 1)
    return {
        "COMFYUI_URL": f"{scheme}://{PROXY_USER}:{PROXY_PASSWORD}@{rest}",
        "COMFYUI_HEADERS": "X-Proxy-Key: header-secret-1",
        "COMFYUI_COOKIES": "session=cookie-secret-1",
        "COMFYUI_QUERY": query,
        "COMFY_MCP_WAIT_TIMEOUT": "20",
    }


async def test_comfyui_behind_a_prefixed_auth_proxy_runs_the_smoke_template() -> None:
    async with run_fake_comfyui(prefix="/comfy", node_delay=0.3) as fake:
        assert fake.url.endswith("/comfy")
        _guard(fake)
        seen: list[float] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append(progress)

        settings = Settings.from_env(_proxied_env(fake))
        async with Client(build_server(settings), raise_exceptions=True) as c:
            result = await c.call_tool(
                "enqueue_workflow", {"workflow": "smoke"}, progress_callback=on_progress
            )
            assert result.structured_content["status"] == "succeeded", text_of(result)
            (output,) = result.structured_content["outputs"]
            assert output["preview"] == "inline"
            assert [b for b in result.content if b.type == "image"]
            # Full size through /view, with the same credentials.
            resource = await c.read_resource(output["resource_uri"])
            blob = base64.b64decode(resource.contents[0].blob)
            assert Image.open(io.BytesIO(blob)).size == (output["width"], output["height"])
            shown = str(result.structured_content) + text_of(result)
        assert seen
        for secret in ("query-secret-1", "cookie-secret-1", "header-secret-1", PROXY_PASSWORD):
            assert secret not in shown
        kinds = {r["method"] for r in fake.requests}
        assert "WEBSOCKET" in kinds
        for request in fake.requests:  # HTTP, websocket and /view alike
            assert request["path"].startswith("/comfy/")
            assert "token=query-secret-1" in request["query"]
            assert request["headers"]["authorization"] == BASIC
            assert "session=cookie-secret-1" in request["headers"]["cookie"]
        assert any(r["path"] == "/comfy/view" for r in fake.requests)


async def test_a_wrong_comfyui_token_is_an_auth_error_with_the_secret_redacted() -> None:
    async with run_fake_comfyui(prefix="/comfy") as fake:
        _guard(fake)
        settings = Settings.from_env(_proxied_env(fake, query="token=wrong-secret-value"))
        async with Client(build_server(settings), raise_exceptions=True) as c:
            listed = await c.call_tool("list_models", {})
            run = await c.call_tool("enqueue_workflow", {"workflow": "smoke"})
        for result in (listed, run):
            text = text_of(result)
            assert result.is_error
            assert "401" in text and "credentials" in text, text
            assert "cannot reach" not in text
            assert "wrong-secret-value" not in text and PROXY_PASSWORD not in text
        assert fake.posted_prompts == []
