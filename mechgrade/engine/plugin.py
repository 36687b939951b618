"""The mechgrade pytest plugin (registered through the ``pytest11`` entry point).

Inert unless a collected test carries a mechgrade case: then it provides the
``mechgrade_grader`` fixture, deselects hidden cases and unselected exercises, turns each
graded test's report into a ``CaseResult`` (points from gradescope-utils' ``__weight__``),
and writes Gradescope's results.json with ``--mechgrade-results``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mechgrade.engine.results import NOT_GRADED, CaseResult, GradingResult

RESULTS = pytest.StashKey[GradingResult]()
GRADERS = pytest.StashKey[dict]()
INTERRUPTED = pytest.StashKey[bool]()
STARTED = pytest.StashKey[float]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mechgrade", "mechgrade grading")
    group.addoption("--mechgrade-path", default=None, help="Student workspace to grade (default: ./<lesson>).")
    group.addoption("--mechgrade-model", default=None, help="Model spec: embedded (default), gpt2, or a local directory.")
    group.addoption("--mechgrade-hidden", action="store_true", help="Also run hidden cases (instructors).")
    group.addoption("--mechgrade-exercise", action="append", default=[], help="Grade only this exercise (repeatable).")
    group.addoption("--mechgrade-results", default=None, help="Write Gradescope results.json to this path.")
    group.addoption("--mechgrade-mem-mb", type=int, default=2048, help="Memory the student's code may allocate, in MB.")
    group.addoption("--mechgrade-worker-user", default=None,
                    help="Run the student worker as this (unprivileged) user; the grading process must be root.")
    group.addoption("--mechgrade-deadline", type=float, default=None,
                    help="Wall-clock time (Unix seconds) by which grading must end; later cases are reported as not run.")
    group.addoption("--mechgrade-lesson", default=None, help="Start this lesson's worker at once, booting while pytest collects.")
    group.addoption("--mechgrade-from-cell", choices=("notebook", "script"), default=None,
                    help="Graded by check() from a notebook cell or a script (feedback points there).")


def _case(item: pytest.Item):
    return getattr(getattr(item, "obj", None), "__mechgrade_case__", None)


class _CtrlC:
    """Records Ctrl-C in the session's stash (pytest_keyboard_interrupt is given no config; exit
    status 2 also means collection errors, whose results are still written)."""

    def __init__(self, config: pytest.Config):
        self.config = config

    def pytest_keyboard_interrupt(self, excinfo) -> None:
        self.config.stash[INTERRUPTED] = True


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_CtrlC(config))
    config.stash[GRADERS] = {}
    config.stash[STARTED] = time.perf_counter()
    if config.getoption("mechgrade_lesson"):
        grader = _grader(config, config.getoption("mechgrade_lesson"))
        grader.prepare_key(hidden=config.getoption("mechgrade_hidden"), exercises=tuple(config.getoption("mechgrade_exercise")))
        grader.worker.spawn()  # boots while pytest collects the graders


def _grader(config: pytest.Config, lesson_id: str):
    """The session's grader for ``lesson_id`` (created on first use)."""
    graders = config.stash[GRADERS]
    if lesson_id not in graders:
        from mechgrade.engine.grader import Grader
        from mechgrade.models import spec_from_env
        from mechgrade.spec import load_lesson

        path = Path(config.getoption("mechgrade_path") or f"./{lesson_id}")
        from mechgrade.models.spec import portable_spec

        model = portable_spec(spec_from_env(config.getoption("mechgrade_model")))
        zygote = next((p.mechgrade_zygote for p in config.pluginmanager.get_plugins() if hasattr(p, "mechgrade_zygote")), None)
        graders[lesson_id] = Grader(load_lesson(lesson_id), path, model, mem_mb=config.getoption("mechgrade_mem_mb"), zygote=zygote,
                                    worker_user=config.getoption("mechgrade_worker_user"), from_cell=config.getoption("mechgrade_from_cell"),
                                    deadline=config.getoption("mechgrade_deadline"))
        config.stash[RESULTS] = GradingResult(lesson=lesson_id, model=model, workspace=str(path.resolve()))
    return graders[lesson_id]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    hidden = config.getoption("mechgrade_hidden")
    exercises = set(config.getoption("mechgrade_exercise"))
    keep, drop = [], []
    for item in items:
        info = _case(item)
        if info and ((info[3].visibility == "hidden" and not hidden) or (exercises and info[1] not in exercises)):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    # Every public case before any hidden one (the grader gives those a worker of their own):
    # no student code that saw a hidden case's inputs runs before the visible results are fixed.
    items[:] = sorted(keep, key=lambda item: bool(_case(item)) and _case(item)[3].visibility == "hidden")


@pytest.fixture(scope="session")
def mechgrade_grader(request: pytest.FixtureRequest):
    info = _case(request.node) if hasattr(request.node, "obj") else None
    return _grader(request.config, info[0] if info else "lesson27")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    info = _case(item)
    report = outcome.get_result()
    if info is None or RESULTS not in item.config.stash:
        return
    if report.when == "call" or (report.when == "setup" and report.failed):
        from mechgrade.engine.grader import CaseFailed
        from mechgrade.errors import WorkerUnavailable

        _, exercise, function, case = info
        feedback, hint, status, rerun = "", None, "passed", []
        if report.failed:
            err = call.excinfo.value if call.excinfo else None
            if isinstance(err, CaseFailed):
                feedback, hint, status, rerun = err.feedback, err.hint, "failed", err.rerun
            elif isinstance(err, WorkerUnavailable):  # said once, at the top; no case could run
                item.config.stash[RESULTS].notice = str(err)
                status, feedback = "error", NOT_GRADED
            else:
                status = "error"
                feedback = f"The grader itself failed on this case (not your fault; tell your instructor): {call.excinfo.exconly() if call.excinfo else report.longreprtext}"
        item.config.stash[RESULTS].cases.append(CaseResult(
            exercise=exercise, function=function, case=case.label, number=item.obj.__number__,
            visibility=case.visibility, max_score=float(item.obj.__weight__), passed=report.passed,
            status=status, feedback=feedback, hint=hint, rerun=rerun, seconds=round(call.duration, 4)))


def pytest_unconfigure(config: pytest.Config) -> None:
    """Ctrl-C while the worker booted in ``pytest_configure`` skips ``pytest_sessionfinish``:
    its process and scratch folder still go (closing twice is harmless)."""
    for grader in config.stash.get(GRADERS, {}).values():
        grader.close()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    results = config.stash.get(RESULTS, None)
    for grader in config.stash[GRADERS].values():
        if results is not None and "worker" in grader.__dict__:
            results.sandbox = grader.worker.sandbox.name
            results.cell_errors = grader.worker.cell_errors
        if results is not None and "key" in grader.__dict__:
            results.notices += grader.key.notices
        grader.close()
    if results is None or config.stash.get(INTERRUPTED, False):  # Ctrl-C: a part-run is written nowhere
        return
    results.execution_time = time.perf_counter() - config.stash[STARTED]
    results.cases.sort(key=lambda c: tuple(int(x) for x in c.number.split(".")))
    path = config.getoption("mechgrade_results")
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(results.to_gradescope(), indent=2))
