"""Run a lesson's graders on a workspace through pytest and return the results model.

``mechgrade check`` is a front end over exactly the run that
``pytest --pyargs mechgrade.graders.<lesson> --mechgrade-path DIR`` performs.
"""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Callable

import pytest

from mechgrade.engine.plugin import RESULTS
from mechgrade.engine.results import GradingResult
from mechgrade.errors import MechgradeError, WorkspaceError
from mechgrade.models.spec import resolve, spec_from_env
from mechgrade.spec import load_lesson

Progress = Callable[[str, int, int], None]  # (what, done, total)


class _Collector:
    """Reads the plugin's results and reports progress; passed to ``pytest.main(plugins=...)``."""

    def __init__(self, progress: Progress | None):
        self.progress, self.total, self.done = progress, 0, 0
        self.result: GradingResult | None = None
        self.errors: list[str] = []

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
                    mem_mb: int = 2048, zygote=None,
                    extra_plugins: tuple = ()) -> GradingResult:
    """``extra_plugins``: more pytest plugin objects for this run (e.g. ``values.ValueRecorder``)."""
    lesson = load_lesson(lesson_id)
    for e in exercises:
        lesson.exercise(e)  # raises with the list of valid ids
    path = Path(path)
    if not path.is_dir():
        raise WorkspaceError(f"No workspace at {path}: create one with `mechgrade start {lesson_id} {path}`, or pass --path.")
    model = spec_from_env(model)
    resolve(model)  # fail early, in one sentence, if the weights are not here
    args = ["--pyargs", f"mechgrade.graders.{lesson_id}", "--mechgrade-lesson", lesson_id,
            "--mechgrade-path", str(path), "--mechgrade-model", model,
            "--mechgrade-mem-mb", str(mem_mb), "-p", "no:cacheprovider", "-p", "no:terminal",
            "-o", "addopts=", "-o", "python_files=test_*.py", "-W", "ignore"]
    for e in exercises:
        args += ["--mechgrade-exercise", e]
    if hidden:
        args.append("--mechgrade-hidden")
    if results_path:
        args += ["--mechgrade-results", str(results_path)]
    collector = _Collector(progress)
    sink = io.StringIO()
    plugins: list = [collector, *extra_plugins]
    if zygote is not None:
        plugins.append(_ZygoteProvider(zygote))
    with redirect_stdout(sink), redirect_stderr(sink):
        code = pytest.main(args, plugins=plugins)
    if collector.result is None or collector.errors:
        why = "; ".join(collector.errors) or f"pytest exited with status {int(code)}"
        raise MechgradeError(f"The graders for {lesson_id} could not run: {why}.")
    return collector.result
