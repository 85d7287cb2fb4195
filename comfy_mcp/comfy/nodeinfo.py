"""Reading ``/object_info`` node definitions.

Input specs come in three forms: ``[TYPE, opts]`` (INT, FLOAT, STRING, BOOLEAN or a link type),
the legacy combo ``[[choice, …], opts]`` and the V3 combo ``["COMBO", {"options": […]}]``. Both
combo forms occur in ``required`` and in ``optional`` (the reference client reads only the first
form of ``required``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Which loader input lists the files of which model folder: the fallback for servers without
# GET /models/{folder}.
FOLDER_LOADERS: dict[str, tuple[str, str]] = {
    "checkpoints": ("CheckpointLoaderSimple", "ckpt_name"),
    "loras": ("LoraLoader", "lora_name"),
    "vae": ("VAELoader", "vae_name"),
    "upscale_models": ("UpscaleModelLoader", "model_name"),
    "controlnet": ("ControlNetLoader", "control_net_name"),
    "hypernetworks": ("HypernetworkLoader", "hypernetwork_name"),
    "clip": ("CLIPLoader", "clip_name"),
    "clip_vision": ("CLIPVisionLoader", "clip_name"),
    "diffusion_models": ("UNETLoader", "unet_name"),
    "unet": ("UNETLoader", "unet_name"),
    "style_models": ("StyleModelLoader", "style_model_name"),
    "gligen": ("GLIGENLoader", "gligen_name"),
}


def input_spec(node_def: Mapping[str, Any], input_name: str) -> list[Any] | None:
    """The spec list of ``input_name`` from the required, optional or hidden section."""
    inputs = node_def.get("input") or {}
    for section in ("required", "optional", "hidden"):
        spec = (inputs.get(section) or {}).get(input_name)
        if spec is not None:
            return spec if isinstance(spec, list) else [spec]
    return None


def spec_choices(spec: Sequence[Any]) -> list[Any] | None:
    """The allowed values of one input spec (either combo form), or None when it is not a combo
    or lists no options (a V3 combo filled by the browser from a remote route)."""
    if not spec:
        return None
    head = spec[0]
    if isinstance(head, list):
        return list(head)
    if head == "COMBO" and len(spec) > 1 and isinstance(spec[1], Mapping):
        options = spec[1].get("options")
        return list(options) if isinstance(options, list) else None
    return None


def combo_options(node_def: Mapping[str, Any], input_name: str) -> list[str] | None:
    """The allowed values of a combo input, in either form; None if it is not a combo."""
    choices = spec_choices(input_spec(node_def, input_name) or [])
    return [str(v) for v in choices] if choices is not None else None
