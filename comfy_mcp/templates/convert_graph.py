"""The editor's graph as the frontend executes it: scopes, links, and link resolution.

A UI workflow is a root graph plus subgraph definitions, each instance of a subgraph
being a node whose ``type`` is the definition's id. The frontend flattens this into nodes
with execution ids (``"57:3"`` is node 3 inside instance 57) and resolves each input
through frontend-only nodes (Reroute, PrimitiveNode), bypassed nodes and subgraph
boundaries to the real output it reads. This module mirrors that resolution
(``ExecutableNodeDTO.resolveInput``/``resolveOutput`` in the frontend) on plain JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from comfy_mcp.templates.convert_widgets import ConversionError

MODE_NEVER = 2  #: muted: not executed; links from it are dropped
MODE_BYPASS = 4  #: bypassed: each output passes through an input of a matching type

#: Node types that exist only in the editor; they never appear in the API graph.
FRONTEND_NODES = frozenset({"Reroute", "PrimitiveNode", "Note", "MarkdownNote"})

#: The link origin that means "this subgraph's own input slot", not a node (its outputs
#: are the target ``-20``, reached through the definition's ``outputs[].linkIds``).
SUBGRAPH_INPUT_NODE = "-10"


@dataclass(frozen=True)
class Link:
    """One wire: output ``origin_slot`` of ``origin_id`` into input ``target_slot``."""

    origin_id: str
    origin_slot: int
    target_id: str
    target_slot: int


@dataclass
class Graph:
    """One graph definition: the root workflow or a subgraph (shared by its instances)."""

    graph_id: str
    nodes: list[Mapping[str, Any]]
    links: dict[int, Link]
    inputs: list[Mapping[str, Any]] = field(default_factory=list)
    outputs: list[Mapping[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class LinkTo:
    """An input resolved to output ``slot`` of the node with execution id ``exec_id``."""

    exec_id: str
    slot: int


@dataclass(frozen=True)
class Value:
    """An input resolved to a literal (a promoted subgraph widget's value)."""

    value: Any


Resolved = LinkTo | Value | None


@dataclass(frozen=True)
class Slot:
    """One input socket as saved: its link id, and the widget it stands for, if any."""

    name: str
    type: str
    link: int | None
    widget: str | None


class Node:
    """One node at one place in the flattened graph (a definition's node in one instance)."""

    def __init__(self, raw: Mapping[str, Any], scope: Scope, definition: Graph | None) -> None:
        self.raw = raw
        self.scope = scope
        self.local_id = str(raw.get("id"))
        self.exec_id = ":".join((*scope.path, self.local_id))
        self.type = str(raw.get("type"))
        mode = raw.get("mode", 0)
        self.mode = mode if isinstance(mode, int) else 0
        self.definition = definition
        self.inner: Scope | None = None
        self.inputs = _instance_slots(raw, definition) if definition else _slots(raw)

    @property
    def active(self) -> bool:
        """Executed: in a live scope and neither muted nor bypassed."""
        return self.scope.active and self.mode not in (MODE_NEVER, MODE_BYPASS)

    def output_type(self, slot: int) -> str:
        outputs = self.definition.outputs if self.definition else self.raw.get("outputs")
        if isinstance(outputs, list) and 0 <= slot < len(outputs):
            entry = outputs[slot]
            if isinstance(entry, Mapping):
                return str(entry.get("type", ""))
        return ""


class Scope:
    """The nodes of one graph definition as instantiated at one path."""

    def __init__(
        self, graph: Graph, path: tuple[str, ...], instance: Node | None, active: bool
    ) -> None:
        self.graph = graph
        self.path = path
        self.instance = instance
        self.active = active
        self.nodes: dict[str, Node] = {}


#: ``(subgraph instance, input name) -> (found, value)``: a promoted widget's value.
PromotedLookup = Callable[[Node, str], tuple[bool, Any]]


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _slots(raw: Mapping[str, Any]) -> list[Slot]:
    found: list[Slot] = []
    inputs = raw.get("inputs")
    for entry in inputs if isinstance(inputs, list) else []:
        if not isinstance(entry, Mapping):
            continue
        widget = entry.get("widget")
        widget_name = widget.get("name") if isinstance(widget, Mapping) else None
        found.append(
            Slot(
                str(entry.get("name")),
                str(entry.get("type", "")),
                _int_or_none(entry.get("link")),
                str(widget_name) if widget_name is not None else None,
            )
        )
    return found


def _instance_slots(raw: Mapping[str, Any], definition: Graph) -> list[Slot]:
    """A subgraph instance's inputs: one per definition input, in the definition's order.

    Saved instances list only some of their inputs (and in their own order), so links
    are matched to the definition's inputs by name and type, then by name alone.
    """
    saved = _slots(raw)
    taken: set[int] = set()
    found: list[Slot] = []
    for entry in definition.inputs:
        name, kind = str(entry.get("name")), str(entry.get("type", ""))
        match = next(
            (i for i, s in enumerate(saved) if i not in taken and (s.name, s.type) == (name, kind)),
            None,
        )
        if match is None:
            match = next(
                (i for i, s in enumerate(saved) if i not in taken and s.name == name), None
            )
        link = None
        if match is not None:
            taken.add(match)
            link = saved[match].link
        found.append(Slot(name, kind, link, None))
    return found


def parse_links(raw_links: Any) -> dict[int, Link]:
    """Links by id, from either saved shape: ``[id, from, slot, to, slot, type]`` or objects."""
    links: dict[int, Link] = {}
    for entry in raw_links if isinstance(raw_links, list) else []:
        if isinstance(entry, list) and len(entry) >= 5:
            link_id, origin, origin_slot, target, target_slot = entry[:5]
        elif isinstance(entry, Mapping):
            link_id, origin, origin_slot = (
                entry.get("id"),
                entry.get("origin_id"),
                entry.get("origin_slot"),
            )
            target, target_slot = entry.get("target_id"), entry.get("target_slot")
        else:
            continue
        if (
            isinstance(link_id, int)
            and isinstance(origin_slot, int)
            and isinstance(target_slot, int)
        ):
            links[link_id] = Link(str(origin), origin_slot, str(target), target_slot)
    return links


def is_valid_connection(a: str, b: str) -> bool:
    """LiteGraph's rule: ``*``/empty match anything; comma lists match if any part does."""
    if a in ("", "*") or b in ("", "*") or a == b:
        return True
    a, b = a.lower(), b.lower()
    if "," not in a and "," not in b:
        return a == b
    return any(is_valid_connection(x, y) for x in a.split(",") for y in b.split(","))


class Resolver:
    """Resolves node inputs to real outputs or literals, guarding against link cycles."""

    def __init__(self, promoted_value: PromotedLookup) -> None:
        self.promoted_value = promoted_value

    def resolve_input(
        self, node: Node, slot: int, visited: set[str] | None = None, kind: str | None = None
    ) -> Resolved:
        visited = set() if visited is None else visited
        _visit(visited, f"{node.exec_id}[I]{slot}", node)
        if not 0 <= slot < len(node.inputs):
            raise ConversionError(
                f"node {node.exec_id} ({node.type}) has no input slot {slot}",
                node_ids=[node.exec_id],
                code="broken_link",
            )
        entry = node.inputs[slot]
        if entry.link is None:
            return None
        scope = node.scope
        link = scope.graph.links.get(entry.link)
        if link is None:
            raise ConversionError(
                f"node {node.exec_id} ({node.type}): input {entry.name!r} uses link "
                f"{entry.link}, which the workflow does not define",
                node_ids=[node.exec_id],
                code="broken_link",
            )
        if link.origin_id == SUBGRAPH_INPUT_NODE and scope.instance is not None:
            return self.resolve_boundary_input(scope.instance, link.origin_slot, visited)
        origin = scope.nodes.get(link.origin_id)
        if origin is None:
            raise ConversionError(
                f"node {node.exec_id} ({node.type}): input {entry.name!r} is linked to node "
                f"{link.origin_id}, which is not in the workflow",
                node_ids=[node.exec_id],
                code="broken_link",
            )
        return self.resolve_output(origin, link.origin_slot, kind or entry.type, visited)

    def resolve_boundary_input(self, instance: Node, slot: int, visited: set[str]) -> Resolved:
        """What a subgraph's input ``slot`` carries: the instance's link, else its widget."""
        if not 0 <= slot < len(instance.inputs):
            raise ConversionError(
                f"subgraph instance {instance.exec_id} has no input slot {slot}",
                node_ids=[instance.exec_id],
                code="broken_link",
            )
        if instance.inputs[slot].link is not None:
            resolved = self.resolve_input(instance, slot, visited)
            if resolved is not None:
                return resolved
        # Unlinked, or fed by a PrimitiveNode (whose value was copied into the widget)
        found, value = self.promoted_value(instance, instance.inputs[slot].name)
        return Value(value) if found else None

    def resolve_output(self, node: Node, slot: int, kind: str, visited: set[str]) -> Resolved:
        _visit(visited, f"{node.exec_id}[O]{slot}", node)
        if node.mode == MODE_BYPASS:
            index = bypass_slot(node, slot, kind)
            return None if index < 0 else self.resolve_input(node, index, visited)
        if node.definition is not None and node.inner is not None:
            return self._resolve_subgraph_output(node, slot, kind, visited)
        if node.type in FRONTEND_NODES:  # Reroute passes its input through; others end here
            return (
                self.resolve_input(node, slot, visited, kind) if slot < len(node.inputs) else None
            )
        return LinkTo(node.exec_id, slot)

    def _resolve_subgraph_output(
        self, node: Node, slot: int, kind: str, visited: set[str]
    ) -> Resolved:
        if node.definition is None or node.inner is None:
            return None
        outputs = node.definition.outputs
        link_ids = outputs[slot].get("linkIds") if 0 <= slot < len(outputs) else None
        link = (
            node.definition.links.get(link_ids[0])
            if isinstance(link_ids, list) and link_ids
            else None
        )
        if link is None:
            return None
        if link.origin_id == SUBGRAPH_INPUT_NODE:
            return self.resolve_boundary_input(node, link.origin_slot, visited)
        origin = node.inner.nodes.get(link.origin_id)
        if origin is None:
            raise ConversionError(
                f"subgraph instance {node.exec_id}: output {slot} comes from node "
                f"{link.origin_id}, which the subgraph does not contain",
                node_ids=[node.exec_id],
                code="broken_link",
            )
        return self.resolve_output(origin, link.origin_slot, kind, visited)


def bypass_slot(node: Node, slot: int, kind: str) -> int:
    """The input a bypassed node passes to output ``slot``; -1 when none fits.

    Same slot index first if its type fits, then the first input of exactly ``kind``,
    then the first compatible one (the frontend's ``#getBypassSlotIndex``).
    """
    inputs = node.inputs
    if not inputs:
        return -1
    if kind in ("", "*"):
        return slot if slot < len(inputs) else 0
    out_type = node.output_type(slot)
    if slot < len(inputs):
        same = inputs[slot].type
        if is_valid_connection(same, out_type) and is_valid_connection(same, kind):
            return slot
    for index, entry in enumerate(inputs):
        if entry.type == kind:
            return index
    for index, entry in enumerate(inputs):
        if is_valid_connection(entry.type, out_type) and is_valid_connection(entry.type, kind):
            return index
    return -1


def _visit(visited: set[str], key: str, node: Node) -> None:
    if key in visited:
        raise ConversionError(
            f"node {node.exec_id} ({node.type}): its links form a cycle through "
            "Reroute, bypassed or subgraph nodes",
            node_ids=[node.exec_id],
            code="link_cycle",
        )
    visited.add(key)


def walk(scope: Scope) -> Iterator[Node]:
    """Every node of ``scope`` and of the subgraph instances inside it, depth first."""
    for node in scope.nodes.values():
        yield node
        if node.inner is not None:
            yield from walk(node.inner)


def build(ui: Mapping[str, Any]) -> Scope:
    """The root scope of a UI workflow, with every subgraph instance expanded inside it.

    Nodes inside a muted or bypassed instance are kept (a bypassed instance still passes
    links through) but their scope is inactive, so they are not executed (frontend PR
    #8494 semantics, applied at every nesting level).
    """
    definitions: dict[str, Graph] = {}
    raw_definitions = ui.get("definitions")
    subgraphs = raw_definitions.get("subgraphs") if isinstance(raw_definitions, Mapping) else None
    for entry in subgraphs if isinstance(subgraphs, list) else []:
        if isinstance(entry, Mapping) and isinstance(entry.get("id"), str):
            definitions[entry["id"]] = Graph(
                entry["id"],
                _node_list(entry.get("nodes")),
                parse_links(entry.get("links")),
                [i for i in entry.get("inputs") or [] if isinstance(i, Mapping)],
                [o for o in entry.get("outputs") or [] if isinstance(o, Mapping)],
            )
    root = Scope(
        Graph("root", _node_list(ui.get("nodes")), parse_links(ui.get("links"))), (), None, True
    )
    _populate(root, definitions, ())
    return root


def _node_list(raw: Any) -> list[Mapping[str, Any]]:
    return [node for node in raw if isinstance(node, Mapping)] if isinstance(raw, list) else []


def _populate(scope: Scope, definitions: Mapping[str, Graph], stack: tuple[str, ...]) -> None:
    for raw in scope.graph.nodes:
        definition = definitions.get(str(raw.get("type")))
        node = Node(raw, scope, definition)
        if node.local_id in scope.nodes:
            raise ConversionError(
                f"two nodes share the id {node.exec_id}; the workflow file is corrupt",
                node_ids=[node.exec_id],
                code="broken_link",
            )
        scope.nodes[node.local_id] = node
        if definition is None:
            continue
        if definition.graph_id in stack:
            raise ConversionError(
                f"subgraph instance {node.exec_id} contains itself",
                node_ids=[node.exec_id],
                code="link_cycle",
            )
        live = scope.active and node.mode not in (MODE_NEVER, MODE_BYPASS)
        node.inner = Scope(definition, (*scope.path, node.local_id), node, live)
        _populate(node.inner, definitions, (*stack, definition.graph_id))
