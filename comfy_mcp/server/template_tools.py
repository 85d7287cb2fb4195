"""One MCP tool per template (``run_txt2img`` …) with a flat schema built from its parameters.

Agents call a typed tool more reliably than a generic one with a free-form ``params`` object: the
schema shows every parameter with its type, range, default and description. The tool functions are
built from the declarations (a signature object, no generated source); the arguments are checked by
the template's own ``fill``, so errors read the same as through ``enqueue_workflow``.
"""

from __future__ import annotations

import inspect
import logging
import re
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult
from pydantic import Field

from comfy_mcp.server.job_tools import BACKEND_HELP, PREVIEW_HELP, QUEUES_WORK, enqueue
from comfy_mcp.server.state import ServerState
from comfy_mcp.templates import Template

log = logging.getLogger(__name__)

# Arguments every run tool has besides the template's parameters.
_CONTROL = {
    "wait": (bool, True, "Wait for the result (returns the prompt_id early on timeout)"),
    "timeout_s": (
        Annotated[float | None, Field(ge=0)],
        None,
        "Seconds to wait before returning the prompt_id (0: do not wait); default 45",
    ),
    "preview": (bool | int, True, PREVIEW_HELP),
    "backend": (str | None, None, BACKEND_HELP),
}


def tool_name(template: Template) -> str:
    return "run_" + re.sub(r"[^a-z0-9_]", "_", template.name.lower())


def register_template_tools(server: MCPServer, state: ServerState) -> list[str]:
    """Add a ``run_<name>`` tool for every template loaded now; returns their names.

    Templates added later are still runnable through ``enqueue_workflow`` at once; their own
    tools appear when the server restarts.
    """
    names: list[str] = []
    for template in state.catalog.templates():
        name = tool_name(template)
        try:
            server.add_tool(
                _tool_function(state, template),
                name=name,
                title=f"Run the {template.name} workflow",
                description=_description(template),
                annotations=QUEUES_WORK,
            )
        except Exception as exc:  # one odd template must not take the server down
            log.warning("no tool for template %s: %s", template.name, exc)
            continue
        names.append(name)
    return names


def _description(template: Template) -> str:
    text = template.description.strip() or f"Run the {template.name} ComfyUI workflow."
    return (
        f"{text} Returns the same result as enqueue_workflow: prompt_id, status, and the images "
        "when it finishes in time."
    )


def _preview_value(value: Any) -> bool | int:
    return value if isinstance(value, bool | int) else True


def _tool_function(state: ServerState, template: Template) -> Any:
    parameter_names = [p.name for p in template.parameters]

    async def run_template(ctx: Context, **arguments: Any) -> Any:
        params = {k: v for k, v in arguments.items() if k in parameter_names and v is not None}
        controls = {k: arguments.get(k, default) for k, (_, default, _) in _CONTROL.items()}
        for control in _CONTROL:
            if control in parameter_names:  # a template parameter wins over the control name
                controls.pop(control)
        return await enqueue(
            state,
            ctx,
            template.name,
            params,
            wait=bool(controls.get("wait", True)),
            timeout_s=controls.get("timeout_s"),
            preview=_preview_value(controls.get("preview", True)),
            backend=controls.get("backend"),
        )

    signature_parameters = [
        inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)
    ]
    for parameter in template.parameters:
        schema = parameter.json_schema()
        default: Any = inspect.Parameter.empty if parameter.required else None
        signature_parameters.append(
            inspect.Parameter(
                parameter.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=Annotated[Any, Field(json_schema_extra=schema)],
            )
        )
    for control, (annotation, default, description) in _CONTROL.items():
        if control not in parameter_names:
            signature_parameters.append(
                inspect.Parameter(
                    control,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=default,
                    annotation=Annotated[annotation, Field(description=description)],
                )
            )
    # No output schema here: the result is enqueue_workflow's (JobReport), and repeating its
    # schema on every run_<name> tool would multiply the size of tools/list.
    run_template.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        signature_parameters, return_annotation=CallToolResult
    )
    run_template.__name__ = tool_name(template)
    return run_template
