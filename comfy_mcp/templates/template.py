"""A template: a parsed API-format graph plus typed parameters bound to its inputs.

``fill`` checks every argument first and reports all problems in one error, then sets the
values on a deep copy of the graph. The template itself is never mutated and never turned
into text, so the same object serves concurrent calls.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from comfy_mcp.templates.errors import (
    ParameterProblem,
    TemplateLoadError,
    TemplateParameterError,
    closest,
    format_choices,
)
from comfy_mcp.templates.graph import is_api_format, is_link, node_inputs
from comfy_mcp.templates.loras import insert_lora_stack
from comfy_mcp.templates.objectinfo import live_choices
from comfy_mcp.templates.params import (
    RANDOM_SEED_LIMIT,
    InvalidValue,
    Parameter,
    check_value,
)


@dataclass(frozen=True)
class FilledWorkflow:
    """A graph ready to submit, and the values actually used (random seeds included), so
    the caller can report them and a user can reproduce the run."""

    graph: dict[str, Any]
    values: dict[str, Any]


@dataclass(frozen=True)
class Template:
    """A named workflow with typed parameters. Construction checks every binding, so a
    template that exists can always be filled."""

    name: str
    description: str
    graph: dict[str, Any]
    parameters: tuple[Parameter, ...]
    source: str = "bundled"
    inferred: bool = False
    _by_name: dict[str, Parameter] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not is_api_format(self.graph):
            raise TemplateLoadError(
                "the graph is not in ComfyUI API format ({node_id: {class_type, inputs}})",
                source=self.source,
            )
        by_name: dict[str, Parameter] = {}
        claimed: dict[str, str] = {}
        for parameter in self.parameters:
            if parameter.name in by_name:
                raise TemplateLoadError(
                    "declared twice", source=self.source, parameter=parameter.name
                )
            by_name[parameter.name] = parameter
            for binding in parameter.bindings:
                self._check_binding(parameter, binding.node_id, binding.input_name)
                target = str(binding)
                if target in claimed:
                    raise TemplateLoadError(
                        f"binds {target}, already bound to parameter {claimed[target]!r}",
                        source=self.source,
                        parameter=parameter.name,
                    )
                claimed[target] = parameter.name
        object.__setattr__(self, "_by_name", by_name)

    def _check_binding(self, parameter: Parameter, node_id: str, input_name: str) -> None:
        def fail(message: str) -> TemplateLoadError:
            return TemplateLoadError(message, source=self.source, parameter=parameter.name)

        if node_id not in self.graph:
            nodes = ", ".join(sorted(self.graph))
            raise fail(f"binds node {node_id!r}, which is not in the graph (nodes: {nodes})")
        if parameter.type == "lora_stack":
            if input_name:
                raise fail("a lora_stack binds a loader node id (e.g. '4'), not 'node.input'")
            return
        inputs = node_inputs(self.graph[node_id])
        if not input_name:
            raise fail(f"bind {node_id!r} must name an input, as 'node_id.input_name'")
        if input_name not in inputs:
            valid = ", ".join(sorted(inputs)) or "(none)"
            raise fail(
                f"binds {node_id}.{input_name}, but node {node_id} has no input "
                f"{input_name!r} (its inputs: {valid})"
            )
        if is_link(inputs[input_name]):
            raise fail(f"binds {node_id}.{input_name}, which is a link to another node")

    def parameter(self, name: str) -> Parameter:
        """The parameter called ``name``; KeyError names the valid ones."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(
                f"template {self.name!r} has no parameter {name!r}; "
                f"valid parameters: {', '.join(self._by_name) or '(none)'}"
            ) from None

    def summary(self) -> dict[str, Any]:
        """A JSON-able description for listing templates to an agent."""
        return {
            "name": self.name,
            "description": self.description,
            "inferred": self.inferred,
            "source": self.source,
            "parameters": [_parameter_summary(p) for p in self.parameters],
        }

    def json_schema(self) -> dict[str, Any]:
        """A flat JSON object schema of all parameters, for an MCP tool's input schema."""
        return {
            "type": "object",
            "properties": {p.name: p.json_schema() for p in self.parameters},
            "required": [p.name for p in self.parameters if p.required],
            "additionalProperties": False,
        }

    def live_choices(self, object_info: Mapping[str, Any]) -> dict[str, list[Any]]:
        """Run-time choice lists for this template's ``choices_from`` parameters."""
        return live_choices(self.parameters, self.graph, object_info)

    def fill(
        self,
        values: Mapping[str, Any],
        *,
        choices: Mapping[str, Sequence[Any]] | None = None,
        rng: random.Random | None = None,
    ) -> FilledWorkflow:
        """Check ``values`` and return a filled copy of the graph.

        An explicit None counts as "not given" (JSON clients send null for omitted fields).
        ``choices`` maps parameter names to their live allowed values. Raises one
        TemplateParameterError listing every problem when anything is wrong.
        """
        if not isinstance(values, Mapping):
            raise TemplateParameterError(
                [
                    ParameterProblem(
                        "",
                        f"arguments must be an object of name → value, got {type(values).__name__}",
                        list(self._by_name),
                    )
                ],
                template=self.name,
            )
        live = choices or {}
        problems = [self._unknown(str(key)) for key in values if key not in self._by_name]
        resolved: dict[str, Any] = {}
        for parameter in self.parameters:
            try:
                resolved[parameter.name] = self._resolve(
                    parameter, values.get(parameter.name), live.get(parameter.name), rng
                )
            except InvalidValue as problem:
                problems.append(ParameterProblem(parameter.name, problem.message, problem.allowed))
        if problems:
            raise TemplateParameterError(problems, template=self.name)

        graph = copy.deepcopy(self.graph)
        for parameter in self.parameters:
            value = resolved[parameter.name]
            if parameter.type == "lora_stack":
                insert_lora_stack(graph, parameter.bindings[0].node_id, value)
                continue
            for binding in parameter.bindings:
                graph[binding.node_id]["inputs"][binding.input_name] = copy.deepcopy(value)
        return FilledWorkflow(graph=graph, values=resolved)

    def _unknown(self, key: str) -> ParameterProblem:
        names = list(self._by_name)
        hint = closest(key, names)
        message = f"unknown parameter {key!r}"
        if hint is not None:
            message += f" (did you mean {hint!r}?)"
        message += f"; valid parameters: {', '.join(names) or '(none)'}"
        return ParameterProblem(key, message, names)

    def _resolve(
        self,
        parameter: Parameter,
        raw: Any,
        live: Sequence[Any] | None,
        rng: random.Random | None,
    ) -> Any:
        if parameter.type == "seed" and (
            _is_minus_one(raw) or (raw is None and parameter.default is None)
        ):
            return _random_seed(parameter, rng)
        if raw is not None:
            return check_value(parameter, raw, live)
        if parameter.type == "lora_stack" and parameter.default is None:
            return []
        if parameter.default is None:
            allowed = list(live) if live is not None else _static(parameter)
            message = f"missing required parameter {parameter.name!r} ({parameter.type})"
            if allowed is not None:
                message += f"; one of: {format_choices(allowed)}"
            raise InvalidValue(message, allowed)
        try:
            return check_value(parameter, parameter.default, live)
        except InvalidValue as problem:
            raise InvalidValue(
                f"the default of {parameter.name!r} is not usable on this server: "
                f"{problem.message}; pass {parameter.name!r} explicitly",
                problem.allowed,
            ) from None


def _static(parameter: Parameter) -> list[Any] | None:
    return list(parameter.choices) if parameter.choices is not None else None


def _is_minus_one(value: Any) -> bool:
    """-1 is the conventional "random seed" (ComfyUI's own UI and most API clients)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return value == -1
    return isinstance(value, str) and value.strip() == "-1"


def _random_seed(parameter: Parameter, rng: random.Random | None) -> int:
    low = int(parameter.low or 0)
    high = int(parameter.high) if parameter.high is not None else RANDOM_SEED_LIMIT - 1
    high = min(high, RANDOM_SEED_LIMIT - 1)
    source = rng if rng is not None else random
    return source.randint(low, max(low, high))


def _parameter_summary(parameter: Parameter) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "name": parameter.name,
        "type": parameter.type,
        "description": parameter.description,
        "required": parameter.required,
        "default": parameter.default,
    }
    if parameter.low is not None:
        summary["minimum"] = parameter.low
    if parameter.high is not None:
        summary["maximum"] = parameter.high
    if parameter.choices is not None:
        summary["choices"] = list(parameter.choices)
    if parameter.choices_from is not None:
        summary["choices_from"] = parameter.choices_from
    summary["bound_to"] = [str(b) for b in parameter.bindings]
    summary["inferred"] = parameter.inferred
    return summary
