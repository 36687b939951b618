"""The mechgrade pytest plugin (registered through the ``pytest11`` entry point): the lesson's
cases as pytest tests, generated from its spec over the grading library.

``pytest path/to/lesson.toml --mechgrade-path DIR`` collects one test per case of that spec
(``grader.case_tests``: gradescope-utils' ``weight``, ``visibility``, ``number``), deselects
hidden cases unless ``--mechgrade-hidden``, runs every public case before any hidden one, and
writes Gradescope's results.json with ``--mechgrade-results``. Inert for any other file: a
project's own tests never see it. ``mechgrade check`` calls the same library without pytest
(``engine.session``).
"""

from __future__ import annotations

import json
import time
import types
from pathlib import Path

import pytest

from mechgrade.engine.results import CaseResult, GradingResult

RESULTS = pytest.StashKey[GradingResult]()
GRADERS = pytest.StashKey[dict]()
STARTED = pytest.StashKey[float]()
CASE_RESULT = pytest.StashKey[CaseResult]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mechgrade", "mechgrade grading (collects a lesson.toml)")
    group.addoption("--mechgrade-path", default=None, help="Student workspace to grade (default: ./<lesson>).")
    group.addoption("--mechgrade-model", default=None, help="Model spec: embedded (default), gpt2, or a local directory.")
    group.addoption("--mechgrade-hidden", action="store_true", help="Also run hidden cases (instructors).")
    group.addoption("--mechgrade-exercise", action="append", default=[], help="Grade only this exercise (repeatable).")
    group.addoption("--mechgrade-results", default=None, help="Write Gradescope results.json to this path.")
    group.addoption("--mechgrade-mem-mb", type=int, default=2048, help="Memory the student's code may allocate, in MB.")


class LessonSpec(pytest.Module):
    """A ``lesson.toml`` collected as a module of generated tests (never imported from disk)."""

    def _getobj(self):
        from mechgrade.engine.grader import case_tests
        from mechgrade.spec import Lesson, load_lesson, tomllib

        lesson_id = Lesson.model_validate(tomllib.loads(self.path.read_text(encoding="utf-8"))).id
        lesson = load_lesson(lesson_id)  # the installed lesson: its modules checked, its graders found
        module = types.ModuleType(f"mechgrade_graders_{lesson.id}")
        module.__file__ = str(self.path)
        module.__dict__.update(case_tests(lesson))
        return module


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if file_path.name == "lesson.toml":
        return LessonSpec.from_parent(parent, path=file_path)
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.stash[GRADERS] = {}
    config.stash[STARTED] = time.perf_counter()


def _case(item: pytest.Item):
    return getattr(getattr(item, "obj", None), "__mechgrade_case__", None)


def _grader(config: pytest.Config, lesson_id: str):
    """The session's grader for ``lesson_id`` (created on first use)."""
    graders = config.stash[GRADERS]
    if lesson_id not in graders:
        from mechgrade.engine.grader import Grader
        from mechgrade.models import spec_from_env
        from mechgrade.models.spec import portable_spec
        from mechgrade.spec import load_lesson

        path = Path(config.getoption("mechgrade_path") or f"./{lesson_id}")
        model = portable_spec(spec_from_env(config.getoption("mechgrade_model")))
        graders[lesson_id] = Grader(load_lesson(lesson_id), path, model, mem_mb=config.getoption("mechgrade_mem_mb"))
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
    # Every public case before any hidden one, as ``session.selected_cases`` orders them.
    items[:] = sorted(keep, key=lambda item: bool(_case(item)) and _case(item)[3].visibility == "hidden")


@pytest.fixture
def mechgrade_grader(request: pytest.FixtureRequest):
    """The session's grader for this test's lesson (one per lesson, kept in the config's stash)."""
    info = _case(request.node)
    if info is None:
        pytest.fail("mechgrade_grader is for the tests generated from a lesson.toml", pytrace=False)
    return _grader(request.config, info[0])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    info = _case(item)
    if info is None or RESULTS not in item.config.stash or report.when != "call":
        return
    result = item.stash.get(CASE_RESULT, None)
    if result is not None:
        item.config.stash[RESULTS].cases.append(result)


def pytest_unconfigure(config: pytest.Config) -> None:
    for grader in config.stash.get(GRADERS, {}).values():
        grader.close()  # closing twice is harmless


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    results = config.stash.get(RESULTS, None)
    for grader in config.stash[GRADERS].values():
        if results is not None and "worker" in grader.__dict__:
            results.sandbox = grader.worker.sandbox.name
            results.cell_errors = grader.worker.cell_errors
        if results is not None and grader.notice:
            results.notice = grader.notice
        if results is not None and "key" in grader.__dict__:
            results.notices += grader.key.notices
        grader.close()
    if results is None:
        return
    results.execution_time = time.perf_counter() - config.stash[STARTED]
    results.cases.sort(key=lambda c: tuple(int(x) for x in c.number.split(".")))
    path = config.getoption("mechgrade_results")
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(results.to_gradescope(), indent=2))
