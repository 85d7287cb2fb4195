"""Access to the recorded ComfyUI 0.3.64 responses in ``tests/fixtures``.

The fake serves several bodies verbatim from the recordings (object_info, system_stats, ...)
and reuses recorded error texts (the 0-byte checkpoint error, the bad-link traceback).
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

FIXTURES_DIR = Path(__file__).parent.parent / "fixtures"


@functools.cache
def _load(name: str) -> Any:
    with (FIXTURES_DIR / name).open(encoding="utf-8") as fh:
        return json.load(fh)


def fixture(name: str) -> Any:
    """A deep copy of a fixture file's parsed content (``name`` with or without ``.json``)."""
    if not name.endswith(".json"):
        name += ".json"
    return copy.deepcopy(_load(name))


def response_json(name: str) -> Any:
    """The recorded JSON body of an HTTP fixture."""
    return fixture(name)["response"]["json"]


def object_info() -> dict[str, Any]:
    body: dict[str, Any] = response_json("get_object_info")
    return body


def system_stats() -> dict[str, Any]:
    body: dict[str, Any] = response_json("get_system_stats")
    return body


def checkpoint_error() -> dict[str, Any]:
    """exception_message/exception_type/traceback of the recorded 0-byte checkpoint failure."""
    for message in _load("ws_execution_error.json")["messages"]:
        msg = message.get("msg", {})
        if msg.get("type") == "execution_error":
            data = msg["data"]
            return {
                "exception_message": data["exception_message"],
                "exception_type": data["exception_type"],
                "traceback": list(data["traceback"]),
            }
    raise LookupError("ws_execution_error.json has no execution_error frame")


def bad_link_traceback() -> list[str]:
    """Traceback lines of the recorded KeyError for a link to a missing node."""
    body = _load("post_prompt_400_bad_link_source.json")["response"]["json"]
    for entry in body["node_errors"].values():
        for err in entry["errors"]:
            if err["type"] == "exception_during_validation":
                return list(err["extra_info"]["traceback"])
    raise LookupError("no exception_during_validation in post_prompt_400_bad_link_source.json")


def workflow(name: str) -> dict[str, Any]:
    """A recorded API-format workflow (``workflow_<name>.json``)."""
    if not name.startswith("workflow_"):
        name = "workflow_" + name
    result: dict[str, Any] = fixture(name)
    return result
