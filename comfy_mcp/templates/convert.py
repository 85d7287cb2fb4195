"""UI-format workflow (the editor's "Save" file) → API-format graph, using ``/object_info``.

Users have workflows saved from the editor, but ``POST /prompt`` only takes API format.
The editor converts on every "Queue" (``graphToPrompt``); this module repeats that
conversion offline so such files can be run, validated and turned into templates:
widget values are matched to inputs (:mod:`convert_widgets`), links are resolved through
Reroutes, PrimitiveNodes, bypassed nodes and subgraphs (:mod:`convert_graph`), muted
nodes are dropped, and ``filename_prefix`` tokens (``%date:yyyy-MM-dd%``,
``%KSampler.seed%``) are substituted. Where the frontend would silently guess (widget
values that do not line up, a reference that matches several nodes) this module raises
:class:`ConversionError` naming the nodes instead.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from comfy_mcp.templates.convert_graph import (
    FRONTEND_NODES,
    MODE_BYPASS,
    MODE_NEVER,
    LinkTo,
    Node,
    Resolver,
    Value,
    build,
    walk,
)
from comfy_mcp.templates.convert_text import replace_tokens, search_name
from comfy_mcp.templates.convert_widgets import (
    ConversionError,
    is_widget_input,
    widget_layout,
    widget_values,
)
from comfy_mcp.templates.graph import is_api_format, is_ui_format
from comfy_mcp.templates.objectinfo import class_info, input_spec

__all__ = ["ConversionError", "convert_ui_workflow", "to_api_format"]

#: PrimitiveNode property that makes it substitute ``%…%`` tokens in its value.
REPLACE_PROPERTY = "Run widget replace on values"


def convert_ui_workflow(
    ui: Mapping[str, Any], object_info: Mapping[str, Any], *, now: datetime | None = None
) -> dict[str, Any]:
    """The API-format graph the editor would queue for ``ui``.

    Node ids are kept (``"57:3"`` for node 3 inside subgraph instance 57), each node gets
    ``class_type``, ``inputs`` and ``_meta.title``. ``now`` fixes the time used for
    ``%date:…%`` tokens (default: the local time, as in the browser).
    """
    if not is_ui_format(ui):
        raise ConversionError(
            "not a UI-format workflow: expected an object with 'nodes' and 'links' lists",
            code="not_ui_format",
        )
    return _Converter(ui, object_info, now or datetime.now()).run()


def to_api_format(obj: Any, object_info: Mapping[str, Any]) -> dict[str, Any]:
    """Any workflow document as an API graph: API graphs are copied, UI ones converted."""
    if is_api_format(obj):
        return copy.deepcopy(dict(obj))
    if is_ui_format(obj):
        return convert_ui_workflow(obj, object_info)
    hint = "expected an API graph {node_id: {class_type, inputs}} or an editor save file"
    if isinstance(obj, Mapping):
        if is_api_format(obj.get("prompt")):
            hint = "this looks like a /prompt request body; pass its 'prompt' member"
        elif is_ui_format(obj.get("workflow")):
            hint = "this wraps an editor workflow; pass its 'workflow' member"
        elif not obj:
            hint = "the workflow is empty"
    raise ConversionError(f"cannot read this workflow: {hint}", code="not_ui_format")


def _wrap(value: Any) -> Any:
    """Lists are links in API format; the frontend boxes list-valued widgets like this."""
    return {"__value__": value} if isinstance(value, list) else value


class _Converter:
    """One conversion: the expanded graph plus caches of widget and promoted values."""

    def __init__(self, ui: Mapping[str, Any], object_info: Mapping[str, Any], now: datetime):
        self.ui = ui
        self.object_info = object_info
        self.now = now
        self.nodes = list(walk(build(ui)))
        self.resolver = Resolver(self.promoted_value)
        self.overrides: dict[str, dict[str, Any]] = {}
        self._widgets: dict[str, dict[str, Any]] = {}
        self._promoted: dict[str, dict[str, Any]] = {}

    def run(self) -> dict[str, Any]:
        self.check_classes()
        self.apply_primitives()
        output: dict[str, Any] = {}
        for node in self.nodes:
            if node.active and node.definition is None and node.type not in FRONTEND_NODES:
                output[node.exec_id] = self.emit(node)
        for entry in output.values():  # links into muted nodes go, as in the frontend
            inputs = entry["inputs"]
            for name in [n for n, v in inputs.items() if isinstance(v, list)]:
                if inputs[name][0] not in output:
                    del inputs[name]
        return output

    def check_classes(self) -> None:
        """Refuse group nodes and classes this server lacks, naming every such node."""
        extra = self.ui.get("extra")
        group_names = extra.get("groupNodes") if isinstance(extra, Mapping) else None
        groups: list[str] = []
        unknown: list[Node] = []
        for node in self.nodes:
            if node.definition is not None or node.type in FRONTEND_NODES:
                continue
            if not node.scope.active or node.mode == MODE_NEVER:
                continue  # dropped anyway; a bypassed node only needs its UI slots
            name = node.type.removeprefix("workflow>").removeprefix("workflow/")
            if isinstance(group_names, Mapping) and name in group_names:
                groups.append(node.exec_id)
            elif node.mode != MODE_BYPASS and class_info(self.object_info, node.type) is None:
                unknown.append(node)
        if groups:
            raise ConversionError(
                f"group nodes are not supported (nodes {', '.join(groups)}); export the "
                "workflow with Workflow → Export (API) instead",
                node_ids=groups,
                code="group_node",
            )
        if unknown:
            listed = ", ".join(f"{n.exec_id} ({n.type})" for n in unknown)
            raise ConversionError(
                f"this server has no node class for: {listed}; install the custom nodes "
                "or remove those nodes",
                node_ids=[n.exec_id for n in unknown],
                code="unknown_class",
            )

    def widgets(self, node: Node) -> dict[str, Any]:
        """A class node's widget values by input name, PrimitiveNode values applied."""
        if node.exec_id not in self._widgets:
            info = class_info(self.object_info, node.type) or {}
            values = widget_values(
                node.raw.get("widgets_values"), info, node_id=node.exec_id, class_type=node.type
            )
            values.update(self.overrides.get(node.exec_id, {}))
            self._widgets[node.exec_id] = values
        return self._widgets[node.exec_id]

    def promoted_value(self, instance: Node, name: str) -> tuple[bool, Any]:
        """The value of a subgraph instance's widget for input ``name``, if it has one."""
        if instance.exec_id not in self._promoted:
            self._promoted[instance.exec_id] = self._promoted_values(instance)
        found = self._promoted[instance.exec_id]
        return (name in found, found.get(name))

    def _promoted_values(self, instance: Node) -> dict[str, Any]:
        # Promoted inputs are the definition inputs that reach a widget inside; the
        # instance saves their values in that order, older files with an extra slot
        # after each seed-like widget. Empty or null values mean "as inside".
        promotable: list[tuple[str, Any, bool]] = []
        for slot in instance.inputs:
            inner = self._interior_widget(instance, slot.name)
            if inner is not None:
                promotable.append((slot.name, *inner))
        saved = instance.raw.get("widgets_values")
        saved = saved if isinstance(saved, list) else []
        values = {name: value for name, value, _ in promotable}
        if saved:
            legacy = len(saved) > len(promotable)
            index = 0
            for name, _, has_control in promotable:
                if index < len(saved) and saved[index] is not None:
                    values[name] = saved[index]
                index += 2 if legacy and has_control else 1
            if index != len(saved):
                raise ConversionError(
                    f"subgraph instance {instance.exec_id} saved {len(saved)} widget "
                    f"value(s) for {len(promotable)} promoted input(s) "
                    f"({', '.join(n for n, _, _ in promotable) or 'none'}); which value "
                    "belongs to which input is ambiguous",
                    node_ids=[instance.exec_id],
                    code="widget_values_mismatch",
                )
        values.update(self.overrides.get(instance.exec_id, {}))
        return values

    def _interior_widget(self, instance: Node, name: str) -> tuple[Any, bool] | None:
        """``(value, has control)`` of the first widget that subgraph input ``name`` feeds."""
        if instance.definition is None or instance.inner is None:
            return None
        entry = next((i for i in instance.definition.inputs if i.get("name") == name), None)
        link_ids = entry.get("linkIds") if entry is not None else None
        for link_id in link_ids if isinstance(link_ids, list) else []:
            link = instance.definition.links.get(link_id)
            target = instance.inner.nodes.get(link.target_id) if link else None
            if target is None:
                continue
            slot = next((s for s in target.inputs if s.link == link_id), None)
            if slot is None:
                continue
            if target.definition is not None:
                found, value = self.promoted_value(target, slot.name)
                if found:
                    return value, False
                continue
            widget = self._widget_name(target, slot.name, slot.widget)
            if widget is not None:
                layout = widget_layout(class_info(self.object_info, target.type) or {})
                control = any(s.role == "control" and s.input_name == widget for s in layout)
                return self.widgets(target).get(widget), control
        return None

    def _widget_name(self, node: Node, name: str, widget: str | None) -> str | None:
        if node.type in FRONTEND_NODES or class_info(self.object_info, node.type) is None:
            return None
        spec = input_spec(self.object_info, node.type, widget or name)
        return (widget or name) if spec is not None and is_widget_input(spec) else None

    def apply_primitives(self) -> None:
        """Copy each PrimitiveNode's value into the widgets it feeds (``applyToGraph``)."""
        replace: list[tuple[Node, str]] = []
        for node in self.nodes:
            values = node.raw.get("widgets_values")
            if node.type != "PrimitiveNode" or not isinstance(values, list) or not values:
                continue
            for target, name in self._primitive_targets(node):
                self.overrides.setdefault(target.exec_id, {})[name] = values[0]
                properties = node.raw.get("properties")
                if isinstance(properties, Mapping) and properties.get(REPLACE_PROPERTY):
                    replace.append((target, name))
        for target, name in replace:
            value = self.overrides[target.exec_id][name]
            if isinstance(value, str):
                self.overrides[target.exec_id][name] = self.replace_tokens(value, target)

    def _primitive_targets(self, node: Node) -> list[tuple[Node, str]]:
        found: list[tuple[Node, str]] = []
        pending = [node]
        while pending:
            source = pending.pop()
            outputs = source.raw.get("outputs")
            first = outputs[0] if isinstance(outputs, list) and outputs else {}
            links = first.get("links") if isinstance(first, Mapping) else None
            for link_id in links if isinstance(links, list) else []:
                link = source.scope.graph.links.get(link_id)
                target = source.scope.nodes.get(link.target_id) if link else None
                if link is None or target is None:
                    continue
                if target.type == "Reroute":
                    pending.append(target)
                    continue
                raw_inputs = target.raw.get("inputs")
                raw_inputs = raw_inputs if isinstance(raw_inputs, list) else []
                if not 0 <= link.target_slot < len(raw_inputs):
                    continue
                entry = raw_inputs[link.target_slot]
                widget = entry.get("widget") if isinstance(entry, Mapping) else None
                name = widget.get("name") if isinstance(widget, Mapping) else None
                name = name or (entry.get("name") if isinstance(entry, Mapping) else None)
                if isinstance(name, str):
                    found.append((target, name))
        return found

    def emit(self, node: Node) -> dict[str, Any]:
        inputs = {name: _wrap(value) for name, value in self.widgets(node).items()}
        prefix = inputs.get("filename_prefix")
        if isinstance(prefix, str):
            inputs["filename_prefix"] = self.replace_tokens(prefix, node)
        for index, slot in enumerate(node.inputs):
            resolved = self.resolver.resolve_input(node, index)
            if isinstance(resolved, LinkTo):
                inputs[slot.name] = [resolved.exec_id, resolved.slot]
            elif isinstance(resolved, Value):
                inputs[slot.name] = _wrap(resolved.value)
        return {"inputs": inputs, "class_type": node.type, "_meta": {"title": self.title(node)}}

    def title(self, node: Node) -> str:
        title = node.raw.get("title")
        if isinstance(title, str) and title:
            return title
        info = class_info(self.object_info, node.type) or {}
        display = info.get("display_name")
        return display if isinstance(display, str) and display else node.type

    def replace_tokens(self, text: str, owner: Node) -> str:
        """``text`` with the frontend's ``%…%`` substitutions applied, for node ``owner``."""
        return replace_tokens(
            text, self.now, lambda name, widget: self._reference(owner, name, widget)
        )

    def _reference(self, owner: Node, node_name: str, widget: str) -> Any:
        """The value ``%node_name.widget%`` stands for; refuses to guess between nodes."""

        def name_of(node: Node) -> str | None:
            known = class_info(self.object_info, node.type) is not None
            return search_name(node.type if known else None, node.raw.get("properties"))

        matches = [n for n in self.nodes if name_of(n) == node_name]
        matches = matches or [n for n in self.nodes if self.title(n) == node_name]
        where = f"node {owner.exec_id} ({owner.type}): %{node_name}.{widget}%"
        if not matches:
            raise ConversionError(
                f"{where} names no node (no node has that title or class)",
                node_ids=[owner.exec_id],
                code="unresolved_reference",
            )
        values = [self._reference_value(n, widget, where) for n in matches]
        if any(v != values[0] for v in values[1:]):
            ids = [n.exec_id for n in matches]
            raise ConversionError(
                f"{where} matches nodes {', '.join(ids)} with different values; rename "
                "one of them so the reference is unique",
                node_ids=[owner.exec_id, *ids],
                code="ambiguous_reference",
            )
        return values[0]

    def _reference_value(self, node: Node, widget: str, where: str) -> Any:
        if node.definition is not None or node.type in FRONTEND_NODES:
            raise ConversionError(
                f"{where} refers to node {node.exec_id} ({node.type}), which has no "
                "widget values of its own",
                node_ids=[node.exec_id],
                code="unresolved_reference",
            )
        values = self.widgets(node)
        if widget not in values:
            raise ConversionError(
                f"{where}: node {node.exec_id} ({node.type}) has no widget {widget!r}",
                node_ids=[node.exec_id],
                code="unresolved_reference",
            )
        for index, slot in enumerate(node.inputs):
            if slot.name == widget and slot.link is not None:
                resolved = self.resolver.resolve_input(node, index)
                if isinstance(resolved, Value):
                    return resolved.value
                if isinstance(resolved, LinkTo):
                    raise ConversionError(
                        f"{where}: {widget!r} of node {node.exec_id} comes from another "
                        "node's output, so its value is only known when the graph runs",
                        node_ids=[node.exec_id],
                        code="unresolved_reference",
                    )
        return values[widget]
