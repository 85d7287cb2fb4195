"""The public surface of ``comfy_mcp.comfy`` is exactly its ``__all__`` (the httpx way)."""

from __future__ import annotations

import inspect
import types

import comfy_mcp.comfy as comfy
from comfy_mcp.comfy import ComfyClient


def public_names(module: types.ModuleType) -> set[str]:
    """Names a user can import from the package: not private, not a submodule."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


def isort_key(name: str) -> tuple[int, str]:
    """RUF022's order: CONSTANTS, then Classes, then functions."""
    if name.isupper():
        return (0, name)
    return (1, name) if name[0].isupper() else (2, name)


def test_all_is_exactly_the_public_names() -> None:
    assert set(comfy.__all__) == public_names(comfy)
    assert len(comfy.__all__) == len(set(comfy.__all__))


def test_all_is_sorted() -> None:
    assert comfy.__all__ == sorted(comfy.__all__, key=isort_key)


def test_every_exported_name_has_a_docstring_or_is_a_constant() -> None:
    for name in comfy.__all__:
        value = getattr(comfy, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__doc__, f"{name} has no docstring"


def public_methods() -> list[str]:
    return sorted(
        name
        for name, value in inspect.getmembers(ComfyClient)
        if not name.startswith("_") and callable(value)
    )


def test_every_public_client_method_has_a_docstring() -> None:
    missing = [name for name in public_methods() if not getattr(ComfyClient, name).__doc__]
    assert missing == []
