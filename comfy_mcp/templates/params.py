"""Typed template parameters: what an argument may be, and how a raw argument becomes a value.

A parameter is bound to (node id, input name) pairs of the graph, never to a position in
JSON text, so filling cannot break quoting and keeps big integers exact (design rule 3).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from comfy_mcp.templates.errors import TemplateLoadError, closest, format_choices
from comfy_mcp.templates.objectinfo import CHOICE_SOURCE_NAMES

PARAMETER_TYPES = ("string", "integer", "number", "boolean", "seed", "image", "enum", "lora_stack")

#: ComfyUI's seed inputs take 0..2**64-1; a seed parameter without declared bounds uses these.
SEED_MAXIMUM = 2**64 - 1

#: Random seeds stay below 2**53 so JavaScript MCP hosts, whose numbers are doubles, can show
#: and resend them exactly. Explicit seeds up to SEED_MAXIMUM are still kept exact.
RANDOM_SEED_LIMIT = 2**53

#: The range ComfyUI's LoraLoader accepts for both strengths.
LORA_STRENGTH_RANGE = (-100.0, 100.0)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INTEGER_TEXT = re.compile(r"^[+-]?\d+$")
_JSON_TYPES = {
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "seed": "integer",
    "image": "string",
    "enum": "string",
}


@dataclass(frozen=True)
class Binding:
    """One graph input a parameter sets. ``input_name`` is empty for node-level bindings
    (a LoRA stack binds the loader node whose MODEL and CLIP outputs it wraps)."""

    node_id: str
    input_name: str

    def __str__(self) -> str:
        return f"{self.node_id}.{self.input_name}" if self.input_name else self.node_id


class InvalidValue(Exception):
    """Internal: one argument failed its check; fill collects these into ParameterProblems."""

    def __init__(self, message: str, allowed: list[Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.allowed = allowed


def _show(value: Any, limit: int = 60) -> str:
    """A short repr of a bad value: enough to recognise it, never a wall of text."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Parameter:
    """One named, typed argument of a template.

    ``default`` None means required, except for seeds (random when missing) and LoRA stacks
    (empty when missing). ``choices`` is a fixed list; ``choices_from`` names a list that is
    only known at run time (checkpoint files…) and is passed to ``fill(choices=...)``.
    """

    name: str
    type: str
    bindings: tuple[Binding, ...]
    default: Any = None
    description: str = ""
    minimum: int | float | None = None
    maximum: int | float | None = None
    choices: tuple[str, ...] | None = None
    choices_from: str | None = None
    inferred: bool = False

    def __post_init__(self) -> None:
        def fail(message: str) -> TemplateLoadError:
            return TemplateLoadError(message, parameter=self.name)

        if not _NAME.match(self.name):
            raise fail(
                "a parameter name must be letters, digits and '_', not starting with a digit"
            )
        if self.type not in PARAMETER_TYPES:
            raise fail(f"unknown type {self.type!r}; valid types: {', '.join(PARAMETER_TYPES)}")
        if not self.bindings:
            raise fail("it is bound to no graph input ('bind' is empty)")
        if self.type == "lora_stack" and len(self.bindings) != 1:
            raise fail("a lora_stack binds exactly one loader node")
        if self.choices_from is not None and self.choices_from not in CHOICE_SOURCE_NAMES:
            raise fail(
                f"unknown choices_from {self.choices_from!r}; valid: "
                + ", ".join(CHOICE_SOURCE_NAMES)
            )
        if self.type == "enum" and self.choices is None and self.choices_from is None:
            raise fail("an enum needs 'choices' or 'choices_from'")
        if self.type == "seed" and self.default == -1:
            object.__setattr__(self, "default", None)  # "-1" is the usual way to say random
        if self.default is not None:
            try:
                check_value(self, self.default, live=None)
            except InvalidValue as problem:
                raise fail(f"bad default: {problem.message}") from None

    @property
    def required(self) -> bool:
        """Whether a call must give this argument (no default and no natural fallback)."""
        return self.default is None and self.type not in ("seed", "lora_stack")

    @property
    def low(self) -> int | float | None:
        """The effective minimum, including the implicit 0 of seeds."""
        if self.minimum is None and self.type == "seed":
            return 0
        return self.minimum

    @property
    def high(self) -> int | float | None:
        """The effective maximum, including the implicit 2**64-1 of seeds."""
        if self.maximum is None and self.type == "seed":
            return SEED_MAXIMUM
        return self.maximum

    def json_schema(self) -> dict[str, Any]:
        """A JSON-schema fragment for this argument, for a flat MCP tool input schema."""
        description = self.description
        if self.type == "lora_stack":
            schema: dict[str, Any] = {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "description": "LoRA file name"},
                        "strength": {"type": "number", "default": 1.0},
                        "clip_strength": {"type": "number"},
                    },
                    "required": ["name"],
                },
            }
        else:
            schema = {"type": _JSON_TYPES[self.type]}
        if self.type == "seed":
            description += " Omit it or pass -1 for a random seed (reported back)."
        schema["description"] = description.strip()
        if self.default is not None:
            schema["default"] = self.default
        if self.type in ("integer", "number", "seed"):
            if self.low is not None:
                schema["minimum"] = -1 if self.type == "seed" else self.low
            if self.high is not None:
                schema["maximum"] = self.high
        if self.choices is not None:
            schema["enum"] = list(self.choices)
        return schema


def check_value(parameter: Parameter, value: Any, live: Sequence[Any] | None) -> Any:
    """Coerce one argument to the parameter's type and check it; raise InvalidValue if bad.

    Lenient where agents commonly slip (``"20"`` or ``20.0`` for 20, ``"true"`` for true),
    strict where leniency would hide a mistake (``true`` is not the integer 1, ``2.5`` is
    not a step count). ``live`` is the run-time choice list and wins over static choices.
    """
    name = parameter.name
    kind = parameter.type
    if kind in ("integer", "seed"):
        number: int | float = _to_int(name, value)
    elif kind == "number":
        number = _to_float(name, value)
    elif kind == "boolean":
        return _to_bool(name, value)
    elif kind == "lora_stack":
        return check_lora_stack(parameter, value, live)
    else:
        if not isinstance(value, str):
            raise InvalidValue(f"{name!r} must be a string (got {_show(value)})")
        if kind == "image":
            _check_image_name(name, value)
        allowed = live if live is not None else parameter.choices
        if allowed is not None:
            return _in_choices(name, value, allowed)
        return value
    _check_range(name, number, parameter.low, parameter.high)
    return number


def _to_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidValue(f"{name!r} must be an integer, not a boolean (got {value!r})")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER_TEXT.match(value.strip()):
        return int(value.strip())
    raise InvalidValue(f"{name!r} must be a whole number (got {_show(value)})")


def _to_float(name: str, value: Any) -> int | float:
    if isinstance(value, bool):
        raise InvalidValue(f"{name!r} must be a number, not a boolean (got {value!r})")
    result: int | float
    if isinstance(value, int | float):
        result = value
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise InvalidValue(f"{name!r} must be a number (got {_show(value)})") from None
    else:
        raise InvalidValue(f"{name!r} must be a number (got {_show(value)})")
    if not math.isfinite(result):
        raise InvalidValue(f"{name!r} must be a finite number (got {_show(value)})")
    return result


def _to_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidValue(f"{name!r} must be true or false (got {_show(value)})")


def _check_range(
    name: str, value: int | float, low: int | float | None, high: int | float | None
) -> None:
    if (low is not None and value < low) or (high is not None and value > high):
        if low is not None and high is not None:
            bounds = f"between {low} and {high}"
        elif low is not None:
            bounds = f"at least {low}"
        else:
            bounds = f"at most {high}"
        raise InvalidValue(f"{name!r} must be {bounds} (got {value})")


def _check_image_name(name: str, value: str) -> None:
    """An image argument names a file in ComfyUI's input folder (optionally a subfolder).

    Absolute paths and ``..`` would name files outside it; ComfyUI refuses them too, but
    saying so here tells the agent to upload the image first instead of guessing paths.
    """
    path = value.replace("\\", "/")
    if not value.strip():
        raise InvalidValue(f"{name!r} must name an uploaded image file (got an empty string)")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path) or ".." in path.split("/"):
        raise InvalidValue(
            f"{name!r} must be a file name in ComfyUI's input folder, such as 'photo.png' or "
            f"'sub/photo.png', not a path outside it (got {_show(value)}); upload it first"
        )


def _in_choices(name: str, value: Any, allowed: Sequence[Any]) -> Any:
    if value in allowed:
        return value
    for choice in allowed:  # combo lists may hold numbers; accept their text form
        if not isinstance(choice, str) and str(choice) == value:
            return choice
    if not allowed:
        raise InvalidValue(
            f"{name!r} cannot be {_show(value)}: the server lists no choices for it "
            "(are the files installed in its models folder?)",
            [],
        )
    hint = closest(str(value), allowed)
    got = f"got {_show(value)}" + (f"; did you mean {hint!r}?" if hint else "")
    raise InvalidValue(f"{name!r} must be one of: {format_choices(allowed)} ({got})", list(allowed))


def check_lora_stack(
    parameter: Parameter, value: Any, live: Sequence[Any] | None
) -> list[dict[str, Any]]:
    """Normalise a LoRA stack to ``[{"name", "strength", "clip_strength"}, …]``.

    Accepts bare file names (strength 1.0) as a convenience; ``clip_strength`` defaults to
    ``strength`` because that is what almost every user means by "a LoRA at 0.8".
    """
    name = parameter.name
    if not isinstance(value, list | tuple):
        raise InvalidValue(
            f"{name!r} must be a list of {{'name': ..., 'strength': ...}} objects "
            f"(got {_show(value)})"
        )
    stack: list[dict[str, Any]] = []
    low, high = LORA_STRENGTH_RANGE
    for index, item in enumerate(value):
        where = f"{name}[{index}]"
        entry: Mapping[str, Any] = {"name": item} if isinstance(item, str) else item
        if not isinstance(entry, Mapping):
            raise InvalidValue(f"{where!r} must be an object with 'name' and 'strength'")
        unknown = sorted(set(entry) - {"name", "strength", "clip_strength"})
        if unknown:
            raise InvalidValue(
                f"{where!r} has unknown keys {', '.join(unknown)}; "
                "valid keys: name, strength, clip_strength"
            )
        lora = entry.get("name")
        if not isinstance(lora, str) or not lora:
            raise InvalidValue(f"{where!r} needs a 'name' (a LoRA file name)")
        allowed = live if live is not None else parameter.choices
        if allowed is not None:
            lora = _in_choices(f"{where}.name", lora, allowed)
        strength = _to_float(f"{where}.strength", entry.get("strength", 1.0))
        _check_range(f"{where}.strength", strength, low, high)
        clip = _to_float(f"{where}.clip_strength", entry.get("clip_strength", strength))
        _check_range(f"{where}.clip_strength", clip, low, high)
        stack.append({"name": lora, "strength": strength, "clip_strength": clip})
    return stack
