"""``mcp-server-comfyui run TEMPLATE --set key=value …``: one template from the shell.

Why an MCP server has this: it is the quickest proof that ComfyUI, the templates and the client
work together before an agent is involved, and it applies the same checks as the MCP tools, so a
wrong value reads the same here as in an agent's tool call. It talks to ComfyUI through
:class:`~comfy_mcp.comfy.ComfyClient` and the template layer directly, not through the MCP
server: nothing here needs the protocol.

Exit status: 0 saved, 1 ComfyUI refused or failed the prompt (or the timeout passed), 2 a wrong
template name or value, 130 interrupted (the prompt was cancelled in ComfyUI).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from comfy_mcp.cli import console
from comfy_mcp.cli.values import (
    UsageError,
    parse_assignments,
    pick_backend,
    upload_local_images,
)
from comfy_mcp.comfy import (
    ComfyClient,
    ComfyError,
    Job,
    JobState,
    OutputFile,
    PromptRejectedError,
    raise_for_job,
)
from comfy_mcp.comfy.jobs import SUCCESS_STATES
from comfy_mcp.comfy.jobs import Progress as JobProgress
from comfy_mcp.settings import Settings
from comfy_mcp.templates import (
    Template,
    TemplateCatalog,
    TemplateError,
    TemplateParameterError,
    validate_graph,
)


async def run(settings: Settings, args: argparse.Namespace) -> int:
    """The ``run`` command: returns the exit status."""
    catalog = TemplateCatalog(list(settings.workflows_dirs))
    try:
        template = catalog.get(args.template)
    except TemplateError as exc:
        console.error(str(exc), "list the templates: mcp-server-comfyui workflows")
        return 2
    try:
        values = parse_assignments(template, args.assignments)
    except UsageError as exc:
        _usage_error(exc, template)
        return 2
    try:
        url, auth = pick_backend(settings, args.backend, flag_url=args.comfyui_url)
    except UsageError as exc:
        console.error(str(exc))
        return 2
    async with ComfyClient(
        url,
        auth=auth,
        user=settings.comfyui_user,
        verify=settings.verify_tls,
        timeout=settings.http_timeout,
    ) as comfy:
        try:
            values = await upload_local_images(comfy, template, values)
            object_info = await comfy.get_node_defs()
            filled = template.fill(values, choices=template.live_choices(object_info))
        except (TemplateError, UsageError) as exc:
            _usage_error(exc, template)
            return 2
        except ComfyError as exc:
            console.error(str(exc), "run: mcp-server-comfyui check")
            return 1
        issues = validate_graph(filled.graph, object_info, parameters=template.parameters)
        if issues:
            lines = "\n".join(f"- {issue}" for issue in issues)
            console.error(f"ComfyUI would reject this workflow:\n{lines}")
            return 1
        return await _submit_and_save(comfy, template, filled.graph, filled.values, args)


def _usage_error(exc: Exception, template: Template) -> None:
    message = str(exc)
    if isinstance(exc, TemplateParameterError) and len(exc.problems) > 1:
        message = f"{len(exc.problems)} invalid values for template {template.name!r}:"
        message += "".join(f"\n- {problem}" for problem in exc.problems)
    console.error(message, f"list its parameters: mcp-server-comfyui workflows {template.name}")


async def _submit_and_save(
    comfy: ComfyClient,
    template: Template,
    graph: dict[str, Any],
    values: dict[str, Any],
    args: argparse.Namespace,
) -> int:
    prompt_id = str(uuid.uuid4())  # chosen here, so Ctrl-C during the POST can still cancel it
    started = time.monotonic()
    try:
        job = await _follow(comfy, template.name, graph, prompt_id, args.timeout)
    except PromptRejectedError as exc:
        console.error(str(exc))
        return 1
    except ComfyError as exc:
        console.error(str(exc), "run: mcp-server-comfyui check")
        return 1
    except asyncio.CancelledError:
        # Ctrl-C: asyncio.run cancels this task. Stop the prompt so ComfyUI does not go on
        # working for nobody, then let the interrupt finish the command (exit status 130).
        action = await _cancel(comfy, prompt_id)
        console.stderr().print(f"cancelled prompt {prompt_id} ({action})", markup=False)
        raise
    if not job.done:
        action = await _cancel(comfy, prompt_id)
        console.error(
            f"prompt {prompt_id} did not finish within {args.timeout:g} s; cancelled it ({action})",
            "raise --timeout (a first run also loads the models, which takes a while)",
        )
        return 1
    try:
        raise_for_job(job, args.timeout)
    except ComfyError as exc:
        console.error(str(exc))
        return 1
    saved = await save_outputs(comfy, job.files, Path(args.out))
    elapsed = time.monotonic() - started
    _report(job, template.name, values, saved, elapsed, as_json=args.json)
    return 0


async def _follow(
    comfy: ComfyClient, name: str, graph: dict[str, Any], prompt_id: str, timeout: float
) -> Job:
    """Submit and wait, drawing a progress bar on stderr: queue position, node, step."""
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console.stderr(), transient=False) as bar:
        task = bar.add_task(f"{name}: submitting", total=None)
        job = await comfy.submit(graph, prompt_id=prompt_id)
        waiter = asyncio.ensure_future(comfy.wait(job, timeout=timeout))
        try:
            while not waiter.done():
                _draw(bar, task, name, job.progress())
                await asyncio.wait({waiter}, timeout=0.1)
        finally:
            if not waiter.done():
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
        job = waiter.result()
        _draw(bar, task, name, job.progress())
        if job.state in SUCCESS_STATES:
            bar.update(task, total=1, completed=1)
    return job


def _draw(bar: Progress, task: Any, name: str, snapshot: JobProgress) -> None:
    description = f"{name}: {snapshot.describe()}"
    if snapshot.state is JobState.RUNNING and snapshot.fraction is not None:
        bar.update(task, description=description, total=1.0, completed=snapshot.fraction)
    elif snapshot.state is JobState.RUNNING and snapshot.value is not None and snapshot.max:
        bar.update(task, description=description, total=snapshot.max, completed=snapshot.value)
    else:
        bar.update(task, description=description)


async def _cancel(comfy: ComfyClient, prompt_id: str) -> str:
    """Cancel ``prompt_id`` whatever happens around us (shielded, bounded)."""
    try:
        async with asyncio.timeout(10):
            return await asyncio.shield(comfy.cancel(prompt_id))
    except (ComfyError, TimeoutError, asyncio.CancelledError) as exc:
        return f"could not cancel: {exc or type(exc).__name__}"


async def save_outputs(
    comfy: ComfyClient, files: Sequence[OutputFile], out: Path
) -> list[tuple[OutputFile, Path, int]]:
    """Download every output file into ``out``; an existing file is never overwritten."""
    saved: list[tuple[OutputFile, Path, int]] = []
    for output in files:
        data = await comfy.view(output.filename, subfolder=output.subfolder, type=output.type)
        target = await asyncio.to_thread(_write_new, out, output.filename, data)
        saved.append((output, target, len(data)))
    return saved


def _write_new(folder: Path, filename: str, data: bytes) -> Path:
    """Write ``data`` as ``folder/filename``, or ``name-1.png``… when that exists already.

    ComfyUI numbers its files per server, so names repeat across servers and after clearing
    its output folder; an earlier result is never overwritten.
    """
    folder.mkdir(parents=True, exist_ok=True)
    name = Path(filename).name or "output"  # never a path from the server
    stem, suffix = Path(name).stem, Path(name).suffix
    for number in range(10_000):
        target = folder / (name if number == 0 else f"{stem}-{number}{suffix}")
        try:
            with target.open("xb") as file:  # "x": fails instead of overwriting, race-free
                file.write(data)
        except FileExistsError:
            continue
        return target
    raise OSError(f"{folder} has too many files named like {name}")


def _report(
    job: Job,
    name: str,
    values: dict[str, Any],
    saved: list[tuple[OutputFile, Path, int]],
    elapsed: float,
    *,
    as_json: bool,
) -> None:
    if as_json:
        result = {
            "prompt_id": job.prompt_id,
            "status": job.state.value,
            "template": name,
            "values": values,
            "seconds": round(elapsed, 2),
            "files": [
                {
                    "path": str(path.resolve()),
                    "filename": f.filename,
                    "subfolder": f.subfolder,
                    "type": f.type,
                    "kind": f.kind.value,
                    "bytes": size,
                }
                for f, path, size in saved
            ],
        }
        print(json.dumps(result, indent=2, default=str))
        return
    out = console.stdout()
    out.print(
        f"{name}: {job.state.value} in {elapsed:.1f} s (prompt {job.prompt_id})", markup=False
    )
    if saved:
        # One line per file, never truncated: paths are what people copy from here.
        for output, path, size in saved:
            line = f"saved {path}  ({output.kind.value}, {console.human_size(size)})"
            out.print(line, markup=False, soft_wrap=True)
    else:
        note = " (a cached run: ComfyUI wrote no new file)" if job.state is JobState.CACHED else ""
        out.print(f"no output files{note}", markup=False)
    shown = " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in values.items())
    out.print(f"values: {shown}", markup=False, soft_wrap=True)
