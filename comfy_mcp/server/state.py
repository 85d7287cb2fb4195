"""What the server's tools share: settings, the ComfyUI backends, the template catalog.

The clients are created in the lifespan (they own sockets) and reached through :attr:`pool`
(or :attr:`comfy` for the default backend), which fail loudly outside the lifespan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from comfy_mcp.comfy import ComfyClient, Endpoint
from comfy_mcp.server.backends import Backend, BackendPool
from comfy_mcp.settings import Settings
from comfy_mcp.templates import TemplateCatalog


@dataclass
class ServerState:
    settings: Settings
    catalog: TemplateCatalog
    backends: BackendPool | None = None
    # Runs we started: prompt id → (template name, parameter values), to report them back.
    runs: dict[str, tuple[str | None, dict[str, object]]] = field(default_factory=dict)

    @classmethod
    def single(
        cls, settings: Settings, catalog: TemplateCatalog, client: ComfyClient
    ) -> ServerState:
        """A state over one already-open client (for tests and embedding)."""
        backend = Backend("default", client, Endpoint(settings.public_url or settings.comfyui_url))
        return cls(settings=settings, catalog=catalog, backends=BackendPool([backend]))

    @property
    def pool(self) -> BackendPool:
        if self.backends is None:
            raise RuntimeError("the ComfyUI clients are not open (server lifespan not running)")
        return self.backends

    @property
    def comfy(self) -> ComfyClient:
        """The default (first) backend's client."""
        return self.pool.default.client

    def remember(self, prompt_id: str, workflow: str | None, params: dict[str, object]) -> None:
        self.runs[prompt_id] = (workflow, params)
        if len(self.runs) > 1000:  # keep the newest; reports fall back to no params
            for old in list(self.runs)[: len(self.runs) - 1000]:
                del self.runs[old]
