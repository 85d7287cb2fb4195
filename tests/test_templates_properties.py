"""Properties of filling every bundled template with arbitrary valid arguments."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comfy_mcp.templates import (
    SEED_MAXIMUM,
    Parameter,
    Template,
    TemplateCatalog,
    TemplateParameterError,
    validate_graph,
)
from tests.conftest import recorded_object_info

FIXTURES = Path(__file__).parent / "fixtures"
TEXT = st.text(st.characters(codec="utf-8"), max_size=80)  # NUL, quotes, newlines, emoji…
FILE_NAME = st.from_regex(r"[a-z0-9_]{1,12}(/[a-z0-9_]{1,12})?\.png", fullmatch=True)


@cache
def object_info() -> dict[str, Any]:
    """The recorded /object_info, plus one upscale model (the recording has none)."""
    info = copy.deepcopy(recorded_object_info())
    info["UpscaleModelLoader"]["input"]["required"]["model_name"][1]["options"] = ["4x.pth"]
    return info


@cache
def bundled() -> dict[str, Template]:
    return {t.name: t for t in TemplateCatalog([]).templates()}


def argument(parameter: Parameter, live: dict[str, list[Any]]) -> st.SearchStrategy[Any]:
    """Arbitrary valid values for one parameter, including its extremes."""
    low, high = parameter.low, parameter.high
    if parameter.type == "string":
        return TEXT
    if parameter.type == "seed":
        return st.integers(0, SEED_MAXIMUM)
    if parameter.type == "integer":
        return st.integers(int(low or 0), int(high if high is not None else 2**31))
    if parameter.type == "number":
        return st.floats(low, high, allow_nan=False, allow_infinity=False)
    if parameter.type == "boolean":
        return st.booleans()
    if parameter.type == "image":
        return FILE_NAME
    if parameter.type == "lora_stack":
        entry = st.fixed_dictionaries(
            {"name": st.sampled_from(live[parameter.name]), "strength": st.floats(-2, 2)}
        )
        return st.lists(entry, max_size=3)
    allowed = live.get(parameter.name) or list(parameter.choices or ())
    return st.sampled_from(allowed)


@st.composite
def filled_template(draw: st.DrawFn) -> tuple[Template, dict[str, Any]]:
    template = draw(st.sampled_from(sorted(bundled().values(), key=lambda t: t.name)))
    live = template.live_choices(object_info())
    values: dict[str, Any] = {}
    for parameter in template.parameters:
        if parameter.required or draw(st.booleans()):
            values[parameter.name] = draw(argument(parameter, live))
    return template, values


def strip(graph: dict[str, Any], template: Template) -> dict[str, Any]:
    """The graph without the inputs a parameter may set (and without inserted LoRA nodes)."""
    stripped = {k: copy.deepcopy(v) for k, v in graph.items() if k in template.graph}
    for parameter in template.parameters:
        for binding in parameter.bindings:
            stripped[binding.node_id]["inputs"].pop(binding.input_name, None)
    for node in stripped.values():  # a LoRA stack rewires MODEL/CLIP links
        for name in ("model", "clip"):
            node["inputs"].pop(name, None)
    return stripped


@settings(max_examples=300, deadline=None)
@given(case=filled_template())
def test_any_valid_arguments_fill_exactly_and_validate(
    case: tuple[Template, dict[str, Any]],
) -> None:
    template, values = case
    before = copy.deepcopy(template.graph)
    filled = template.fill(values, choices=template.live_choices(object_info()))
    assert template.graph == before
    assert strip(filled.graph, template) == strip(before, template)
    round_tripped = json.loads(json.dumps(filled.graph))
    assert round_tripped == filled.graph
    for parameter in template.parameters:
        if parameter.type == "lora_stack":
            continue
        expected = filled.values[parameter.name]
        if parameter.name in values and parameter.type in ("string", "seed", "image", "enum"):
            assert expected == values[parameter.name]
        for binding in parameter.bindings:
            for graph in (filled.graph, round_tripped):
                assert graph[binding.node_id]["inputs"][binding.input_name] == expected
    issues = validate_graph(filled.graph, object_info(), parameters=template.parameters)
    assert [str(i) for i in issues] == []


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(bundled())), junk=st.dictionaries(TEXT, TEXT, max_size=4))
def test_junk_arguments_never_crash_or_mutate(name: str, junk: dict[str, Any]) -> None:
    template = bundled()[name]
    before = copy.deepcopy(template.graph)
    problems: list[str] = []
    try:
        template.fill(junk, choices=template.live_choices(object_info()))
    except TemplateParameterError as error:
        problems = [p.message for p in error.problems]
    assert all(problems)
    assert template.graph == before


@pytest.mark.parametrize("value", [[1, 2], "prompt=x", 5])
def test_non_mapping_arguments_are_rejected(value: Any) -> None:
    with pytest.raises(TemplateParameterError, match="arguments must be an object"):
        bundled()["smoke"].fill(value)
