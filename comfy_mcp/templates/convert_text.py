"""The frontend's text substitutions in file names: ``%date:…%`` and ``%Node.widget%``.

When queueing, the editor rewrites the ``filename_prefix`` of save nodes (and the value of
a PrimitiveNode with "Run widget replace on values"): ``%date:yyyy-MM-dd%`` becomes the
current date, ``%KSampler.seed%`` the seed widget of the node whose "Node name for S&R"
or title is ``KSampler``. The server never sees these tokens, so an offline conversion
must apply them too. Other tokens (``%width%``, ``%year%``…) are the server's and stay.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

#: Save classes: the frontend gives every *other* class a default "Node name for S&R"
#: equal to its class name, so references like ``%KSampler.seed%`` find them.
SAVE_CLASSES = frozenset(
    {
        "SaveImage",
        "SaveImageAdvanced",
        "SaveSVGNode",
        "SaveVideo",
        "SaveAnimatedWEBP",
        "SaveWEBM",
        "SaveAudio",
        "SaveAudioMP3",
        "SaveAudioOpus",
        "SaveAudioAdvanced",
        "SaveGLB",
        "SaveAnimatedPNG",
        "CLIPSave",
        "VAESave",
        "ModelSave",
        "LoraSave",
        "SaveLatent",
    }
)

_TOKEN = re.compile(r"%([^%]+)%")
_DATE_PART = re.compile(r"dd?|MM?|hh?|mm?|ss?|yyy?y?")
#: Characters the frontend replaces with "_" in a referenced value (path separators etc.).
_UNSAFE = re.compile(r'[/?<>\\:*|"\x00-\x1f\x7f]')


def format_date(pattern: str, when: datetime) -> str:
    """The frontend's ``formatDate``: yyyy, yy, MM/M, dd/d, hh/h (24 h), mm/m, ss/s."""

    def part(match: re.Match[str]) -> str:
        piece = match.group(0)
        if piece == "yyyy":
            return str(when.year)
        if piece == "yy":
            return str(when.year)[2:]
        fields = {"d": when.day, "M": when.month, "h": when.hour, "m": when.minute}
        fields["s"] = when.second
        value = fields.get(piece[0])
        return piece if value is None else str(value).zfill(len(piece))

    return _DATE_PART.sub(part, pattern)


def js_string(value: Any) -> str:
    """``String(value ?? "")`` as JavaScript prints a widget value into a file name."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def search_name(class_type: str | None, properties: Any) -> str | None:
    """The "Node name for S&R" a node answers to: as saved, else its class name.

    ``class_type`` is None for editor-only nodes and subgraph instances, which the
    frontend never tags by default.
    """
    default = None if class_type in SAVE_CLASSES else class_type
    if isinstance(properties, Mapping):
        name = properties.get("Node name for S&R", default)
        return name if isinstance(name, str) else None
    return default


def replace_tokens(text: str, now: datetime, reference: Callable[[str, str], Any]) -> str:
    """``text`` with date tokens formatted and ``%Node.widget%`` replaced via ``reference``.

    ``reference(node name, widget name)`` returns the widget's value or raises; the value is
    sanitised for a file name exactly as the frontend does.
    """

    def substitute(match: re.Match[str]) -> str:
        parts = match.group(1).split(".")
        if len(parts) != 2:
            if parts[0].startswith("date:"):
                return format_date(parts[0][5:], now)
            return match.group(0)
        return _UNSAFE.sub("_", js_string(reference(parts[0], parts[1])))

    return _TOKEN.sub(substitute, text)
