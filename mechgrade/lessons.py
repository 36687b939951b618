"""Lessons are plugins: each is found through an entry point in the group ``mechgrade.lessons``
whose object is a ``LessonPlugin``, the same way pytest finds ``pytest11`` plugins. Lesson 27
registers itself like any instructor's package (see pyproject.toml); the engine imports a
lesson's modules only through the names its plugin gives, and knows nothing else about it.

Torch-free: ``mechgrade list`` and the CLI's ``--help`` import this.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from functools import cache, cached_property
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field

from mechgrade.errors import ReferenceUnavailable, SpecError, UnknownLesson

GROUP = "mechgrade.lessons"
MODULE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"


class LessonPlugin(BaseModel):
    """What a lesson provides, as import names (nothing is imported until it is needed).

    - ``data``: a package holding ``lesson.toml`` (the spec), ``cases.py`` (its ``build(model,
      builder, params) -> kwargs``), ``templates/`` (``README.md.j2``, ``notebook.md.j2``, one
      ``<exercise>.md.j2`` each, optionally ``feedback.txt.j2`` over mechgrade's), and optionally ``mutants.toml`` and ``keys/``.
      The student's worker imports it to build a case's inputs, so it holds nothing secret; the
      sandbox hides its ``keys/`` and ``mutants.toml``.
    - ``reference``: a package with one module per exercise, the solutions (hidden from students;
      absent from a student bundle).
    - ``stubs``: a package with one module per exercise, the same functions with TODO bodies.
    - ``checks``: a module of custom checks that the spec names (``check = "..."``). They run in
      the trusted process, never where the student's code can read them (the Gradescope runtime),
      but a student bundle carries them to check public cases offline: they compare with the
      answer key (``grader.key``), never the reference.
    - ``peak_mb``: the memory grading it needs, as measured (``benchmarks/autograder.py``).
    - ``extras``: a module of optional hooks for the report and ``mechgrade models --inspect``
      (``mechgrade.extras`` lists them); run in the trusted process on plain data only.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="What users type: `mechgrade check ID`.")
    data: str = Field(pattern=MODULE_NAME)
    reference: str = Field(pattern=MODULE_NAME)
    stubs: str = Field(pattern=MODULE_NAME)
    checks: str | None = Field(None, pattern=MODULE_NAME)
    extras: str | None = Field(None, pattern=MODULE_NAME)
    peak_mb: dict[str, int] = Field(default_factory=dict, description="Measured peak memory (MB, processes only) of grading "
                                    "the reference, public and hidden, by model spec ('embedded', 'gpt2'): sizes the "
                                    "Gradescope container; unlisted models use mechgrade's defaults (export.container).")
    cpu_advice: dict[str, str] = Field(default_factory=dict, description="The CPU to set for the Gradescope container, by "
                                       "model spec, with the measurement behind it, in words (printed by `export gradescope`).")
    origin: str = Field("", description="The installed distribution it came from (filled in by discovery).")
    entry_point: str = Field("", description="'module:attribute' of its entry point (filled in by discovery); exports "
                             "carry it, so the module must be inside the data package.")

    @cached_property
    def data_dir(self) -> Path:
        """The data package's folder (its spec, templates, mutants and keys)."""
        return _package_dir(self.data, f"Lesson {self.id}'s data package")

    @property
    def spec_path(self) -> Path:
        return self.data_dir / "lesson.toml"

    @property
    def has_reference(self) -> bool:
        """False in a student bundle, which ships no reference solutions."""
        try:
            return importlib.util.find_spec(self.reference) is not None
        except ModuleNotFoundError:
            return False

    def require_reference(self, what: str) -> None:
        """Raise ``ReferenceUnavailable`` (one sentence) where this install is a student bundle;
        ``what`` names the feature that needs the reference."""
        if not self.has_reference:
            raise ReferenceUnavailable(f"{what} needs the reference solutions, which this student bundle of mechgrade "
                                       "does not include; it is for instructors (install the full mechgrade package).")

    def reference_module(self, exercise: str) -> ModuleType:
        self.require_reference(f"Lesson {self.id}'s reference")
        return importlib.import_module(f"{self.reference}.{exercise}")

    def reference_dir(self) -> Path:
        self.require_reference(f"Lesson {self.id}'s reference")
        return _package_dir(self.reference, f"Lesson {self.id}'s reference package")

    def stub_module(self, exercise: str) -> ModuleType:
        return importlib.import_module(f"{self.stubs}.{exercise}")

    def stubs_dir(self) -> Path:
        return _package_dir(self.stubs, f"Lesson {self.id}'s stubs package")

    def builders(self) -> Callable[[Any, str, dict[str, Any]], dict[str, Any]]:
        """The lesson's ``build(model, builder_name, params) -> kwargs`` (trusted lesson code)."""
        return importlib.import_module(f"{self.data}.cases").build

    def templates(self, **options: Any):
        """A jinja2 environment over the lesson's ``templates/``, falling back to mechgrade's
        defaults (``mechgrade/templates``: the feedback text) for any template it does not give."""
        from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, StrictUndefined

        loader = ChoiceLoader([FileSystemLoader(self.data_dir / "templates"), PackageLoader("mechgrade", "templates")])
        return Environment(loader=loader, undefined=StrictUndefined, **options)

    def extras_module(self) -> ModuleType | None:
        return importlib.import_module(self.extras) if self.extras else None

    def check(self, name: str) -> Callable[..., Any]:
        """The custom check ``name`` from the lesson's checks module."""
        if not self.checks:
            raise SpecError(f"Lesson {self.id}'s spec names the check '{name}', but the lesson declares no checks module.")
        module = importlib.import_module(self.checks)
        found = getattr(module, name, None)
        if not callable(found):
            raise SpecError(f"Lesson {self.id}'s checks module {self.checks} has no check named '{name}'.")
        return found

    def worker_modules(self) -> tuple[str, ...]:
        """Import names the student's worker imports: the data and stubs packages, and every
        package above them (``mechgrade.exercises`` for ``mechgrade.exercises.lesson27``)."""
        names = []
        for name in (self.data, self.stubs):
            parts = name.split(".")
            names += [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
        return tuple(dict.fromkeys(names))

    def secret_modules(self) -> tuple[str, ...]:
        """Import names a student's code must never read (the worker's view leaves them out)."""
        return tuple(m for m in (self.reference, self.checks) if m)


def _package_dir(name: str, what: str) -> Path:
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:
        spec = None
    if spec is None:
        raise UnknownLesson(f"{what}, {name}, is not installed.")
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent


def import_dirs(name: str) -> list[str]:
    """The folders a package is imported from (none for a plain module or a missing name)."""
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return []
    return list(spec.submodule_search_locations or []) if spec is not None else []


class Broken(BaseModel):
    """An entry point that did not give a lesson: listed with why, never a traceback."""

    name: str
    origin: str
    reason: str


@cache
def _discover() -> tuple[dict[str, LessonPlugin], tuple[Broken, ...]]:
    found: dict[str, LessonPlugin] = {}
    broken: list[Broken] = []
    for ep in sorted(importlib.metadata.entry_points(group=GROUP), key=lambda e: e.name):
        origin = f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else "?"
        if ep.name in found:  # the same distribution seen twice on sys.path (an editable and a wheel)
            continue
        try:
            obj = ep.load()
            plugin = obj if isinstance(obj, LessonPlugin) else LessonPlugin.model_validate(obj)
        except Exception as err:  # a broken plugin costs its own lesson only
            broken.append(Broken(name=ep.name, origin=origin, reason=f"{type(err).__name__}: {_first_line(err)}"))
            continue
        if plugin.id != ep.name:
            broken.append(Broken(name=ep.name, origin=origin, reason=f"its entry point is named '{ep.name}' but its id is '{plugin.id}'"))
            continue
        found[plugin.id] = plugin.model_copy(update={"origin": origin, "entry_point": ep.value})
    return found, tuple(broken)


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else ""


def installed() -> dict[str, LessonPlugin]:
    """Every lesson installed in this Python, by id."""
    return dict(_discover()[0])


def broken() -> tuple[Broken, ...]:
    return _discover()[1]


def refresh() -> None:
    """Forget what was discovered (after installing a lesson into this running Python)."""
    _discover.cache_clear()


def get(lesson_id: str) -> LessonPlugin:
    plugins = installed()
    if lesson_id in plugins:
        return plugins[lesson_id]
    bad = next((b for b in broken() if b.name == lesson_id), None)
    if bad is not None:
        raise UnknownLesson(f"Lesson '{lesson_id}' (from {bad.origin}) could not be loaded: {bad.reason}.")
    known = ", ".join(sorted(plugins)) or "none"
    raise UnknownLesson(f"No lesson '{lesson_id}' is installed; available: {known}.")
