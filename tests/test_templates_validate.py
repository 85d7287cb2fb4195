"""validate_graph against the recorded /object_info: the same mistakes ComfyUI rejected."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from comfy_mcp.templates import (
    Binding,
    GraphIssue,
    Parameter,
    combo_choices,
    is_api_format,
    is_ui_format,
    validate_graph,
)
from tests.conftest import recorded_object_info

FIXTURES = Path(__file__).parent / "fixtures"


def _object_info() -> dict[str, Any]:
    return recorded_object_info()


def object_info() -> dict[str, Any]:
    """The recorded /object_info (478 classes), copied so tests may patch it."""
    return copy.deepcopy(_object_info())


def workflow(name: str) -> dict[str, Any]:
    graph: dict[str, Any] = json.loads((FIXTURES / f"workflow_{name}.json").read_text("utf-8"))
    return graph


def only(issues: list[GraphIssue]) -> GraphIssue:
    assert len(issues) == 1, [str(i) for i in issues]
    return issues[0]


@pytest.mark.parametrize(
    "name", ["invert_scale", "load_scale", "load_subfolder", "preview", "empty_save"]
)
def test_recorded_valid_workflows_have_no_issues(name: str) -> None:
    assert validate_graph(workflow(name), object_info()) == []


def test_unknown_class_with_suggestion() -> None:
    issue = only(validate_graph(workflow("invalid_invalid_class"), object_info()))
    assert (issue.node_id, issue.class_type, issue.code) == (
        "2",
        "NoSuchNodeClass",
        "invalid_class",
    )
    assert "unknown node class 'NoSuchNodeClass'" in issue.message

    graph = workflow("invert_scale")
    graph["2"]["class_type"] = "ImageInvrt"
    issue = only(validate_graph(graph, object_info()))
    assert issue.suggestion == "ImageInvert"
    assert issue.message == "unknown node class 'ImageInvrt' (did you mean 'ImageInvert'?)"


def test_missing_class_type() -> None:
    issue = only(validate_graph(workflow("invalid_missing_class_type"), object_info()))
    assert (issue.node_id, issue.code) == ("1", "missing_class_type")


def test_missing_required_input() -> None:
    issue = only(validate_graph(workflow("invalid_missing_input"), object_info()))
    assert (issue.node_id, issue.class_type, issue.input_name) == ("2", "ImageScale", "width")
    assert issue.code == "required_input_missing"
    assert str(issue) == "node 2 (ImageScale), input 'width': required input 'width' is missing"


def test_link_to_missing_node() -> None:
    issue = only(validate_graph(workflow("invalid_bad_link_source"), object_info()))
    assert issue.message == "linked to node '99', which is not in the graph"
    assert issue.input_name == "images"


def test_link_to_missing_output_slot() -> None:
    graph = workflow("invert_scale")
    graph["2"]["inputs"]["image"] = ["1", 3]
    issue = only(validate_graph(graph, object_info()))
    assert issue.code == "bad_link_slot"
    assert issue.message == "linked to output 3 of node 1 (EmptyImage), which has 1 output(s)"


def test_type_mismatch() -> None:
    issue = only(validate_graph(workflow("invalid_type_mismatch"), object_info()))
    assert issue.code == "return_type_mismatch"
    assert issue.message == (
        "expects IMAGE but is linked to output 0 of node 1 (EmptyLatentImage), which gives LATENT"
    )


def test_wildcard_and_comma_types_match() -> None:
    info = object_info()
    info["ImageInvert"]["input"]["required"]["image"] = ["LATENT,IMAGE"]
    info["SaveImage"]["input"]["required"]["images"] = ["*"]
    graph = workflow("invert_scale")
    assert validate_graph(graph, info) == []


def test_value_not_in_legacy_combo() -> None:
    issue = only(validate_graph(workflow("invalid_value_not_in_list"), object_info()))
    assert issue.code == "value_not_in_list"
    assert issue.allowed == ["sd15-placeholder.safetensors", "sdxl-placeholder.safetensors"]
    assert issue.message.startswith("'does-not-exist.safetensors' is not one of: sd15-placeholder")


def test_value_not_in_v3_combo_with_suggestion() -> None:
    info = object_info()
    spec = info["UpscaleModelLoader"]["input"]["required"]["model_name"]
    assert spec[0] == "COMBO"
    spec[1]["options"] = ["4x-UltraSharp.pth", "RealESRGAN_x4plus.pth"]
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}},
        "2": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "RealESRGAN_x4.pth"}},
        "3": {
            "class_type": "ImageUpscaleWithModel",
            "inputs": {"upscale_model": ["2", 0], "image": ["1", 0]},
        },
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "u"}},
    }
    parameters = [
        Parameter(
            "upscale_model", "enum", (Binding("2", "model_name"),), choices_from="upscale_models"
        )
    ]
    issue = only(validate_graph(graph, info, parameters=parameters))
    assert issue.suggestion == "RealESRGAN_x4plus.pth"
    assert issue.parameter == "upscale_model"
    assert issue.allowed == ["4x-UltraSharp.pth", "RealESRGAN_x4plus.pth"]


def test_upload_combos_are_not_checked() -> None:
    """LoadImage lists only top-level input files; subfolders and fresh uploads are valid."""
    graph = workflow("load_subfolder")
    assert graph["1"]["inputs"]["image"] == "fixtures/fixture-upload.png"
    graph["1"]["inputs"]["image"] = "uploaded-a-moment-ago.png"
    assert validate_graph(graph, object_info()) == []


def test_value_above_max_names_the_parameter() -> None:
    parameters = [Parameter("width", "integer", (Binding("1", "width"),), default=64)]
    issue = only(
        validate_graph(workflow("invalid_value_too_big"), object_info(), parameters=parameters)
    )
    assert issue.code == "value_bigger_than_max"
    assert issue.message == "value 99999 is bigger than the maximum 16384"
    assert issue.parameter == "width"
    assert str(issue) == (
        "node 1 (EmptyImage), input 'width', parameter 'width': "
        "value 99999 is bigger than the maximum 16384"
    )


def test_value_below_min_and_wrong_types() -> None:
    graph = workflow("invert_scale")
    graph["1"]["inputs"].update({"width": 0, "height": "tall", "batch_size": True})
    graph["3"]["inputs"]["crop"] = 5
    issues = validate_graph(graph, object_info())
    assert [(i.input_name, i.code) for i in issues] == [
        ("width", "value_smaller_than_min"),
        ("height", "invalid_input_type"),
        ("batch_size", "invalid_input_type"),
        ("crop", "value_not_in_list"),
    ]


def test_numeric_strings_are_accepted_like_comfyui_does() -> None:
    graph = workflow("invert_scale")
    graph["1"]["inputs"]["width"] = "128"
    assert validate_graph(graph, object_info()) == []


def test_no_output_node() -> None:
    issue = only(validate_graph(workflow("invalid_no_outputs"), object_info()))
    assert issue.code == "prompt_no_outputs"
    assert issue.node_id is None


def test_all_issues_returned_together() -> None:
    graph = workflow("partially_invalid")
    graph["1"]["inputs"]["width"] = 99999
    graph["4"]["inputs"]["images"] = ["77", 0]
    codes = [i.code for i in validate_graph(graph, object_info())]
    assert codes == ["value_bigger_than_max", "value_not_in_list", "bad_link_source"]


def test_ui_format_is_detected() -> None:
    ui = {"nodes": [{"id": 1, "type": "EmptyImage"}], "links": [], "version": 0.4}
    assert is_ui_format(ui)
    assert not is_api_format(ui)
    issue = only(validate_graph(ui, object_info()))
    assert issue.code == "ui_format"
    assert is_api_format(workflow("invert_scale"))
    assert not is_ui_format(workflow("invert_scale"))
    assert not is_api_format({})
    assert not is_api_format([1, 2])


def test_combo_choices_reads_both_forms() -> None:
    info = object_info()
    assert combo_choices(info, "CheckpointLoaderSimple", "ckpt_name") == [
        "sd15-placeholder.safetensors",
        "sdxl-placeholder.safetensors",
    ]
    assert combo_choices(info, "UpscaleModelLoader", "model_name") == []
    assert "euler" in (combo_choices(info, "KSampler", "sampler_name") or [])
    assert combo_choices(info, "KSampler", "steps") is None
    assert combo_choices(info, "LoadImageOutput", "image") is None  # remote list, no options
    assert combo_choices(info, "NoSuchNode", "x") is None
