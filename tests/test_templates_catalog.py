"""TemplateCatalog (folders, reloads, broken files) and every bundled template."""

from __future__ import annotations

import copy
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from comfy_mcp.templates import (
    Template,
    TemplateCatalog,
    TemplateParameterError,
    UnknownTemplateError,
    bundled_directory,
    template_name,
    validate_graph,
)
from tests.conftest import recorded_object_info

FIXTURES = Path(__file__).parent / "fixtures"
BUNDLED = [
    "hires_fix",
    "img2img",
    "inpaint",
    "smoke",
    "txt2img",
    "txt2img_lora",
    "txt2img_sdxl",
    "upscale",
]


def _object_info() -> dict[str, Any]:
    return recorded_object_info()


def object_info() -> dict[str, Any]:
    return copy.deepcopy(_object_info())


def write(folder: Path, name: str, document: Any) -> Path:
    path = folder / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def bump_mtime(path: Path) -> None:
    """Make sure a rewrite is seen even on filesystems with coarse timestamps."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


SMOKE_GRAPH = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0},
    },
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "t"}},
}


def declared(width: int = 64) -> dict[str, Any]:
    return {
        "description": "mine",
        "parameters": {"width": {"type": "integer", "bind": "1.width", "default": width}},
        "graph": SMOKE_GRAPH,
    }


# --- catalog -------------------------------------------------------------------------------


def test_bundled_templates_are_found() -> None:
    catalog = TemplateCatalog([])
    assert catalog.names() == BUNDLED
    assert catalog.errors() == {}
    assert bundled_directory().name == "workflows"
    assert all(t.source == "bundled" for t in catalog.templates())


def test_user_folder_overrides_bundled_and_adds(tmp_path: Path) -> None:
    write(tmp_path, "txt2img.json", declared())
    write(tmp_path, "My Portrait (v2).json", SMOKE_GRAPH)
    catalog = TemplateCatalog([tmp_path])
    assert "my_portrait_v2" in catalog.names()
    mine = catalog.get("txt2img")
    assert mine.description == "mine"
    assert mine.source == str(tmp_path / "txt2img.json")
    assert catalog.get("My Portrait (v2)").name == "my_portrait_v2"


def test_earlier_user_folder_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    write(first, "x.json", declared(100))
    write(second, "x.json", declared(200))
    catalog = TemplateCatalog([first, second], include_bundled=False)
    assert catalog.get("x").parameter("width").default == 100


def test_unknown_template_lists_names() -> None:
    with pytest.raises(UnknownTemplateError) as caught:
        TemplateCatalog([]).get("txt2imgg")
    error = caught.value
    assert error.name == "txt2imgg"
    assert error.available == BUNDLED
    assert str(error) == (
        "unknown template 'txt2imgg' (did you mean 'txt2img'?); available templates: "
        + ", ".join(BUNDLED)
    )


def test_reloads_changed_added_and_removed_files(tmp_path: Path) -> None:
    catalog = TemplateCatalog([tmp_path], include_bundled=False)
    assert catalog.names() == []
    path = write(tmp_path, "x.json", declared(64))
    assert catalog.get("x").parameter("width").default == 64
    write(tmp_path, "x.json", declared(128))
    bump_mtime(path)
    assert catalog.get("x").parameter("width").default == 128
    path.unlink()
    assert catalog.names() == []


def test_unchanged_files_are_not_reparsed(tmp_path: Path) -> None:
    write(tmp_path, "x.json", declared())
    catalog = TemplateCatalog([tmp_path], include_bundled=False)
    first = catalog.get("x")
    assert catalog.get("x") is first


def test_broken_files_are_skipped_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "bad_json.json").write_text("{not json", encoding="utf-8")
    broken = declared()
    broken["parameters"]["width"]["bind"] = "9.width"
    write(tmp_path, "bad_bind.json", broken)
    write(tmp_path, "ui.json", {"nodes": [], "links": [], "version": 0.4})
    write(tmp_path, "good.json", declared())
    (tmp_path / "notes.txt").write_text("ignored", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="comfy_mcp.templates.catalog"):
        catalog = TemplateCatalog([tmp_path], include_bundled=False)
        assert catalog.names() == ["good"]
    errors = catalog.errors()
    assert set(errors) == {str(tmp_path / n) for n in ("bad_json.json", "bad_bind.json", "ui.json")}
    assert errors[str(tmp_path / "bad_json.json")].endswith(
        "invalid JSON at line 1 column 2: Expecting property name enclosed in double quotes"
    )
    assert errors[str(tmp_path / "bad_bind.json")] == (
        f"{tmp_path / 'bad_bind.json'}: parameter 'width': binds node '9', which is not in the "
        "graph (nodes: 1, 2)"
    )
    assert "UI-format workflow" in errors[str(tmp_path / "ui.json")]
    assert "skipping template" in caplog.text


def test_missing_folder_is_reported_not_fatal(tmp_path: Path) -> None:
    catalog = TemplateCatalog([tmp_path / "nope"])
    assert catalog.names() == BUNDLED
    assert catalog.errors() == {str(tmp_path / "nope"): "folder not found"}


def test_name_clash_in_one_folder(tmp_path: Path) -> None:
    write(tmp_path, "Art.json", declared(100))
    write(tmp_path, "art.json", declared(200))
    catalog = TemplateCatalog([tmp_path], include_bundled=False)
    assert catalog.names() == ["art"]
    assert catalog.get("art").parameter("width").default == 100  # "Art.json" sorts first
    assert "already used by Art.json" in catalog.errors()[str(tmp_path / "art.json")]


def test_template_names() -> None:
    assert template_name("TXT2IMG") == "txt2img"
    assert template_name("my workflow (final)") == "my_workflow_final"
    assert template_name("a-b_c") == "a-b_c"
    assert template_name("!!!") == ""


# --- bundled templates ---------------------------------------------------------------------


def required_values(template: Template, info: dict[str, Any]) -> dict[str, Any]:
    """Values for required parameters: the first live choice, or an uploaded file name."""
    live = template.live_choices(info)
    values: dict[str, Any] = {}
    for parameter in template.parameters:
        if not parameter.required:
            continue
        if parameter.type == "image":
            values[parameter.name] = "example.png"
        elif live.get(parameter.name):
            values[parameter.name] = live[parameter.name][0]
        else:
            values[parameter.name] = "4x-UltraSharp.pth"
    return values


def with_upscale_model(info: dict[str, Any]) -> dict[str, Any]:
    """The recorded server has no upscale model files; pretend it has one."""
    info["UpscaleModelLoader"]["input"]["required"]["model_name"][1]["options"] = [
        "4x-UltraSharp.pth",
        "RealESRGAN_x4plus.pth",
    ]
    return info


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_template_graph_is_valid(name: str) -> None:
    template = TemplateCatalog([]).get(name)
    info = with_upscale_model(object_info())
    issues = validate_graph(template.graph, info, parameters=template.parameters)
    assert [str(i) for i in issues] == []


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_template_fills_with_defaults_and_validates(name: str) -> None:
    template = TemplateCatalog([]).get(name)
    info = with_upscale_model(object_info())
    values = required_values(template, info)
    filled = template.fill(values, choices=template.live_choices(info))
    issues = validate_graph(filled.graph, info, parameters=template.parameters)
    assert [str(i) for i in issues] == []
    assert set(filled.values) == {p.name for p in template.parameters}
    assert all(p.description for p in template.parameters), "every parameter explains itself"
    assert template.description


def test_upscale_on_the_recorded_server_says_no_models_are_installed() -> None:
    template = TemplateCatalog([]).get("upscale")
    info = object_info()
    with pytest.raises(TemplateParameterError) as caught:
        template.fill({"image": "a.png"}, choices=template.live_choices(info))
    assert [p.message for p in caught.value.problems] == [
        "missing required parameter 'upscale_model' (enum); one of: (none available)"
    ]
    filled = template.fill({"image": "a.png", "upscale_model": "x.pth"})
    (issue,) = validate_graph(filled.graph, info, parameters=template.parameters)
    assert issue.parameter == "upscale_model"
    assert issue.message == "'x.pth' is not available: the server lists no choices for this input"


def test_smoke_runs_without_models() -> None:
    template = TemplateCatalog([]).get("smoke")
    assert all(not p.required for p in template.parameters)
    filled = template.fill({"width": 64, "height": 32, "color": 0xFF0000})
    assert filled.graph == {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 64, "height": 32, "batch_size": 1, "color": 16711680},
        },
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {
            "class_type": "SaveImage",
            "inputs": {"images": ["2", 0], "filename_prefix": "comfy_mcp_smoke"},
        },
    }
    info = object_info()
    for parameter in template.parameters:
        for binding in parameter.bindings:
            spec = info["EmptyImage"]["input"]["required"].get(binding.input_name)
            if spec is not None:  # declared limits are the node's real limits
                assert (parameter.minimum, parameter.maximum) == (spec[1]["min"], spec[1]["max"])


def test_txt2img_requires_a_checkpoint_and_fills_exactly() -> None:
    template = TemplateCatalog([]).get("txt2img")
    assert [p.name for p in template.parameters if p.required] == ["checkpoint"]
    filled = template.fill(
        {
            "checkpoint": "sd15-placeholder.safetensors",
            "prompt": 'a "quoted" \\ prompt\n🙂',
            "seed": 2**64 - 1,
            "sampler": "dpmpp_2m",
        },
        choices=template.live_choices(object_info()),
    )
    inputs = filled.graph["3"]["inputs"]
    assert inputs["seed"] == 18446744073709551615
    assert inputs["sampler_name"] == "dpmpp_2m"
    assert (inputs["steps"], inputs["cfg"], inputs["scheduler"]) == (20, 7.0, "normal")
    assert filled.graph["6"]["inputs"]["text"] == 'a "quoted" \\ prompt\n🙂'
    assert filled.graph["5"]["inputs"] == {"width": 512, "height": 512, "batch_size": 1}


def test_sdxl_defaults() -> None:
    template = TemplateCatalog([]).get("txt2img_sdxl")
    filled = template.fill({"checkpoint": "sdxl-placeholder.safetensors"})
    assert filled.graph["5"]["inputs"]["width"] == 1024
    assert filled.graph["5"]["inputs"]["height"] == 1024
    assert filled.graph["3"]["inputs"]["steps"] == 25
    assert filled.graph["3"]["inputs"]["cfg"] == 6.5


def test_hires_fix_shares_the_seed_between_passes() -> None:
    template = TemplateCatalog([]).get("hires_fix")
    filled = template.fill({"checkpoint": "c", "seed": 99, "hires_denoise": 0.4})
    assert filled.graph["3"]["inputs"]["seed"] == filled.graph["11"]["inputs"]["seed"] == 99
    assert filled.graph["11"]["inputs"]["denoise"] == 0.4
    assert filled.graph["3"]["inputs"]["denoise"] == 1.0
    random_run = template.fill({"checkpoint": "c"})
    assert random_run.graph["3"]["inputs"]["seed"] == random_run.graph["11"]["inputs"]["seed"]


def test_img2img_and_inpaint_take_images() -> None:
    catalog = TemplateCatalog([])
    img2img = catalog.get("img2img")
    assert img2img.parameter("image").type == "image"
    assert img2img.parameter("denoise").default == 0.6
    filled = img2img.fill({"checkpoint": "c", "image": "in/photo.png"})
    assert filled.graph["10"]["inputs"]["image"] == "in/photo.png"
    inpaint = catalog.get("inpaint")
    assert [p.name for p in inpaint.parameters if p.required] == ["checkpoint", "image", "mask"]
    filled = inpaint.fill(
        {"checkpoint": "c", "image": "a.png", "mask": "a.png", "mask_channel": "alpha"}
    )
    assert filled.graph["11"]["inputs"] == {"image": "a.png", "channel": "alpha"}


def test_lora_template_validates_with_loras_inserted() -> None:
    template = TemplateCatalog([]).get("txt2img_lora")
    info = object_info()
    live = template.live_choices(info)
    assert live["loras"] == [
        "detail-placeholder.safetensors",
        "style/anime-placeholder.safetensors",
    ]
    filled = template.fill(
        {
            "checkpoint": "sd15-placeholder.safetensors",
            "loras": [
                {"name": "detail-placeholder.safetensors", "strength": 0.8},
                {"name": "style/anime-placeholder.safetensors", "clip_strength": 0.5},
            ],
        },
        choices=live,
    )
    assert validate_graph(filled.graph, info, parameters=template.parameters) == []
    assert filled.graph["3"]["inputs"]["model"] == ["11", 0]
    assert filled.graph["11"]["inputs"]["strength_clip"] == 0.5


def test_the_documented_example_loads_fills_and_validates(tmp_path: Path) -> None:
    docs = (Path(__file__).parent.parent / "docs" / "workflows.md").read_text(encoding="utf-8")
    example = docs.split("`~/comfy-workflows/portrait.json`:\n\n```json\n", 1)[1].split("```", 1)[0]
    (tmp_path / "portrait.json").write_text(example, encoding="utf-8")
    catalog = TemplateCatalog([tmp_path], include_bundled=False)
    assert catalog.errors() == {}
    template = catalog.get("portrait")
    info = object_info()
    filled = template.fill(
        {"subject": "a lighthouse keeper", "checkpoint": "sd15-placeholder.safetensors"},
        choices=template.live_choices(info),
    )
    assert filled.graph["6"]["inputs"]["text"] == "a lighthouse keeper"
    assert validate_graph(filled.graph, info, parameters=template.parameters) == []
