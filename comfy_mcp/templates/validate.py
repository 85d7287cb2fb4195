"""Checking an API-format graph against ``/object_info`` before it is submitted.

ComfyUI validates too, but a rejected prompt costs a round trip and its errors name node
ids, not the tool arguments an agent controls. This module finds the same classes of
mistake locally, all at once, and ties each to the template parameter that set the input.
It follows ComfyUI's rules (see notes §2.3) so it neither misses nor invents problems.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from comfy_mcp.comfy.nodeinfo import spec_choices
from comfy_mcp.templates.errors import closest, format_choices
from comfy_mcp.templates.graph import is_api_format, is_link, is_ui_format, node_sort_key
from comfy_mcp.templates.objectinfo import (
    class_info,
    input_specs,
    is_upload_combo,
    output_types,
    spec_options,
    spec_type,
    types_compatible,
)
from comfy_mcp.templates.params import Parameter


@dataclass(frozen=True)
class GraphIssue:
    """One problem in a graph. ``code`` mirrors ComfyUI's error types where one exists
    (``value_not_in_list``, ``required_input_missing``…) so callers can branch on it."""

    node_id: str | None
    class_type: str | None
    input_name: str | None
    message: str
    parameter: str | None = None
    allowed: list[Any] | None = None
    suggestion: str | None = None
    code: str = "invalid"

    def __str__(self) -> str:
        where = []
        if self.node_id is not None:
            where.append(
                f"node {self.node_id}" + (f" ({self.class_type})" if self.class_type else "")
            )
        if self.input_name is not None:
            where.append(f"input {self.input_name!r}")
        if self.parameter is not None:
            where.append(f"parameter {self.parameter!r}")
        return (", ".join(where) + ": " if where else "") + self.message


def validate_graph(
    graph: Mapping[str, Any],
    object_info: Mapping[str, Any],
    *,
    parameters: Sequence[Parameter] = (),
) -> list[GraphIssue]:
    """Every problem ComfyUI would reject ``graph`` for, as far as /object_info can tell.

    Not checked: files picked by upload combos (LoadImage lists only top-level input files
    yet accepts subfolders and fresh uploads) and custom per-node validation. Returns an
    empty list for a graph that should be accepted.
    """
    if is_ui_format(graph):
        return [
            GraphIssue(
                None,
                None,
                None,
                "this is a UI-format workflow (nodes/links); export it "
                "with 'Export (API)' or convert it to API format first",
                code="ui_format",
            )
        ]
    if not is_api_format(graph):
        return [
            GraphIssue(
                None,
                None,
                None,
                "not an API-format graph: expected {node_id: {'class_type': ..., 'inputs': {...}}}",
                code="invalid_prompt",
            )
        ]
    bound = {
        (b.node_id, b.input_name): p.name for p in parameters for b in p.bindings if b.input_name
    }
    checker = _Checker(graph, object_info, bound)
    for node_id in sorted(graph, key=node_sort_key):
        checker.check_node(node_id)
    if not checker.has_output:
        checker.issues.append(
            GraphIssue(
                None,
                None,
                None,
                "the graph has no output node (SaveImage, "
                "PreviewImage…), so ComfyUI would run nothing",
                code="prompt_no_outputs",
            )
        )
    return checker.issues


class _Checker:
    """Walks the nodes once, collecting issues; one instance per validate_graph call."""

    def __init__(
        self,
        graph: Mapping[str, Any],
        object_info: Mapping[str, Any],
        bound: Mapping[tuple[str, str], str],
    ) -> None:
        self.graph = graph
        self.object_info = object_info
        self.bound = bound
        self.issues: list[GraphIssue] = []
        self.has_output = False

    def add(
        self,
        node_id: str,
        class_type: str | None,
        input_name: str | None,
        message: str,
        *,
        code: str,
        allowed: list[Any] | None = None,
        suggestion: str | None = None,
    ) -> None:
        parameter = self.bound.get((node_id, input_name)) if input_name else None
        self.issues.append(
            GraphIssue(
                node_id, class_type, input_name, message, parameter, allowed, suggestion, code
            )
        )

    def check_node(self, node_id: str) -> None:
        node = self.graph[node_id]
        class_type = node.get("class_type")
        if not isinstance(class_type, str) or not class_type:
            self.add(node_id, None, None, "the node has no class_type", code="missing_class_type")
            return
        info = class_info(self.object_info, class_type)
        if info is None:
            hint = closest(class_type, self.object_info)
            message = f"unknown node class {class_type!r}"
            message += f" (did you mean {hint!r}?)" if hint else " (is a custom node missing?)"
            self.add(node_id, class_type, None, message, code="invalid_class", suggestion=hint)
            return
        if info.get("output_node") is True:
            self.has_output = True
        inputs = node.get("inputs", {})
        if not isinstance(inputs, Mapping):
            self.add(node_id, class_type, None, "'inputs' must be an object", code="invalid_prompt")
            return
        for name in input_specs(info, "required"):
            if name not in inputs:
                self.add(
                    node_id,
                    class_type,
                    name,
                    f"required input {name!r} is missing",
                    code="required_input_missing",
                )
        specs = {**input_specs(info, "optional"), **input_specs(info, "required")}
        for name, value in inputs.items():
            spec = specs.get(name)
            if not isinstance(spec, list) or not spec:
                continue  # ComfyUI ignores inputs its class does not declare
            if is_link(value):
                self.check_link(node_id, class_type, name, value, spec)
            else:
                self.check_value(node_id, class_type, name, value, spec)

    def check_link(
        self, node_id: str, class_type: str, name: str, link: list[Any], spec: list[Any]
    ) -> None:
        source_id, slot = link
        source = self.graph.get(source_id)
        if source is None:
            self.add(
                node_id,
                class_type,
                name,
                f"linked to node {source_id!r}, which is not in the graph",
                code="bad_link_source",
            )
            return
        source_class = source.get("class_type") if isinstance(source, Mapping) else None
        source_info = class_info(self.object_info, str(source_class))
        if source_info is None:
            return  # the source node gets its own issue
        outputs = output_types(source_info)
        if not 0 <= slot < len(outputs):
            self.add(
                node_id,
                class_type,
                name,
                f"linked to output {slot} of node {source_id} "
                f"({source_class}), which has {len(outputs)} output(s)",
                code="bad_link_slot",
            )
            return
        expected = spec_type(spec)
        if expected == "COMBO":
            return  # a widget turned into an input: fed by primitives; ComfyUI checks values
        received = outputs[slot]
        if not types_compatible(received, expected):
            self.add(
                node_id,
                class_type,
                name,
                f"expects {expected} but is linked to output "
                f"{slot} of node {source_id} ({source_class}), which gives {received}",
                code="return_type_mismatch",
            )

    def check_value(
        self, node_id: str, class_type: str, name: str, value: Any, spec: list[Any]
    ) -> None:
        kind = spec_type(spec)
        options = spec_options(spec)
        if kind == "COMBO":
            choices = spec_choices(spec)
            if choices is None or is_upload_combo(spec) or value in choices:
                return
            hint = closest(str(value), choices)
            if choices:
                message = f"{value!r} is not one of: {format_choices(choices)}"
            else:
                message = f"{value!r} is not available: the server lists no choices for this input"
            if hint:
                message += f" (did you mean {hint!r}?)"
            self.add(
                node_id,
                class_type,
                name,
                message,
                code="value_not_in_list",
                allowed=list(choices),
                suggestion=hint,
            )
            return
        if kind in ("INT", "FLOAT"):
            self.check_number(node_id, class_type, name, value, kind, options)
        elif kind == "BOOLEAN" and not isinstance(value, bool):
            self.add(
                node_id,
                class_type,
                name,
                f"expects true or false, got {value!r}",
                code="invalid_input_type",
            )
        elif kind == "STRING" and not isinstance(value, str):
            self.add(
                node_id,
                class_type,
                name,
                f"expects a string, got {value!r}",
                code="invalid_input_type",
            )

    def check_number(
        self,
        node_id: str,
        class_type: str,
        name: str,
        value: Any,
        kind: str,
        options: Mapping[str, Any],
    ) -> None:
        if isinstance(value, str):  # ComfyUI converts with int()/float(); so do we
            with contextlib.suppress(ValueError):
                value = int(value) if kind == "INT" else float(value)
        integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (kind == "INT" and not integral)
        ):
            expected = "an integer" if kind == "INT" else "a number"
            self.add(
                node_id,
                class_type,
                name,
                f"expects {expected}, got {value!r}",
                code="invalid_input_type",
            )
            return
        low, high = options.get("min"), options.get("max")
        if isinstance(low, int | float) and value < low:
            self.add(
                node_id,
                class_type,
                name,
                f"value {value} is smaller than the minimum {low}",
                code="value_smaller_than_min",
            )
        if isinstance(high, int | float) and value > high:
            self.add(
                node_id,
                class_type,
                name,
                f"value {value} is bigger than the maximum {high}",
                code="value_bigger_than_max",
            )
