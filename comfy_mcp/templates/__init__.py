"""Workflow templates: ComfyUI graphs with typed parameters, filled and checked locally.

Pure Python on parsed JSON: no network, no MCP. The server lists a :class:`TemplateCatalog`,
fills a :class:`Template` with an agent's arguments and checks the result with
:func:`validate_graph` against the server's ``/object_info`` before submitting it.
"""

from __future__ import annotations

from comfy_mcp.templates.catalog import TemplateCatalog, bundled_directory
from comfy_mcp.templates.convert import ConversionError, convert_ui_workflow, to_api_format
from comfy_mcp.templates.errors import (
    ParameterProblem,
    TemplateError,
    TemplateLoadError,
    TemplateParameterError,
    UnknownTemplateError,
)
from comfy_mcp.templates.graph import is_api_format, is_link, is_ui_format
from comfy_mcp.templates.infer import infer_parameters
from comfy_mcp.templates.loader import load_template_file, template_from_document, template_name
from comfy_mcp.templates.objectinfo import CHOICE_SOURCES, combo_choices, live_choices
from comfy_mcp.templates.params import (
    PARAMETER_TYPES,
    RANDOM_SEED_LIMIT,
    SEED_MAXIMUM,
    Binding,
    Parameter,
)
from comfy_mcp.templates.template import FilledWorkflow, Template
from comfy_mcp.templates.validate import GraphIssue, validate_graph

__all__ = [
    "CHOICE_SOURCES",
    "PARAMETER_TYPES",
    "RANDOM_SEED_LIMIT",
    "SEED_MAXIMUM",
    "Binding",
    "ConversionError",
    "FilledWorkflow",
    "GraphIssue",
    "Parameter",
    "ParameterProblem",
    "Template",
    "TemplateCatalog",
    "TemplateError",
    "TemplateLoadError",
    "TemplateParameterError",
    "UnknownTemplateError",
    "bundled_directory",
    "combo_choices",
    "convert_ui_workflow",
    "infer_parameters",
    "is_api_format",
    "is_link",
    "is_ui_format",
    "live_choices",
    "load_template_file",
    "template_from_document",
    "template_name",
    "to_api_format",
    "validate_graph",
]
