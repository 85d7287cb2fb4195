"""The one place that turns a ComfyUI base URL into request URLs and applies auth.

Every HTTP, websocket and ``/view`` URL comes from :class:`Endpoint`, so the scheme, the path
prefix (``https://gpu.example/comfy``) and the credentials are applied the same way everywhere.
Code elsewhere never concatenates host strings (design rule 1).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

_SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key"})
REDACTED = "***"


@dataclass(frozen=True)
class Auth:
    """Credentials for a ComfyUI behind a proxy or a login extension.

    ComfyUI itself has no auth; deployments expect a header (``Authorization: Bearer …``), a
    cookie, or a ``?token=`` query parameter. All three are applied to every REST call, the
    websocket handshake and ``/view`` downloads alike.
    """

    headers: Mapping[str, str] = field(default_factory=dict)
    cookies: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def basic(cls, username: str, password: str) -> Auth:
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        return cls(headers={"Authorization": f"Basic {token}"})

    @classmethod
    def bearer(cls, token: str) -> Auth:
        return cls(headers={"Authorization": f"Bearer {token}"})

    def merged(self, other: Auth) -> Auth:
        return Auth(
            headers={**self.headers, **other.headers},
            cookies={**self.cookies, **other.cookies},
            query={**self.query, **other.query},
        )

    def secrets(self) -> list[str]:
        """The values that must never reach a log line or an error message."""
        values = [v for k, v in self.headers.items() if k.lower() in _SECRET_HEADERS]
        values += list(self.cookies.values()) + list(self.query.values())
        out: list[str] = []
        for value in values:
            out.append(value)
            # "Bearer abc" / "Basic abc": the credential part alone may show up too.
            if " " in value:
                out.append(value.split(" ", 1)[1])
        return [v for v in out if len(v) >= 4]


class Endpoint:
    """Builds every URL for one ComfyUI server.

    Args:
        base_url: ``http(s)://host[:port][/prefix]``. Credentials in the URL
            (``https://user:pass@host``) become a Basic ``Authorization`` header.
        route_prefix: ``""`` (default) or ``"/api"``: ComfyUI serves every REST route under both.
        auth: headers, cookies and query parameters added to every request.
    """

    def __init__(self, base_url: str, *, route_prefix: str = "", auth: Auth | None = None) -> None:
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https"):
            raise ValueError(
                f"ComfyUI URL must start with http:// or https:// (got {base_url!r}); "
                "for example http://127.0.0.1:8188"
            )
        if not parts.hostname:
            raise ValueError(f"ComfyUI URL has no host: {base_url!r}")
        if parts.query or parts.fragment:
            raise ValueError(
                f"ComfyUI URL must not carry a query or fragment ({base_url!r}); "
                "pass tokens as auth query parameters instead"
            )
        auth = auth or Auth()
        if parts.username is not None:
            auth = Auth.basic(parts.username, parts.password or "").merged(auth)
        host = parts.hostname
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        netloc = f"{host}:{parts.port}" if parts.port else host
        self.scheme = parts.scheme
        self.netloc = netloc
        self.prefix = parts.path.rstrip("/")
        if route_prefix not in ("", "/api"):
            raise ValueError(f"route_prefix must be '' or '/api' (got {route_prefix!r})")
        self.route_prefix = route_prefix
        self.auth = auth

    @property
    def base_url(self) -> str:
        """The base URL without credentials: safe to show."""
        return urlunsplit((self.scheme, self.netloc, self.prefix, "", ""))

    def http_url(
        self,
        route: str,
        params: Mapping[str, str | int | float | bool] | None = None,
        *,
        route_prefix: str | None = None,
        include_auth: bool = True,
    ) -> str:
        """URL for a REST route such as ``/prompt``, with auth query parameters added.

        ``route_prefix`` overrides the configured one for routes that exist under one spelling
        only: ``/internal/…`` is never served under ``/api`` (checked on 0.3.64), and the newer
        job API only under ``/api/jobs``.
        """
        prefix = self.route_prefix if route_prefix is None else route_prefix
        return self._url(self.scheme, prefix + _route(route), params, include_auth)

    def ws_url(self, client_id: str, *, include_auth: bool = True) -> str:
        """``ws(s)://…/ws?clientId=…``: the prefix is kept (the reference client drops it)."""
        scheme = "wss" if self.scheme == "https" else "ws"
        return self._url(scheme, "/ws", {"clientId": client_id}, include_auth)

    def view_url(
        self,
        filename: str,
        *,
        subfolder: str = "",
        type: str = "output",
        preview: str | None = None,
        channel: str | None = None,
        include_auth: bool = True,
    ) -> str:
        """URL of a file served by ``/view``.

        ``sub/dir/name.png`` given as the filename is split into subfolder and name, since
        ComfyUI only uses the basename of ``filename``. With ``include_auth=False`` the URL
        carries no token, so it can be shown to an agent.
        """
        if "/" in filename:
            head, filename = filename.rsplit("/", 1)
            subfolder = f"{subfolder}/{head}" if subfolder else head
        params: dict[str, str] = {"filename": filename, "subfolder": subfolder, "type": type}
        if preview:
            params["preview"] = preview
        if channel:
            params["channel"] = channel
        return self._url(self.scheme, self.route_prefix + "/view", params, include_auth)

    def headers(self) -> dict[str, str]:
        """Headers for every request: auth headers plus a Cookie header when cookies are set."""
        headers = dict(self.auth.headers)
        if self.auth.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.auth.cookies.items())
        return headers

    def redact(self, text: str) -> str:
        """Replace every credential value in ``text`` (a URL, a message) with ``***``."""
        for secret in sorted(self.auth.secrets(), key=len, reverse=True):
            text = text.replace(secret, REDACTED).replace(quote(secret, safe=""), REDACTED)
        return text

    def _url(
        self,
        scheme: str,
        path: str,
        params: Mapping[str, str | int | float | bool] | None,
        include_auth: bool = True,
    ) -> str:
        query: dict[str, str] = {}
        for key, value in (params or {}).items():
            query[key] = str(value).lower() if isinstance(value, bool) else str(value)
        if include_auth:
            query.update(self.auth.query)
        return urlunsplit((scheme, self.netloc, self.prefix + path, urlencode(query), ""))

    def __repr__(self) -> str:
        return f"Endpoint({self.base_url!r})"


def _route(route: str) -> str:
    if not route.startswith("/"):
        route = "/" + route
    return route


def segment(value: str) -> str:
    """Percent-encode one user-supplied path segment (``/`` included, as ``%2F``)."""
    return quote(value, safe="")
