"""The values behind each graded case, for renderers that draw (the HTML report).

A ``ValueRecorder`` is an observer handed to ``check_workspace(observers=...)``.
After each graded case it copies what the grader already holds: the student's output as the
worker sent it (decoded from JSON and safetensors, never unpickled) and the answer key's
expected output (computed in the trusted process). It only reads; grading never sees it, and
the results model (and so results.json) stays text only. Data flows one way: spec -> key ->
isolated run -> compare -> results -> renderers, with these values riding beside the results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CaseValues:
    """One case's output: ``got`` is None when the student's call raised or timed out."""

    got: Any
    expected: Any
    params: dict


class ValueRecorder:
    """Collects ``CaseValues`` by case number ('2.3.1'), as a ``session.Observer``. Hidden cases'
    values are kept only with ``hidden=True`` (an instructor's choice): a student's report never
    shows them."""

    def __init__(self, *, hidden: bool = False):
        self.hidden = hidden
        self.values: dict[str, CaseValues] = {}

    def after_case(self, grader, exercise, function, case) -> None:
        if case.visibility == "hidden" and not self.hidden:
            return
        outcome = getattr(grader, "last", None)
        expected = grader.key.entry(exercise, function, case)["expected"]
        got = outcome.value if outcome is not None and outcome.ok else None
        self.values[case.number] = CaseValues(got=got, expected=expected, params=dict(case.params))
