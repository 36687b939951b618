"""Grade a lesson's cases on a workspace, calling the grading library directly.

``mechgrade check``, ``grade``, ``validate``, the notebook's ``check()`` and the Gradescope
autograder all come here. The same cases, as pytest tests, are what ``pytest
path/to/lesson.toml --mechgrade-path DIR`` runs (``engine.plugin``): pytest wraps the
library, it is not the bus the CLI runs on.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Protocol

from mechgrade.engine.results import GradingResult
from mechgrade.models.spec import portable_spec, resolve, spec_from_env
from mechgrade.spec import Case, Exercise, Function, Lesson, load_lesson, require_reference
from mechgrade.workspace_kind import Workspace

Progress = Callable[[str, int, int], None]  # (what, done, total)


class Observer(Protocol):
    """Sees each case after it is graded (e.g. ``values.ValueRecorder`` for the report); only reads."""

    def after_case(self, grader: Any, exercise: Exercise, function: Function, case: Case) -> None: ...


def selected_cases(lesson: Lesson, *, hidden: bool, exercises: tuple[str, ...]) -> list[tuple[Exercise, Function, Case]]:
    """Every public case before any hidden one (the grader gives those a worker of their own):
    no student code that saw a hidden case's inputs runs before the visible results are fixed."""
    cases = list(lesson.iter_cases(hidden=hidden, exercises=exercises))
    return sorted(cases, key=lambda item: item[2].visibility == "hidden")


def grade_cases(grader, *, hidden: bool, exercises: tuple[str, ...] = (), progress: Progress | None = None,
                observers: tuple[Observer, ...] = ()) -> GradingResult:
    """Grade the selected cases with ``grader`` and return the results model. The grader is
    closed whatever happens (Ctrl-C included: a part-run is no result, and leaves nothing)."""
    from mechgrade.engine.grader import grade_case

    started = time.perf_counter()
    lesson = grader.lesson
    cases = selected_cases(lesson, hidden=hidden, exercises=exercises)
    result = GradingResult(lesson=lesson.id, model=grader.model_spec, workspace=str(Path(grader.workspace).resolve()))
    try:
        grader.prepare_key(hidden=hidden, exercises=exercises)
        if cases and cases[0][2].visibility == "public":
            grader.worker.spawn()  # boots while the first case is set up
        if progress:
            progress("starting the grading worker (loads the model)", 0, len(cases))
        for done, (exercise, function, case) in enumerate(cases, 1):
            grader.last = None  # an observer never sees a stale outcome
            result.cases.append(grade_case(grader, exercise, function, case))
            for observer in observers:
                try:
                    observer.after_case(grader, exercise, function, case)
                except Exception:  # a picture is never worth a grade
                    pass
            if progress:
                progress(f"{exercise.id}.{function.name} [{case.label}]", done, len(cases))
        if "worker" in grader.__dict__:
            result.sandbox = grader.worker.sandbox.name
            result.cell_errors = grader.worker.cell_errors
        if grader.notice:
            result.notice = grader.notice
    finally:
        grader.close()
    if "key" in grader.__dict__:
        result.notices += grader.key.notices
    result.execution_time = time.perf_counter() - started
    result.cases.sort(key=lambda c: tuple(int(x) for x in c.number.split(".")))
    return result


def check_workspace(lesson_id: str, path: Path, *, model: str | None = None, exercises: tuple[str, ...] = (),
                    hidden: bool = False, results_path: Path | None = None, progress: Progress | None = None,
                    mem_mb: int = 2048, zygote=None, worker_user: str | None = None,
                    observers: tuple[Observer, ...] = (), from_cell: str | None = None, deadline: float | None = None) -> GradingResult:
    """``observers``: see each graded case (e.g. ``values.ValueRecorder``);
    ``worker_user``: run the student's code as this user (the Gradescope autograder, as root);
    ``from_cell``: "notebook" or "script": graded by ``check()`` from there, so feedback points there;
    ``deadline``: Unix time by which grading must end (later cases are reported as not run)."""
    lesson = load_lesson(lesson_id)
    if hidden:
        require_reference(lesson_id, "--hidden")  # a student bundle has no hidden cases to run
    for e in exercises:
        lesson.exercise(e)  # raises with the list of valid ids
    path = Path(path)
    if Workspace.at(path).is_notebook:  # a notebook workspace: checked readable here, executed only by the worker
        from mechgrade.notebook import read_cells

        read_cells(path)
    elif not path.is_dir():
        from mechgrade.workspace import missing_workspace

        raise missing_workspace(lesson_id, path)
    model = portable_spec(spec_from_env(model))  # a relative directory means nothing in the worker's folder
    resolve(model)  # fail early, in one sentence, if the weights are not here
    from mechgrade.engine.grader import Grader

    grader = Grader(lesson, path, model, mem_mb=mem_mb, zygote=zygote, worker_user=worker_user, from_cell=from_cell,
                    deadline=deadline)
    result = grade_cases(grader, hidden=hidden, exercises=exercises, progress=progress, observers=observers)
    if results_path:
        Path(results_path).parent.mkdir(parents=True, exist_ok=True)
        Path(results_path).write_text(json.dumps(result.to_gradescope(), indent=2))
    return result
