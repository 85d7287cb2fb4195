"""Filling a ``lora_stack`` parameter: a variable number of LoraLoader nodes.

A LoRA stack cannot be a plain input value: each LoRA is a node between the model source
and everything that consumed its MODEL and CLIP. Fill inserts one LoraLoader per entry,
chained, with fresh node ids, and rewires the original consumers to the end of the chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from comfy_mcp.templates.graph import fresh_node_ids, links_to

#: Output slots of the bound loader node. CheckpointLoaderSimple, LoraLoader and
#: unCLIPCheckpointLoader all put MODEL at 0 and CLIP at 1; a lora_stack must bind such a node.
MODEL_SLOT = 0
CLIP_SLOT = 1


def insert_lora_stack(
    graph: dict[str, Any], source_id: str, stack: Sequence[dict[str, Any]]
) -> list[str]:
    """Insert LoraLoader nodes after ``source_id`` in ``graph`` (mutated); return their ids.

    An empty stack leaves the graph untouched, so a template with no LoRAs given runs
    exactly as exported.
    """
    if not stack:
        return []
    consumers = [
        (consumer, input_name, slot)
        for consumer, input_name, slot in links_to(graph, source_id)
        if slot in (MODEL_SLOT, CLIP_SLOT)
    ]
    new_ids = fresh_node_ids(graph, len(stack))
    model: list[Any] = [source_id, MODEL_SLOT]
    clip: list[Any] = [source_id, CLIP_SLOT]
    for node_id, entry in zip(new_ids, stack, strict=True):
        graph[node_id] = {
            "class_type": "LoraLoader",
            "inputs": {
                "model": model,
                "clip": clip,
                "lora_name": entry["name"],
                "strength_model": entry["strength"],
                "strength_clip": entry["clip_strength"],
            },
        }
        model, clip = [node_id, MODEL_SLOT], [node_id, CLIP_SLOT]
    for consumer, input_name, slot in consumers:
        graph[consumer]["inputs"][input_name] = list(model if slot == MODEL_SLOT else clip)
    return new_ids
