"""Turning a template file into a Template: declared parameters, or inferred ones.

A file is either a declaration (``{"description", "parameters", "graph"}``) or a plain
API-format export, whose parameters are inferred from well-known nodes. Declarations are
checked strictly at load time (unknown keys, bad binds, bad defaults) so that mistakes
surface once, naming the file and parameter, instead of at every call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from comfy_mcp.templates.errors import TemplateLoadError, closest
from comfy_mcp.templates.graph import is_api_format, is_ui_format
from comfy_mcp.templates.infer import infer_parameters
from comfy_mcp.templates.params import Binding, Parameter
from comfy_mcp.templates.template import Template

#: Keys a parameter declaration may have; anything else is a typo worth reporting.
DECLARATION_KEYS = (
    "type",
    "bind",
    "description",
    "default",
    "minimum",
    "maximum",
    "choices",
    "choices_from",
)
DOCUMENT_KEYS = ("description", "parameters", "graph")

#: Template files larger than this are refused: a workflow is kilobytes, not megabytes,
#: and the catalog re-reads changed files on every call.
MAX_TEMPLATE_BYTES = 5 * 1024 * 1024

_INVALID_NAME_CHARS = re.compile(r"[^a-z0-9_-]+")


def template_name(stem: str) -> str:
    """The template name for a file stem: lowercase, runs of other characters become '_'.

    "My Portrait (v2)" becomes "my_portrait_v2", so names stay safe in tool names and URIs.
    """
    return _INVALID_NAME_CHARS.sub("_", stem.lower()).strip("_")


def load_template_file(path: Path, *, source: str | None = None) -> Template:
    """Read and parse one template file; TemplateLoadError names the file on any problem.

    ``source`` is what the template reports as its origin (default: the path); bundled
    templates say "bundled" so that listings do not expose install paths.
    """
    origin = str(path) if source is None else source
    name = template_name(path.stem)
    source = str(path)
    if not name:
        raise TemplateLoadError("the file name gives an empty template name", source=source)
    try:
        if path.stat().st_size > MAX_TEMPLATE_BYTES:
            raise TemplateLoadError(
                f"the file is larger than {MAX_TEMPLATE_BYTES} bytes", source=source
            )
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateLoadError(f"cannot read the file: {exc}", source=source) from exc
    except json.JSONDecodeError as exc:
        raise TemplateLoadError(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", source=source
        ) from exc
    try:
        return template_from_document(name, document, source=origin)
    except TemplateLoadError as exc:
        raise exc.with_source(source) from None


def template_from_document(
    name: str,
    document: Any,
    *,
    source: str = "bundled",
    object_info: Mapping[str, Any] | None = None,
) -> Template:
    """Build a Template from a parsed file: a declaration or a plain API-format graph."""
    if is_ui_format(document):
        raise TemplateLoadError(
            "this is a UI-format workflow (nodes/links); in ComfyUI use 'Export (API)' and "
            "save that file instead",
            source=source,
        )
    if isinstance(document, Mapping) and ("graph" in document or "parameters" in document):
        return _declared(name, document, source)
    if is_api_format(document):
        graph = dict(document)
        return Template(
            name=name,
            description=f"Workflow {name!r}, parameters inferred from its nodes.",
            graph=graph,
            parameters=infer_parameters(graph, object_info),
            source=source,
            inferred=True,
        )
    raise TemplateLoadError(
        "expected a template ({description, parameters, graph}) or an API-format graph "
        "({node_id: {class_type, inputs}})",
        source=source,
    )


def _declared(name: str, document: Mapping[str, Any], source: str) -> Template:
    unknown = sorted(set(document) - set(DOCUMENT_KEYS))
    if unknown:
        raise TemplateLoadError(
            f"unknown top-level keys {', '.join(unknown)}; valid keys: {', '.join(DOCUMENT_KEYS)}",
            source=source,
        )
    graph = document.get("graph")
    if not is_api_format(graph):
        raise TemplateLoadError(
            "'graph' must be an API-format graph ({node_id: {class_type, inputs}})", source=source
        )
    description = document.get("description", "")
    if not isinstance(description, str):
        raise TemplateLoadError("'description' must be a string", source=source)
    declarations = document.get("parameters", {})
    if not isinstance(declarations, Mapping):
        raise TemplateLoadError(
            "'parameters' must be an object of name → declaration", source=source
        )
    parameters = []
    for key, declaration in declarations.items():
        try:
            parameters.append(_parameter(str(key), declaration))
        except TemplateLoadError as exc:
            raise exc.with_source(source) from None
    assert isinstance(graph, Mapping)  # is_api_format checked it; this narrows for mypy
    return Template(
        name=name,
        description=description,
        graph=dict(graph),
        parameters=tuple(parameters),
        source=source,
    )


def _parameter(name: str, declaration: Any) -> Parameter:
    def fail(message: str) -> TemplateLoadError:
        return TemplateLoadError(message, parameter=name)

    if not isinstance(declaration, Mapping):
        raise fail("a declaration must be an object with at least 'type' and 'bind'")
    for key in declaration:
        if key not in DECLARATION_KEYS:
            hint = closest(str(key), DECLARATION_KEYS)
            extra = f" (did you mean {hint!r}?)" if hint else ""
            raise fail(f"unknown key {key!r}{extra}; valid keys: {', '.join(DECLARATION_KEYS)}")
    kind = declaration.get("type")
    if not isinstance(kind, str):
        raise fail("'type' is missing")
    bindings = _bindings(name, declaration.get("bind"), node_only=kind == "lora_stack")
    for key in ("minimum", "maximum"):
        bound = declaration.get(key)
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int | float)):
            raise fail(f"{key!r} must be a number")
    choices = declaration.get("choices")
    if choices is not None and (
        not isinstance(choices, list) or not all(isinstance(c, str) for c in choices)
    ):
        raise fail("'choices' must be a list of strings")
    description = declaration.get("description", "")
    if not isinstance(description, str):
        raise fail("'description' must be a string")
    choices_from = declaration.get("choices_from")
    if choices_from is not None and not isinstance(choices_from, str):
        raise fail("'choices_from' must be a string")
    return Parameter(
        name=name,
        type=kind,
        bindings=bindings,
        default=declaration.get("default"),
        description=description,
        minimum=declaration.get("minimum"),
        maximum=declaration.get("maximum"),
        choices=tuple(choices) if choices is not None else None,
        choices_from=choices_from,
    )


def _bindings(name: str, bind: Any, *, node_only: bool) -> tuple[Binding, ...]:
    targets = [bind] if isinstance(bind, str) else bind
    if not isinstance(targets, list) or not targets:
        raise TemplateLoadError(
            "'bind' must be \"node_id.input_name\" or a non-empty list of them", parameter=name
        )
    bindings = []
    for target in targets:
        if not isinstance(target, str):
            raise TemplateLoadError(f"bind target {target!r} must be a string", parameter=name)
        if node_only:
            bindings.append(Binding(target, ""))
            continue
        node_id, dot, input_name = target.partition(".")
        if not dot or not node_id or not input_name:
            raise TemplateLoadError(
                f"bind target {target!r} must look like 'node_id.input_name', e.g. '6.text'",
                parameter=name,
            )
        bindings.append(Binding(node_id, input_name))
    return tuple(bindings)
