"""Rerun a public case yourself: its inputs as text for feedback, and the exact arguments the
grader passed, rebuilt in your own Python (``from mechgrade import case_inputs``).

Hidden cases stay opaque: their parameters are not described and ``case_inputs`` refuses them
(a student bundle does not even hold them). Works from a student bundle, which ships the
lesson's spec (public cases) and builders but no reference.
"""

from __future__ import annotations

import json
from typing import Any

from mechgrade.errors import SpecError
from mechgrade.spec import Case, Function, Lesson, load_lesson


def describe_params(params: dict[str, Any]) -> str:
    """'seq_len=10, batch=2, seed=0', or with a prompt: prompt='The cat sat ...'."""
    return ", ".join(f"{k}={v!r}" for k, v in params.items())


def find_case(lesson: Lesson, function: str, case: str) -> tuple[Function, Case]:
    """``function``: 'induction.induction_scores' or 'induction_scores'; ``case``: 'public 1'."""
    matches = [(key, f) for key, (_, f) in lesson.functions.items() if function in (key, f.name)]
    if not matches:
        names = ", ".join(lesson.functions)
        raise SpecError(f"{lesson.id} has no function '{function}'; its functions are: {names}.")
    key, fn = matches[0]
    for c in fn.cases:
        if c.label == case.strip():
            if c.visibility != "public":
                raise SpecError(f"{key} [{case}] is a hidden case: its inputs are not shown.")
            return fn, c
    public = ", ".join(f"'{c.label}'" for c in fn.cases if c.visibility == "public")
    raise SpecError(f"{key} has no public case '{case}'; its public cases are: {public}.")


def case_inputs(lesson: str, function: str, case: str = "public 1", *, model: Any = None) -> dict[str, Any]:
    """The keyword arguments the grader passed to ``function`` on ``case``, rebuilt here:
    ``induction_scores(**case_inputs("lesson27", "induction.induction_scores", "public 1"))``.

    ``model``: a loaded model (e.g. your notebook's ``model``) or a model spec; by default the
    one ``check`` grades on (``--model``, ``$MECHGRADE_MODEL`` or embedded)."""
    from mechgrade import lessons
    from mechgrade.models import load_model

    spec = load_lesson(lesson)
    fn, c = find_case(spec, function, case)
    if model is None or isinstance(model, str):
        model = load_model(model)
    return lessons.get(spec.id).builders()(model, fn.builder, dict(c.params))


def snippet(lesson: str, exercise: str, function: str, case: Case, *, model_spec: str, notebook: bool) -> list[str]:
    """Two lines that rerun ``case`` on the student's own function, in a REPL started in the
    workspace folder, or in a notebook cell (where the function is already defined)."""
    q = json.dumps  # double-quoted Python string literals
    model = "" if model_spec == "embedded" else f", model={q(model_spec)}"
    first = "from mechgrade import case_inputs" + ("" if notebook else f"; from {exercise} import {function}")
    return [first, f"{function}(**case_inputs({q(lesson)}, {q(f'{exercise}.{function}')}, {q(case.label)}{model}))"]
