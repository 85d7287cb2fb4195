"""docs/client.md stays true: every public ComfyClient method is in its API reference, and every
complete example in it runs, against the fake ComfyUI."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from comfy_mcp.comfy import ComfyClient
from tests.fake_comfyui import FakeComfyUI

DOCS = Path(__file__).parent.parent / "docs" / "client.md"
TEXT = DOCS.read_text(encoding="utf-8")
RUN_LINE = "asyncio.run(main())"


def examples() -> list[str]:
    """Complete programs: python blocks that end by running ``main()``."""
    blocks = re.findall(r"```python\n(.*?)```", TEXT, flags=re.DOTALL)
    return [block for block in blocks if block.rstrip().endswith(RUN_LINE)]


def test_every_public_client_method_is_in_the_api_reference() -> None:
    reference = TEXT[TEXT.index("## API reference") :]
    documented = set(re.findall(r"`(?:await )?(?:comfy\.)?([a-z_]+)\(", reference))
    public = {
        name
        for name, value in inspect.getmembers(ComfyClient)
        if not name.startswith("_") and callable(value)
    }
    assert sorted(public - documented) == []
    named = set(re.findall(r"`(?:await )?comfy\.([a-z_]+)\(", reference))
    assert sorted(named - public) == []  # no stale method names


def test_the_guide_has_the_five_examples() -> None:
    assert len(examples()) == 5


@pytest.mark.anyio
@pytest.mark.parametrize("index", range(5))
async def test_example_runs_against_the_fake(
    index: int,
    fake: FakeComfyUI,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake.models_loadable = True  # the img2img example loads a (stand-in) checkpoint
    monkeypatch.setenv("COMFYUI_URL", fake.url)
    code = examples()[index].rstrip()[: -len(RUN_LINE)]
    namespace: dict[str, Any] = {"__name__": f"docs_example_{index}"}
    exec(compile(code, f"docs/client.md example {index + 1}", "exec"), namespace)
    await namespace["main"]()
    assert capsys.readouterr().out.strip()
