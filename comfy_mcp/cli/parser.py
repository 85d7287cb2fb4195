"""The argument parser of ``mcp-server-comfyui``: one subcommand per job, useful ``--help``.

Only ``argparse`` here: building the parser must stay cheap, because ``serve`` (the default)
runs it on every start of an MCP client's session.
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from comfy_mcp import __version__

PROG = "mcp-server-comfyui"
CLIENTS = ("claude-desktop", "claude-code", "cursor", "vscode")
DEFAULT_OUT = "comfy-outputs"
DEFAULT_RUN_TIMEOUT = 600.0

#: Each command and its one-line summary (``--help``, and the README's command table).
COMMANDS = {
    "serve": "serve MCP to a client: stdio by default, --transport http (the default command)",
    "check": "check that ComfyUI is reachable and usable, with a fix for each problem",
    "run": "run a workflow template from the shell with a progress bar; save its outputs",
    "workflows": "list the workflow templates and their parameters",
    "config": "print a ready config snippet for Claude Desktop, Claude Code, Cursor or VS Code",
}


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line naming the fix, exit status 2.

    argparse's default prints the whole usage block first; in an MCP client's log (where a bad
    flag in a config file usually shows up) one line with ``--help`` pointed out reads better.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="An MCP server for ComfyUI. Without a command it serves MCP over stdio.",
        epilog=(
            f"`{PROG} COMMAND --help` explains each command. Every option also has an\n"
            "environment variable (COMFYUI_URL, COMFY_MCP_...), which is how MCP clients pass\n"
            f"settings. First steps:\n  {PROG} check\n  {PROG} run smoke\n  {PROG} config CLIENT"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _common_flags(parser, default=None)
    _serve_flags(parser, default=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    # Flags work before or after the command; SUPPRESS keeps a subcommand from overwriting
    # values given before it with its own defaults.
    serve = _command(
        sub,
        "serve",
        "Serve MCP to a client. MCP clients start this command themselves (see `config`); over\n"
        "stdio, stdout carries the protocol and logs go to stderr.",
        f"  {PROG} serve                       # stdio, for Claude Desktop, Cursor, VS Code …\n"
        f"  COMFY_MCP_TOKEN=… {PROG} serve --transport http --host 0.0.0.0\n"
        "                                           # streamable HTTP at http://HOST:8765/mcp",
    )
    _serve_flags(serve)

    check = _command(
        sub,
        "check",
        "Check that ComfyUI answers, its version, device and VRAM, that the websocket opens, the\n"
        "models per main folder, its features, and which templates can run there. Each problem\n"
        "comes with its fix. Exit status 1 when something fails.",
        f"  {PROG} check\n  {PROG} check --comfyui-url http://gpu-box:8188 --json",
    )
    check.add_argument("--json", action="store_true", help="print the results as JSON")

    run = _command(
        sub,
        "run",
        "Run a workflow template from the shell with a live progress bar, then save the output\n"
        "files. Values are checked against the template's parameter types exactly as for an MCP\n"
        "tool call. Ctrl-C cancels the prompt in ComfyUI.",
        f"  {PROG} run smoke --set width=256 height=256\n"
        f'  {PROG} run txt2img --set prompt="a red fox" steps=25 seed=42 --out ./renders\n'
        f'  {PROG} run txt2img_lora --set \'loras=[{{"name": "detail.safetensors", '
        '"strength": 0.7}]\'\n'
        f"  {PROG} run img2img --set image=./photo.png denoise=0.5   # local files are uploaded",
    )
    run.add_argument("template", metavar="TEMPLATE", help="template name (see `workflows`)")
    run.add_argument(
        "--set",
        "-s",
        dest="assignments",
        metavar="KEY=VALUE",
        nargs="+",
        action="extend",
        default=[],
        help="a parameter value; repeat or list several. Lists (loras) take JSON or "
        "'name:strength,name2'; image parameters take a local file (uploaded) or an input name",
    )
    run.add_argument(
        "--out",
        metavar="DIR",
        default=DEFAULT_OUT,
        help=f"folder for the output files (default ./{DEFAULT_OUT}; created if missing)",
    )
    run.add_argument(
        "--timeout",
        metavar="S",
        type=_positive_seconds,
        default=DEFAULT_RUN_TIMEOUT,
        help=f"give up and cancel the prompt after S seconds (default {DEFAULT_RUN_TIMEOUT:g})",
    )
    run.add_argument(
        "--json", action="store_true", help="print the result as JSON (progress stays on stderr)"
    )
    run.add_argument(
        "--backend",
        metavar="NAME",
        help="which of several ComfyUI servers (COMFYUI_URLS) to use; default the first",
    )

    workflows = _command(
        sub,
        "workflows",
        "List the workflow templates (bundled and from COMFY_MCP_WORKFLOWS_DIR) with their\n"
        "parameters; with a NAME, every parameter of that template in detail.",
        f"  {PROG} workflows\n  {PROG} workflows txt2img\n  {PROG} workflows --json",
    )
    workflows.add_argument("name", metavar="NAME", nargs="?", help="show one template in detail")
    workflows.add_argument("--json", action="store_true", help="print the templates as JSON")

    config = _command(
        sub,
        "config",
        "Print a ready config snippet for an MCP client, with the absolute path of this\n"
        "installation's command and the environment your current settings need (taken from\n"
        "your COMFYUI_*/COMFY_MCP_* variables and flags). Secrets are never printed: tokens,\n"
        "headers and cookies appear as placeholders to fill in.",
        f"  {PROG} config claude-desktop\n"
        f"  COMFYUI_URL=http://gpu-box:8188 {PROG} config claude-code\n"
        f"  {PROG} config vscode --url https://mcp.example.com/mcp   # a server over HTTP",
    )
    config.add_argument("client", metavar="CLIENT", choices=CLIENTS, help=", ".join(CLIENTS))
    config.add_argument(
        "--name", default="comfyui", help="the server's name in the client (default comfyui)"
    )
    config.add_argument(
        "--url",
        metavar="URL",
        help="connect to a server already serving over HTTP at URL (…/mcp) instead of "
        "starting one over stdio",
    )
    return parser


def _command(sub: Any, name: str, description: str, examples: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=COMMANDS[name],
        description=description,
        epilog=f"examples:\n{examples}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common_flags(parser)
    return parser


def _common_flags(parser: argparse.ArgumentParser, default: Any = argparse.SUPPRESS) -> None:
    parser.add_argument(
        "--comfyui-url",
        metavar="URL",
        default=default,
        help="ComfyUI base URL (env COMFYUI_URL; default http://127.0.0.1:8188)",
    )
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        default=default,
        help="log level on stderr (env COMFY_MCP_LOG_LEVEL; default WARNING)",
    )


def _serve_flags(parser: argparse.ArgumentParser, default: Any = argparse.SUPPRESS) -> None:
    """Flags of ``serve``; each one overrides its environment variable. ``None`` = not given."""
    group = parser.add_argument_group("serving")
    group.add_argument(
        "--transport",
        choices=["stdio", "http"],
        default=default,
        help="stdio (default) or streamable HTTP at /mcp (env COMFY_MCP_TRANSPORT)",
    )
    group.add_argument(
        "--host", default=default, help="HTTP bind address (env COMFY_MCP_HOST; default 127.0.0.1)"
    )
    group.add_argument(
        "--port", type=int, default=default, help="HTTP port (env COMFY_MCP_PORT; default 8765)"
    )
    for flag, env, text in (
        ("--stateless", "COMFY_MCP_STATELESS", "HTTP without sessions, for several replicas"),
        (
            "--allow-unauthenticated",
            "COMFY_MCP_ALLOW_UNAUTHENTICATED",
            "serve HTTP beyond loopback without COMFY_MCP_TOKEN",
        ),
        ("--read-only", "COMFY_MCP_READ_ONLY", "keep only the read-only tools"),
    ):
        group.add_argument(
            flag, action="store_const", const=True, default=default, help=f"{text} (env {env})"
        )


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds (got {text!r})") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0 (got {text!r})")
    return value
