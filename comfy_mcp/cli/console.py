"""Terminal output for the non-serving commands, through ``rich``.

Imported only by those commands (never by ``serve``). Results go to stdout so they can be piped;
progress and diagnostics go to stderr. Text from outside (ComfyUI messages, file names,
template descriptions) is never parsed as rich markup: a ``[`` in a LoRA list or an error
message must print as it is.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

STYLES = {"ok": "green", "warn": "yellow", "fail": "bold red", "info": "cyan"}
LABELS = {"ok": "ok", "warn": "warn", "fail": "FAIL", "info": "info"}


def stdout() -> Console:
    # highlight=False: rich's automatic colouring of numbers and paths would restyle
    # ComfyUI's text in ways that mean nothing here.
    return Console(highlight=False)


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


def status_line(status: str, label: str, message: str, fix: str | None = None) -> Text:
    """``ok    label: message`` with the status coloured, and an indented fix below."""
    text = Text()
    text.append(f"{LABELS.get(status, status):<5} ", style=STYLES.get(status, ""))
    text.append(f"{label}: ", style="bold")
    text.append(message)
    if fix:
        text.append("\n      fix: ", style="yellow")
        text.append(fix)
    return text


def error(message: str, fix: str | None = None) -> None:
    """An error line on stderr, with its fix when there is one."""
    text = Text("error: ", style="bold red")
    text.append(message)
    if fix:
        text.append("\n  fix: ", style="yellow")
        text.append(fix)
    stderr().print(text, soft_wrap=True)


def human_size(size: float) -> str:
    """Bytes as a short figure: ``93 bytes``, ``812 KiB``, ``7.8 GiB``."""
    units = ("bytes", "KiB", "MiB", "GiB", "TiB")
    index = 0
    while size >= 1024 and index < len(units) - 1:
        size /= 1024
        index += 1
    if index == 0:
        return f"{size:.0f} bytes"
    return f"{size:.1f} {units[index]}" if size < 10 else f"{size:.0f} {units[index]}"
