"""The command line without ComfyUI: help, one-line errors, workflows, config, the env table,
and the promise that serving never imports the terminal libraries."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from comfy_mcp.cli import main
from comfy_mcp.cli.config import client_env, server_command
from comfy_mcp.cli.envvars import ENV_VARS, current
from comfy_mcp.cli.parser import COMMANDS, build_parser
from comfy_mcp.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands read COMFYUI_* / COMFY_MCP_* from the environment: start from none."""
    for name in list(os.environ):
        if name.startswith(("COMFYUI_", "COMFY_MCP_")):
            monkeypatch.delenv(name)


# -- help and errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_has_its_own_useful_help(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: mcp-server-comfyui {command}" in text
    assert "examples:" in text
    assert f"mcp-server-comfyui {command}" in text.split("examples:")[1]
    assert "--comfyui-url" in text  # the common flags work after the command too


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\s", text, re.MULTILINE), command


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["serve", "--port", "eighty"], "invalid int value: 'eighty'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["run"], "the following arguments are required: TEMPLATE"),
        (["run", "smoke", "--timeout", "0"], "must be greater than 0"),
        (["config", "emacs"], "invalid choice: 'emacs'"),
        (["check", "--log-level", "LOUD"], "invalid choice: 'LOUD'"),
    ],
)
def test_bad_flags_give_one_line_with_the_fix(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert expected in err
    assert "--help)" in err


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("COMFYUI_URL", "localhost:8188", "must start with http:// or https://"),
        ("COMFY_MCP_WAIT_TIMEOUT", "soon", "COMFY_MCP_WAIT_TIMEOUT must be a number of seconds"),
        ("COMFY_MCP_READ_ONLY", "maybe", "COMFY_MCP_READ_ONLY must be true or false"),
        ("COMFY_MCP_PORT", "99999", "COMFY_MCP_PORT must be between 0 and 65535"),
    ],
)
@pytest.mark.parametrize("command", ["workflows", "config", "check", "run"])
def test_bad_environment_values_give_one_line_and_exit_2(
    command: str,
    variable: str,
    value: str,
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(variable, value)
    argv = {"config": ["config", "cursor"], "run": ["run", "smoke"]}.get(command, [command])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("mcp-server-comfyui: ") and expected in err


def test_flags_work_before_and_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["--comfyui-url", "http://a:1", "check"])
    after = parser.parse_args(["check", "--comfyui-url", "http://a:1"])
    assert before.comfyui_url == after.comfyui_url == "http://a:1"
    assert parser.parse_args([]).command is None  # serve is the default
    args = parser.parse_args(["run", "smoke", "--set", "width=8", "height=9", "-s", "color=1"])
    assert args.assignments == ["width=8", "height=9", "color=1"]


# -- workflows ---------------------------------------------------------------------------------


def test_workflows_prints_a_table_of_every_template(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workflows"]) == 0
    out = capsys.readouterr().out
    for name in ("smoke", "txt2img", "txt2img_lora", "upscale"):
        assert re.search(rf"^\s*{name}\s", out, re.MULTILINE), name
    assert "checkpoint*" in out  # required parameters are marked


def test_workflows_json_is_the_list_workflows_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workflows", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    smoke = next(t for t in data if t["name"] == "smoke")
    assert [p["name"] for p in smoke["parameters"]] == [
        "width",
        "height",
        "color",
        "filename_prefix",
    ]


def test_workflows_name_shows_every_parameter(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workflows", "txt2img_lora"]) == 0
    out = capsys.readouterr().out
    assert "lora_stack" in out and "default 512" in out and "64–4096" in out
    assert "seed" in out and "random" in out
    assert "mcp-server-comfyui run txt2img_lora --set checkpoint=" in out


def test_workflows_unknown_name_suggests_the_closest(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workflows", "txt2im"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'txt2img'" in err and "mcp-server-comfyui workflows" in err


def test_workflows_reports_a_broken_template_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    monkeypatch.setenv("COMFY_MCP_WORKFLOWS_DIR", str(tmp_path))
    assert main(["workflows"]) == 0
    captured = capsys.readouterr()
    assert "broken.json" in captured.err
    assert "smoke" in captured.out


# -- config ------------------------------------------------------------------------------------


def test_config_claude_desktop_is_json_with_the_absolute_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["config", "claude-desktop"]) == 0
    captured = capsys.readouterr()
    entry = json.loads(captured.out)["mcpServers"]["comfyui"]
    command = Path(entry["command"])
    assert command.is_absolute() and command.exists()
    assert entry["env"] == {"COMFYUI_URL": "http://127.0.0.1:8188"}
    assert "claude_desktop_config.json" in captured.err


def test_config_uses_the_installed_console_script() -> None:
    command = server_command()
    assert len(command) == 1 and Path(command[0]).name.startswith("mcp-server-comfyui")


SECRETS = {
    "COMFYUI_URL": "http://alice:pa55word-xyz@gpu.lan:8188",
    "COMFYUI_TOKEN": "tok-0123456789-secret",
    "COMFYUI_HEADERS": "X-Api-Key: header-secret-42",
    "COMFYUI_COOKIES": "session=cookie-secret-77",
    "COMFY_MCP_TOKEN": "http-token-0123456789abcdef",
}


@pytest.mark.parametrize("client", ["claude-desktop", "claude-code", "cursor", "vscode"])
def test_config_never_prints_a_secret(
    client: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COMFY_MCP_WAIT_TIMEOUT", "30")
    assert main(["config", client]) == 0
    captured = capsys.readouterr()
    text = captured.out + captured.err
    for leaked in (
        "pa55word-xyz",
        "tok-0123456789",
        "header-secret",
        "cookie-secret",
        "http-token",
    ):
        assert leaked not in text, (client, leaked)
    assert "gpu.lan:8188" in captured.out  # the non-secret part of the URL is kept
    assert "COMFY_MCP_WAIT_TIMEOUT" in captured.out  # a non-default setting is carried
    assert "COMFY_MCP_TOKEN" not in captured.out  # HTTP-serving settings are not
    if client == "vscode":
        document = json.loads(captured.out)
        assert {i["id"] for i in document["inputs"]} == {
            "comfyui-token",
            "comfyui-headers",
            "comfyui-cookies",
        }
        env = document["servers"]["comfyui"]["env"]
        assert env["COMFYUI_TOKEN"] == "${input:comfyui-token}"
    elif client == "claude-code":
        assert captured.out.startswith("claude mcp add comfyui ")
        assert '--env COMFYUI_TOKEN="$COMFYUI_TOKEN"' in captured.out
    else:
        env = json.loads(captured.out)["mcpServers"]["comfyui"]["env"]
        assert env["COMFYUI_TOKEN"] == "<your COMFYUI_TOKEN>"
        assert env["COMFYUI_URL"] == "http://alice:<password>@gpu.lan:8188"
        assert "placeholders" in captured.err


def test_config_carries_flags_and_leaves_out_http_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COMFY_MCP_TRANSPORT", "http")
    monkeypatch.setenv("COMFY_MCP_PORT", "9000")
    assert main(["--read-only", "--comfyui-url", "http://gpu:8188", "config", "cursor"]) == 0
    env = json.loads(capsys.readouterr().out)["mcpServers"]["comfyui"]["env"]
    assert env == {"COMFYUI_URL": "http://gpu:8188", "COMFY_MCP_READ_ONLY": "true"}


def test_config_name_and_relative_paths_become_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    monkeypatch.setenv("COMFY_MCP_WORKFLOWS_DIR", "mine")
    assert main(["config", "claude-desktop", "--name", "gpu-box"]) == 0
    env = json.loads(capsys.readouterr().out)["mcpServers"]["gpu-box"]["env"]
    # The client starts the server in a directory of its own choosing.
    assert env["COMFY_MCP_WORKFLOWS_DIR"] == str(tmp_path / "mine")


@pytest.mark.parametrize("client", ["claude-code", "cursor", "vscode"])
def test_config_url_points_a_client_at_an_http_server(
    client: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", client, "--url", "https://mcp.example.com/mcp"]) == 0
    out = capsys.readouterr().out
    assert "https://mcp.example.com/mcp" in out
    assert "Authorization" in out and "Bearer" in out  # a public URL needs the token
    if client == "vscode":
        server = json.loads(out)["servers"]["comfyui"]
        assert server["type"] == "http"
        assert server["headers"]["Authorization"] == "Bearer ${input:comfy-mcp-token}"


def test_config_url_on_loopback_without_a_token_sends_no_header(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["config", "cursor", "--url", "http://127.0.0.1:8765/mcp"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "mcpServers": {"comfyui": {"url": "http://127.0.0.1:8765/mcp"}}
    }


def test_config_claude_desktop_with_url_explains_connectors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["config", "claude-desktop", "--url", "https://mcp.example.com/mcp"]) == 2
    assert "Connectors" in capsys.readouterr().err


def test_client_env_includes_only_what_differs_from_the_defaults() -> None:
    settings = Settings.from_env({"COMFY_MCP_PREVIEW_MAX_SIDE": "512", "COMFY_MCP_STATELESS": "1"})
    assert client_env(settings) == {
        "COMFYUI_URL": "http://127.0.0.1:8188",
        "COMFY_MCP_PREVIEW_MAX_SIDE": "512",
    }


# -- the environment variable table -------------------------------------------------------------


def test_every_variable_settings_reads_is_described() -> None:
    """settings.py parses the variables; envvars.py describes them for `config` and the README."""
    source = (ROOT / "comfy_mcp" / "settings.py").read_text(encoding="utf-8")
    backends = ROOT / "comfy_mcp" / "backend_config.py"
    if backends.exists():
        source += backends.read_text(encoding="utf-8")
    read = set(re.findall(r'"((?:COMFYUI|COMFY_MCP)_[A-Z_]+)"', source))
    described = {var.name for var in current()}
    missing = read - described
    assert not missing, f"add rows for {sorted(missing)} to comfy_mcp/cli/envvars.py"
    stale = described - read
    assert not stale, f"settings.py no longer reads {sorted(stale)}: remove their rows"


def test_every_settings_field_has_a_variable() -> None:
    from dataclasses import fields

    covered = {var.field for var in ENV_VARS}
    missing = {f.name for f in fields(Settings)} - covered
    assert not missing, f"describe {sorted(missing)} in comfy_mcp/cli/envvars.py"


def test_documented_flags_exist() -> None:
    parser = build_parser()
    flags = {option for action in parser._actions for option in action.option_strings}
    for var in ENV_VARS:
        if var.flag:
            assert var.flag in flags, var.name


# -- start-up cost -------------------------------------------------------------------------------

# What the serve path imports, and which modules import rich or Pillow. Third-party code may
# import rich on its own (httpx loads its optional command line, the MCP SDK's MCPServer sets up
# a RichHandler when rich is installed); the promise here is about this project's modules.
_PROBE = """
import builtins, json, sys
importers = {"rich": set(), "PIL": set()}
real_import = builtins.__import__
def spy(name, globals=None, locals=None, fromlist=(), level=0):
    top = name.split(".")[0]
    if level == 0 and top in importers:
        importers[top].add((globals or {}).get("__name__", "?"))
    return real_import(name, globals, locals, fromlist, level)
builtins.__import__ = spy
from comfy_mcp.cli import main
from comfy_mcp.cli.parser import build_parser
from comfy_mcp.server import build_server
from comfy_mcp.settings import Settings
build_parser().parse_args(["serve"])
build_server(Settings())
print(json.dumps({"modules": sorted(sys.modules),
                  "importers": {k: sorted(v) for k, v in importers.items()}}))
"""


@pytest.fixture(scope="module")
def serve_imports() -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_serving_never_imports_rich_from_this_project(serve_imports: dict[str, Any]) -> None:
    ours = [m for m in serve_imports["importers"]["rich"] if m.startswith("comfy_mcp")]
    assert not ours, f"these modules import rich on the serve path: {ours}"
    commands = {"check", "run", "values", "workflows", "config", "console", "envvars"}
    loaded = [m for m in serve_imports["modules"] if m.startswith("comfy_mcp.cli.")]
    assert not [m for m in loaded if m.removeprefix("comfy_mcp.cli.") in commands], loaded


def test_serving_imports_no_pillow(serve_imports: dict[str, Any]) -> None:
    ours = [m for m in serve_imports["importers"]["PIL"] if m.startswith("comfy_mcp")]
    assert not ours, f"these modules import Pillow on the serve path: {ours}"
    assert not [m for m in serve_imports["modules"] if m == "PIL" or m.startswith("PIL.")]
