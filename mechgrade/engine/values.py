"""The values behind each graded case, for renderers that draw (the HTML report).

A ``ValueRecorder`` is a pytest plugin object handed to ``check_workspace(extra_plugins=...)``.
After each graded case it copies what the grader already holds: the student's output as the
worker sent it (decoded from JSON and safetensors, never unpickled) and the answer key's
expected output (computed in the trusted process). It only reads; grading never sees it, and
the results model (and so results.json) stays text only. Data flows one way: spec -> key ->
isolated run -> compare -> results -> renderers, with these values riding beside the results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from mechgrade.engine.plugin import GRADERS, _case


@dataclass(frozen=True)
class CaseValues:
    """One case's output: ``got`` is None when the student's call raised or timed out."""

    got: Any
    expected: Any
    params: dict


class ValueRecorder:
    """Collects ``CaseValues`` by case number ('2.3.1'). Hidden cases' values are kept only
    with ``hidden=True`` (an instructor's choice): a student's report never shows them."""

    def __init__(self, *, hidden: bool = False):
        self.hidden = hidden
        self.values: dict[str, CaseValues] = {}

    @staticmethod
    def _grader(item: pytest.Item):
        info = _case(item)
        graders = item.config.stash.get(GRADERS, {})
        return (info, graders.get(info[0])) if info else (None, None)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item):
        info, grader = self._grader(item)
        if grader is not None:
            grader.last = None  # so that a case that never reached the worker records nothing stale
        yield
        if grader is None:
            return
        try:
            self._record(grader, *info)
        except Exception:  # a picture is never worth a grade: the case keeps its result, without values
            pass

    def _record(self, grader, lesson_id: str, exercise_id: str, function_name: str, case) -> None:
        if case.visibility == "hidden" and not self.hidden:
            return
        exercise, function = grader.lesson.functions[f"{exercise_id}.{function_name}"]
        outcome = getattr(grader, "last", None)
        expected = grader.key.entry(exercise, function, case)["expected"]
        got = outcome.value if outcome is not None and outcome.ok else None
        self.values[case.number] = CaseValues(got=got, expected=expected, params=dict(case.params))
