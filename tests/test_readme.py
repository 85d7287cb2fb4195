"""The README and docs stay true: generated tables current, key commands intact, links alive,
and every command line they show accepted by the real parser."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path
from types import ModuleType

import pytest

from comfy_mcp.cli.parser import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = [README, ROOT / "docs" / "security.md", ROOT / "docs" / "troubleshooting.md"]

INSTALL_AND_START = (
    "python3 -m venv .venv && .venv/bin/pip install . && "
    "COMFYUI_URL=http://127.0.0.1:8188 .venv/bin/mcp-server-comfyui"
)
INSTALL_AND_TEST = (
    'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/python -m pytest'
)


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_reference", ROOT / "scripts/gen_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_reference_is_current() -> None:
    gen = generator()
    text = README.read_text(encoding="utf-8")
    fresh = gen.updated(text, gen.sections())
    assert fresh == text, (
        "README.md's generated tables do not match the server: run python scripts/gen_reference.py"
    )


def test_every_section_is_generated_and_not_empty() -> None:
    gen = generator()
    text = README.read_text(encoding="utf-8")
    for name in gen.SECTIONS:
        body = text.split(gen.begin(name))[1].split(gen.end(name))[0]
        assert body.count("\n|") >= 3, name  # a header, a rule and at least one row


def test_the_two_key_commands_are_there_verbatim() -> None:
    text = README.read_text(encoding="utf-8")
    assert f"```bash\n{INSTALL_AND_START}\n```" in text
    assert f"```bash\n{INSTALL_AND_TEST}\n```" in text


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_resolve(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if re.match(r"^[a-z]+:", target):
            continue
        assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"


def _command_lines(text: str) -> list[str]:
    """``mcp-server-comfyui …`` lines of the bash blocks, without env prefixes and comments."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            match = re.search(r"(?:^|\s|/)mcp-server-comfyui(\s.*)?$", line)
            if match and not line.startswith(("claude ", "python3 -m venv")):
                lines.append((match.group(1) or "").strip())
    return lines


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_documented_command_lines_parse(doc: Path) -> None:
    parser = build_parser()
    lines = _command_lines(doc.read_text(encoding="utf-8"))
    if doc == README:
        assert len(lines) >= 8
    for line in lines:
        try:
            parser.parse_args(shlex.split(line))
        except SystemExit as exc:  # pragma: no cover - the message is the point
            raise AssertionError(f"{doc.name}: `mcp-server-comfyui {line}` does not parse") from exc
