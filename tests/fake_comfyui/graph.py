"""Execution order and cache keys, as in ComfyUI's ExecutionList and classic output cache."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any


def is_link(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int | float)
        and not isinstance(value[1], bool)
    )


class ExecutionList:
    """comfy_execution.graph.ExecutionList without lazy inputs and subgraph expansion.

    Nodes are added from the output nodes backwards; cached upstream nodes are not added.
    Among the ready nodes, output nodes go first, then nodes feeding an output (one or two
    levels down), then the first ready node in insertion order -- so a PreviewImage runs as
    soon as it can, like in ws_load_scale.json.
    """

    def __init__(
        self,
        prompt: dict[str, Any],
        is_cached: Callable[[str], bool],
        is_output: Callable[[str], bool],
    ) -> None:
        self.prompt = prompt
        self.is_cached = is_cached
        self.is_output = is_output
        self.pending: dict[str, bool] = {}
        self.block_count: dict[str, int] = {}
        self.blocking: dict[str, dict[str, dict[Any, bool]]] = {}

    def add_node(self, unique_id: str) -> None:
        node_ids = [unique_id]
        links: list[tuple[str, Any, str]] = []
        while node_ids:
            uid = node_ids.pop()
            if uid in self.pending:
                continue
            self.pending[uid] = True
            self.block_count[uid] = 0
            self.blocking[uid] = {}
            for value in self.prompt[uid].get("inputs", {}).values():
                if is_link(value):
                    from_id, socket = value
                    if not self.is_cached(from_id):
                        node_ids.append(from_id)
                    links.append((from_id, socket, uid))
        for from_id, socket, to_id in links:
            self.add_strong_link(from_id, socket, to_id)

    def add_strong_link(self, from_id: str, socket: Any, to_id: str) -> None:
        if self.is_cached(from_id):
            return
        self.add_node(from_id)
        if to_id not in self.blocking[from_id]:
            self.blocking[from_id][to_id] = {}
            self.block_count[to_id] += 1
        self.blocking[from_id][to_id][socket] = True

    def is_empty(self) -> bool:
        return not self.pending

    def ready_nodes(self) -> list[str]:
        return [n for n in self.pending if self.block_count[n] == 0]

    def stage(self) -> str | None:
        """The next node to run, or ``None`` if the remaining nodes form a cycle."""
        ready = self.ready_nodes()
        if not ready:
            return None
        for node_id in ready:
            if self.is_output(node_id):
                return node_id
        for node_id in ready:
            if any(self.is_output(b) for b in self.blocking[node_id]):
                return node_id
        for node_id in ready:
            for blocked in self.blocking[node_id]:
                if any(self.is_output(b) for b in self.blocking[blocked]):
                    return node_id
        return ready[0]

    def complete(self, node_id: str) -> None:
        del self.pending[node_id]
        for blocked in self.blocking.pop(node_id, {}):
            self.block_count[blocked] -= 1


def compute_signatures(
    prompt: dict[str, Any], is_changed: Callable[[str, dict[str, Any]], Any]
) -> dict[str, str]:
    """Cache key per node: class, IS_CHANGED value, literal inputs and upstream keys (not ids)."""
    memo: dict[str, str] = {}

    def signature(node_id: str, stack: frozenset[str]) -> str:
        if node_id in memo:
            return memo[node_id]
        node = prompt.get(node_id)
        if node_id in stack or not isinstance(node, dict):
            return json.dumps(["unresolved", node_id])
        inputs: dict[str, Any] = {}
        raw_inputs = node.get("inputs", {})
        for name in sorted(raw_inputs if isinstance(raw_inputs, dict) else {}):
            value = raw_inputs[name]
            if is_link(value):
                inputs[name] = ["link", signature(value[0], stack | {node_id}), value[1]]
            else:
                inputs[name] = value
        payload = [node.get("class_type"), is_changed(node_id, node), inputs]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode())
        memo[node_id] = digest.hexdigest()
        return memo[node_id]

    return {node_id: signature(node_id, frozenset()) for node_id in prompt}
