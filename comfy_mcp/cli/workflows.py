"""``mcp-server-comfyui workflows [NAME] [--json]``: the templates an agent (or ``run``) can use.

A table by default, because a person reads it; ``--json`` gives the same summaries the
``list_workflows`` tool returns, for scripts. Files that failed to load are reported on stderr
with the reason, so a broken template of your own is never silently missing.
"""

from __future__ import annotations

import json

from rich import box
from rich.table import Table
from rich.text import Text

from comfy_mcp.cli import console
from comfy_mcp.settings import Settings
from comfy_mcp.templates import Parameter, Template, TemplateCatalog, UnknownTemplateError


def workflows(settings: Settings, name: str | None = None, *, as_json: bool = False) -> int:
    catalog = TemplateCatalog(list(settings.workflows_dirs))
    for path, reason in catalog.errors().items():
        console.error(f"could not load {path}: {reason}", "docs/workflows.md describes the format")
    if name is not None:
        try:
            template = catalog.get(name)
        except UnknownTemplateError as exc:
            console.error(str(exc), "list the templates: mcp-server-comfyui workflows")
            return 2
        if as_json:
            print(json.dumps(template.summary(), indent=2, default=str))
        else:
            _print_template(template)
        return 0
    templates = catalog.templates()
    if as_json:
        print(json.dumps([t.summary() for t in templates], indent=2, default=str))
        return 0
    table = Table("template", "parameters (* required)", "description", box=box.SIMPLE_HEAD)
    table.columns[0].no_wrap = True
    for template in templates:
        names = ", ".join(p.name + ("*" if p.required else "") for p in template.parameters)
        table.add_row(
            Text(template.name, style="bold"),
            Text(names),
            Text(_first_sentence(template.description)),
        )
    out = console.stdout()
    out.print(table)
    out.print("Details: mcp-server-comfyui workflows NAME", markup=False)
    out.print("Run one: mcp-server-comfyui run smoke --set width=256 height=256", markup=False)
    return 0


def _print_template(template: Template) -> None:
    """One template as a short manual page: each parameter with its type, range, default and
    description (a five-column table is unreadable at 80 columns)."""
    out = console.stdout()
    heading = Text(template.name, style="bold")
    heading.append(f"  ({template.source}{', parameters inferred' if template.inferred else ''})")
    out.print(heading)
    if template.description:
        out.print(template.description, markup=False)
    table = Table(box=None, show_header=False, padding=(0, 2, 1, 0))
    table.add_column(no_wrap=True, style="bold")
    table.add_column()
    for parameter in template.parameters:
        facts = [parameter.type]
        if allowed := _allowed(parameter):
            facts.append(allowed)
        default = _default(parameter)
        facts.append("required" if parameter.required else f"default {default}")
        cell = Text(", ".join(facts), style="cyan")
        if parameter.description:
            cell.append("\n" + parameter.description, style="")
        table.add_row(parameter.name + ("*" if parameter.required else ""), cell)
    out.print(table)
    required = [p for p in template.parameters if p.required] or list(template.parameters[:1])
    example = " ".join(f"{p.name}={_example(p)}" for p in required)
    out.print(
        f"Example: mcp-server-comfyui run {template.name} --set {example}",
        markup=False,
        soft_wrap=True,
    )


def _default(parameter: Parameter) -> str:
    if parameter.type == "seed" and parameter.default is None:
        return "random"
    if parameter.type == "lora_stack" and not parameter.default:
        return "none"
    text = json.dumps(parameter.default, ensure_ascii=False)
    return text if len(text) <= 60 else text[:58] + '…"'


def _allowed(parameter: Parameter) -> str:
    if parameter.choices is not None:
        return ", ".join(parameter.choices)
    if parameter.choices_from == "object_info":
        return "the node's list in ComfyUI"
    if parameter.choices_from is not None:
        return f"ComfyUI's {parameter.choices_from}"
    if parameter.type == "image":
        return "a local file (uploaded) or an input file name"
    if parameter.type == "seed":
        return f"0–{parameter.high} or -1 for random"
    low, high = parameter.low, parameter.high
    if low is not None and high is not None:
        return f"{low}–{high}"
    if low is not None:
        return f"≥ {low}"
    if high is not None:
        return f"≤ {high}"
    return ""


def _example(parameter: Parameter) -> str:
    if parameter.type == "image":
        return "./photo.png"
    if parameter.choices_from is not None:
        return parameter.name.upper()
    if isinstance(parameter.default, str):
        return json.dumps(parameter.default)
    if parameter.default is not None:
        return json.dumps(parameter.default)
    return "…"


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]
