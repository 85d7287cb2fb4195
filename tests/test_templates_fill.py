"""Template.fill: typed arguments, one error listing every problem, exact values in the graph."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comfy_mcp.templates import (
    RANDOM_SEED_LIMIT,
    SEED_MAXIMUM,
    Binding,
    Parameter,
    Template,
    TemplateLoadError,
    TemplateParameterError,
    template_from_document,
)

GRAPH: dict[str, Any] = {
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 0,
            "steps": 20,
            "cfg": 7.0,
            "sampler_name": "euler",
            "scheduler": "normal",
            "denoise": 1.0,
            "model": ["4", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
        },
    },
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "a.safetensors"}},
    "5": {
        "class_type": "EmptyLatentImage",
        "inputs": {"width": 512, "height": 512, "batch_size": 1},
    },
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "cat", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "ugly", "clip": ["4", 1]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "x"}},
    "20": {"class_type": "Extras", "inputs": {"flag": False, "picture": "x.png"}},
}

DECLARATION: dict[str, Any] = {
    "description": "test template",
    "parameters": {
        "prompt": {"type": "string", "bind": "6.text", "default": "a cat"},
        "negative_prompt": {"type": "string", "bind": "7.text", "default": ""},
        "checkpoint": {"type": "enum", "bind": "4.ckpt_name", "choices_from": "checkpoints"},
        "width": {
            "type": "integer",
            "bind": "5.width",
            "default": 512,
            "minimum": 64,
            "maximum": 4096,
        },
        "steps": {
            "type": "integer",
            "bind": "3.steps",
            "default": 20,
            "minimum": 1,
            "maximum": 150,
        },
        "cfg": {"type": "number", "bind": "3.cfg", "default": 7.0, "minimum": 0, "maximum": 30},
        "sampler": {
            "type": "enum",
            "bind": "3.sampler_name",
            "default": "euler",
            "choices": ["euler", "euler_ancestral", "dpmpp_2m"],
        },
        "seed": {"type": "seed", "bind": ["3.seed"]},
        "tiled": {"type": "boolean", "bind": "20.flag", "default": False},
        "image": {"type": "image", "bind": "20.picture", "default": "x.png"},
    },
    "graph": GRAPH,
}


def make(declaration: dict[str, Any] | None = None) -> Template:
    """A template from a declaration (node 20 only carries the boolean and image inputs)."""
    return template_from_document("t", copy.deepcopy(declaration or DECLARATION), source="test")


def problems_of(template: Template, values: dict[str, Any], **kwargs: Any) -> list[str]:
    with pytest.raises(TemplateParameterError) as caught:
        template.fill(values, **kwargs)
    return [p.message for p in caught.value.problems]


def test_fill_sets_exact_values_on_a_copy() -> None:
    template = make()
    before = copy.deepcopy(template.graph)
    filled = template.fill(
        {"checkpoint": "b.safetensors", "prompt": "a dog", "steps": 30, "seed": 12345}
    )
    assert filled.graph["6"]["inputs"]["text"] == "a dog"
    assert filled.graph["4"]["inputs"]["ckpt_name"] == "b.safetensors"
    assert filled.graph["3"]["inputs"]["steps"] == 30
    assert filled.graph["3"]["inputs"]["seed"] == 12345
    assert filled.graph["3"]["inputs"]["model"] == ["4", 0]  # links untouched
    assert template.graph == before  # the template never changes
    assert filled.values["steps"] == 30
    assert filled.values["prompt"] == "a dog"
    assert filled.values["width"] == 512  # defaults are reported too


def test_fill_coerces_agent_slips() -> None:
    filled = make().fill(
        {
            "checkpoint": "c",
            "steps": "25",
            "width": 640.0,
            "cfg": "6.5",
            "tiled": "TRUE",
            "seed": "42",
        }
    )
    assert filled.graph["3"]["inputs"]["steps"] == 25
    assert isinstance(filled.graph["5"]["inputs"]["width"], int)
    assert filled.graph["5"]["inputs"]["width"] == 640
    assert filled.graph["3"]["inputs"]["cfg"] == 6.5
    assert filled.graph["20"]["inputs"]["flag"] is True
    assert filled.graph["3"]["inputs"]["seed"] == 42


def test_none_means_not_given() -> None:
    filled = make().fill({"checkpoint": "c", "steps": None})
    assert filled.values["steps"] == 20


def test_all_problems_reported_together() -> None:
    messages = problems_of(
        make(),
        {"stpes": 3, "sampler": "eulr", "width": 99999, "cfg": True, "steps": 2.5},
    )
    assert messages == [
        "unknown parameter 'stpes' (did you mean 'steps'?); valid parameters: prompt, "
        "negative_prompt, checkpoint, width, steps, cfg, sampler, seed, tiled, image",
        "missing required parameter 'checkpoint' (enum)",
        "'width' must be between 64 and 4096 (got 99999)",
        "'steps' must be a whole number (got 2.5)",
        "'cfg' must be a number, not a boolean (got True)",
        "'sampler' must be one of: euler, euler_ancestral, dpmpp_2m (got 'eulr'; did you mean "
        "'euler'?)",
    ]


def test_error_message_and_fields() -> None:
    with pytest.raises(TemplateParameterError) as caught:
        make().fill({"checkpoint": "c", "sampler": "Euler"})
    error = caught.value
    assert str(error) == (
        "invalid argument for template 't': 'sampler' must be one of: euler, euler_ancestral, "
        "dpmpp_2m (got 'Euler'; did you mean 'euler'?)"
    )
    assert error.template == "t"
    (problem,) = error.problems
    assert problem.parameter == "sampler"
    assert problem.allowed == ["euler", "euler_ancestral", "dpmpp_2m"]


def test_integer_rejects_bool_and_text() -> None:
    messages = problems_of(make(), {"checkpoint": "c", "steps": True, "width": "wide"})
    assert "'width' must be a whole number (got 'wide')" in messages
    assert "'steps' must be an integer, not a boolean (got True)" in messages


def test_boolean_rejects_numbers_and_other_text() -> None:
    assert problems_of(make(), {"checkpoint": "c", "tiled": 1}) == [
        "'tiled' must be true or false (got 1)"
    ]
    assert problems_of(make(), {"checkpoint": "c", "tiled": "maybe"}) == [
        "'tiled' must be true or false (got 'maybe')"
    ]


def test_number_rejects_nan_and_infinity() -> None:
    assert problems_of(make(), {"checkpoint": "c", "cfg": "nan"}) == [
        "'cfg' must be a finite number (got 'nan')"
    ]
    assert problems_of(make(), {"checkpoint": "c", "cfg": float("inf")}) == [
        "'cfg' must be a finite number (got inf)"
    ]


def test_live_choices_are_checked() -> None:
    template = make()
    choices = {"checkpoint": ["sd15.safetensors", "sdxl.safetensors"]}
    messages = problems_of(template, {"checkpoint": "sd16.safetensors"}, choices=choices)
    assert messages == [
        "'checkpoint' must be one of: sd15.safetensors, sdxl.safetensors "
        "(got 'sd16.safetensors'; did you mean 'sd15.safetensors'?)"
    ]
    filled = template.fill({"checkpoint": "sdxl.safetensors"}, choices=choices)
    assert filled.graph["4"]["inputs"]["ckpt_name"] == "sdxl.safetensors"


def test_missing_enum_lists_live_choices() -> None:
    with pytest.raises(TemplateParameterError) as caught:
        make().fill({}, choices={"checkpoint": ["a.ckpt", "b.ckpt"]})
    (problem,) = caught.value.problems
    assert (
        problem.message == "missing required parameter 'checkpoint' (enum); one of: a.ckpt, b.ckpt"
    )
    assert problem.allowed == ["a.ckpt", "b.ckpt"]


def test_default_not_in_live_choices_is_reported() -> None:
    messages = problems_of(make(), {"checkpoint": "c"}, choices={"sampler": ["ddim"]})
    assert messages == [
        "the default of 'sampler' is not usable on this server: 'sampler' must be one of: ddim "
        "(got 'euler'); pass 'sampler' explicitly"
    ]


def test_empty_live_list_says_nothing_is_installed() -> None:
    messages = problems_of(make(), {"checkpoint": "x"}, choices={"checkpoint": []})
    assert messages == [
        "'checkpoint' cannot be 'x': the server lists no choices for it (are the files "
        "installed in its models folder?)"
    ]


def test_long_choice_lists_are_abbreviated_but_complete_in_allowed() -> None:
    names = [f"model_{i:03}.safetensors" for i in range(40)]
    with pytest.raises(TemplateParameterError) as caught:
        make().fill({"checkpoint": "nope"}, choices={"checkpoint": names})
    (problem,) = caught.value.problems
    assert "… (15 more)" in problem.message
    assert problem.allowed == names


def test_image_names_must_stay_in_the_input_folder() -> None:
    template = make()
    for bad in ("/etc/passwd", "../secret.png", "C:\\x.png", "a/../../b.png"):
        (message,) = problems_of(template, {"checkpoint": "c", "image": bad})
        assert message.startswith("'image' must be a file name in ComfyUI's input folder")
    filled = template.fill({"checkpoint": "c", "image": "sub/photo.png"})
    assert filled.graph["20"]["inputs"]["picture"] == "sub/photo.png"


# --- seeds ---------------------------------------------------------------------------------


def test_missing_or_minus_one_seed_is_random_below_2_53_and_reported() -> None:
    template = make()
    for given_seed in ({}, {"seed": -1}, {"seed": "-1"}, {"seed": None}):
        filled = template.fill({"checkpoint": "c", **given_seed}, rng=random.Random(7))
        seed = filled.values["seed"]
        assert 0 <= seed < RANDOM_SEED_LIMIT
        assert filled.graph["3"]["inputs"]["seed"] == seed
    first = template.fill({"checkpoint": "c"}, rng=random.Random(1)).values["seed"]
    again = template.fill({"checkpoint": "c"}, rng=random.Random(1)).values["seed"]
    assert first == again  # an injected rng makes it reproducible


def test_explicit_seed_kept_exact_up_to_2_64_minus_1() -> None:
    template = make()
    filled = template.fill({"checkpoint": "c", "seed": SEED_MAXIMUM})
    assert filled.graph["3"]["inputs"]["seed"] == 18446744073709551615
    assert json.loads(json.dumps(filled.graph))["3"]["inputs"]["seed"] == 2**64 - 1
    assert problems_of(template, {"checkpoint": "c", "seed": 2**64}) == [
        "'seed' must be between 0 and 18446744073709551615 (got 18446744073709551616)"
    ]
    assert problems_of(template, {"checkpoint": "c", "seed": -2}) == [
        "'seed' must be between 0 and 18446744073709551615 (got -2)"
    ]


def test_one_seed_parameter_sets_every_bound_sampler() -> None:
    document = copy.deepcopy(DECLARATION)
    graph = document["graph"]
    graph["11"] = copy.deepcopy(graph["3"])
    document["parameters"]["seed"]["bind"] = ["3.seed", "11.seed"]
    template = make(document)
    filled = template.fill({"checkpoint": "c"})
    assert filled.graph["3"]["inputs"]["seed"] == filled.graph["11"]["inputs"]["seed"]
    assert filled.graph["11"]["inputs"]["seed"] == filled.values["seed"]


# --- schema and summary --------------------------------------------------------------------


def test_json_schema() -> None:
    template = make()
    schema = template.json_schema()
    assert schema["required"] == ["checkpoint"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["width"] == {
        "type": "integer",
        "description": "",
        "default": 512,
        "minimum": 64,
        "maximum": 4096,
    }
    assert schema["properties"]["sampler"]["enum"] == ["euler", "euler_ancestral", "dpmpp_2m"]
    seed = schema["properties"]["seed"]
    assert seed["type"] == "integer"
    assert seed["minimum"] == -1
    assert seed["maximum"] == SEED_MAXIMUM
    assert "random" in seed["description"]
    assert "default" not in seed


def test_summary_is_json_and_names_bindings() -> None:
    summary = make().summary()
    assert json.loads(json.dumps(summary)) == summary
    by_name = {p["name"]: p for p in summary["parameters"]}
    assert by_name["checkpoint"]["required"] is True
    assert by_name["checkpoint"]["choices_from"] == "checkpoints"
    assert by_name["seed"]["bound_to"] == ["3.seed"]
    assert by_name["seed"]["required"] is False
    assert by_name["width"]["minimum"] == 64
    assert summary["inferred"] is False


def test_parameter_lookup() -> None:
    template = make()
    assert template.parameter("steps").bindings == (Binding("3", "steps"),)
    with pytest.raises(KeyError, match="valid parameters: prompt"):
        template.parameter("stpes")


# --- declaration errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"bind": "99.text"}, "parameter 'prompt': binds node '99', which is not in the graph"),
        ({"bind": "6.txt"}, "binds 6.txt, but node 6 has no input 'txt' (its inputs: clip, text)"),
        ({"bind": "6.clip"}, "binds 6.clip, which is a link to another node"),
        ({"bind": "6"}, "bind target '6' must look like 'node_id.input_name'"),
        ({"type": "str"}, "unknown type 'str'; valid types: string, integer"),
        ({"defualt": "x"}, "unknown key 'defualt' (did you mean 'default'?)"),
        ({"default": 5}, "bad default: 'prompt' must be a string (got 5)"),
        ({"choices_from": "models"}, "unknown choices_from 'models'"),
    ],
)
def test_broken_declarations_name_file_and_parameter(change: dict[str, Any], fragment: str) -> None:
    document = copy.deepcopy(DECLARATION)
    document["parameters"]["prompt"].update(change)
    with pytest.raises(TemplateLoadError) as caught:
        template_from_document("t", document, source="mine.json")
    assert str(caught.value).startswith("mine.json: parameter 'prompt': ")
    assert fragment in str(caught.value)
    assert caught.value.parameter == "prompt"


def test_two_parameters_cannot_bind_the_same_input() -> None:
    document = copy.deepcopy(DECLARATION)
    document["parameters"]["steps_again"] = {"type": "integer", "bind": "3.steps"}
    with pytest.raises(
        TemplateLoadError, match=r"binds 3\.steps, already bound to parameter 'steps'"
    ):
        template_from_document("t", document)


def test_enum_needs_a_choice_source() -> None:
    with pytest.raises(TemplateLoadError, match="an enum needs 'choices' or 'choices_from'"):
        Parameter("s", "enum", (Binding("3", "sampler_name"),))


# --- lora stacks ---------------------------------------------------------------------------


def lora_template() -> Template:
    document = copy.deepcopy(DECLARATION)
    del document["graph"]["20"]
    document["parameters"] = {
        "loras": {"type": "lora_stack", "bind": "4", "choices_from": "loras", "default": []}
    }
    return template_from_document("lora", document)


def test_empty_lora_stack_leaves_graph_alone() -> None:
    template = lora_template()
    assert template.fill({}).graph == template.graph
    assert template.fill({"loras": []}).values == {"loras": []}


def test_lora_stack_chains_loaders_and_rewires_consumers() -> None:
    template = lora_template()
    filled = template.fill(
        {"loras": [{"name": "a.safetensors", "strength": 0.5}, "b.safetensors"]},
        choices={"loras": ["a.safetensors", "b.safetensors"]},
    )
    graph = filled.graph
    assert graph["10"] == {
        "class_type": "LoraLoader",
        "inputs": {
            "model": ["4", 0],
            "clip": ["4", 1],
            "lora_name": "a.safetensors",
            "strength_model": 0.5,
            "strength_clip": 0.5,
        },
    }
    assert graph["11"]["inputs"]["model"] == ["10", 0]
    assert graph["11"]["inputs"]["clip"] == ["10", 1]
    assert graph["11"]["inputs"]["strength_model"] == 1.0
    assert graph["3"]["inputs"]["model"] == ["11", 0]
    assert graph["6"]["inputs"]["clip"] == ["11", 1]
    assert graph["7"]["inputs"]["clip"] == ["11", 1]
    assert graph["8"]["inputs"]["vae"] == ["4", 2]  # VAE is not touched
    assert filled.values["loras"][1] == {
        "name": "b.safetensors",
        "strength": 1.0,
        "clip_strength": 1.0,
    }


def test_lora_stack_problems() -> None:
    template = lora_template()
    assert problems_of(template, {"loras": "a"}) == [
        "'loras' must be a list of {'name': ..., 'strength': ...} objects (got 'a')"
    ]
    assert problems_of(
        template, {"loras": [{"name": "detial"}]}, choices={"loras": ["detail", "style"]}
    ) == ["'loras[0].name' must be one of: detail, style (got 'detial'; did you mean 'detail'?)"]
    assert problems_of(template, {"loras": [{"name": "a", "strength": 500}]}) == [
        "'loras[0].strength' must be between -100.0 and 100.0 (got 500)"
    ]
    assert problems_of(template, {"loras": [{"name": "a", "weight": 1}]}) == [
        "'loras[0]' has unknown keys weight; valid keys: name, strength, clip_strength"
    ]


# --- properties ----------------------------------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8"), max_size=200)  # includes NUL, quotes, emoji…


def bound_inputs(template: Template) -> set[tuple[str, str]]:
    return {(b.node_id, b.input_name) for p in template.parameters for b in p.bindings}


def without_bound(graph: dict[str, Any], bound: set[tuple[str, str]]) -> dict[str, Any]:
    stripped = copy.deepcopy(graph)
    for node_id, input_name in bound:
        stripped[node_id]["inputs"].pop(input_name, None)
    return stripped


@settings(max_examples=200, deadline=None)
@given(
    prompt=TEXT,
    negative=TEXT,
    seed=st.integers(0, SEED_MAXIMUM),
    steps=st.integers(1, 150),
    cfg=st.floats(0, 30, allow_nan=False),
)
def test_fill_changes_only_bound_inputs_and_values_survive(
    prompt: str, negative: str, seed: int, steps: int, cfg: float
) -> None:
    template = make()
    filled = template.fill(
        {
            "prompt": prompt,
            "negative_prompt": negative,
            "seed": seed,
            "steps": steps,
            "cfg": cfg,
            "checkpoint": prompt or "c",
        }
    )
    bound = bound_inputs(template)
    assert without_bound(filled.graph, bound) == without_bound(template.graph, bound)
    for graph in (filled.graph, json.loads(json.dumps(filled.graph))):
        assert graph["6"]["inputs"]["text"] == prompt
        assert graph["7"]["inputs"]["text"] == negative
        assert graph["3"]["inputs"]["seed"] == seed
        assert graph["3"]["inputs"]["steps"] == steps
        assert graph["3"]["inputs"]["cfg"] == cfg
    assert json.loads(json.dumps(filled.graph, ensure_ascii=False)) == filled.graph


@settings(max_examples=100, deadline=None)
@given(
    values=st.dictionaries(
        st.sampled_from(["prompt", "steps", "seed", "width", "bogus"]),
        st.one_of(st.integers(), TEXT, st.none(), st.booleans()),
        max_size=5,
    )
)
def test_fill_either_succeeds_or_raises_parameter_error(values: dict[str, Any]) -> None:
    template = make()
    before = copy.deepcopy(template.graph)
    outcome: Any
    try:
        outcome = template.fill({"checkpoint": "c", **values})
    except TemplateParameterError as error:
        outcome = error
    if isinstance(outcome, TemplateParameterError):
        assert outcome.problems
        assert all(p.message for p in outcome.problems)
    else:
        bound = bound_inputs(template)
        assert without_bound(outcome.graph, bound) == without_bound(before, bound)
    assert template.graph == before


def test_seed_default_minus_one_means_random() -> None:
    seed = Parameter("seed", "seed", (Binding("3", "seed"),), default=-1)
    assert seed.default is None
    assert not seed.required
