"""Guessing parameters for a plain API-format export that declares none.

Declared parameters are better (style notes §7), but users drop raw exports into their
workflow folder and expect them to work. Inference only looks at well-known core nodes and
only at inputs that hold a literal value, so it never binds something a user wired.

Naming rules (documented in docs/workflows.md):

* Prompts follow the wiring: the CLIPTextEncode reached from a sampler's ``positive`` input
  is ``prompt``, from ``negative`` is ``negative_prompt`` (through conditioning nodes such as
  ConditioningCombine or ControlNetApply). Unwired encoders join the ``prompt`` series.
* All seed inputs (``seed``, ``noise_seed``) share one ``seed`` parameter: a hires-fix second
  pass or a refiner should reuse the first pass's seed. Missing means random.
* Every other kind is numbered by node-id order: the first node gets the plain name
  (``steps``), the next ``steps_2``, ``steps_3``…
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from comfy_mcp.templates.graph import is_link, node_inputs, node_sort_key
from comfy_mcp.templates.objectinfo import input_spec, spec_options, spec_type
from comfy_mcp.templates.params import Binding, Parameter

_SAMPLER_INPUTS = {
    "steps": "steps",
    "cfg": "cfg",
    "sampler_name": "sampler",
    "scheduler": "scheduler",
    "denoise": "denoise",
}
_SIZE_INPUTS = {"width": "width", "height": "height", "batch_size": "batch_size"}
_LORA_INPUTS = {"lora_name": "lora", "strength_model": "lora_strength"}

#: class_type → {input name: parameter base name} for the well-known nodes.
KNOWN_INPUTS: Mapping[str, Mapping[str, str]] = {
    "KSampler": _SAMPLER_INPUTS,
    "KSamplerAdvanced": _SAMPLER_INPUTS,
    "SamplerCustom": {"cfg": "cfg"},
    "KSamplerSelect": {"sampler_name": "sampler"},
    "BasicScheduler": {"scheduler": "scheduler", "steps": "steps", "denoise": "denoise"},
    "EmptyLatentImage": _SIZE_INPUTS,
    "EmptySD3LatentImage": _SIZE_INPUTS,
    "EmptyImage": _SIZE_INPUTS,
    "CheckpointLoaderSimple": {"ckpt_name": "checkpoint"},
    "unCLIPCheckpointLoader": {"ckpt_name": "checkpoint"},
    "ImageOnlyCheckpointLoader": {"ckpt_name": "checkpoint"},
    "LoraLoader": _LORA_INPUTS,
    "LoraLoaderModelOnly": _LORA_INPUTS,
    "VAELoader": {"vae_name": "vae"},
    "UpscaleModelLoader": {"model_name": "upscale_model"},
    "ControlNetLoader": {"control_net_name": "controlnet"},
    "LoadImage": {"image": "image"},
    "LoadImageMask": {"image": "mask"},
    "SaveImage": {"filename_prefix": "filename_prefix"},
}

#: base name → (type, choices_from, description). The order is the order of the result.
KINDS: Mapping[str, tuple[str, str | None, str]] = {
    "prompt": ("string", None, "What the image should show."),
    "negative_prompt": ("string", None, "What the image should not show."),
    "seed": ("seed", None, "Noise seed; the same seed and settings reproduce an image."),
    "checkpoint": ("enum", "checkpoints", "Checkpoint (model) file to load."),
    "lora": ("enum", "loras", "LoRA file to apply."),
    "lora_strength": ("number", None, "How strongly the LoRA changes the model."),
    "image": ("image", None, "Input image: a file name in ComfyUI's input folder."),
    "mask": ("image", None, "Mask image: a file name in ComfyUI's input folder."),
    "width": ("integer", None, "Image width in pixels."),
    "height": ("integer", None, "Image height in pixels."),
    "batch_size": ("integer", None, "How many images to make at once."),
    "steps": ("integer", None, "Sampling steps: more is slower and usually finer."),
    "cfg": ("number", None, "Prompt adherence (classifier-free guidance scale)."),
    "sampler": ("enum", "samplers", "Sampling algorithm."),
    "scheduler": ("enum", "schedulers", "Noise schedule."),
    "denoise": ("number", None, "How much to change the input: 1.0 replaces it entirely."),
    "vae": ("enum", "vae", "VAE file to load."),
    "upscale_model": ("enum", "upscale_models", "Upscale model file to load."),
    "controlnet": ("enum", "controlnet", "ControlNet model file to load."),
    "filename_prefix": ("string", None, "Prefix of the saved file names."),
}

SEED_INPUTS = ("seed", "noise_seed")
_CONDITIONING_HOPS = 16  # deep enough for any real conditioning chain, bounded against cycles


def infer_parameters(
    graph: Mapping[str, Any], object_info: Mapping[str, Any] | None = None
) -> tuple[Parameter, ...]:
    """Parameters for a graph without declarations, all marked ``inferred=True``.

    With ``object_info``, numeric bounds come from the bound inputs' specs; without it the
    parameters are typed from the table above and unbounded (seeds keep 0..2**64-1).
    """
    order = sorted(graph, key=node_sort_key)
    found: dict[str, list[tuple[str, str]]] = {kind: [] for kind in KINDS}
    positive, negative = _prompt_encoders(graph, order)
    found["prompt"] = [(node_id, "text") for node_id in positive]
    found["negative_prompt"] = [(node_id, "text") for node_id in negative]
    for node_id in order:
        node = graph[node_id]
        inputs = node_inputs(node)
        class_type = str(node.get("class_type"))
        for input_name in SEED_INPUTS:
            value = inputs.get(input_name)
            if isinstance(value, int) and not isinstance(value, bool):
                found["seed"].append((node_id, input_name))
        for input_name, kind in KNOWN_INPUTS.get(class_type, {}).items():
            if input_name in inputs and not is_link(inputs[input_name]):
                found[kind].append((node_id, input_name))

    parameters: list[Parameter] = []
    for kind, targets in found.items():
        if not targets:
            continue
        if kind == "seed":
            parameters.append(_make(kind, kind, targets, graph, object_info))
            continue
        for index, target in enumerate(targets, start=1):
            name = kind if index == 1 else f"{kind}_{index}"
            parameters.append(_make(name, kind, [target], graph, object_info))
    return tuple(parameters)


def _make(
    name: str,
    kind: str,
    targets: list[tuple[str, str]],
    graph: Mapping[str, Any],
    object_info: Mapping[str, Any] | None,
) -> Parameter:
    ptype, choices_from, description = KINDS[kind]
    node_id, input_name = targets[0]
    class_type = str(graph[node_id].get("class_type"))
    value = node_inputs(graph[node_id])[input_name]
    where = ", ".join(f"{n}.{i}" for n, i in targets)
    minimum = maximum = None
    spec = input_spec(object_info, class_type, input_name) if object_info else None
    if spec is not None:
        options = spec_options(spec)
        if spec_type(spec) in ("INT", "FLOAT"):
            minimum, maximum = options.get("min"), options.get("max")
        elif spec_type(spec) == "COMBO" and ptype == "enum" and choices_from is None:
            choices_from = "object_info"
    default = None if ptype == "seed" else value
    if default is not None and not _in_bounds(default, minimum, maximum):
        minimum = maximum = None  # the export's own value wins; validation will flag it
    return Parameter(
        name=name,
        type=ptype,
        bindings=tuple(Binding(n, i) for n, i in targets),
        default=default,
        description=f"{description} (inferred from {class_type} {where})",
        minimum=minimum,
        maximum=maximum,
        choices_from=choices_from,
        inferred=True,
    )


def _in_bounds(value: Any, low: Any, high: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return True
    return (low is None or value >= low) and (high is None or value <= high)


def _prompt_encoders(graph: Mapping[str, Any], order: list[str]) -> tuple[list[str], list[str]]:
    """CLIPTextEncode nodes reached from samplers' positive and negative inputs, in order."""
    positive: list[str] = []
    negative: list[str] = []
    for node_id in order:
        inputs = node_inputs(graph[node_id])
        for role, bucket in (("positive", positive), ("negative", negative)):
            link = inputs.get(role)
            if is_link(link):
                for encoder in _trace(graph, link[0], role):
                    if encoder not in positive and encoder not in negative:
                        bucket.append(encoder)
    for node_id in order:  # encoders no sampler reaches still carry a prompt
        node = graph[node_id]
        if _is_text_encoder(node) and node_id not in positive and node_id not in negative:
            positive.append(node_id)
    return positive, negative


def _trace(graph: Mapping[str, Any], start: str, role: str) -> list[str]:
    """Walk upstream through conditioning inputs from ``start`` to the text encoders.

    Only inputs named like conditioning are followed, so the walk never wanders into a
    previous sampler's latent and picks up the prompts of another pass. A node with both
    ``positive`` and ``negative`` inputs (ControlNetApplyAdvanced) is followed on ``role``.
    """
    found: list[str] = []
    frontier, seen = [start], set()
    for _ in range(_CONDITIONING_HOPS):
        next_frontier: list[str] = []
        for node_id in frontier:
            if node_id in seen or node_id not in graph:
                continue
            seen.add(node_id)
            node = graph[node_id]
            if _is_text_encoder(node):
                found.append(node_id)
                continue
            inputs = node_inputs(node)
            both = "positive" in inputs and "negative" in inputs
            for name, value in inputs.items():
                follow = (
                    name == role
                    if both
                    else ("conditioning" in name or name in ("positive", "negative"))
                )
                if follow and is_link(value):
                    next_frontier.append(value[0])
        frontier = next_frontier
    return found


def _is_text_encoder(node: Any) -> bool:
    return (
        isinstance(node, Mapping)
        and node.get("class_type") == "CLIPTextEncode"
        and isinstance(node_inputs(node).get("text"), str)
    )
