"""Shared fixtures: the anyio backend, recorded fixtures, a running fake ComfyUI."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def fixture(name: str) -> Any:
    """A recorded ComfyUI fixture by file name (without .json)."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


@cache
def recorded_object_info() -> dict[str, Any]:
    """The recorded /object_info (478 classes), read once. Shared: copy it before changing it."""
    data: dict[str, Any] = fixture("get_object_info")["response"]["json"]
    return data


@pytest.fixture(scope="session")
def object_info() -> dict[str, Any]:
    return recorded_object_info()


@pytest.fixture
async def fake() -> AsyncIterator[Any]:
    """A fake ComfyUI on a loopback port (see tests/fake_comfyui)."""
    from tests.fake_comfyui import run_fake_comfyui

    async with run_fake_comfyui() as server:
        yield server
