"""Every URL comes from Endpoint: scheme, prefix, auth and encoding applied the same way."""

from __future__ import annotations

import pytest

from comfy_mcp.comfy import Auth, Endpoint


def test_plain_http_urls() -> None:
    e = Endpoint("http://127.0.0.1:8188")
    assert e.http_url("/prompt") == "http://127.0.0.1:8188/prompt"
    assert e.ws_url("abc") == "ws://127.0.0.1:8188/ws?clientId=abc"


def test_https_prefix_is_kept_for_websocket_and_view() -> None:
    e = Endpoint("https://gpu.example/comfy/")
    assert e.http_url("history/x") == "https://gpu.example/comfy/history/x"
    assert e.ws_url("c1") == "wss://gpu.example/comfy/ws?clientId=c1"
    assert e.view_url("a.png") == (
        "https://gpu.example/comfy/view?filename=a.png&subfolder=&type=output"
    )


def test_api_route_prefix_applies_to_rest_not_socket() -> None:
    e = Endpoint("http://h:1", route_prefix="/api")
    assert e.http_url("/queue") == "http://h:1/api/queue"
    assert e.ws_url("x") == "ws://h:1/ws?clientId=x"


def test_view_url_splits_subfolder_from_filename_and_encodes() -> None:
    e = Endpoint("http://h:1")
    url = e.view_url("sub/dir/my image #1.png", subfolder="", type="temp")
    assert url == ("http://h:1/view?filename=my+image+%231.png&subfolder=sub%2Fdir&type=temp")


def test_auth_is_applied_everywhere_and_redacted() -> None:
    auth = Auth(headers={"Authorization": "Bearer s3cr3t-token"}, query={"token": "q-secret"})
    e = Endpoint("https://h/comfy", auth=auth)
    assert "token=q-secret" in e.http_url("/prompt")
    assert "token=q-secret" in e.ws_url("c")
    assert "token=q-secret" in e.view_url("a.png")
    assert "token" not in e.view_url("a.png", include_auth=False)
    assert e.headers()["Authorization"] == "Bearer s3cr3t-token"
    text = f"failed: {e.http_url('/x')} with Bearer s3cr3t-token"
    assert "q-secret" not in e.redact(text)
    assert "s3cr3t-token" not in e.redact(text)


def test_credentials_in_url_become_basic_auth_and_leave_the_url() -> None:
    e = Endpoint("https://user:pw@h:8443/p")
    assert e.base_url == "https://h:8443/p"
    assert e.headers()["Authorization"].startswith("Basic ")
    assert "pw" not in e.http_url("/prompt")


def test_cookies_become_one_header() -> None:
    e = Endpoint("http://h", auth=Auth(cookies={"a": "1", "session": "zz"}))
    assert e.headers()["Cookie"] == "a=1; session=zz"


def test_ipv6_host() -> None:
    assert Endpoint("http://[::1]:8188").ws_url("c") == "ws://[::1]:8188/ws?clientId=c"


@pytest.mark.parametrize(
    "bad", ["ftp://h", "127.0.0.1:8188", "http://", "http://h/?token=x", "ws://h:8188"]
)
def test_bad_urls_are_refused_with_a_fix(bad: str) -> None:
    with pytest.raises(ValueError, match="ComfyUI URL"):
        Endpoint(bad)
