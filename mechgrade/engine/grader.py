"""What a grader test calls: run one case in the student worker, compare with the key, and
fail with feedback that names the mistake.

``grade_case`` is the grading library's one step; ``case_tests`` wraps it as one pytest test
per case of the spec, each carrying gradescope-utils' ``weight``, ``visibility``, ``number``
and ``tags`` attributes.
"""

from __future__ import annotations

import inspect
import time
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

from gradescope_utils.autograder_utils.decorators import number, tags, visibility, weight

from mechgrade.engine.compare import compare
from mechgrade.engine.key import AnswerKey
from mechgrade.engine.mutants import load_catalogue
from mechgrade.engine.runner import Outcome, StudentWorker
from mechgrade.engine.structure import structural_hint
from mechgrade.engine.results import NOT_GRADED, CaseResult
from mechgrade.errors import MechgradeError, WorkerUnavailable
from mechgrade.spec import Case, Exercise, Function, Lesson
from mechgrade.workspace_kind import SentFrom, Workspace


PRINTED_CHARS = 600
# Failures where the case's inputs do not matter (nothing of the student's ran on them).
NO_RERUN = {"not_implemented", "import_error", "missing_function", "builder"}


class CaseFailed(AssertionError):
    """A graded case did not pass; ``feedback`` and ``hint`` go to the student."""

    def __init__(self, feedback: str, hint: str | None = None, rerun: list[str] | None = None):
        """``rerun``: the lines of ``feedback`` meant to be pasted (a renderer never wraps them)."""
        super().__init__(feedback + (f"\nHint: {hint}" if hint else ""))
        self.feedback, self.hint, self.rerun = feedback, hint, rerun or []


def output_dims(lesson: str, exercise: str, function: str) -> Any:
    """TransformerLens dimension names from the jaxtyping return annotation. Read from the stub,
    whose signature equals the reference's (a test checks), so student bundles, which ship no
    reference, read the same dims."""
    from mechgrade import lessons

    fn = getattr(lessons.get(lesson).stub_module(exercise), function)
    return _dims(inspect.signature(fn).return_annotation)


def _dims(ann: Any) -> Any:
    if hasattr(ann, "dim_str"):
        return [d if d.isidentifier() else "pos" for d in ann.dim_str.split()] if ann.dim_str else []
    args = getattr(ann, "__args__", None)
    if getattr(ann, "__origin__", None) is tuple and args:
        return [_dims(a) for a in args]
    return None


class Grader:
    """One per (lesson, workspace) in a pytest session: owns the worker and the answer key."""

    def __init__(self, lesson: Lesson, workspace: Path, model_spec: str, mem_mb: int = 2048, zygote=None,
                 worker_user: str | None = None, from_cell: SentFrom | None = None, deadline: float | None = None):
        """``deadline``: Unix time by which the whole run must end (no case starts or runs past it)."""
        self.lesson, self.workspace, self.model_spec = lesson, Path(workspace), model_spec
        self.mem_mb, self.zygote, self.worker_user = mem_mb, zygote, worker_user
        # from_cell: "notebook" or "script": graded by check() from there, feedback points there
        self.space = Workspace.at(self.workspace, sent_from=from_cell)
        self.deadline = None if deadline is None else time.monotonic() + (deadline - time.time())
        self.start_error: WorkerUnavailable | None = None
        self.notice = ""  # why no case could run (the worker could not start), said once at the top
        self.hidden_started = False  # the hidden cases' own worker has replaced the public one
        self.failed: set[str] = set()  # functions with a failed case so far in this run
        self.catalogue = load_catalogue(lesson.id)
        self.hints = {m.name: m.hint for m in self.catalogue.mutants}

    @cached_property
    def feedback_template(self):
        from mechgrade import lessons

        return lessons.get(self.lesson.id).templates().get_template("feedback.txt.j2")

    def fail(self, exercise: Exercise, function: Function, case: Case, message: str, hint: str | None = None) -> CaseFailed:
        """The student-facing failure, rendered from the lesson's feedback template, with what
        the student's code printed during the call (print-debugging works; nothing is parsed)."""
        number = [e.id for e in self.lesson.exercises].index(exercise.id) + 1
        last = getattr(self, "last", None)
        self.failed.add(function.name)
        if last is not None and last.called:
            message = f"{message}\n{self.through(function.name, last.called)}"
        printed = last.stdout.strip() if last is not None else ""
        inputs, rerun = None, None
        if case.visibility == "public" and (last is None or last.failure not in NO_RERUN):
            from mechgrade.reproduce import describe_params, snippet

            inputs = describe_params(case.params)
            rerun = snippet(self.lesson.id, exercise.id, function.name, case, model_spec=self.model_spec,
                            notebook=self.space.in_place)
        text = self.feedback_template.render(message=message, lesson=self.lesson, exercise=exercise,
                                             exercise_number=number, function=function, case=case,
                                             printed=printed[:PRINTED_CHARS] + ("..." if len(printed) > PRINTED_CHARS else ""),
                                             where=self.where(exercise), inputs=inputs, rerun=rerun)
        return CaseFailed(text.strip(), hint, rerun)

    def through(self, function: str, called: list[str]) -> str:
        """Which of the student's own functions the call went through, and which of those fail
        their own cases: a wrong helper makes its callers fail too."""
        names = ", ".join(called)
        failing = [n for n in called if n in self.failed and n != function]
        if failing:
            return (f"Your {function} went through your {names}; {', '.join(failing)} also fails its own cases "
                    "(above): fix that first, this may then pass too.")
        return f"Your {function} went through your {names}."

    def where(self, exercise: Exercise) -> dict[str, str]:
        """Where the student reads the instructions and how they recheck one exercise: a folder
        workspace, a notebook graded with --path, or a notebook's check() cell."""
        lesson, e = self.lesson.id, exercise.id
        if self.space.kind == "script":
            return {"instructions": f"the lesson's instructions (`mechgrade start {lesson}` writes them)",
                    "recheck": "call `check(...)` again to recheck"}
        if self.space.kind == "cell":
            return {"instructions": "this notebook", "recheck": "run the `check(...)` cell again to recheck"}
        if self.space.is_notebook:
            return {"instructions": "this notebook",
                    "recheck": f"`mechgrade check {lesson} --path {self.workspace.name} -e {e}`, or its `check(...)` cell, rechecks just this part"}
        # A folder given as typed (relative) is named; an absolute one (a grading server's) is not.
        named = not self.workspace.is_absolute() and self.workspace not in (Path(lesson), Path("."))
        path = f" --path {self.workspace}" if named else ""
        return {"instructions": "your workspace README", "recheck": f"`mechgrade check {lesson}{path} -e {e}` rechecks just this part"}

    def check_for(self, function: Function) -> Callable[..., None]:
        """``check(grader, exercise, function, case)``: the spec's custom check, or the default."""
        if not function.check:
            return default_check
        from mechgrade import lessons

        return lessons.get(self.lesson.id).check(function.check)

    @cached_property
    def key(self) -> AnswerKey:
        return AnswerKey(self.lesson, self.model_spec)

    @cached_property
    def worker(self) -> StudentWorker:
        if self.zygote is not None:  # `mechgrade grade`: forked from a preloaded process
            return self.zygote.worker(self.workspace, deadline=self.deadline)
        from mechgrade.sandbox import choose

        return StudentWorker(self.workspace, lesson=self.lesson.id, model_spec=self.model_spec, mem_mb=self.mem_mb,
                             sandbox=choose(user=self.worker_user), deadline=self.deadline)

    def close(self) -> None:
        if "worker" in self.__dict__:
            self.worker.stop()
        if "key" in self.__dict__:
            self.key.persist()

    def prepare_key(self, *, hidden: bool, exercises: tuple[str, ...] = ()) -> None:
        """Compute the selected cases' missing key entries now, then free this process's model,
        so that it and the worker never hold a model at once (first check of a 124M model:
        peak 4.9 GB overlapped, 3.1 GB this way). A warm key makes this a no-op."""
        if self.key.fill(self.lesson.iter_cases(hidden=hidden, exercises=exercises)):
            self.key.release_model()

    def seal_hidden(self) -> None:
        """Before the first hidden case: end the worker that ran the public cases (and all it
        started), so the hidden ones run in a fresh worker on a fresh copy of the workspace.
        Hidden cases run last (the plugin orders them), so no code of the student's that saw
        a hidden case's inputs runs again before the visible results are fixed, and nothing
        of the public run (a file, a process, a module's state) sees them either."""
        self.hidden_started = True
        if "worker" in self.__dict__ and self.worker.boot_failure is not None:
            return  # it never got past its boot (already stopped): the hidden cases fail for the same reason
        if "worker" in self.__dict__:
            self.worker.stop()
            del self.__dict__["worker"]

    def run(self, exercise: Exercise, function: Function, case: Case) -> Outcome:
        if self.start_error is not None:  # tried once: every other case fails at once, for the same reason
            raise self.start_error
        if case.visibility == "hidden" and not self.hidden_started:
            self.seal_hidden()
        if self.workspace.is_dir() and not (self.workspace / f"{exercise.id}.py").is_file():  # said at once, without the worker
            return Outcome(ok=False, failure="import_error", message=f"{exercise.id}.py is missing from the workspace {self.workspace}")
        try:
            deaths = self.worker.boot_deaths
            outcome = self.worker.call(exercise.id, function.name, function.builder, case.params, function.timeout_s)
            if self.worker.boot_deaths > deaths and self.worker.boot_failure is None:  # a boot that died gets one more try
                outcome = self.worker.call(exercise.id, function.name, function.builder, case.params, function.timeout_s)
        except MechgradeError as err:  # the worker could not start (model, user, interpreter)
            self.start_error = WorkerUnavailable(str(err))
            raise self.start_error from None
        boot = self.worker.boot_failure
        if boot is not None and boot.failure == "crashed" and not self.space.is_notebook:
            # A module workspace runs no student code while booting: that is the machine's problem,
            # said once at the top (a notebook's boot runs the student's cells: its own cases' reason).
            self.start_error = WorkerUnavailable(boot.message)
            raise self.start_error
        return outcome

    def check(self, exercise: Exercise, function: Function, case: Case) -> Any:
        """Return the student's output if it matches the key; raise ``CaseFailed`` otherwise."""
        entry = self.key.entry(exercise, function, case)
        outcome = self.last = self.run(exercise, function, case)
        where = (exercise, function, case)
        if not outcome.ok:
            raise self.fail(*where, outcome.message, self.catalogue.error_hint(outcome.message))
        expected = entry["expected"]
        dims = output_dims(self.lesson.id, exercise.id, function.name)
        verdict = compare(outcome.value, expected, atol=function.atol, rtol=function.rtol, dims=dims)
        if not verdict.passed:
            raise self.fail(*where, verdict.message, self.diagnose(outcome.value, entry, function, dims))
        if outcome.hooks_left:
            raise self.fail(*where, f"{outcome.hooks_left} hook(s) were still attached to the model after {function.name} returned "
                            "(they were removed before the next case)", self.hints.get("hooks-left-attached"))
        if outcome.model_modified:
            raise self.fail(*where, f"{function.name} changed the model's weights or attributes (restored before the next case); "
                            "work on copies, never on the model's own tensors")
        return outcome.value

    def diagnose(self, got: Any, entry: dict, function: Function, dims: Any) -> str | None:
        for name, value in entry["mutants"].items():
            if compare(got, value, atol=function.atol, rtol=function.rtol, dims=dims).passed:
                return self.hints.get(name)
        return structural_hint(got, entry["expected"], atol=function.atol, rtol=function.rtol, dims=dims)


def default_check(grader: Grader, exercise: Exercise, function: Function, case: Case) -> None:
    grader.check(exercise, function, case)


def grade_case(grader: Grader, exercise: Exercise, function: Function, case: Case) -> CaseResult:
    """Grade one case: the one step that ``check``, ``grade``, ``validate``, the autograder and
    the pytest graders all take. Never raises for the student's doing or the grader's own bug
    (that case is reported as an error); Ctrl-C goes through."""
    feedback, hint, status, rerun = "", None, "passed", []
    start = time.perf_counter()
    try:
        grader.check_for(function)(grader, exercise, function, case)
    except CaseFailed as err:
        feedback, hint, status, rerun = err.feedback, err.hint, "failed", err.rerun
    except WorkerUnavailable as err:  # said once, at the top; no case could run
        grader.notice = str(err)
        status, feedback = "error", NOT_GRADED
    except Exception as err:
        status = "error"
        feedback = f"The grader itself failed on this case (not your fault; tell your instructor): {type(err).__name__}: {err}"
    return CaseResult(exercise=exercise.id, function=function.name, case=case.label, number=case.number,
                      visibility=case.visibility, max_score=case.points, passed=status == "passed", status=status,
                      feedback=feedback, hint=hint, rerun=rerun, seconds=round(time.perf_counter() - start, 4))


def case_tests(lesson: Lesson) -> dict[str, Callable]:
    """One pytest test per case of the spec, generated over ``grade_case`` (what ``pytest
    path/to/lesson.toml`` collects), each carrying gradescope-utils' ``weight``,
    ``visibility``, ``number`` and ``tags``: the hidden graders stay pytest tests."""
    tests = {}
    for exercise, function, case in lesson.iter_cases(hidden=True):
        def test(mechgrade_grader: Grader, request, exercise=exercise, function=function, case=case) -> None:
            import pytest

            from mechgrade.engine.plugin import CASE_RESULT

            result = request.node.stash[CASE_RESULT] = grade_case(mechgrade_grader, exercise, function, case)
            if not result.passed:
                pytest.fail(result.feedback + (f"\nHint: {result.hint}" if result.hint else ""), pytrace=False)

        name = f"test_{exercise.id}__{function.name}__{case.visibility}_{case.index}"
        test.__name__ = test.__qualname__ = name
        test.__doc__ = f"{exercise.id}.{function.name} [{case.label}]: {case.points:g} points"
        test.__mechgrade_case__ = (lesson.id, exercise.id, function.name, case)
        gs_visibility = "visible" if case.visibility == "public" else "after_published"
        tests[name] = weight(case.points)(visibility(gs_visibility)(number(case.number)(tags(exercise.id, function.name)(test))))
    return tests
