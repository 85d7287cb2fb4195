"""``mcp-server-comfyui config CLIENT``: a config snippet to paste into an MCP client.

The two things people get wrong by hand are the command (a bare ``mcp-server-comfyui`` is not on
the PATH a desktop app starts with, so the snippet names this installation's script by its
absolute path) and the environment (which variables the current set-up relies on). Secret values
are never printed: a snippet ends up in chat threads, screenshots and dotfile repositories, so
tokens, headers and cookies appear as placeholders, or as references the client resolves itself
(VS Code's ``${input:…}``, the shell's ``$VAR`` for ``claude mcp add``).

The snippet goes to stdout, alone, so ``config cursor > .cursor/mcp.json`` works; where to put
it goes to stderr.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import sysconfig
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from comfy_mcp.cli import console
from comfy_mcp.cli.envvars import current, format_value
from comfy_mcp.cli.parser import PROG
from comfy_mcp.settings import Settings

WHERE = {
    "claude-desktop": (
        "Add it to claude_desktop_config.json (Settings → Developer → Edit Config; macOS: "
        "~/Library/Application Support/Claude/, Windows: %APPDATA%\\Claude\\), merging "
        "mcpServers if the file has some, then restart Claude Desktop."
    ),
    "claude-code": (
        "Run it in your project (add --scope user to have it in every project); check with "
        "`claude mcp list`."
    ),
    "cursor": (
        "Save it as .cursor/mcp.json in your project, or ~/.cursor/mcp.json for every "
        "project (merge mcpServers if the file exists)."
    ),
    "vscode": (
        "Save it as .vscode/mcp.json in your workspace (or run 'MCP: Open User Configuration' "
        "for every workspace); VS Code asks for the secret inputs on first start."
    ),
}


def config(
    settings: Settings, client: str, *, name: str = "comfyui", url: str | None = None
) -> int:
    if url is not None:
        if client == "claude-desktop":
            console.error(
                "Claude Desktop's config file only starts local commands",
                "add a remote server in Claude Desktop under Settings → Connectors, or use "
                f"`{PROG} config claude-desktop` without --url to run the server locally",
            )
            return 2
        snippet = http_snippet(client, name, url, settings)
    else:
        snippet = stdio_snippet(client, name, settings)
    print(snippet)
    console.stderr().print(notes(client, snippet), markup=False, style="dim", soft_wrap=True)
    return 0


def notes(client: str, snippet: str) -> str:
    """Where the snippet goes, and what is left to fill in."""
    text = WHERE[client]
    shell = sorted(set(re.findall(r"\$([A-Z_]+)", snippet)) - {"input"})
    prompted = re.findall(r'"description": "([A-Z_]+)",\s*"password": true', snippet)
    placeholders = sorted(set(re.findall(r"<(?:your )?([A-Za-z_ ]+)>", snippet)))
    if shell:
        text += f" It reads {', '.join(shell)} from your shell's environment when you run it."
    if prompted:
        text += f" VS Code prompts for {', '.join(prompted)} and keeps it out of the file."
    if placeholders:
        text += f" Replace the <…> placeholders ({', '.join(placeholders)}) with the real values."
    return text


def server_command() -> list[str]:
    """This installation's console script, absolute; ``python -m comfy_mcp`` when there is none.

    Desktop apps start servers with a minimal PATH, so a bare command name often fails there.
    """
    names = (
        ["mcp-server-comfyui.exe", "mcp-server-comfyui"]
        if os.name == "nt"
        else ["mcp-server-comfyui"]
    )
    candidates = []
    invoked = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if invoked is not None and invoked.name in names:
        candidates.append(invoked)
    scripts = sysconfig.get_path("scripts")
    for folder in ([Path(scripts)] if scripts else []) + [Path(sys.executable).parent]:
        candidates += [folder / n for n in names]
    for candidate in candidates:
        if candidate.is_file():
            return [str(candidate.absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "comfy_mcp"]


def client_env(settings: Settings) -> dict[str, str]:
    """The variables a stdio client must pass for ``settings``, secrets as placeholders.

    Everything that differs from the default is included (plus COMFYUI_URL, always, so the
    snippet says where ComfyUI is); HTTP-serving variables are left out, since a client that
    starts the server talks to it over stdio.
    """
    defaults = Settings()
    env: dict[str, str] = {}
    for var in current():
        if var.http or var.field is None:
            continue
        value = getattr(settings, var.field)
        if var.name != "COMFYUI_URL" and value == getattr(defaults, var.field):
            continue
        if var.secret:
            env[var.name] = f"<your {var.name}>"
        elif var.name in ("COMFYUI_URL", "COMFYUI_URLS"):
            env[var.name] = _mask_passwords(format_value(value))
        else:
            env[var.name] = format_value(value)
    return env


def _mask_passwords(urls: str) -> str:
    """``http://user:secret@host`` → ``http://user:<password>@host``, in a list of URLs too."""
    return re.sub(r"(://[^/:@,\s]+):[^@/,\s]*@", r"\1:<password>@", urls)


def stdio_snippet(client: str, name: str, settings: Settings) -> str:
    command, *args = server_command()
    env = client_env(settings)
    if client == "claude-code":
        parts = ["claude", "mcp", "add", name]
        for key, value in env.items():
            if value == f"<your {key}>":
                parts += ["--env", f'{key}="${key}"']  # expanded by the user's shell
            else:
                parts += ["--env", shlex.quote(f"{key}={value}")]
        parts += ["--", shlex.quote(command), *(shlex.quote(a) for a in args)]
        return " ".join(parts)
    if client == "vscode":
        inputs, env = _vscode_inputs(env)
        server: dict[str, Any] = {"type": "stdio", "command": command, "args": args, "env": env}
        document: dict[str, Any] = {"servers": {name: server}}
        if inputs:
            document = {"inputs": inputs, **document}
        return json.dumps(document, indent=2)
    entry: dict[str, Any] = {"command": command, "args": args, "env": env}
    return json.dumps({"mcpServers": {name: entry}}, indent=2)


def http_snippet(client: str, name: str, url: str, settings: Settings) -> str:
    """A client config for a server already running over HTTP at ``url``."""
    host = urlsplit(url).hostname or ""
    needs_token = settings.http_token is not None or host not in ("127.0.0.1", "localhost", "::1")
    if client == "claude-code":
        parts = ["claude", "mcp", "add", "--transport", "http", name, shlex.quote(url)]
        if needs_token:
            parts += ["--header", '"Authorization: Bearer $COMFY_MCP_TOKEN"']
        return " ".join(parts)
    if client == "vscode":
        server: dict[str, Any] = {"type": "http", "url": url}
        document: dict[str, Any] = {"servers": {name: server}}
        if needs_token:
            server["headers"] = {"Authorization": "Bearer ${input:comfy-mcp-token}"}
            document = {"inputs": [_vscode_input("comfy-mcp-token", "COMFY_MCP_TOKEN")], **document}
        return json.dumps(document, indent=2)
    entry: dict[str, Any] = {"url": url}
    if needs_token:
        entry["headers"] = {"Authorization": "Bearer <your COMFY_MCP_TOKEN>"}
    return json.dumps({"mcpServers": {name: entry}}, indent=2)


def _vscode_inputs(env: dict[str, str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    inputs = []
    resolved = dict(env)
    for key, value in env.items():
        if value == f"<your {key}>":
            input_id = key.lower().replace("_", "-")
            inputs.append(_vscode_input(input_id, key))
            resolved[key] = "${input:" + input_id + "}"
    return inputs, resolved


def _vscode_input(input_id: str, variable: str) -> dict[str, Any]:
    return {"type": "promptString", "id": input_id, "description": variable, "password": True}
