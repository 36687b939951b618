"""`mechgrade validate`: prove a lesson's graders. The reference must score full marks, the
stubs zero, every catalogued mutant must lose points on the cases of the functions it names
(and nowhere else, with its own hint), and no case may be passed by a constant output of the
right shape or by handing back one of its inputs."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from pydantic import BaseModel

from mechgrade.engine.compare import compare
from mechgrade.engine.forking import Zygote
from mechgrade.engine.key import AnswerKey
from mechgrade.engine.mutants import Mutant, load_catalogue, write_mutant_workspace
from mechgrade.engine.session import check_workspace
from mechgrade.models.spec import spec_from_env
from mechgrade.spec import load_lesson, require_reference
from mechgrade.workspace import create_workspace


class MutantVerdict(BaseModel):
    name: str
    functions: list[str]
    caught_by: list[str]
    leaked: list[str]
    hints_shown: list[str]
    expected_hint: str

    @property
    def caught(self) -> bool:
        return bool(self.caught_by)

    @property
    def ok(self) -> bool:
        # A mutant in a helper can make its callers crash (no hint there); its hint must show somewhere.
        return self.caught and not self.leaked and self.expected_hint in self.hints_shown


class WeakCase(BaseModel):
    case: str
    passed_by: str


class ValidationReport(BaseModel):
    lesson: str
    model: str
    reference_score: float
    max_score: float
    stub_score: float
    reference_failures: list[str]
    mutants: list[MutantVerdict]
    weak_cases: list[WeakCase]

    @property
    def ok(self) -> bool:
        return (self.reference_score == self.max_score and self.stub_score == 0 and not self.weak_cases
                and all(m.ok for m in self.mutants))


def _mutant_verdict(lesson_id: str, mutant: Mutant, model: str, root: Path, zygote: Zygote) -> MutantVerdict:
    ws = write_mutant_workspace(lesson_id, mutant, root / mutant.name)
    result = check_workspace(lesson_id, ws, model=model, exercises=(mutant.module,), hidden=True, zygote=zygote)
    failed = [c for c in result.cases if not c.passed]
    return MutantVerdict(
        name=mutant.name, functions=mutant.functions, expected_hint=mutant.hint,
        caught_by=[c.name for c in failed if c.function in mutant.functions],
        leaked=[c.name for c in failed if c.function not in mutant.functions],
        hints_shown=sorted({c.hint or "(no hint)" for c in failed if c.function in mutant.functions}),
    )


def _map_tensors(value: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, float):
        return float(fn(torch.tensor(value)))
    if isinstance(value, (tuple, list)):
        return type(value)(_map_tensors(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: _map_tensors(v, fn) for k, v in value.items()}
    return value


def _mean_everywhere(t: torch.Tensor) -> torch.Tensor:
    """The mean broadcast to ``t``'s shape; for a scalar or an int tensor, a value that is never
    right (the mean of one number is the number, which would prove nothing)."""
    if t.is_floating_point() and t.numel() > 1:
        return torch.full_like(t, t.double().mean().item())
    return torch.full_like(t, float("nan") if t.is_floating_point() else -1)


def weak_cases(lesson_id: str, model: str) -> list[WeakCase]:
    """Cases that a constant of the right shape, or one of the case's own inputs, would pass."""
    from mechgrade import lessons

    lesson = load_lesson(lesson_id)
    key = AnswerKey(lesson, model)
    build = lessons.get(lesson_id).builders()
    weak = []
    for exercise, function, case in lesson.iter_cases(hidden=True):
        expected = key.entry(exercise, function, case)["expected"]
        candidates = {
            "zeros": _map_tensors(expected, torch.zeros_like),
            "ones": _map_tensors(expected, torch.ones_like),
            "its mean value everywhere": _map_tensors(expected, _mean_everywhere),
        }
        for name, arg in build(key.model, function.builder, case.params).items():
            if isinstance(arg, torch.Tensor):
                candidates[f"argument {name} passed through"] = arg
        for what, candidate in candidates.items():
            if compare(candidate, expected, atol=function.atol, rtol=function.rtol).passed:
                weak.append(WeakCase(case=f"{exercise.id}.{function.name} [{case.label}]", passed_by=what))
                break
    return weak


def validate_lesson(lesson_id: str, *, model: str | None = None, progress: Callable[[str], None] | None = None) -> ValidationReport:
    require_reference(lesson_id, "`mechgrade validate`")
    model = spec_from_env(model)
    lesson = load_lesson(lesson_id)
    say = progress or (lambda _: None)
    # One zygote (TransformerLens imported, the model booted) forks every run's worker, as in
    # `grade`: ~120 runs otherwise pay a full worker boot each.
    zygote = Zygote(lesson=lesson_id, model_spec=model)
    try:
        with tempfile.TemporaryDirectory(prefix="mechgrade-validate-") as tmp:
            root = Path(tmp)
            say("reference")
            create_workspace(lesson, root / "reference", solutions=True)
            ref = check_workspace(lesson_id, root / "reference", model=model, hidden=True, zygote=zygote)
            say("stubs")
            create_workspace(lesson, root / "stubs")
            stubs = check_workspace(lesson_id, root / "stubs", model=model, hidden=True, zygote=zygote)
            verdicts = []
            for mutant in load_catalogue(lesson_id).mutants:
                say(f"mutant {mutant.name}")
                verdicts.append(_mutant_verdict(lesson_id, mutant, model, root, zygote))
    finally:
        zygote.close()
    say("weak cases")
    return ValidationReport(
        lesson=lesson_id, model=model, reference_score=ref.score, max_score=ref.max_score, stub_score=stubs.score,
        reference_failures=[f"{c.name}: {c.feedback}" for c in ref.cases if not c.passed],
        mutants=verdicts, weak_cases=weak_cases(lesson_id, model))
