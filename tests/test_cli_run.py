"""``check`` and ``run`` against the fake ComfyUI: findings with fixes, exit statuses, saved
outputs, value parsing, uploads, timeouts and Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from PIL import Image

from comfy_mcp.cli.check import check, reach_fix
from comfy_mcp.cli.parser import build_parser
from comfy_mcp.cli.run import _write_new, run
from comfy_mcp.cli.values import UsageError, parse_assignments, parse_value
from comfy_mcp.comfy import ComfyConnectionError
from comfy_mcp.settings import Settings
from comfy_mcp.templates import Binding, Parameter, TemplateCatalog
from tests.fake_comfyui import FakeComfyUI

pytestmark = pytest.mark.anyio

CLOSED_PORT_URL = "http://127.0.0.1:9"


def settings_for(url: str, **overrides: Any) -> Settings:
    return Settings.from_env({}, comfyui_url=url, **overrides)


def run_args(*argv: str) -> Any:
    return build_parser().parse_args(["run", *argv])


def console_script() -> str:
    script = Path(sys.executable).parent / "mcp-server-comfyui"
    found = str(script) if script.exists() else shutil.which("mcp-server-comfyui")
    if not found:
        pytest.fail("the mcp-server-comfyui console script is not installed (pip install -e .)")
    return found


# -- check ---------------------------------------------------------------------------------------


async def test_check_reports_a_working_comfyui(
    fake: FakeComfyUI, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await check(settings_for(fake.url)) == 0
    out = capsys.readouterr().out
    assert "ok    ComfyUI: 0.3.64 at " + fake.url in out
    assert "ok    websocket: connected" in out
    assert "models: checkpoints " in out and "loras " in out
    assert "features: supports_preview_metadata: yes" in out
    assert "smoke" in out.split("templates:")[1]
    assert "FAIL" not in out


async def test_check_json_lists_every_check(
    fake: FakeComfyUI, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await check(settings_for(fake.url), as_json=True) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["comfyui_urls"] == [fake.url]
    names = [c["check"] for c in report["checks"]]
    for name in ("ComfyUI", "device", "websocket", "models", "features", "templates"):
        assert name in names
    models = next(c for c in report["checks"] if c["check"] == "models")
    assert models["data"]["counts"]["checkpoints"] == len(fake.models["checkpoints"])


async def test_check_fails_with_a_fix_when_comfyui_is_down(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await check(settings_for(CLOSED_PORT_URL)) == 1
    out = capsys.readouterr().out
    assert "FAIL  ComfyUI: cannot reach ComfyUI" in out
    assert "fix: start ComfyUI (python main.py --port 9)" in out


def test_a_remote_comfyui_gets_the_listen_hint() -> None:
    fix = reach_fix(ComfyConnectionError("http://gpu-box:8188", "refused"), "http://gpu-box:8188")
    assert "--listen 0.0.0.0" in fix and "gpu-box" in fix


async def test_check_names_the_credentials_when_comfyui_refuses(
    fake: FakeComfyUI, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.faults.require_headers = {"Authorization": "Bearer sekret-token-1"}
    assert await check(settings_for(fake.url)) == 1
    out = capsys.readouterr().out
    assert "COMFYUI_TOKEN" in out.split("fix:")[1]
    assert await check(settings_for(fake.url, comfyui_token="sekret-token-1")) == 0


async def test_check_fails_when_something_else_answers(
    fake: FakeComfyUI, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.faults.http_errors = {"/system_stats": 404}
    assert await check(settings_for(fake.url)) == 1
    assert "not ComfyUI's API" in capsys.readouterr().out


async def test_check_fails_when_the_websocket_is_refused(
    fake: FakeComfyUI, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.faults.reject_ws_status = 404
    assert await check(settings_for(fake.url)) == 1
    out = capsys.readouterr().out
    assert "FAIL  websocket:" in out and "websocket upgrades" in out
    assert "ok    models:" in out  # the other checks still ran


async def test_check_says_which_templates_cannot_run(
    fake: FakeComfyUI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads((Path("workflows") / "smoke.json").read_text(encoding="utf-8"))
    document["graph"]["2"]["class_type"] = "NoSuchCustomNode"
    (tmp_path / "custom.json").write_text(json.dumps(document), encoding="utf-8")
    fake.models["upscale_models"] = []
    settings = settings_for(fake.url, workflows_dirs=(tmp_path, tmp_path / "missing"))
    assert await check(settings, as_json=True) == 0  # warnings do not fail
    checks = json.loads(capsys.readouterr().out)["checks"]
    templates = next(c for c in checks if c["check"] == "templates")
    assert templates["status"] == "warn"
    assert templates["data"]["blocked"]["custom"] == "missing nodes NoSuchCustomNode"
    assert templates["data"]["blocked"]["upscale"] == "no upscale_models files"
    assert "smoke" in templates["data"]["ready"]
    assert any(c["check"] == "settings" and "missing" in c["message"] for c in checks)


async def test_check_builds_the_server_with_the_guard_lists(
    fake: FakeComfyUI, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(fake.url, tools_deny=("free_memroy",))
    assert await check(settings) == 1
    out = capsys.readouterr().out
    assert "FAIL  MCP server: COMFY_MCP_TOOLS_DENY names unknown tools: free_memroy" in out
    assert await check(settings_for(fake.url, read_only=True)) == 0
    assert (
        "ok    MCP server: builds with these settings in read-only mode" in capsys.readouterr().out
    )


async def test_check_covers_every_backend(
    fake: FakeComfyUI, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings.from_env({"COMFYUI_URLS": f"gpu1={fake.url},gpu2={CLOSED_PORT_URL}"})
    assert await check(settings) == 1
    out = capsys.readouterr().out
    assert "ok    gpu1 ComfyUI: 0.3.64" in out and "ok    gpu1 websocket" in out
    assert "FAIL  gpu2 ComfyUI: cannot reach ComfyUI" in out


async def test_run_picks_a_backend_by_name(
    fake: FakeComfyUI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings.from_env({"COMFYUI_URLS": f"down={CLOSED_PORT_URL},up={fake.url}"})
    assert await run(settings, run_args("smoke", "--backend", "nope")) == 2
    assert "no backend 'nope'; configured: down, up" in capsys.readouterr().err
    assert await run(settings, run_args("smoke", "--out", str(tmp_path))) == 1  # the first: down
    args = run_args("smoke", "--backend", "up", "--out", str(tmp_path))
    assert await run(settings, args) == 0


async def test_check_through_the_console_script(fake: FakeComfyUI) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMFYUI_", "COMFY_MCP_"))}
    result = await anyio.run_process(
        [console_script(), "check", "--json", "--comfyui-url", fake.url], env=env, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout)["ok"] is True
    down = await anyio.run_process(
        [console_script(), "--comfyui-url", CLOSED_PORT_URL, "check"], env=env, check=False
    )
    assert down.returncode == 1


# -- run: values -----------------------------------------------------------------------------------


def template(name: str) -> Any:
    return TemplateCatalog([]).get(name)


def test_lora_stacks_take_json_or_a_short_list() -> None:
    lora = template("txt2img_lora")
    parsed = parse_assignments(lora, ['loras=[{"name": "a.safetensors", "strength": 0.5}]'])
    assert parsed == {"loras": [{"name": "a.safetensors", "strength": 0.5}]}
    assert parse_assignments(lora, ['loras={"name": "a.safetensors"}']) == {
        "loras": [{"name": "a.safetensors"}]
    }
    assert parse_assignments(lora, ["loras=style/a.safetensors:0.7, b.safetensors"]) == {
        "loras": [{"name": "style/a.safetensors", "strength": 0.7}, {"name": "b.safetensors"}]
    }
    assert parse_assignments(lora, ["loras="]) == {"loras": []}
    with pytest.raises(UsageError, match="not valid JSON"):
        parse_assignments(lora, ["loras=[{oops"])


def test_scalars_stay_text_for_the_template_to_convert() -> None:
    smoke = template("smoke")
    values = parse_assignments(smoke, ["width=64", "filename_prefix=a=b", "heigth=3"])
    assert values == {"width": "64", "filename_prefix": "a=b", "heigth": "3"}
    filled = smoke.fill({"width": "64", "height": "32"})
    assert filled.values["width"] == 64 and filled.values["height"] == 32


def test_booleans_take_the_usual_spellings() -> None:
    flag = Parameter("upscale", "boolean", (Binding("1", "x"),))
    assert [parse_value(flag, v) for v in ("yes", "0", "On", "FALSE")] == [
        True,
        False,
        True,
        False,
    ]
    assert parse_value(flag, "perhaps") == "perhaps"  # the template says why that is wrong


@pytest.mark.parametrize(
    ("item", "message"),
    [("width", "--set takes KEY=VALUE"), ("=3", "--set takes KEY=VALUE")],
)
def test_malformed_assignments_are_usage_errors(item: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_assignments(template("smoke"), [item])
    with pytest.raises(UsageError, match="given twice"):
        parse_assignments(template("smoke"), ["width=1", "width=2"])


def test_outputs_never_overwrite(tmp_path: Path) -> None:
    first = _write_new(tmp_path / "out", "a.png", b"one")
    second = _write_new(tmp_path / "out", "a.png", b"two")
    third = _write_new(tmp_path / "out", "../../escape/a.png", b"three")
    assert [p.name for p in (first, second, third)] == ["a.png", "a-1.png", "a-2.png"]
    assert first.read_bytes() == b"one" and third.parent == tmp_path / "out"


# -- run: end to end ------------------------------------------------------------------------------


async def test_run_saves_the_outputs(
    fake: FakeComfyUI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = run_args("smoke", "--set", "width=40", "height=24", "--out", str(tmp_path / "out"))
    assert await run(settings_for(fake.url), args) == 0
    out = capsys.readouterr().out
    saved = list((tmp_path / "out").iterdir())
    assert len(saved) == 1
    assert Image.open(saved[0]).size == (40, 24)
    assert saved[0].read_bytes() == fake.files("output")[saved[0].name]
    assert "smoke: succeeded" in out and saved[0].name in out
    assert "width=40 height=24" in out


async def test_run_json_reports_files_and_the_values_used(
    fake: FakeComfyUI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = run_args("smoke", "-s", "color=255", "--out", str(tmp_path), "--json")
    assert await run(settings_for(fake.url), args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "succeeded" and result["template"] == "smoke"
    assert result["values"] == {
        "width": 512,
        "height": 512,
        "color": 255,
        "filename_prefix": "comfy_mcp_smoke",
    }
    [saved] = result["files"]
    assert Path(saved["path"]).is_absolute() and Path(saved["path"]).exists()
    assert saved["kind"] == "image" and saved["bytes"] > 0


async def test_run_lists_every_bad_value_and_queues_nothing(
    fake: FakeComfyUI, capsys: pytest.CaptureFixture[str]
) -> None:
    args = run_args("smoke", "--set", "width=abc", "heigth=3")
    assert await run(settings_for(fake.url), args) == 2
    err = capsys.readouterr().err
    assert "2 invalid values for template 'smoke'" in err
    assert "did you mean 'height'?" in err and "'width' must be a whole number" in err
    assert "mcp-server-comfyui workflows smoke" in err
    assert fake.posted_prompts == []


async def test_run_unknown_template(capsys: pytest.CaptureFixture[str]) -> None:
    assert await run(settings_for(CLOSED_PORT_URL), run_args("smok")) == 2
    err = capsys.readouterr().err
    assert "did you mean 'smoke'?" in err


async def test_run_checks_choices_against_the_server(
    fake: FakeComfyUI, capsys: pytest.CaptureFixture[str]
) -> None:
    args = run_args("txt2img", "--set", "checkpoint=nope.safetensors")
    assert await run(settings_for(fake.url), args) == 2
    err = capsys.readouterr().err
    assert "'checkpoint' must be one of" in err
    assert fake.posted_prompts == []


async def test_run_reports_an_execution_failure(
    fake: FakeComfyUI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = fake.models["checkpoints"][0]
    args = run_args(
        "txt2img", "--set", f"checkpoint={checkpoint}", "steps=1", "--out", str(tmp_path)
    )
    assert await run(settings_for(fake.url), args) == 1  # the fake's model files are empty
    assert "failed in node" in capsys.readouterr().err
    assert not tmp_path.exists() or not list(tmp_path.iterdir())


async def test_run_when_comfyui_is_down(capsys: pytest.CaptureFixture[str]) -> None:
    assert await run(settings_for(CLOSED_PORT_URL), run_args("smoke")) == 1
    err = capsys.readouterr().err
    assert "cannot reach ComfyUI" in err and "mcp-server-comfyui check" in err


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(buffer, "PNG")
    return buffer.getvalue()


async def test_run_uploads_a_local_image(
    fake: FakeComfyUI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "invert.json").write_text(
        json.dumps(
            {
                "description": "Invert an input image.",
                "parameters": {"image": {"type": "image", "bind": "1.image"}},
                "graph": {
                    "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
                    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
                    "3": {
                        "class_type": "SaveImage",
                        "inputs": {"images": ["2", 0], "filename_prefix": "inverted"},
                    },
                },
            }
        ),
        encoding="utf-8",
    )
    photo = tmp_path / "photo.png"
    photo.write_bytes(_png(20, 10))
    settings = settings_for(fake.url, workflows_dirs=(templates,))
    out = tmp_path / "out"
    args = run_args("invert", "--set", f"image={photo}", "--out", str(out))
    assert await run(settings, args) == 0
    assert [u["name"] for u in fake.uploads] == ["photo.png"]
    [saved] = list(out.iterdir())
    assert Image.open(saved).size == (20, 10)
    assert "uploaded" in capsys.readouterr().err

    missing = run_args("invert", "--set", "image=./no-such-photo.png")
    assert await run(settings, missing) == 2
    assert "no such file" in capsys.readouterr().err


async def test_run_timeout_cancels_the_prompt(
    fake: FakeComfyUI, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.node_delay = 2.0
    args = run_args("smoke", "--set", "color=7", "--timeout", "0.5")
    assert await run(settings_for(fake.url), args) == 1
    err = capsys.readouterr().err
    assert "did not finish within 0.5 s" in err
    [posted] = fake.posted_prompts
    assert posted["prompt_id"] in err
    assert posted["prompt_id"] in fake.interrupt_calls or posted["prompt_id"] in (
        fake.cancelled_prompts
    )


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_ctrl_c_cancels_the_prompt_in_comfyui(fake: FakeComfyUI, tmp_path: Path) -> None:
    fake.node_delay = 1.0
    # A shell started in the background may leave SIGINT ignored; give the child Python's own.
    code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from comfy_mcp.cli import main; sys.exit(main())"
    )
    argv = [sys.executable, "-c", code, "run", "smoke", "--set", "color=99"]
    argv += ["--comfyui-url", fake.url, "--out", str(tmp_path)]
    async with await anyio.open_process(argv) as process:
        with anyio.fail_after(20):
            while not fake.queue_running:
                await anyio.sleep(0.05)
            process.send_signal(signal.SIGINT)
            await process.wait()
        assert process.stderr is not None
        err = (await process.stderr.receive(65536)).decode()
    assert process.returncode == 130, err
    [posted] = fake.posted_prompts
    assert f"cancelled prompt {posted['prompt_id']} (interrupted)" in err
    assert fake.interrupt_calls == [posted["prompt_id"]]
