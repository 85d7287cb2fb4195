"""``mcp-server-comfyui check``: is ComfyUI reachable and usable from here, and if not, why.

Most first-five-minutes failures are not bugs but set-up: ComfyUI not started, started on
127.0.0.1 of another machine, a proxy that swallows websockets, no checkpoint installed. Each
finding therefore carries the fix, and the exit status is 1 when any check failed so scripts
can gate on it (``check && serve``).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from comfy_mcp.cli import console
from comfy_mcp.comfy import (
    Auth,
    ComfyAuthError,
    ComfyClient,
    ComfyConnectionError,
    ComfyError,
    ComfyHTTPError,
    ComfyProtocolError,
    ComfyTimeoutError,
    Endpoint,
)
from comfy_mcp.settings import Settings
from comfy_mcp.templates import Template, TemplateCatalog

Status = Literal["ok", "warn", "fail", "info"]

#: The model folders worth counting; others (hypernetworks, photomaker …) rarely matter first.
MAIN_FOLDERS = (
    "checkpoints",
    "diffusion_models",
    "loras",
    "vae",
    "text_encoders",
    "upscale_models",
    "controlnet",
    "embeddings",
)
CHECK_TIMEOUT = 10.0


@dataclass
class Finding:
    """One line of the report: what was checked, how it went, and the fix when it went wrong."""

    check: str
    status: Status
    message: str
    fix: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


async def check(settings: Settings, *, as_json: bool = False) -> int:
    """Run every check, print the report, and return the exit status (1 if anything failed)."""
    findings = await gather_findings(settings)
    failed = any(f.status == "fail" for f in findings)
    if as_json:
        report = {
            "ok": not failed,
            "comfyui_urls": [Endpoint(spec.url).base_url for spec in settings.backends()],
            "checks": [asdict(f) for f in findings],
        }
        print(json.dumps(report, indent=2))
    else:
        _print_report(findings, failed)
    return 1 if failed else 0


async def gather_findings(settings: Settings) -> list[Finding]:
    """The checks in order, for every configured ComfyUI server; then the local ones."""
    specs = settings.backends()
    findings: list[Finding] = []
    for spec in specs:
        found = await server_findings(settings, spec.url, spec.auth)
        if len(specs) > 1:  # name the backend in front of each of its lines
            for finding in found:
                finding.check = f"{spec.name} {finding.check}"
                finding.data["backend"] = spec.name
        findings += found
    findings += local_findings(settings)
    findings.append(mcp_finding(settings))
    return findings


def mcp_finding(settings: Settings) -> Finding:
    """Build the MCP server as ``serve`` would: guard lists naming unknown tools fail here, at
    the shell, instead of in an MCP client's log."""
    from comfy_mcp.server import build_server
    from comfy_mcp.settings import SettingsError

    try:
        build_server(settings)
    except SettingsError as exc:
        return Finding("MCP server", "fail", str(exc), "fix the variable named above")
    mode = " in read-only mode" if settings.read_only else ""
    return Finding("MCP server", "ok", f"builds with these settings{mode}")


async def server_findings(settings: Settings, url: str, auth: Auth) -> list[Finding]:
    """Everything about one ComfyUI server; after an unreachable one, nothing more is tried."""
    async with ComfyClient(
        url,
        auth=auth,
        user=settings.comfyui_user,
        verify=settings.verify_tls,
        timeout=min(settings.http_timeout, CHECK_TIMEOUT),
        ws_open_timeout=CHECK_TIMEOUT,
    ) as comfy:
        safe_url = comfy.endpoint.base_url
        try:
            stats = await comfy.get_system_stats()
        except ComfyError as exc:
            return [Finding("ComfyUI", "fail", str(exc), reach_fix(exc, safe_url))]
        findings = system_findings(stats, safe_url)
        findings.append(await websocket_finding(comfy))
        findings.append(await model_finding(comfy))
        findings.append(await features_finding(comfy))
        findings += await template_findings(comfy, settings)
    return findings


def reach_fix(exc: ComfyError, url: str) -> str:
    """What to do when the ComfyUI at ``url`` did not answer ``GET /system_stats`` properly."""
    if isinstance(exc, ComfyAuthError):
        return (
            "ComfyUI (or a proxy in front of it) wants credentials: set COMFYUI_TOKEN (sent as "
            "a bearer token), COMFYUI_HEADERS, COMFYUI_COOKIES or COMFYUI_QUERY (or give this "
            "backend its own in COMFY_MCP_BACKENDS_FILE)"
        )
    if isinstance(exc, ComfyTimeoutError):
        return (
            f"nothing answered within {exc.seconds:g} s: check the host and port in COMFYUI_URL; "
            "if ComfyUI is still starting, wait and run check again"
        )
    if isinstance(exc, ComfyConnectionError):
        reason = exc.reason.lower()
        if "certificate" in reason or "ssl" in reason or "tls" in reason:
            return (
                "ComfyUI's TLS certificate is not trusted here: use a trusted certificate, or "
                "set COMFYUI_VERIFY_TLS=false for a self-signed one on a network you control"
            )
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if host in ("127.0.0.1", "localhost", "::1"):
            return (
                f"start ComfyUI (python main.py --port {port}), or point COMFYUI_URL / "
                "--comfyui-url at where it runs"
            )
        return (
            f"check that ComfyUI runs on {host} and was started with --listen 0.0.0.0 (it "
            f"listens on 127.0.0.1 only by default), that port {port} is open, or fix COMFYUI_URL"
        )
    if isinstance(exc, ComfyHTTPError | ComfyProtocolError):
        return (
            f"something answers at {url} but it is not ComfyUI's API: check the port, and the "
            "path prefix when ComfyUI sits behind a proxy (http://host/comfyui)"
        )
    return "check COMFYUI_URL and that ComfyUI is running"


def system_findings(stats: Mapping[str, Any], url: str) -> list[Finding]:
    """Version and devices from ``/system_stats``."""
    raw = stats.get("system")
    system: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    version = str(system.get("comfyui_version") or "?")
    extras = []
    if system.get("python_version"):
        extras.append("Python " + str(system["python_version"]).split()[0])
    if system.get("pytorch_version"):
        extras.append(f"PyTorch {system['pytorch_version']}")
    message = f"{version} at {url}" + (f" ({', '.join(extras)})" if extras else "")
    findings = [Finding("ComfyUI", "ok", message, data={"version": version})]
    if "ram_total" in system:
        findings.append(
            Finding(
                "memory",
                "ok",
                f"RAM {_size(system.get('ram_total'))}, {_size(system.get('ram_free'))} free",
                data={"ram_total": system.get("ram_total"), "ram_free": system.get("ram_free")},
            )
        )
    devices = stats.get("devices")
    if not isinstance(devices, list) or not devices:
        findings.append(Finding("device", "warn", "ComfyUI reports no device"))
        return findings
    for device in devices:
        if not isinstance(device, Mapping):
            continue
        kind = str(device.get("type") or "?")
        name = str(device.get("name") or kind)
        data = {k: device.get(k) for k in ("name", "type", "vram_total", "vram_free")}
        if kind == "cpu":
            findings.append(
                Finding(
                    "device",
                    "warn",
                    f"{name}: no GPU, ComfyUI runs on the CPU; image models take minutes per "
                    "image (the smoke template is fine)",
                    data=data,
                )
            )
            continue
        vram = f"{_size(device.get('vram_total'))} VRAM, {_size(device.get('vram_free'))} free"
        findings.append(Finding("device", "ok", f"{name} ({kind}): {vram}", data=data))
    return findings


async def websocket_finding(comfy: ComfyClient) -> Finding:
    try:
        await comfy.connect()
    except ComfyError as exc:
        return Finding(
            "websocket",
            "fail",
            f"{exc} (prompts will be followed by polling: slower, no live progress)",
            "if a reverse proxy sits in front of ComfyUI, let it forward websocket upgrades on "
            "/ws (nginx: proxy_set_header Upgrade $http_upgrade; Connection upgrade)",
        )
    finally:
        await comfy.disconnect()
    return Finding("websocket", "ok", "connected (live progress and completion events)")


async def model_finding(comfy: ComfyClient) -> Finding:
    """Files per main model folder; a warning when there is nothing to generate with."""
    try:
        available = set(await comfy.get_model_types())
    except ComfyError:
        available = {"checkpoints", "loras"}  # older servers without GET /models
    folders = [f for f in MAIN_FOLDERS if f in available]
    results = await asyncio.gather(*(comfy.get_models(f) for f in folders), return_exceptions=True)
    counts: dict[str, int] = {}
    problems: list[str] = []
    for folder, result in zip(folders, results, strict=True):
        if isinstance(result, BaseException):
            problems.append(f"{folder}: {result}")
        else:
            counts[folder] = len(result)
    message = ", ".join(f"{folder} {count}" for folder, count in counts.items()) or "none listed"
    if problems:
        message += "; could not list " + "; ".join(problems)
    if not counts.get("checkpoints") and not counts.get("diffusion_models"):
        return Finding(
            "models",
            "warn",
            message,
            "put a checkpoint (.safetensors) in ComfyUI's models/checkpoints folder; only the "
            "smoke template runs without one",
            data={"counts": counts},
        )
    return Finding("models", "ok", message, data={"counts": counts})


async def features_finding(comfy: ComfyClient) -> Finding:
    try:
        features = await comfy.get_features()
    except ComfyError as exc:
        return Finding("features", "warn", f"could not read /features: {exc}")
    if not features:
        return Finding("features", "info", "none reported (ComfyUI before 0.3.6x has no /features)")
    shown = []
    for key, value in features.items():
        if isinstance(value, bool):
            shown.append(f"{key}: {'yes' if value else 'no'}")
        elif isinstance(value, int) and "size" in key:
            shown.append(f"{key}: {_size(value)}")
        else:
            shown.append(f"{key}: {value}")
    return Finding("features", "ok", ", ".join(shown), data={"features": features})


async def template_findings(comfy: ComfyClient, settings: Settings) -> list[Finding]:
    """Which templates loaded, and which can run on this server (nodes and model files)."""
    catalog = TemplateCatalog(list(settings.workflows_dirs))
    templates = catalog.templates()
    findings = [
        Finding(
            "templates",
            "warn",
            f"{path}: {reason}",
            "fix the file (docs/workflows.md describes the format) or move it out of "
            "COMFY_MCP_WORKFLOWS_DIR",
        )
        for path, reason in catalog.errors().items()
    ]
    try:
        object_info = await comfy.get_node_defs()
    except ComfyError as exc:
        findings.insert(
            0, Finding("templates", "warn", f"{len(templates)} loaded; /object_info failed: {exc}")
        )
        return findings
    blocked = {t.name: why for t in templates if (why := blockers(t, object_info))}
    ready = [t.name for t in templates if t.name not in blocked]
    message = f"{len(templates)} loaded; ready here: {', '.join(ready) or 'none'}"
    data = {"ready": ready, "blocked": blocked}
    if blocked:
        listed = "; ".join(f"{name} ({why})" for name, why in blocked.items())
        findings.insert(
            0,
            Finding(
                "templates",
                "warn",
                f"{message}; cannot run yet: {listed}",
                "install the missing model files or custom nodes in ComfyUI, then restart it",
                data=data,
            ),
        )
    else:
        findings.insert(0, Finding("templates", "ok", message, data=data))
    return findings


def blockers(template: Template, object_info: Mapping[str, Any]) -> str:
    """Why ``template`` cannot run on this server ('' when it can): missing nodes, no files."""
    reasons: list[str] = []
    classes = {
        str(node.get("class_type")) for node in template.graph.values() if isinstance(node, Mapping)
    }
    missing = sorted(classes - set(object_info))
    if missing:
        reasons.append("missing nodes " + ", ".join(missing))
    live = template.live_choices(object_info)
    for parameter in template.parameters:
        if parameter.type == "lora_stack":
            continue  # an empty stack is a valid stack
        if parameter.name in live and not live[parameter.name]:
            reasons.append(f"no {parameter.choices_from or parameter.name} files")
    return ", ".join(reasons)


def local_findings(settings: Settings) -> list[Finding]:
    """Folders named in the settings that do not exist or cannot be used."""
    findings: list[Finding] = []
    for directory in settings.workflows_dirs:
        if not directory.is_dir():
            findings.append(
                Finding(
                    "settings",
                    "warn",
                    f"COMFY_MCP_WORKFLOWS_DIR: {directory} is not a folder",
                    "create it, or fix COMFY_MCP_WORKFLOWS_DIR",
                )
            )
    for root in settings.input_roots:
        if not root.is_dir():
            findings.append(
                Finding(
                    "settings",
                    "warn",
                    f"COMFY_MCP_INPUT_ROOTS: {root} is not a folder",
                    "create it, or fix COMFY_MCP_INPUT_ROOTS",
                )
            )
    out = settings.output_dir
    if out is not None and not (out.is_dir() and os.access(out, os.W_OK)):
        findings.append(
            Finding(
                "settings",
                "warn",
                f"COMFY_MCP_OUTPUT_DIR: {out} is not a writable folder",
                "create it with write permission for this user, or fix COMFY_MCP_OUTPUT_DIR",
            )
        )
    return findings


def _print_report(findings: list[Finding], failed: bool) -> None:
    out = console.stdout()
    for finding in findings:
        # soft_wrap: a long URL or path stays whole (and greppable) when piped
        out.print(
            console.status_line(finding.status, finding.check, finding.message, finding.fix),
            soft_wrap=True,
        )
    if failed:
        out.print("[bold red]Some checks failed[/]: fix those lines, then run check again.")
    else:
        out.print("[green]ComfyUI is ready.[/] Next: mcp-server-comfyui config claude-desktop")


def _size(value: Any) -> str:
    return console.human_size(value) if isinstance(value, int | float) else "?"
