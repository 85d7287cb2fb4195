"""Parameter inference for plain API-format exports."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from comfy_mcp.templates import (
    Binding,
    Parameter,
    TemplateCatalog,
    infer_parameters,
    template_from_document,
    validate_graph,
)
from tests.conftest import recorded_object_info

FIXTURES = Path(__file__).parent / "fixtures"


def _object_info() -> dict[str, Any]:
    return recorded_object_info()


def bundled_graph(name: str) -> dict[str, Any]:
    """The graph of a bundled template, i.e. what a plain API export of it looks like."""
    return copy.deepcopy(TemplateCatalog([]).get(name).graph)


def by_name(parameters: tuple[Parameter, ...]) -> dict[str, Parameter]:
    return {p.name: p for p in parameters}


def test_txt2img_export() -> None:
    parameters = infer_parameters(bundled_graph("txt2img"))
    assert [p.name for p in parameters] == [
        "prompt",
        "negative_prompt",
        "seed",
        "checkpoint",
        "width",
        "height",
        "batch_size",
        "steps",
        "cfg",
        "sampler",
        "scheduler",
        "denoise",
        "filename_prefix",
    ]
    named = by_name(parameters)
    assert named["prompt"].bindings == (Binding("6", "text"),)
    assert named["negative_prompt"].bindings == (Binding("7", "text"),)
    assert named["prompt"].default.startswith("a lighthouse")
    assert named["sampler"].bindings == (Binding("3", "sampler_name"),)
    assert named["sampler"].choices_from == "samplers"
    assert named["checkpoint"].type == "enum"
    assert named["checkpoint"].default == "sd15-placeholder.safetensors"
    assert named["cfg"].type == "number"
    assert named["seed"].type == "seed"
    assert named["seed"].default is None  # random unless given
    assert all(p.inferred for p in parameters)


def test_prompts_follow_wiring_not_node_order() -> None:
    graph = bundled_graph("txt2img")
    graph["3"]["inputs"]["positive"], graph["3"]["inputs"]["negative"] = ["7", 0], ["6", 0]
    named = by_name(infer_parameters(graph))
    assert named["prompt"].bindings == (Binding("7", "text"),)
    assert named["negative_prompt"].bindings == (Binding("6", "text"),)


def test_prompts_traced_through_conditioning_nodes() -> None:
    graph = bundled_graph("txt2img")
    graph["20"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "style", "clip": ["4", 1]}}
    graph["21"] = {
        "class_type": "ConditioningCombine",
        "inputs": {"conditioning_1": ["6", 0], "conditioning_2": ["20", 0]},
    }
    graph["3"]["inputs"]["positive"] = ["21", 0]
    named = by_name(infer_parameters(graph))
    assert named["prompt"].bindings == (Binding("6", "text"),)
    assert named["prompt_2"].bindings == (Binding("20", "text"),)
    assert named["negative_prompt"].bindings == (Binding("7", "text"),)


def test_hires_fix_export_shares_seed_and_numbers_the_rest() -> None:
    named = by_name(infer_parameters(bundled_graph("hires_fix")))
    assert named["seed"].bindings == (Binding("3", "seed"), Binding("11", "seed"))
    assert named["steps"].bindings == (Binding("3", "steps"),)
    assert named["steps_2"].bindings == (Binding("11", "steps"),)
    assert named["denoise_2"].default == 0.5
    assert "prompt_2" not in named  # both samplers read the same encoders


def test_numbering_uses_numeric_node_order() -> None:
    graph = {
        "10": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "b"}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "a"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "x.png"}},
    }
    named = by_name(infer_parameters(graph))
    assert named["filename_prefix"].bindings == (Binding("9", "filename_prefix"),)
    assert named["filename_prefix_2"].bindings == (Binding("10", "filename_prefix"),)
    assert named["image"].type == "image"


def test_linked_inputs_are_not_parameters() -> None:
    graph = bundled_graph("txt2img")
    graph["30"] = {"class_type": "PrimitiveNode", "inputs": {"value": 7}}
    graph["3"]["inputs"]["steps"] = ["30", 0]
    assert "steps" not in by_name(infer_parameters(graph))


def test_object_info_gives_bounds() -> None:
    named = by_name(infer_parameters(bundled_graph("txt2img"), _object_info()))
    assert (named["width"].minimum, named["width"].maximum) == (16, 16384)
    assert (named["steps"].minimum, named["steps"].maximum) == (1, 10000)
    assert named["seed"].maximum == 2**64 - 1


def test_plain_export_becomes_a_fillable_inferred_template() -> None:
    template = template_from_document("mine", bundled_graph("txt2img"), source="mine.json")
    assert template.inferred
    assert template.summary()["inferred"] is True
    filled = template.fill({"prompt": "a fox", "steps": 12, "seed": 5})
    assert filled.graph["6"]["inputs"]["text"] == "a fox"
    assert filled.graph["3"]["inputs"]["steps"] == 12
    assert validate_graph(filled.graph, _object_info(), parameters=template.parameters) == []


def test_fixture_workflow_without_known_nodes() -> None:
    graph = json.loads((FIXTURES / "workflow_invert_scale.json").read_text(encoding="utf-8"))
    named = by_name(infer_parameters(graph))
    assert list(named) == ["width", "height", "batch_size", "filename_prefix"]
    assert named["width"].default == 128
