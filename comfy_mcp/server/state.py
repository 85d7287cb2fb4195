"""What the server's tools share: settings, the ComfyUI client, the template catalog.

The client is created in the lifespan (it owns sockets) and reached through :attr:`comfy`, which
fails loudly if a tool runs outside the lifespan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from comfy_mcp.comfy import ComfyClient, Endpoint
from comfy_mcp.settings import Settings
from comfy_mcp.templates import TemplateCatalog


@dataclass
class ServerState:
    settings: Settings
    catalog: TemplateCatalog
    client: ComfyClient | None = None
    # Runs we started: prompt id → (template name, parameter values), to report them back.
    runs: dict[str, tuple[str | None, dict[str, object]]] = field(default_factory=dict)

    @property
    def comfy(self) -> ComfyClient:
        if self.client is None:
            raise RuntimeError("the ComfyUI client is not open (server lifespan not running)")
        return self.client

    def public_endpoint(self) -> Endpoint:
        """Where agents can reach ComfyUI's /view (COMFY_MCP_PUBLIC_URL, else COMFYUI_URL)."""
        return Endpoint(self.settings.public_url or self.settings.comfyui_url)

    def remember(self, prompt_id: str, workflow: str | None, params: dict[str, object]) -> None:
        self.runs[prompt_id] = (workflow, params)
        if len(self.runs) > 1000:  # keep the newest; reports fall back to no params
            for old in list(self.runs)[: len(self.runs) - 1000]:
                del self.runs[old]
