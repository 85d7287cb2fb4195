"""Small facts about ComfyUI graphs in API format: which format a document is, what a link is.

API format is ``{node_id: {"class_type": str, "inputs": {name: value or link}}}`` where a
link is ``[source_node_id, output_index]``. UI format (the editor's save file) has ``nodes``
and ``links`` lists instead; ComfyUI answers ``invalid_prompt`` if it is posted as a prompt.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard


def is_ui_format(obj: Any) -> bool:
    """True for the editor's workflow file (``nodes`` list + ``links``), which cannot be run."""
    return isinstance(obj, Mapping) and isinstance(obj.get("nodes"), list) and "links" in obj


def is_api_format(obj: Any) -> bool:
    """True for a runnable graph: a non-empty map of node ids to node objects.

    A node object is recognised by ``class_type`` or ``inputs`` so that a graph with one
    broken node (no ``class_type``) still counts as API format and gets a precise issue
    from validation rather than a "wrong format" verdict.
    """
    if not isinstance(obj, Mapping) or not obj or is_ui_format(obj):
        return False
    return all(
        isinstance(key, str)
        and isinstance(node, Mapping)
        and ("class_type" in node or "inputs" in node)
        for key, node in obj.items()
    )


def is_link(value: Any) -> TypeGuard[list[Any]]:
    """True for ``[node_id, output_index]``, ComfyUI's way of wiring an input to an output."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


def node_sort_key(node_id: str) -> tuple[int, int, str]:
    """Numeric ids in numeric order, then the rest alphabetically: "2" < "10" < "a"."""
    if node_id.isdigit():
        return (0, int(node_id), node_id)
    return (1, 0, node_id)


def node_inputs(node: Any) -> Mapping[str, Any]:
    """A node's inputs map, empty when the node is malformed."""
    if isinstance(node, Mapping):
        inputs = node.get("inputs")
        if isinstance(inputs, Mapping):
            return inputs
    return {}


def fresh_node_ids(graph: Mapping[str, Any], count: int) -> list[str]:
    """``count`` unused numeric node ids above every numeric id in ``graph``.

    Nodes inserted at fill time (LoRA loaders) get ids that cannot collide with the
    template's own, and sort after them so inferred names and error reports stay stable.
    """
    numeric = [int(key) for key in graph if key.isdigit()]
    start = max(numeric, default=0) + 1
    ids: list[str] = []
    candidate = start
    while len(ids) < count:
        if str(candidate) not in graph:
            ids.append(str(candidate))
        candidate += 1
    return ids


def links_to(graph: Mapping[str, Any], node_id: str) -> Iterable[tuple[str, str, int]]:
    """Every ``(consumer node, input name, output slot)`` that reads an output of ``node_id``."""
    for consumer, node in graph.items():
        for input_name, value in node_inputs(node).items():
            if is_link(value) and value[0] == node_id:
                yield consumer, input_name, value[1]
