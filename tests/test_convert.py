"""UI-format → API-format conversion (comfy_mcp.templates.convert).

Hand-made editor files in fixtures/ui/ are converted and compared with API graphs written
by hand from the frontend's rules; the error cases check that ambiguity is refused, not
guessed; a property test round-trips widget values through the editor's layout; and,
when the ``comfyui-workflow-templates-json`` package is installed, every official
template whose node classes the recorded server knows is converted and validated.
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comfy_mcp.templates import ConversionError, convert_ui_workflow, validate_graph
from comfy_mcp.templates.convert import to_api_format
from comfy_mcp.templates.convert_text import format_date
from comfy_mcp.templates.convert_widgets import widget_layout
from comfy_mcp.templates.objectinfo import INPUT_SECTIONS, input_specs, spec_options, spec_type

UI_FIXTURES = Path(__file__).parent / "fixtures" / "ui"
NOW = datetime(2024, 3, 5, 7, 8, 9)


def ui_fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((UI_FIXTURES / f"{name}.json").read_text("utf-8"))
    return data


def convert(ui: dict[str, Any], object_info: dict[str, Any]) -> dict[str, Any]:
    return convert_ui_workflow(ui, object_info, now=NOW)


def node(ui: dict[str, Any], node_id: int) -> dict[str, Any]:
    found: dict[str, Any] = next(n for n in ui["nodes"] if n["id"] == node_id)
    return found


# --- hand-made fixtures with exact expected API graphs --------------------------------


@pytest.mark.parametrize(
    "name", ["txt2img", "reroute_bypass_mute", "primitive_loadimage", "subgraph"]
)
def test_fixture_converts_to_the_expected_api_graph(name: str, object_info: dict[str, Any]) -> None:
    expected = json.loads((UI_FIXTURES / f"{name}.api.json").read_text("utf-8"))
    assert convert(ui_fixture(name), object_info) == expected


@pytest.mark.parametrize("name", ["txt2img", "primitive_loadimage", "subgraph"])
def test_converted_fixture_validates(name: str, object_info: dict[str, Any]) -> None:
    assert validate_graph(convert(ui_fixture(name), object_info), object_info) == []


def test_input_linked_to_a_muted_node_is_dropped(object_info: dict[str, Any]) -> None:
    # The frontend drops muted nodes and every link to them; ComfyUI then reports the
    # required input as missing, exactly as it would for the editor's own queueing.
    graph = convert(ui_fixture("reroute_bypass_mute"), object_info)
    issues = validate_graph(graph, object_info)
    assert [(i.node_id, i.input_name, i.code) for i in issues] == [
        ("18", "images", "required_input_missing")
    ]


def test_date_token_defaults_to_the_current_time(object_info: dict[str, Any]) -> None:
    before = datetime.now().strftime("%Y-%m-%d")
    graph = convert_ui_workflow(ui_fixture("txt2img"), object_info)
    after = datetime.now().strftime("%Y-%m-%d")
    prefix = graph["9"]["inputs"]["filename_prefix"]
    assert prefix.startswith((f"txt2img/{before}/", f"txt2img/{after}/"))


# --- refusing to guess -------------------------------------------------------------------


def test_unknown_class_names_every_offending_node(object_info: dict[str, Any]) -> None:
    ui = ui_fixture("txt2img")
    node(ui, 8)["type"] = "VAEDecodeTiledCustom"
    node(ui, 9)["type"] = "SaveImageExtended"
    with pytest.raises(ConversionError) as caught:
        convert(ui, object_info)
    assert caught.value.code == "unknown_class"
    assert caught.value.node_ids == ["8", "9"]
    assert "VAEDecodeTiledCustom" in str(caught.value)


def test_unknown_class_is_fine_when_muted_or_bypassed(object_info: dict[str, Any]) -> None:
    ui = ui_fixture("reroute_bypass_mute")
    node(ui, 15)["type"] = "CustomInvert"  # bypassed: only its UI slots are needed
    graph = convert(ui, object_info)
    assert graph["9"]["inputs"]["images"] == ["8", 0]


def test_group_nodes_are_refused_with_a_hint(object_info: dict[str, Any]) -> None:
    ui = ui_fixture("txt2img")
    node(ui, 5)["type"] = "workflow>Latent"
    ui["extra"]["groupNodes"] = {"Latent": {"nodes": []}}
    with pytest.raises(ConversionError, match="Export \\(API\\)") as caught:
        convert(ui, object_info)
    assert (caught.value.code, caught.value.node_ids) == ("group_node", ["5"])


def test_widget_count_mismatch_names_node_and_class(object_info: dict[str, Any]) -> None:
    ui = ui_fixture("txt2img")
    node(ui, 5)["widgets_values"] = [512, 768, 1, "extra from a newer ComfyUI"]
    with pytest.raises(ConversionError, match="node 5 \\(EmptyLatentImage\\)") as caught:
        convert(ui, object_info)
    assert (caught.value.code, caught.value.node_ids) == ("widget_values_mismatch", ["5"])


def test_misaligned_control_value_is_refused(object_info: dict[str, Any]) -> None:
    # Same count, but the seed's control value is not where it belongs: the values were
    # saved for a different input list, so every later input would get a wrong value.
    ui = ui_fixture("txt2img")
    node(ui, 3)["widgets_values"] = [1, 20, "randomize", 7.5, "euler", "karras", 1]
    with pytest.raises(ConversionError, match="control mode of 'seed'") as caught:
        convert(ui, object_info)
    assert caught.value.node_ids == ["3"]


def test_missing_widget_values_are_refused(object_info: dict[str, Any]) -> None:
    ui = ui_fixture("txt2img")
    del node(ui, 5)["widgets_values"]
    with pytest.raises(ConversionError, match="saved 0 widget value"):
        convert(ui, object_info)


def test_trailing_nulls_from_display_widgets_are_ignored(object_info: dict[str, Any]) -> None:
    ui = ui_fixture("txt2img")
    node(ui, 9)["widgets_values"] = ["plain", None, None]
    assert convert(ui, object_info)["9"]["inputs"]["filename_prefix"] == "plain"


def test_dict_widget_values_are_matched_by_name(object_info: dict[str, Any]) -> None:
    ui = ui_fixture("txt2img")
    node(ui, 5)["widgets_values"] = {"height": 640, "width": 320, "batch_size": 2, "ui": 1}
    inputs = convert(ui, object_info)["5"]["inputs"]
    assert inputs == {"width": 320, "height": 640, "batch_size": 2}


def test_list_valued_widget_is_boxed_so_it_is_not_read_as_a_link(
    object_info: dict[str, Any],
) -> None:
    ui = ui_fixture("txt2img")
    node(ui, 7)["widgets_values"] = [["not", "a", "link"]]
    assert convert(ui, object_info)["7"]["inputs"]["text"] == {"__value__": ["not", "a", "link"]}


def test_dangling_link_is_refused(object_info: dict[str, Any]) -> None:
    ui = ui_fixture("txt2img")
    ui["links"] = [link for link in ui["links"] if link[0] != 9]
    with pytest.raises(ConversionError, match="link 9") as caught:
        convert(ui, object_info)
    assert (caught.value.code, caught.value.node_ids) == ("broken_link", ["9"])


def test_reroute_cycle_is_refused(object_info: dict[str, Any]) -> None:
    ui = ui_fixture("reroute_bypass_mute")
    node(ui, 20)["inputs"][0]["link"] = 12  # 20 → 21 → 20
    ui["links"].append([99, 21, 0, 20, 0, "VAE"])
    node(ui, 20)["inputs"][0]["link"] = 99
    with pytest.raises(ConversionError, match="cycle") as caught:
        convert(ui, object_info)
    assert caught.value.code == "link_cycle"


def test_reference_to_a_missing_node_is_refused(object_info: dict[str, Any]) -> None:
    ui = ui_fixture("txt2img")
    node(ui, 9)["widgets_values"] = ["%Sampler.seed%"]
    with pytest.raises(ConversionError, match=r"%Sampler\.seed% names no node") as caught:
        convert(ui, object_info)
    assert (caught.value.code, caught.value.node_ids) == ("unresolved_reference", ["9"])


def test_reference_matching_two_nodes_with_different_values_is_refused(
    object_info: dict[str, Any],
) -> None:
    ui = ui_fixture("txt2img")
    node(ui, 9)["widgets_values"] = ["%CLIPTextEncode.text%"]
    with pytest.raises(ConversionError, match="matches nodes 6, 7") as caught:
        convert(ui, object_info)
    assert caught.value.code == "ambiguous_reference"


def test_reference_matching_two_nodes_with_equal_values_is_fine(
    object_info: dict[str, Any],
) -> None:
    ui = ui_fixture("txt2img")
    node(ui, 7)["widgets_values"] = node(ui, 6)["widgets_values"]
    node(ui, 9)["widgets_values"] = ["%CLIPTextEncode.text%"]
    prefix = convert(ui, object_info)["9"]["inputs"]["filename_prefix"]
    assert prefix == "a lighthouse at dusk, _oil_ painting 🎨"


def test_reference_to_a_value_computed_at_run_time_is_refused(
    object_info: dict[str, Any],
) -> None:
    ui = ui_fixture("txt2img")
    ui["nodes"].append(
        {
            "id": 20,
            "type": "PrimitiveInt",
            "mode": 0,
            "inputs": [],
            "outputs": [{"name": "INT", "type": "INT", "links": [20]}],
            "widgets_values": [5, "fixed"],
        }
    )
    ui["links"].append([20, 20, 0, 3, 4, "INT"])
    node(ui, 3)["inputs"][4]["link"] = 20
    with pytest.raises(ConversionError, match="only known when the graph runs"):
        convert(ui, object_info)
    node(ui, 9)["widgets_values"] = ["plain"]
    assert convert(ui, object_info)["3"]["inputs"]["seed"] == ["20", 0]


def test_subgraph_instance_with_misfit_values_is_refused(object_info: dict[str, Any]) -> None:
    ui = ui_fixture("subgraph")
    node(ui, 50)["widgets_values"] = ["a red fox", 99, "fixed", "one too many"]
    with pytest.raises(ConversionError, match="subgraph instance 50") as caught:
        convert(ui, object_info)
    assert caught.value.code == "widget_values_mismatch"


def test_nested_subgraph_ids_carry_the_instance_path(object_info: dict[str, Any]) -> None:
    # Wrap the whole root graph of the subgraph fixture in an outer subgraph used once.
    inner = ui_fixture("subgraph")
    outer_def = {
        "id": "sg-outer",
        "name": "Everything",
        "inputs": [],
        "outputs": [],
        "nodes": inner["nodes"],
        "links": [
            {
                "id": link[0],
                "origin_id": link[1],
                "origin_slot": link[2],
                "target_id": link[3],
                "target_slot": link[4],
                "type": link[5],
            }
            for link in inner["links"]
        ],
    }
    ui = {
        "nodes": [{"id": 70, "type": "sg-outer", "mode": 0, "inputs": [], "outputs": []}],
        "links": [],
        "definitions": {"subgraphs": [*inner["definitions"]["subgraphs"], outer_def]},
    }
    graph = convert(ui, object_info)
    expected = json.loads((UI_FIXTURES / "subgraph.api.json").read_text("utf-8"))

    def prefixed(value: Any) -> Any:
        return [f"70:{value[0]}", value[1]] if isinstance(value, list) else value

    assert graph == {
        f"70:{key}": {**entry, "inputs": {k: prefixed(v) for k, v in entry["inputs"].items()}}
        for key, entry in expected.items()
    }


# --- widget layout and text tokens -------------------------------------------------------


def layout(info: dict[str, Any]) -> list[tuple[str, str]]:
    return [(slot.role, slot.input_name) for slot in widget_layout(info)]


def test_layout_of_ksampler_and_load_image(object_info: dict[str, Any]) -> None:
    assert layout(object_info["KSampler"]) == [
        ("value", "seed"),
        ("control", "seed"),
        ("value", "steps"),
        ("value", "cfg"),
        ("value", "sampler_name"),
        ("value", "scheduler"),
        ("value", "denoise"),
    ]
    assert layout(object_info["LoadImage"]) == [("value", "image"), ("upload", "image")]
    assert layout(object_info["LoadImageMask"]) == [
        ("value", "image"),
        ("value", "channel"),
        ("upload", "image"),
    ]


def test_layout_rules_for_controls_force_input_and_order() -> None:
    info = {
        "input": {
            "required": {
                "text": ["STRING", {"forceInput": True}],
                "seed": ["INT", {"control_after_generate": False}],
                "noise_seed": ["INT", {}],
                "pick": [["a", "b"], {"control_after_generate": True}],
                "image": ["IMAGE", {}],
            },
            "optional": {"strength": ["FLOAT", {}], "flag": ["BOOLEAN", {}]},
        },
        "input_order": {"required": ["pick", "seed", "noise_seed", "text", "image"]},
    }
    assert layout(info) == [
        ("value", "pick"),
        ("control", "pick"),
        ("filter", "pick"),
        ("value", "seed"),
        ("value", "noise_seed"),
        ("control", "noise_seed"),
        ("value", "strength"),
        ("value", "flag"),
    ]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("yyyy-MM-dd", "2024-03-05"),
        ("yy/M/d", "24/3/5"),
        ("hh:mm:ss", "07:08:09"),
        ("h-m-s", "7-8-9"),
        ("yyy", "yyy"),
        ("literal text", "literal text"),
    ],
)
def test_format_date_matches_the_frontend(pattern: str, expected: str) -> None:
    assert format_date(pattern, NOW) == expected


def test_server_side_tokens_are_left_alone(object_info: dict[str, Any]) -> None:
    ui = ui_fixture("txt2img")
    node(ui, 9)["widgets_values"] = ["%width%x%height%_%year%_%date:yy%"]
    prefix = convert(ui, object_info)["9"]["inputs"]["filename_prefix"]
    assert prefix == "%width%x%height%_%year%_24"


# --- to_api_format -------------------------------------------------------------------------


def test_to_api_format_copies_api_graphs(object_info: dict[str, Any]) -> None:
    api = json.loads((UI_FIXTURES / "txt2img.api.json").read_text("utf-8"))
    copied = to_api_format(api, object_info)
    assert copied == api
    copied["3"]["inputs"]["seed"] = 1
    assert api["3"]["inputs"]["seed"] == 123456789012345678


def test_to_api_format_converts_ui_files(object_info: dict[str, Any]) -> None:
    graph = to_api_format(ui_fixture("reroute_bypass_mute"), object_info)
    assert graph["8"]["inputs"]["vae"] == ["4", 2]


@pytest.mark.parametrize(
    ("document", "hint"),
    [
        ({"prompt": {"1": {"class_type": "X", "inputs": {}}}}, "'prompt' member"),
        ({"workflow": {"nodes": [], "links": []}}, "'workflow' member"),
        ({}, "empty"),
        ([1, 2], "expected an API graph"),
    ],
)
def test_to_api_format_refuses_other_documents_with_a_hint(
    document: Any, hint: str, object_info: dict[str, Any]
) -> None:
    with pytest.raises(ConversionError, match=hint) as caught:
        to_api_format(document, object_info)
    assert caught.value.code == "not_ui_format"


# --- property: widget values survive the editor's layout ----------------------------------

CONTROL_WORDS = ["fixed", "increment", "decrement", "randomize"]


def editor_widgets_values(info: dict[str, Any], values: dict[str, Any]) -> list[Any]:
    """What the editor saves for ``values``: an independent statement of its rules."""
    saved: list[Any] = []
    upload_pending = False
    for section in INPUT_SECTIONS:
        order = info.get("input_order", {}).get(section) or list(input_specs(info, section))
        for name in order:
            spec = input_specs(info, section)[name]
            kind, options = spec_type(spec), spec_options(spec)
            if kind not in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"):
                continue
            if options.get("forceInput"):
                continue
            saved.append(values[name])
            seed_like = kind == "INT" and name in ("seed", "noise_seed")
            if options.get("control_after_generate", seed_like if kind == "INT" else False):
                saved.append(CONTROL_WORDS[len(saved) % 4])
                if kind == "COMBO":
                    saved.append("")
            media = ("image_upload", "video_upload", "animated_image_upload", "audio_upload")
            if section == "required" and kind == "COMBO" and any(options.get(m) for m in media):
                upload_pending = True
        if upload_pending:
            saved.append("image")
            upload_pending = False
    return saved


JSON_SCALARS = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    # "%" would start a filename token; substitution has its own tests above
    st.text(alphabet=st.characters(blacklist_characters="%"), max_size=20),
    st.booleans(),
    st.lists(st.integers(), min_size=1, max_size=3),
)


def test_every_recorded_class_round_trips_its_widget_values(object_info: dict[str, Any]) -> None:
    checked = 0
    for class_type, info in sorted(object_info.items()):
        names = [slot.input_name for slot in widget_layout(info) if slot.role == "value"]
        values = {name: f"value of {name}" for name in names}
        ui = {
            "nodes": [
                {
                    "id": 1,
                    "type": class_type,
                    "mode": 0,
                    "widgets_values": editor_widgets_values(info, values),
                }
            ],
            "links": [],
        }
        assert convert(ui, object_info)["1"]["inputs"] == values, class_type
        checked += bool(names)
    assert checked > 400


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_widget_values_round_trip_through_the_editor_layout(
    data: st.DataObject, object_info: dict[str, Any]
) -> None:
    class_type = data.draw(st.sampled_from(sorted(object_info)))
    info = object_info[class_type]
    names = [slot.input_name for slot in widget_layout(info) if slot.role == "value"]
    values = {name: data.draw(JSON_SCALARS, label=name) for name in names}
    fed = data.draw(st.sets(st.sampled_from(names))) if names else set()
    ui: dict[str, Any] = {
        "nodes": [
            {
                "id": 1,
                "type": class_type,
                "mode": 0,
                "inputs": [],
                "outputs": [],
                "widgets_values": editor_widgets_values(info, values),
            }
        ],
        "links": [],
    }
    primitive_values = {}
    for index, name in enumerate(sorted(fed), start=2):
        primitive_values[name] = data.draw(JSON_SCALARS, label=f"primitive {name}")
        ui["nodes"][0]["inputs"].append(
            {"name": name, "type": "INT", "widget": {"name": name}, "link": index}
        )
        ui["nodes"].append(
            {
                "id": index,
                "type": "PrimitiveNode",
                "mode": 0,
                "outputs": [{"name": "INT", "type": "INT", "links": [index]}],
                "widgets_values": [primitive_values[name], "fixed"],
            }
        )
        ui["links"].append([index, index, 0, 1, len(ui["nodes"][0]["inputs"]) - 1, "INT"])
    expected: dict[str, Any] = {**values, **primitive_values}
    boxed = {k: {"__value__": v} if isinstance(v, list) else v for k, v in expected.items()}
    assert convert(ui, object_info)["1"]["inputs"] == boxed


# --- the official workflow templates (optional data package) ------------------------------

TEMPLATES_PACKAGE = "comfyui_workflow_templates_json"
#: Files under a models/ folder: the recorded server has only placeholder models, so a
#: template naming a real model file is rejected with value_not_in_list by that server
#: even though the graph is right. That is the one issue tolerated outright.
MODEL_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft")
EDITOR_ONLY = {"Reroute", "PrimitiveNode", "Note", "MarkdownNote"}
#: Measured with comfyui-workflow-templates-json 0.1.123 against the recorded 0.3.64
#: /object_info; other versions only get the invariants checked.
MEASURED = {
    "0.1.123": {
        "ui_templates": 644,
        "convertible": 112,
        "converted": 93,
        "validated": 88,
        "failed:widget_values_mismatch": 19,
        "invalid:option_unknown_to_server": 5,
    }
}


def _templates_version() -> str:
    from importlib.metadata import version

    return version("comfyui-workflow-templates-json")


def _all_classes(ui: dict[str, Any]) -> set[str]:
    subgraphs = (ui.get("definitions") or {}).get("subgraphs") or []
    definition_ids = {s["id"] for s in subgraphs}
    types = {n["type"] for n in ui["nodes"]}
    types |= {n["type"] for s in subgraphs for n in s.get("nodes", [])}
    return types - definition_ids - EDITOR_ONLY


def _is_model_file_issue(issue: Any, graph: dict[str, Any]) -> bool:
    value = graph[issue.node_id]["inputs"].get(issue.input_name)
    return (
        issue.code == "value_not_in_list"
        and isinstance(value, str)
        and value.endswith(MODEL_FILE_SUFFIXES)
    )


@pytest.mark.skipif(
    importlib.util.find_spec(TEMPLATES_PACKAGE) is None,
    reason="pip install comfyui-workflow-templates-json to check the official templates",
)
def test_official_templates_convert_and_validate(object_info: dict[str, Any]) -> None:
    """Every template whose classes the recorded server has must convert and validate.

    Tolerated: ``widget_values_mismatch`` (the template was saved by a newer ComfyUI
    whose class has more widgets than the recorded 0.3.64 one, so the values cannot be
    matched without guessing), ``value_not_in_list`` for model files (placeholder models
    on the recorded server) and for other combos (a newer server added the option).
    Everything else (crashes, other conversion errors, missing inputs, type mismatches,
    bad links) is a converter bug and fails the test.
    """
    folder = resources.files(TEMPLATES_PACKAGE) / "templates"
    counts: Counter[str] = Counter()
    unexpected: list[str] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        ui = json.loads(entry.read_text(encoding="utf-8"))
        if not (isinstance(ui, dict) and isinstance(ui.get("nodes"), list)):
            continue
        counts["ui_templates"] += 1
        if any(c not in object_info for c in _all_classes(ui)):
            continue
        counts["convertible"] += 1
        try:
            graph = convert(ui, object_info)
        except ConversionError as error:
            counts[f"failed:{error.code}"] += 1
            if error.code != "widget_values_mismatch":
                unexpected.append(f"{entry.name}: {error}")
            continue
        counts["converted"] += 1
        issues = [
            i for i in validate_graph(graph, object_info) if not _is_model_file_issue(i, graph)
        ]
        if not issues:
            counts["validated"] += 1
        elif all(i.code == "value_not_in_list" and i.allowed for i in issues):
            counts["invalid:option_unknown_to_server"] += 1
        else:
            unexpected += [f"{entry.name}: {i}" for i in issues]
    print(f"\nofficial templates {_templates_version()}: {dict(sorted(counts.items()))}")
    assert not unexpected, "\n".join(unexpected)
    assert counts["converted"] >= counts["convertible"] * 0.6
    measured = MEASURED.get(_templates_version())
    if measured is not None:
        assert dict(counts) == measured
