"""Run a lesson's graders on a workspace through pytest and return the results model.

``mechgrade check`` is a front end over exactly the run that
``pytest --pyargs mechgrade.graders.<lesson> --mechgrade-path DIR`` performs.
"""

from __future__ import annotations

import importlib
import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Callable

import pytest

from mechgrade.engine.plugin import RESULTS
from mechgrade.engine.results import GradingResult
from mechgrade.errors import MechgradeError
from mechgrade.models.spec import portable_spec, resolve, spec_from_env
from mechgrade.spec import load_lesson, require_reference

Progress = Callable[[str, int, int], None]  # (what, done, total)


class _Collector:
    """Reads the plugin's results and reports progress; passed to ``pytest.main(plugins=...)``."""

    def __init__(self, progress: Progress | None):
        self.progress, self.total, self.done = progress, 0, 0
        self.result: GradingResult | None = None
        self.errors: list[str] = []
        self.domain_error: MechgradeError | None = None
        self.interrupted = False

    def pytest_keyboard_interrupt(self, excinfo) -> None:
        # Ctrl-C, told apart from pytest's other exit status 2 (collection errors, pytest.exit)
        self.interrupted = True

    def pytest_internalerror(self, excrepr, excinfo) -> None:
        if isinstance(excinfo.value, MechgradeError):  # e.g. raised while the plugin prepared the key
            self.domain_error = excinfo.value

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.total = len(session.items)
        if self.progress:
            self.progress("starting the grading worker (loads the model)", 0, self.total)

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.errors.append(report.longreprtext.strip().splitlines()[-1] if report.longreprtext else str(report.nodeid))

    def pytest_runtest_logreport(self, report) -> None:
        if report.when == "teardown":
            self.done += 1
            if self.progress:
                self.progress(report.nodeid.split("::")[-1], self.done, self.total)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.result = session.config.stash.get(RESULTS, None)


class _ZygoteProvider:
    """Hands `mechgrade grade`'s preloaded zygote to the plugin (which forks workers from it)."""

    def __init__(self, zygote):
        self.mechgrade_zygote = zygote


def check_workspace(lesson_id: str, path: Path, *, model: str | None = None, exercises: tuple[str, ...] = (),
                    hidden: bool = False, results_path: Path | None = None, progress: Progress | None = None,
                    mem_mb: int = 2048, zygote=None, worker_user: str | None = None,
                    extra_plugins: tuple = (), from_cell: str | None = None, deadline: float | None = None) -> GradingResult:
    """``extra_plugins``: more pytest plugin objects for this run (e.g. ``values.ValueRecorder``);
    ``worker_user``: run the student's code as this user (the Gradescope autograder, as root);
    ``from_cell``: "notebook" or "script": graded by ``check()`` from there, so feedback points there;
    ``deadline``: Unix time by which grading must end (later cases are reported as not run)."""
    lesson = load_lesson(lesson_id)
    if hidden:
        require_reference(lesson_id, "--hidden")  # a student bundle has no hidden cases to run
    for e in exercises:
        lesson.exercise(e)  # raises with the list of valid ids
    path = Path(path)
    if path.suffix == ".ipynb":  # a notebook workspace: checked readable here, executed only by the worker
        from mechgrade.notebook import read_cells

        read_cells(path)
    elif not path.is_dir():
        from mechgrade.workspace import missing_workspace

        raise missing_workspace(lesson_id, path)
    model = portable_spec(spec_from_env(model))  # a relative directory means nothing in the worker's folder
    resolve(model)  # fail early, in one sentence, if the weights are not here
    graders = Path(importlib.import_module("mechgrade.graders").__file__).parent
    # Confined to our own rootdir and config, with no conftest.py at all: whatever folder this
    # runs from (a submission's, in the worst case), nothing there is loaded.
    args = ["-c", str(graders / "pytest.ini"), "--rootdir", str(graders), "--noconftest",
            "--pyargs", f"mechgrade.graders.{lesson_id}", "--mechgrade-lesson", lesson_id,
            "--mechgrade-path", str(path), "--mechgrade-model", model,
            "--mechgrade-mem-mb", str(mem_mb), "-p", "no:cacheprovider", "-p", "no:terminal",
            "-o", "addopts=", "-o", "python_files=test_*.py", "-W", "ignore",
            # Graders need no conftest.py; one that pytest finds from the current folder's
            # configuration (its testpaths) would otherwise run in the grading process.
            "--noconftest"]
    for e in exercises:
        args += ["--mechgrade-exercise", e]
    if hidden:
        args.append("--mechgrade-hidden")
    if worker_user:
        args += ["--mechgrade-worker-user", worker_user]
    if from_cell:
        args += ["--mechgrade-from-cell", from_cell]
    if deadline is not None:
        args += ["--mechgrade-deadline", repr(deadline)]
    if results_path:
        args += ["--mechgrade-results", str(results_path)]
    collector = _Collector(progress)
    sink = io.StringIO()
    plugins: list = [collector, *extra_plugins]
    if zygote is not None:
        plugins.append(_ZygoteProvider(zygote))
    with redirect_stdout(sink), redirect_stderr(sink):
        code = pytest.main(args, plugins=plugins)
    if collector.interrupted:  # pytest caught Ctrl-C; a part-run is no result
        raise KeyboardInterrupt
    if collector.domain_error is not None:
        raise collector.domain_error
    if collector.result is None or collector.errors:
        why = "; ".join(collector.errors) or f"pytest exited with status {int(code)}"
        raise MechgradeError(f"The graders for {lesson_id} could not run: {why}.")
    return collector.result
