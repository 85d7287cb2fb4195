"""Errors raised by the template layer, written for the agent that has to fix its call.

Every message names the argument, says what was wrong and what is allowed, because the MCP
layer passes these messages through to the model almost verbatim: a vague error costs a
round trip, a precise one lets the next call succeed.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

#: How many allowed values a message spells out before it abbreviates. Checkpoint folders can
#: hold hundreds of files; the full list stays available on the exception's ``allowed`` field.
MAX_LISTED_CHOICES = 25


def closest(value: str, candidates: Iterable[Any]) -> str | None:
    """The candidate that ``value`` was most likely meant to be, for a "did you mean" hint.

    A case-insensitive exact match wins over difflib's fuzzy ratio, so ``Euler`` suggests
    ``euler`` even when a longer name is textually closer.
    """
    names = [str(c) for c in candidates]
    folded = value.casefold()
    for name in names:
        if name.casefold() == folded and name != value:
            return name
    matches = difflib.get_close_matches(value, names, n=1, cutoff=0.6)
    if matches:
        return matches[0]
    # "detail" for "detail-placeholder.safetensors": a unique name that contains the value.
    containing = [name for name in names if len(value) >= 3 and folded in name.casefold()]
    return containing[0] if len(containing) == 1 else None


def format_choices(choices: Sequence[Any], limit: int = MAX_LISTED_CHOICES) -> str:
    """Spell out allowed values for a message, abbreviated past ``limit`` so it stays readable."""
    shown = ", ".join(str(c) for c in choices[:limit])
    if len(choices) > limit:
        shown += f", … ({len(choices) - limit} more)"
    return shown or "(none available)"


class TemplateError(Exception):
    """Base class: anything the template layer refuses to do."""


class UnknownTemplateError(TemplateError, LookupError):
    """A template name that no catalog folder provides.

    Carries the valid names so the caller can list them without a second lookup.
    """

    def __init__(self, name: str, available: Sequence[str]) -> None:
        self.name = name
        self.available = sorted(available)
        message = f"unknown template {name!r}"
        hint = closest(name, self.available)
        if hint is not None:
            message += f" (did you mean {hint!r}?)"
        message += f"; available templates: {format_choices(self.available)}"
        super().__init__(message)


@dataclass(frozen=True)
class ParameterProblem:
    """One thing wrong with one argument; ``allowed`` lists the valid values when finite."""

    parameter: str
    message: str
    allowed: list[Any] | None = None

    def __str__(self) -> str:
        return self.message


class TemplateParameterError(TemplateError, ValueError):
    """Arguments that cannot fill a template; lists every problem, not just the first.

    Reporting all problems at once matters for agents: fixing one argument per round trip
    turns a single bad call into several.
    """

    def __init__(
        self, problems: Sequence[ParameterProblem], *, template: str | None = None
    ) -> None:
        self.problems = list(problems)
        self.template = template
        where = f" for template {template!r}" if template else ""
        if len(self.problems) == 1:
            text = f"invalid argument{where}: {self.problems[0].message}"
        else:
            listed = "; ".join(f"({i}) {p.message}" for i, p in enumerate(self.problems, 1))
            text = f"{len(self.problems)} invalid arguments{where}: {listed}"
        super().__init__(text)


class TemplateLoadError(TemplateError):
    """A template file or declaration that cannot be used; names the file and parameter."""

    def __init__(self, message: str, *, source: str | None = None, parameter: str | None = None):
        self.detail = message
        self.source = source
        self.parameter = parameter
        prefix = f"{source}: " if source else ""
        if parameter is not None:
            prefix += f"parameter {parameter!r}: "
        super().__init__(prefix + message)

    def with_source(self, source: str) -> TemplateLoadError:
        """The same error attributed to ``source`` (the file), keeping the parameter."""
        return TemplateLoadError(self.detail, source=source, parameter=self.parameter)
