"""The lesson spec: exercises, functions, cases, points, tolerances and limits, as data.

Loaded from the ``lesson.toml`` in a lesson's data package (``mechgrade.lessons``) and validated with pydantic (``extra="forbid"``),
so a typo in a lesson file is an error that names the field, not a silently ignored key.
Torch-free: ``mechgrade list`` reads it.
"""

from __future__ import annotations

import sys
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mechgrade import lessons
from mechgrade.errors import SpecError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Visibility = Literal["public", "hidden"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Case(_Strict):
    """One graded call: ``params`` are seeds, sizes and prompts; the lesson's builder turns
    them into the function's arguments on both sides of the isolation boundary."""

    visibility: Visibility = "public"
    points: float = Field(gt=0)
    params: dict[str, Any] = Field(default_factory=dict)
    number: str = Field("", description="Filled in by the loader: '<exercise>.<function>.<case>' numbering.")
    index: int = Field(0, description="1-based position among the function's cases of this visibility.")

    @property
    def label(self) -> str:
        return f"{self.visibility} {self.index}"


class Function(_Strict):
    name: str
    builder: str = Field(description="Name of the input builder in the lesson's cases module.")
    timeout_s: float = Field(20.0, gt=0, description="Wall-clock limit for one call in the worker.")
    atol: float = 1e-5
    rtol: float = 1e-4
    check: str = Field("", description=(
        "A custom check in the lesson's checks module, called as check(grader, exercise, function, case) "
        "instead of the default comparison with the key (which it may call itself)."))
    cases: list[Case]


class Exercise(_Strict):
    id: str = Field(description="Also the module name in the workspace, e.g. 'induction'.")
    title: str
    paper: str = ""
    functions: list[Function]


class Lesson(_Strict):
    id: str
    title: str
    exercises: list[Exercise]
    hidden_points: dict[str, float] = Field(default_factory=dict, description=(
        "Set only in a student bundle's spec, which has no hidden cases: their points per "
        "'exercise.function', so that `check` can say what the instructor still grades."))

    @model_validator(mode="after")
    def _number_cases(self) -> "Lesson":
        # Numbers and per-visibility indices are derived, so spec files never repeat them.
        for e_i, exercise in enumerate(self.exercises, 1):
            for f_i, function in enumerate(exercise.functions, 1):
                seen: dict[str, int] = {}
                numbered = []
                for c_i, case in enumerate(function.cases, 1):
                    seen[case.visibility] = seen.get(case.visibility, 0) + 1
                    numbered.append(case.model_copy(update={"number": f"{e_i}.{f_i}.{c_i}", "index": seen[case.visibility]}))
                object.__setattr__(function, "cases", numbered)
        return self

    def hidden_points_of(self, functions: set[str]) -> float:
        """Points of the hidden cases of these 'exercise.function's (from the cases, or in a
        student bundle from ``hidden_points``)."""
        counted = {f"{e.id}.{f.name}": sum(c.points for c in f.cases if c.visibility == "hidden")
                   for e in self.exercises for f in e.functions}
        return sum(self.hidden_points.get(key, 0.0) + counted.get(key, 0.0) for key in functions)

    @property
    def total_points(self) -> float:
        return sum(c.points for _, _, c in self.iter_cases(hidden=True))

    def iter_cases(self, *, hidden: bool = False, exercises: tuple[str, ...] = ()):
        """Yield (exercise, function, case), public ones only unless ``hidden``."""
        for exercise in self.exercises:
            if exercises and exercise.id not in exercises:
                continue
            for function in exercise.functions:
                for case in function.cases:
                    if hidden or case.visibility == "public":
                        yield exercise, function, case

    def exercise(self, exercise_id: str) -> Exercise:
        for exercise in self.exercises:
            if exercise.id == exercise_id:
                return exercise
        names = ", ".join(e.id for e in self.exercises)
        raise SpecError(f"Lesson {self.id} has no exercise '{exercise_id}'; it has: {names}.")

    @cached_property
    def functions(self) -> dict[str, tuple[Exercise, Function]]:
        return {f"{e.id}.{f.name}": (e, f) for e in self.exercises for f in e.functions}


def lesson_dir(lesson_id: str) -> Path:
    """The lesson's data folder (spec, templates, mutants, keys), wherever its package lies."""
    return lessons.get(lesson_id).data_dir


def has_reference(lesson_id: str) -> bool:
    """False in a student bundle, which ships no reference solutions."""
    return lessons.get(lesson_id).has_reference


def require_reference(lesson_id: str, what: str) -> None:
    """Raise ``ReferenceUnavailable`` (one sentence) where this install is a student bundle;
    ``what`` names the feature that needs the reference."""
    lessons.get(lesson_id).require_reference(what)


def available_lessons() -> list[str]:
    return sorted(lessons.installed())


def load_lesson(lesson_id: str, *, spec_path: Path | None = None) -> Lesson:
    """The spec of an installed lesson, checked against its modules (``spec_path``: a spec file
    read on its own, not checked against any modules)."""
    path = spec_path or lesson_dir(lesson_id) / "lesson.toml"
    try:
        lesson = Lesson.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except OSError as err:
        raise SpecError(f"Cannot read the spec {path}: {err.strerror or err}.") from err
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path} is not valid TOML: {err}.") from err
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise SpecError(f"{path}: {where}: {first['msg']} ({err.error_count()} problem(s) in all).") from err
    if spec_path is None:
        if lesson.id != lesson_id:
            raise SpecError(f"{path}: its id is '{lesson.id}', but the lesson is installed as '{lesson_id}'.")
        _check_modules(lesson)
    return lesson


def _check_modules(lesson: Lesson) -> None:
    """Every function of the spec has a grader: a stub (and, where installed, a reference) that
    defines it, and the custom check it names. Read as source (``ast``), so that this stays
    torch-free and runs no lesson code; an error names the function, never a smaller total."""
    plugin = lessons.get(lesson.id)
    parts = [("stubs", plugin.stubs_dir())]
    if plugin.has_reference:
        parts.append(("reference", plugin.reference_dir()))
    for exercise in lesson.exercises:
        for kind, folder in parts:
            defined = _defined(folder / f"{exercise.id}.py")
            for function in exercise.functions:
                if function.name not in defined:
                    where = f"{folder / exercise.id}.py" if defined is not None else f"{folder}/ (no {exercise.id}.py)"
                    raise SpecError(f"Lesson {lesson.id}: function {exercise.id}.{function.name} has no grader: "
                                    f"its {kind} module does not define it ({where}).")
    named = {f.check: f"{e.id}.{f.name}" for e in lesson.exercises for f in e.functions if f.check}
    if not named:
        return
    checks = _checks_source(plugin)
    for check, function in named.items():
        if checks is not None and check not in checks:
            raise SpecError(f"Lesson {lesson.id}: function {function} has no grader: its check '{check}' is not defined in "
                            f"{plugin.checks or 'a checks module (the lesson declares none)'}.")


def _defined(path: Path) -> set[str] | None:
    """Top-level function names of a module file (None if there is no such file)."""
    import ast

    if not path.is_file():
        return None
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))} | {
        t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}


def _checks_source(plugin: lessons.LessonPlugin) -> set[str] | None:
    """Names the checks module defines; None where it is not shipped (a student's worker)."""
    import importlib.util

    if not plugin.checks:
        return set()
    try:
        spec = importlib.util.find_spec(plugin.checks)
    except ModuleNotFoundError:
        spec = None
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        return None
    return _defined(Path(spec.origin)) or set()
