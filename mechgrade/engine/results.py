"""The results model: lesson -> exercise -> case. Every renderer (terminal table, JSON,
Gradescope results.json) reads this one model; scores are computed, never stored twice."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

Status = Literal["passed", "failed", "error"]
MAX_TEXT = 4000  # characters of feedback (or a hint) kept per case: a 20 MB exception message is cut here


def bounded(text: str | None, limit: int = MAX_TEXT) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + f"... [{len(text) - limit} more characters cut]"


# A case's feedback when the worker never started: the reason is the run's ``notice``, said once.
NOT_GRADED = "Not graded: the grading worker could not start (the reason is at the top)."
GradescopeVisibility = Literal["visible", "hidden", "after_due_date", "after_published"]


class CaseResult(BaseModel):
    model_config = ConfigDict(extra="forbid")
    exercise: str
    function: str
    case: str = Field(description="'public 1', 'hidden 2', ...")
    number: str
    visibility: Literal["public", "hidden"]
    max_score: float
    passed: bool
    status: Status
    feedback: str = ""
    hint: str | None = None
    rerun: list[str] = Field(default_factory=list, description="Lines of the feedback meant to be pasted into Python; "
                             "a renderer shows them whole, never wrapped or indented.")
    seconds: float = 0.0

    @field_validator("feedback", "hint")
    @classmethod
    def _bounded(cls, text: str | None) -> str | None:
        return bounded(text)

    @computed_field
    @property
    def score(self) -> float:
        return self.max_score if self.passed else 0.0

    @property
    def name(self) -> str:
        return f"{self.exercise}.{self.function} [{self.case}]"

    @property
    def output(self) -> str:
        lines = [self.feedback] if self.feedback else []
        if self.hint:
            lines.append(f"Hint: {self.hint}")
        return "\n".join(lines) if lines else "Passed."


class ExerciseSummary(BaseModel):
    exercise: str
    score: float
    max_score: float
    passed: int
    total: int


class GradingResult(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lesson: str
    model: str
    workspace: str
    cases: list[CaseResult] = Field(default_factory=list)
    execution_time: float = 0.0
    sandbox: str = Field("", description="Where the student's code ran (mechgrade.sandbox): e.g. 'namespaces (bubblewrap)'.")
    notice: str = Field("", description="One sentence about the whole run (e.g. the worker could not start), shown at the top.")
    cell_errors: list[str] = Field(default_factory=list, description="A notebook's cells that failed when it ran in the "
                                   "worker ('cell 5, line 1: NameError: ...'), said once, before the cases they break.")
    notices: list[str] = Field(default_factory=list, description="Warnings for whoever ran the check, after the total "
                               "(e.g. a cached answer key that was tampered with and recomputed).")

    @computed_field
    @property
    def score(self) -> float:
        return round(sum(c.score for c in self.cases), 4)

    @computed_field
    @property
    def max_score(self) -> float:
        return round(sum(c.max_score for c in self.cases), 4)

    def cell_error_lines(self) -> list[str]:
        if not self.cell_errors:
            return []
        return ["Cells of your notebook that failed when it ran (what they would define is missing below):",
                *(f"  {e}" for e in self.cell_errors)]

    @property
    def all_passed(self) -> bool:
        return all(c.passed for c in self.cases)

    def exercises(self) -> list[ExerciseSummary]:
        order: dict[str, list[CaseResult]] = {}
        for c in self.cases:
            order.setdefault(c.exercise, []).append(c)
        return [ExerciseSummary(exercise=e, score=sum(c.score for c in cs), max_score=sum(c.max_score for c in cs),
                                passed=sum(c.passed for c in cs), total=len(cs)) for e, cs in order.items()]

    def to_gradescope(self, *, hidden_visibility: GradescopeVisibility = "after_published") -> dict:
        """Gradescope's results.json: https://gradescope-autograders.readthedocs.io/en/latest/specs/"""
        tests = [{
            "name": c.name,
            "number": c.number,
            "score": c.score,
            "max_score": c.max_score,
            "status": "passed" if c.passed else "failed",
            "output": c.output,
            "visibility": "visible" if c.visibility == "public" else hidden_visibility,
            "tags": [c.exercise, c.function],
        } for c in self.cases]
        shown = [c for c, t in zip(self.cases, tests) if t["visibility"] == "visible"]
        head = (f"{self.notice}\n" if self.notice else "") + "".join(f"{line}\n" for line in self.cell_error_lines())
        if len(shown) == len(tests):
            return {"score": self.score, "execution_time": round(self.execution_time, 3), "visibility": "visible", "tests": tests,
                    "output": head + f"{self.lesson} on model '{self.model}': {self.score:g} / {self.max_score:g} points."}
        # Some tests are not shown yet. Gradescope's specification ("Controlling test case
        # visibility"): "If test cases are hidden, students will not be able to see their total
        # score." So the top-level score stays the whole grade, for the gradebook, while the
        # visible output speaks only of the visible tests, and the run's execution time (which
        # the hidden cases are part of) is left out: nothing visible depends on a hidden result.
        score, possible = sum(c.score for c in shown), sum(c.max_score for c in shown)
        unseen = sum(c.max_score for c in self.cases) - possible
        return {"score": self.score, "visibility": "visible", "tests": tests,
                "output": head + f"{self.lesson} on model '{self.model}': {score:g} / {possible:g} points on the visible tests; "
                                 f"{len(tests) - len(shown)} more tests ({unseen:g} points) are shown when your instructor publishes the grades."}
