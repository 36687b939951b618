"""The lesson spec: exercises, functions, cases, points, tolerances and limits, as data.

Loaded from ``exercises/<lesson>/lesson.toml`` and validated with pydantic (``extra="forbid"``),
so a typo in a lesson file is an error that names the field, not a silently ignored key.
Torch-free: ``mechgrade list`` reads it.
"""

from __future__ import annotations

import sys
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mechgrade.errors import ReferenceUnavailable, SpecError, UnknownLesson

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Visibility = Literal["public", "hidden"]
LESSONS_PACKAGE = "mechgrade.exercises"


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
    root = Path(str(resources.files(LESSONS_PACKAGE)))
    path = root / lesson_id
    if not (path / "lesson.toml").is_file():
        known = ", ".join(available_lessons()) or "none"
        raise UnknownLesson(f"No lesson '{lesson_id}' is installed; available: {known}.")
    return path


def has_reference(lesson_id: str) -> bool:
    """False in a student bundle, which ships no reference solutions."""
    import importlib.util

    try:
        found = importlib.util.find_spec(f"mechgrade.reference.{lesson_id}") is not None
    except ModuleNotFoundError:
        found = False
    return found


def require_reference(lesson_id: str, what: str) -> None:
    """Raise ``ReferenceUnavailable`` (one sentence) where this install is a student bundle;
    ``what`` names the feature that needs the reference."""
    if not has_reference(lesson_id):
        raise ReferenceUnavailable(f"{what} needs the reference solutions, which this student bundle of mechgrade "
                                   "does not include; it is for instructors (install the full mechgrade package).")


def available_lessons() -> list[str]:
    root = Path(str(resources.files(LESSONS_PACKAGE)))
    return sorted(p.name for p in root.iterdir() if (p / "lesson.toml").is_file())


def load_lesson(lesson_id: str, *, spec_path: Path | None = None) -> Lesson:
    path = spec_path or lesson_dir(lesson_id) / "lesson.toml"
    try:
        return Lesson.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path} is not valid TOML: {err}.") from err
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise SpecError(f"{path}: {where}: {first['msg']} ({err.error_count()} problem(s) in all).") from err
