"""One place that turns client and template errors into messages an agent can act on.

Tools raise :class:`ToolError` (the SDK shows its text to the model); any other exception would
reach the model only as "Error executing tool X", which nobody can fix.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from mcp.server.mcpserver.exceptions import ToolError

from comfy_mcp.comfy.errors import (
    ComfyConnectionError,
    ComfyError,
    ComfyTimeoutError,
    PromptRejectedError,
)
from comfy_mcp.templates import TemplateError

# (node id, input name) → the template parameter that set it.
BindingIndex = Mapping[tuple[str, str], str]


@contextmanager
def tool_errors(bindings: BindingIndex | None = None) -> Iterator[None]:
    """Re-raise ComfyUI and template errors as ToolErrors with actionable text."""
    try:
        yield
    except ToolError:
        raise
    except PromptRejectedError as exc:
        raise ToolError(describe_rejection(exc, bindings or {})) from exc
    except ComfyConnectionError as exc:
        raise ToolError(str(exc)) from exc
    except ComfyTimeoutError as exc:
        raise ToolError(
            f"{exc}. ComfyUI is slow or stuck; try again, or raise COMFY_MCP_HTTP_TIMEOUT."
        ) from exc
    except (ComfyError, TemplateError) as exc:
        raise ToolError(str(exc)) from exc


def describe_rejection(exc: PromptRejectedError, bindings: BindingIndex) -> str:
    """ComfyUI's 400, one line per node error, naming the template parameter when one set it."""
    error = exc.error
    lines = [
        "ComfyUI rejected the workflow (nothing was queued): "
        + str(error.get("message") or error.get("type") or "invalid prompt")
    ]
    if error.get("details") and not exc.node_errors:
        lines[0] += f" ({error['details']})"
    for node_id, entry in exc.node_errors.items():
        if not isinstance(entry, dict):
            continue
        class_type = entry.get("class_type", "?")
        for err in entry.get("errors", []):
            extra = err.get("extra_info") or {}
            input_name = extra.get("input_name")
            where = f"node {node_id} ({class_type})"
            if input_name:
                where += f", input '{input_name}'"
                parameter = bindings.get((str(node_id), str(input_name)))
                if parameter:
                    where += f" (parameter '{parameter}')"
            text = str(err.get("message", ""))
            if err.get("details"):
                text += f": {err['details']}"
            lines.append(f"- {where}: {text}")
    if error.get("type") == "invalid_prompt" and "does not exist" in str(error.get("message")):
        lines.append("Install the custom node that provides this class, or remove the node.")
    return "\n".join(lines)
