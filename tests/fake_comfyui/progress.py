"""comfy_execution.progress: the per-node state behind ``progress_state`` messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ProgressRegistry:
    """comfy_execution.progress: cumulative per-node state, sent as ``progress_state``."""

    def __init__(self, prompt_id: str, send: Callable[[dict[str, Any]], None]) -> None:
        self.prompt_id = prompt_id
        self._send_data = send
        self.nodes: dict[str, dict[str, Any]] = {}

    def _entry(self, node_id: str) -> dict[str, Any]:
        if node_id not in self.nodes:
            self.nodes[node_id] = {"state": "pending", "value": 0, "max": 1}
        return self.nodes[node_id]

    def _send(self) -> None:
        active = {}
        for node_id, entry in self.nodes.items():
            if entry["state"] == "pending":
                continue
            active[node_id] = {
                "value": entry["value"],
                "max": entry["max"],
                "state": entry["state"],
                "node_id": node_id,
                "prompt_id": self.prompt_id,
                "display_node_id": node_id,
                "parent_node_id": None,
                "real_node_id": node_id,
            }
        self._send_data({"prompt_id": self.prompt_id, "nodes": active})

    def start(self, node_id: str) -> None:
        self._entry(node_id).update(state="running", value=0.0, max=1.0)
        self._send()

    def update(self, node_id: str, value: int, total: int) -> None:
        self._entry(node_id).update(state="running", value=value, max=total)
        self._send()

    def finish(self, node_id: str) -> None:
        entry = self._entry(node_id)
        entry.update(state="finished", value=entry["max"])
        self._send()
