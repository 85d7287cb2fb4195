"""Run the benchmark suite: ``python bench/run.py [--smoke] [--only NAME ...]``.

Each measure runs in its own process (``python -m bench.<name>``), one after the other (these
machines have two cores: never measure two things at once). ``--smoke`` runs every measure at
tiny sizes in well under a minute and fails when a script crashes; CI runs it. Without
``--smoke`` the full suite runs (minutes) and rewrites ``bench/RESULTS.md``, keeping its
hand-written analysis section. Missed targets are reported, never an error (``--strict`` makes
them one).

Without ``COMFYUI_URL`` (or ``--comfyui-url``) the measures against a real ComfyUI are skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "RESULTS.md"
MEASURES = ("latency", "stdio_overhead", "concurrency", "startup", "preview", "real_comfyui")
ANALYSIS_START, ANALYSIS_END = "<!-- analysis -->", "<!-- /analysis -->"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; writes no RESULTS.md")
    parser.add_argument("--only", nargs="+", choices=MEASURES, help="run only these measures")
    parser.add_argument("--comfyui-url", default=os.environ.get("COMFYUI_URL"))
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--timeout", type=float, help="seconds per measure (default 120 / 1800)")
    args = parser.parse_args()

    names = [n for n in MEASURES if (BENCH / f"{n}.py").exists() and n in (args.only or MEASURES)]
    timeout = args.timeout or (120.0 if args.smoke else 1800.0)
    results: list[dict[str, Any]] = []
    failed: list[str] = []
    started = time.monotonic()
    source = source_state()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for name in names:
            outcome = run_measure(
                name, Path(tmp), smoke=args.smoke, url=args.comfyui_url, timeout=timeout
            )
            if outcome is None:
                failed.append(name)
            else:
                results.append(outcome)
    took = time.monotonic() - started
    changed = source_state() != source
    if changed:
        print("!! the measured code (comfy_mcp/, workflows/) changed during the run")

    print_summary(results, failed, took)
    if not args.smoke and not args.only and not failed:
        write_results(results, took, source, changed=changed)
        print(f"wrote {RESULTS.relative_to(ROOT)}")
    missed = [t for r in results for t in r["targets"] if not t["met"]]
    if failed:
        return 1
    return 1 if args.strict and missed else 0


def run_measure(
    name: str, tmp: Path, *, smoke: bool, url: str | None, timeout: float
) -> dict[str, Any] | None:
    """Run one measure script; its JSON result, or None when it crashed or timed out."""
    out = tmp / f"{name}.json"
    command = [sys.executable, "-m", f"bench.{name}", "--out", str(out)]
    if smoke:
        command.append("--smoke")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    if url:
        env["COMFYUI_URL"] = url
    else:
        env.pop("COMFYUI_URL", None)
    print(f"== {name}", flush=True)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    began = time.monotonic()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        print(f"!! {name} timed out after {timeout:.0f} s", flush=True)
        return None
    if done.returncode != 0 or not out.exists():
        print(f"!! {name} failed (exit {done.returncode})", flush=True)
        return None
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    result["seconds"] = round(time.monotonic() - began, 1)
    if load_before is not None:
        result["load"] = f"{load_before:.2f} → {os.getloadavg()[0]:.2f}"
    print(f"   {name}: {result['seconds']} s", flush=True)
    return result


def print_summary(results: list[dict[str, Any]], failed: list[str], took: float) -> None:
    print()
    for result in results:
        for target in result["targets"]:
            mark = "ok  " if target["met"] else "MISS"
            limit = f"{target['limit']} {target['unit']}".strip()
            print(f"{mark} {target['target']}: {target['measured']} (limit {limit})")
        for note in result["notes"]:
            print(f"     note ({result['measure']}): {note}")
    for name in failed:
        print(f"FAIL {name} crashed or timed out")
    print(f"{len(results)} measures in {took:.1f} s, {len(failed)} failed")


# -- RESULTS.md --------------------------------------------------------------------------------


def source_state() -> tuple[str, str]:
    """(HEAD commit, a digest of uncommitted changes to the measured code): a run is only
    about one version of the code if this is the same at its start and its end."""

    def git(*command: str) -> str:
        done = subprocess.run(
            ["git", *command], cwd=ROOT, capture_output=True, text=True, check=False
        )
        return done.stdout

    diff = git("diff", "HEAD", "--", "comfy_mcp", "workflows")
    untracked = git("ls-files", "--others", "--exclude-standard", "--", "comfy_mcp", "workflows")
    digest = (
        hashlib.sha256((diff + untracked).encode()).hexdigest()[:12] if diff + untracked else ""
    )
    return git("rev-parse", "--short", "HEAD").strip() or "?", digest


def machine(source: tuple[str, str]) -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit, uncommitted = source
    versions = []
    for package in ("mcp", "httpx", "websockets", "pydantic", "pillow"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{package} {metadata.version(package)}")
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus (nproc)": str(os.cpu_count()),
        "cpu": cpu,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{platform.system()} {platform.release()}",
        "packages": ", ".join(versions),
        "commit": commit + (f" + uncommitted changes ({uncommitted})" if uncommitted else ""),
    }


def markdown_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "_(no rows)_"
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(column, "")) for column in columns) + " |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).replace("|", "\\|").replace("\n", " ")


def write_results(
    results: list[dict[str, Any]], took: float, source: tuple[str, str], *, changed: bool
) -> None:
    placeholder = "## Analysis\n\n_(hand-written; kept when the suite reruns)_"
    analysis = f"{ANALYSIS_START}\n{placeholder}\n{ANALYSIS_END}"
    if RESULTS.exists():
        text = RESULTS.read_text(encoding="utf-8")
        if ANALYSIS_START in text and ANALYSIS_END in text:
            kept = text.split(ANALYSIS_START, 1)[1].split(ANALYSIS_END, 1)[0]
            analysis = ANALYSIS_START + kept + ANALYSIS_END
    parts = [
        "# Benchmark results",
        "",
        "Generated by `python bench/run.py` (the figures below are rewritten on every full run; "
        "the analysis section is kept). Every comparison is measured side by side in the same run; "
        "times in milliseconds unless stated.",
        "",
        markdown_table([machine(source) | {"suite took": f"{took:.0f} s"}]),
        "",
        *(
            [
                "**Warning:** the measured code changed while the suite ran; figures mix versions.",
                "",
            ]
            if changed
            else []
        ),
        "## Targets",
        "",
        markdown_table(
            [
                {
                    "measure": r["measure"],
                    "target": t["target"],
                    "measured": t["measured"],
                    "limit": t["limit"],
                    "unit": t["unit"],
                    "met": "✅" if t["met"] else "❌",
                }
                for r in results
                for t in r["targets"]
            ]
        ),
        "",
        analysis,
        "",
    ]
    for result in results:
        duration = f"{result['seconds']} s"
        if "load" in result:
            duration += f"; 1-minute load average before → after: {result['load']}"
        parts += [f"## {result['title']}", "", f"_{duration}_", ""]
        for name, rows in result["tables"].items():
            parts += [f"### {name}", "", markdown_table(rows), ""]
        parts += [f"- {note}" for note in result["notes"]]
        parts.append("")
    RESULTS.write_text("\n".join(parts).rstrip() + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
