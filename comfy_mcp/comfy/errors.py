"""Errors raised by the ComfyUI client.

Every failure is a :class:`ComfyError`; the subclasses say what went wrong and carry the facts
(status, node id, class, message) as attributes, so callers never parse message text::

    ComfyError
    ├── ComfyConnectionError      ComfyUI cannot be reached (refused, DNS, TLS, reset)
    ├── ComfyTimeoutError         no answer within the deadline (HTTP call or a wait)
    ├── ComfyProtocolError        an answer we cannot understand (malformed JSON, wrong shape)
    ├── ComfyHTTPError            ComfyUI answered with an error status
    │   ├── ComfyAuthError        401/403, or a redirect to a login page
    │   ├── ComfyNotFoundError    404 (unknown model folder, missing file)
    │   └── UploadTooLargeError   413, or a file over the server's max_upload_size
    ├── PromptRejectedError       POST /prompt answered 400: nothing was queued
    └── JobError                  a queued prompt did not succeed
        ├── ExecutionFailedError  a node raised (node id, class, exception)
        ├── ExecutionInterruptedError
        ├── JobCancelledError     removed from the queue before it ran
        └── JobLostError          in neither queue nor history (server restarted, history evicted)

Misuse (calling a closed client) raises :class:`ClientClosedError`, a ``RuntimeError``, because it
is a bug in the caller and not an I/O failure.
"""

from __future__ import annotations

from typing import Any


class ComfyError(Exception):
    """Base class for every error the ComfyUI client raises."""


class ComfyConnectionError(ComfyError):
    """ComfyUI could not be reached at all."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            f"cannot reach ComfyUI at {url}: {reason}. "
            "Is ComfyUI running, and is COMFYUI_URL right?"
        )


class ComfyTimeoutError(ComfyError):
    """An HTTP call, the websocket handshake or a wait ran past its deadline.

    A wait that timed out carries the ``prompt_id``: the prompt is still queued or running in
    ComfyUI, and ``ComfyClient.wait(prompt_id, …)`` resumes following it.
    """

    def __init__(self, what: str, seconds: float, *, prompt_id: str | None = None) -> None:
        self.what = what
        self.seconds = seconds
        self.prompt_id = prompt_id
        super().__init__(f"{what} timed out after {seconds:g} s")


class ComfyProtocolError(ComfyError):
    """ComfyUI answered something we cannot parse (malformed JSON, unexpected shape)."""


class ComfyHTTPError(ComfyError):
    """ComfyUI answered with an error status.

    ``body`` is the response text (often empty: many ComfyUI routes answer errors with no body),
    ``json`` the parsed body when the server sent JSON.
    """

    def __init__(
        self, method: str, url: str, status: int, body: str = "", json: Any = None
    ) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.body = body
        self.json = json
        detail = f": {body.strip()[:300]}" if body.strip() else ""
        super().__init__(f"{method} {url} answered HTTP {status}{detail}")


class ComfyAuthError(ComfyHTTPError):
    """401/403 (or a redirect to a login page): credentials are missing or wrong."""

    def __init__(self, method: str, url: str, status: int, body: str = "", json: Any = None):
        super().__init__(method, url, status, body, json)
        self.args = (
            f"{method} {url} answered HTTP {status}: ComfyUI (or the proxy in front of it) "
            "wants credentials. Set COMFYUI_HEADERS / COMFYUI_TOKEN, or check the ones set.",
        )


class ComfyNotFoundError(ComfyHTTPError):
    """404: the route, model folder or file does not exist."""


class UploadTooLargeError(ComfyHTTPError):
    """The upload is larger than the server accepts (HTTP 413 or ``max_upload_size``)."""


class PromptRejectedError(ComfyError):
    """POST /prompt answered 400: the graph failed validation and nothing was queued.

    ``error`` is ComfyUI's top-level ``error`` object (type, message, details) and ``node_errors``
    the per-node errors, kept whole: ``{node_id: {"errors": [...], "class_type": ..., ...}}``.
    """

    def __init__(self, error: Any, node_errors: dict[str, Any]) -> None:
        self.error = error if isinstance(error, dict) else {"type": "", "message": str(error)}
        self.node_errors = node_errors
        super().__init__(describe_rejection(self.error, node_errors))

    @property
    def error_type(self) -> str:
        return str(self.error.get("type", ""))


def describe_rejection(error: dict[str, Any], node_errors: dict[str, Any]) -> str:
    """One readable line per problem: node id, class, input and ComfyUI's message."""
    lines = [f"ComfyUI rejected the prompt: {error.get('message', 'invalid prompt')}"]
    details = error.get("details")
    if details and not node_errors:
        lines[0] += f" ({details})"
    for node_id, entry in node_errors.items():
        class_type = entry.get("class_type", "?") if isinstance(entry, dict) else "?"
        errors = entry.get("errors", []) if isinstance(entry, dict) else []
        for err in errors:
            extra = err.get("extra_info") or {}
            input_name = extra.get("input_name")
            where = f"node {node_id} ({class_type})" + (
                f", input '{input_name}'" if input_name else ""
            )
            text = err.get("message", "")
            if err.get("details"):
                text += f": {err['details']}"
            lines.append(f"- {where}: {text}")
    return "\n".join(lines)


class JobError(ComfyError):
    """A prompt was queued but did not produce its outputs."""

    def __init__(self, prompt_id: str, message: str) -> None:
        self.prompt_id = prompt_id
        super().__init__(message)


class ExecutionFailedError(JobError):
    """A node raised while the prompt ran (``execution_error``)."""

    def __init__(
        self,
        prompt_id: str,
        node_id: str | None,
        node_type: str | None,
        exception_type: str,
        exception_message: str,
        traceback: list[str] | None = None,
    ) -> None:
        self.node_id = node_id
        self.node_type = node_type
        self.exception_type = exception_type
        self.exception_message = exception_message
        self.traceback = traceback or []
        super().__init__(
            prompt_id,
            f"prompt {prompt_id} failed in node {node_id} ({node_type}): "
            f"{exception_type}: {exception_message.strip()}",
        )


class ExecutionInterruptedError(JobError):
    """The prompt was interrupted while running (``execution_interrupted``)."""

    def __init__(self, prompt_id: str, node_id: str | None, node_type: str | None) -> None:
        self.node_id = node_id
        self.node_type = node_type
        where = f" at node {node_id} ({node_type})" if node_id else ""
        super().__init__(prompt_id, f"prompt {prompt_id} was interrupted{where}")


class JobCancelledError(JobError):
    """The prompt was removed from the queue before it ran."""

    def __init__(self, prompt_id: str) -> None:
        super().__init__(prompt_id, f"prompt {prompt_id} was removed from the queue before it ran")


class JobLostError(JobError):
    """The prompt is in neither the queue nor the history (restart, eviction, deletion)."""

    def __init__(self, prompt_id: str) -> None:
        super().__init__(
            prompt_id,
            f"prompt {prompt_id} is in neither ComfyUI's queue nor its history: the server was "
            "probably restarted, or the history entry was deleted or evicted",
        )


class ClientClosedError(RuntimeError):
    """The client was used after ``aclose()``."""
