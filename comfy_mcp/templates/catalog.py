"""Where templates come from: the bundled ``workflows/`` folder plus user folders.

Users edit their workflow folder while the server runs, so each call re-checks the files'
modification times and size (a stat per file, no watcher thread) and re-reads only what
changed. A broken file never takes the catalog down: it is skipped, logged once per change,
and reported by ``errors()`` so a user can see why a template is missing.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from comfy_mcp.templates.errors import TemplateError, UnknownTemplateError
from comfy_mcp.templates.loader import load_template_file, template_name
from comfy_mcp.templates.template import Template

logger = logging.getLogger(__name__)

BUNDLED_SOURCE = "bundled"


def bundled_directory() -> Path:
    """The bundled templates: inside the wheel, or the repo's ``workflows/`` in a checkout.

    The wheel force-includes ``workflows/`` as ``comfy_mcp/_bundled_workflows``; an
    editable install or a source checkout has it next to the package.
    """
    package = Path(__file__).resolve().parent.parent
    in_wheel = package / "_bundled_workflows"
    return in_wheel if in_wheel.is_dir() else package.parent / "workflows"


@dataclass
class _Entry:
    """One file as last seen: its stat stamp and what loading it produced."""

    stamp: tuple[int, int]
    template: Template | None
    error: str | None


@dataclass
class _Folder:
    """The cached state of one folder; ``refresh`` re-reads only changed files."""

    path: Path
    bundled: bool
    entries: dict[Path, _Entry] = field(default_factory=dict)
    error: str | None = None

    def refresh(self) -> None:
        try:
            with os.scandir(self.path) as listing:
                files = {
                    Path(item.path): item.stat()
                    for item in listing
                    if item.name.lower().endswith(".json")
                    and not item.name.startswith(".")
                    and item.is_file()
                }
        except OSError as exc:
            message = "folder not found" if isinstance(exc, FileNotFoundError) else str(exc)
            if self.error != message:
                logger.warning("template folder %s: %s", self.path, message)
            self.error, self.entries = message, {}
            return
        self.error = None
        for gone in set(self.entries) - set(files):
            del self.entries[gone]
        for path, stat in files.items():
            stamp = (stat.st_mtime_ns, stat.st_size)
            cached = self.entries.get(path)
            if cached is None or cached.stamp != stamp:
                self.entries[path] = self._load(path, stamp)

    def _load(self, path: Path, stamp: tuple[int, int]) -> _Entry:
        try:
            template = load_template_file(path, source=BUNDLED_SOURCE if self.bundled else None)
        except TemplateError as exc:
            logger.warning("skipping template %s", exc)
            return _Entry(stamp, None, str(exc))
        return _Entry(stamp, template, None)


class TemplateCatalog:
    """All templates by name. User folders come first, in the order given, then the
    bundled ones: a user file named ``txt2img.json`` replaces the bundled ``txt2img``."""

    def __init__(self, directories: Sequence[Path], *, include_bundled: bool = True) -> None:
        self._folders = [_Folder(Path(d), bundled=False) for d in directories]
        if include_bundled:
            self._folders.append(_Folder(bundled_directory(), bundled=True))
        self._lock = threading.Lock()
        self._by_name: dict[str, Template] = {}
        self._errors: dict[str, str] = {}

    def refresh(self) -> None:
        """Re-stat every folder and reload changed files; every public method calls it."""
        with self._lock:
            by_name: dict[str, Template] = {}
            errors: dict[str, str] = {}
            for folder in self._folders:
                folder.refresh()
                if folder.error is not None:
                    errors[str(folder.path)] = folder.error
                seen: dict[str, Path] = {}
                for path in sorted(folder.entries):
                    entry = folder.entries[path]
                    if entry.error is not None:
                        errors[str(path)] = entry.error
                        continue
                    assert entry.template is not None
                    name = template_name(path.stem)
                    if name in seen:
                        errors[str(path)] = (
                            f"template name {name!r} is already used by {seen[name].name} "
                            "in the same folder; rename one of them"
                        )
                        continue
                    seen[name] = path
                    by_name.setdefault(name, entry.template)
            self._by_name, self._errors = by_name, errors

    def names(self) -> list[str]:
        """Sorted names of every loadable template."""
        self.refresh()
        return sorted(self._by_name)

    def get(self, name: str) -> Template:
        """The template called ``name``; UnknownTemplateError lists the valid names."""
        self.refresh()
        template = self._by_name.get(name) or self._by_name.get(template_name(name))
        if template is None:
            raise UnknownTemplateError(name, list(self._by_name))
        return template

    def templates(self) -> list[Template]:
        """Every loadable template, sorted by name."""
        self.refresh()
        return [self._by_name[name] for name in sorted(self._by_name)]

    def errors(self) -> dict[str, str]:
        """File (or folder) → why it was skipped, for files that could not be loaded."""
        self.refresh()
        return dict(self._errors)
