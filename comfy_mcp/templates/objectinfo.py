"""Reading ComfyUI's ``/object_info`` map: input specs, combo lists, output types.

``/object_info`` describes each node class's inputs in three shapes (``[TYPE, opts]``, the
legacy combo ``[[choices…], opts]`` and the V3 combo ``["COMBO", {"options": […]}]``). All
knowledge of those shapes lives here so validation, inference and live choices agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from comfy_mcp.comfy.nodeinfo import FOLDER_LOADERS, spec_choices

if TYPE_CHECKING:
    from comfy_mcp.templates.params import Parameter

#: Sections of a class's ``input`` map that the prompt may set. ``hidden`` inputs are filled
#: by the server itself (prompt, extra_pnginfo, unique_id) and never appear in a graph.
INPUT_SECTIONS = ("required", "optional")

#: Where each named ``choices_from`` source is listed in /object_info when no bound input of
#: the template shows it (a LoRA stack binds a loader node, not a ``lora_name`` input).
CHOICE_SOURCES: Mapping[str, tuple[str, str]] = {
    **{
        folder: FOLDER_LOADERS[folder]
        for folder in ("checkpoints", "loras", "vae", "upscale_models", "controlnet")
    },
    "samplers": ("KSampler", "sampler_name"),
    "schedulers": ("KSampler", "scheduler"),
}

#: Every accepted ``choices_from`` value; "object_info" means "the combo of the bound input".
CHOICE_SOURCE_NAMES = (*CHOICE_SOURCES, "object_info")


def class_info(object_info: Mapping[str, Any], class_type: str) -> Mapping[str, Any] | None:
    """The description of ``class_type``, or None when the server has no such node."""
    info = object_info.get(class_type)
    return info if isinstance(info, Mapping) else None


def input_specs(info: Mapping[str, Any], section: str) -> Mapping[str, Any]:
    """The ``{input name: spec}`` map of one section, empty when the class has none."""
    inputs = info.get("input")
    if not isinstance(inputs, Mapping):
        return {}
    specs = inputs.get(section)
    return specs if isinstance(specs, Mapping) else {}


def input_spec(
    object_info: Mapping[str, Any], class_type: str, input_name: str
) -> Sequence[Any] | None:
    """The spec list of one settable input, searching required then optional."""
    info = class_info(object_info, class_type)
    if info is None:
        return None
    for section in INPUT_SECTIONS:
        spec = input_specs(info, section).get(input_name)
        if isinstance(spec, Sequence) and not isinstance(spec, str) and spec:
            return spec
    return None


def spec_type(spec: Sequence[Any]) -> str:
    """The input's type name; both combo forms report ``"COMBO"``."""
    head = spec[0]
    if isinstance(head, list):
        return "COMBO"
    return str(head)


def spec_options(spec: Sequence[Any]) -> Mapping[str, Any]:
    """The options dict of a spec (min, max, default, tooltip…), empty when absent."""
    if len(spec) > 1 and isinstance(spec[1], Mapping):
        return spec[1]
    return {}


def is_upload_combo(spec: Sequence[Any]) -> bool:
    """True for file-picker combos (LoadImage's ``image``, LoadVideo's ``file``…).

    ComfyUI lists only top-level files of its input folder there, yet accepts subfolder
    paths and freshly uploaded files, so a value missing from the list proves nothing.
    """
    options = spec_options(spec)
    if any(key.endswith("_upload") and options[key] for key in options):
        return True
    return spec_type(spec) == "COMBO" and spec_choices(spec) is None


def combo_choices(
    object_info: Mapping[str, Any], class_type: str, input_name: str
) -> list[Any] | None:
    """The allowed values of a combo input (either form, required or optional), else None."""
    spec = input_spec(object_info, class_type, input_name)
    return None if spec is None else spec_choices(spec)


def output_types(info: Mapping[str, Any]) -> list[str]:
    """The type name of each output slot; a list-valued output type counts as a combo."""
    outputs = info.get("output")
    if not isinstance(outputs, list):
        return []
    return ["COMBO" if isinstance(t, list) else str(t) for t in outputs]


def types_compatible(received: str, expected: str) -> bool:
    """ComfyUI's own rule: ``*`` matches anything; comma lists match when they intersect."""
    if received == expected or "*" in (received, expected):
        return True
    got = {t.strip() for t in received.split(",")}
    want = {t.strip() for t in expected.split(",")}
    return bool(got & want)


def live_choices(
    parameters: Sequence[Parameter],
    graph: Mapping[str, Any],
    object_info: Mapping[str, Any],
) -> dict[str, list[Any]]:
    """Current allowed values of every ``choices_from`` parameter, read from /object_info.

    The combo list of a bound input is the most faithful source (it is what ComfyUI will
    check); :data:`CHOICE_SOURCES` covers parameters without one. The result is shaped for
    ``Template.fill(choices=...)``. Parameters whose list is unknown are left out, so fill
    accepts any value for them rather than rejecting everything.
    """
    found: dict[str, list[Any]] = {}
    for parameter in parameters:
        if parameter.choices_from is None:
            continue
        choices: list[Any] | None = None
        for binding in parameter.bindings:
            node = graph.get(binding.node_id)
            if isinstance(node, Mapping) and binding.input_name:
                choices = combo_choices(
                    object_info, str(node.get("class_type")), binding.input_name
                )
                if choices is not None:
                    break
        if choices is None and parameter.choices_from in CHOICE_SOURCES:
            class_type, input_name = CHOICE_SOURCES[parameter.choices_from]
            choices = combo_choices(object_info, class_type, input_name)
        if choices is not None:
            found[parameter.name] = choices
    return found
