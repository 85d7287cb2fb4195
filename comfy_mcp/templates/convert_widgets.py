"""Matching a UI node's ``widgets_values`` to its inputs, the way the ComfyUI frontend does.

The editor saves a node's widget values as a bare list, in the order the frontend created
the widgets: the class's widget inputs in ``input_order`` (required, then optional), each
followed by the frontend-only widgets it spawns. Those extra values (the seed's
"randomize", LoadImage's "image" upload button) are UI state and never reach the server.
Nothing in the file names the values, so the order rules here must match the frontend's
exactly; whenever the values do not line up, :class:`ConversionError` says so instead of
shifting every later value into the wrong input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from comfy_mcp.templates.errors import TemplateError
from comfy_mcp.templates.objectinfo import INPUT_SECTIONS, input_specs, spec_options, spec_type

#: Input types the frontend draws as widgets; every other type is a link socket.
WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})

#: The values a seed's "control after generate" widget can hold ("increment-wrap" is the
#: extra mode of combo controls).
CONTROL_VALUES = frozenset({"fixed", "increment", "decrement", "randomize", "increment-wrap"})

#: INT inputs that get a control widget even without ``control_after_generate`` (an old
#: frontend rule kept for nodes that predate the option; an explicit ``false`` wins).
SEED_NAMES = frozenset({"seed", "noise_seed"})

#: Combo options that make the frontend append an "upload" widget to the required inputs
#: (Comfy.UploadImage / Comfy.UploadAudio extensions); only the first such combo counts.
UPLOAD_OPTIONS = ("image_upload", "video_upload", "animated_image_upload", "audio_upload")

SlotRole = Literal["value", "control", "filter", "upload"]


class ConversionError(TemplateError, ValueError):
    """A UI workflow that cannot be turned into an API graph without guessing.

    ``node_ids`` lists the UI node ids (``"outer:inner"`` inside subgraphs) at fault, so a
    caller can point the user at them; the message always names them too. ``code`` says
    what kind of problem it is, for callers that branch on it: ``not_ui_format``,
    ``unknown_class``, ``group_node``, ``widget_values_mismatch``, ``broken_link``,
    ``link_cycle``, ``unresolved_reference``, ``ambiguous_reference``.
    """

    def __init__(
        self, message: str, *, node_ids: Iterable[str | int] = (), code: str = "invalid"
    ) -> None:
        self.node_ids = [str(node_id) for node_id in node_ids]
        self.code = code
        self.detail = message
        super().__init__(message)


@dataclass(frozen=True)
class WidgetSlot:
    """One position in ``widgets_values``: an input's value, or a frontend-only companion."""

    role: SlotRole
    input_name: str


def ordered_inputs(info: Mapping[str, Any], section: str) -> list[tuple[str, Sequence[Any]]]:
    """A section's ``(name, spec)`` pairs in the order the frontend creates them.

    ``input_order`` is authoritative when present (JSON key order can be lost on the way);
    names it omits follow in key order so nothing is silently dropped.
    """
    specs = input_specs(info, section)
    order = info.get("input_order")
    names: list[str] = []
    if isinstance(order, Mapping) and isinstance(order.get(section), list):
        names = [name for name in order[section] if isinstance(name, str) and name in specs]
    names += [name for name in specs if name not in names]
    found: list[tuple[str, Sequence[Any]]] = []
    for name in names:
        spec = specs[name]
        if isinstance(spec, Sequence) and not isinstance(spec, str) and spec:
            found.append((name, spec))
    return found


def is_widget_input(spec: Sequence[Any]) -> bool:
    """True when the frontend draws the input as a widget (so it has a saved value)."""
    return spec_type(spec) in WIDGET_TYPES and not spec_options(spec).get("forceInput")


def _has_control(name: str, spec: Sequence[Any]) -> bool:
    options = spec_options(spec)
    if spec_type(spec) == "INT":
        return bool(options.get("control_after_generate", name in SEED_NAMES))
    return bool(options.get("control_after_generate"))


def _is_upload_combo(spec: Sequence[Any]) -> bool:
    options = spec_options(spec)
    return spec_type(spec) == "COMBO" and any(options.get(key) is True for key in UPLOAD_OPTIONS)


def widget_layout(info: Mapping[str, Any]) -> list[WidgetSlot]:
    """Every position of ``widgets_values`` for a node of this class, in order.

    A seed-like input is followed by its control value; a combo with a control also has a
    filter-list value; the upload button comes after all required widgets.
    """
    layout: list[WidgetSlot] = []
    upload: WidgetSlot | None = None
    for section in INPUT_SECTIONS:
        for name, spec in ordered_inputs(info, section):
            if not is_widget_input(spec):
                continue
            layout.append(WidgetSlot("value", name))
            if _has_control(name, spec):
                layout.append(WidgetSlot("control", name))
                if spec_type(spec) == "COMBO":
                    layout.append(WidgetSlot("filter", name))
            if section == "required" and upload is None and _is_upload_combo(spec):
                upload = WidgetSlot("upload", name)
        if section == "required" and upload is not None:
            layout.append(upload)
    return layout


def widget_values(
    values: Any, info: Mapping[str, Any], *, node_id: str, class_type: str
) -> dict[str, Any]:
    """The ``{input name: value}`` of a node's widgets, from its saved ``widgets_values``.

    A dict (saved by some nodes) is matched by name. A list must line up with
    :func:`widget_layout` exactly; trailing ``null`` values are tolerated because the
    frontend saves display-only widgets (PreviewAny's text) as null. Absent values mean
    the node has no widgets saved and give an empty map.
    """
    layout = widget_layout(info)
    if values is None:
        if any(slot.role == "value" for slot in layout):
            raise _mismatch(node_id, class_type, layout, [])
        return {}
    if isinstance(values, Mapping):
        names = {slot.input_name for slot in layout if slot.role == "value"}
        return {name: value for name, value in values.items() if name in names}
    if not isinstance(values, list):
        raise ConversionError(
            f"node {node_id} ({class_type}): widgets_values must be a list or an object, "
            f"got {type(values).__name__}",
            node_ids=[node_id],
            code="widget_values_mismatch",
        )
    trimmed = list(values)
    while len(trimmed) > len(layout) and trimmed[-1] is None:
        trimmed.pop()
    if len(trimmed) != len(layout):
        raise _mismatch(node_id, class_type, layout, values)
    found: dict[str, Any] = {}
    for slot, value in zip(layout, trimmed, strict=True):
        if slot.role == "value":
            found[slot.input_name] = value
        elif slot.role == "control" and value not in CONTROL_VALUES:
            raise ConversionError(
                f"node {node_id} ({class_type}): expected the control mode of "
                f"{slot.input_name!r} (one of {', '.join(sorted(CONTROL_VALUES))}) but "
                f"found {value!r}; the saved widget values do not line up with this "
                "server's inputs (was the workflow saved with another ComfyUI version?)",
                node_ids=[node_id],
                code="widget_values_mismatch",
            )
    return found


def _mismatch(
    node_id: str, class_type: str, layout: Sequence[WidgetSlot], values: Sequence[Any]
) -> ConversionError:
    expected = [
        slot.input_name if slot.role == "value" else f"<{slot.role} of {slot.input_name}>"
        for slot in layout
    ]
    return ConversionError(
        f"node {node_id} ({class_type}) saved {len(values)} widget value(s) but this "
        f"server's {class_type} has {len(layout)} ({', '.join(expected) or 'none'}); the "
        "workflow was probably saved with a different ComfyUI or frontend version, so "
        "which value belongs to which input is ambiguous. Re-save it in this server's "
        "editor or export it with Workflow → Export (API)",
        node_ids=[node_id],
        code="widget_values_mismatch",
    )
