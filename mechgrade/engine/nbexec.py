"""Executing a notebook in the student worker (and nowhere else): its graded code cells run once,
in order, in one namespace that then stands for every exercise module of the workspace.

Each cell runs on its own, so a failing cell costs only what it fails to define: after a cell's
first error, the rest of that cell runs only its definitions (``def``, ``class``, imports), as
if the exploratory line that broke had been deleted. Every error is kept as "cell N, line M"
and shown on the functions that are then missing. A cell that runs longer than
``CELL_TIMEOUT_S`` is interrupted; past ``BUDGET_S`` in all, the remaining cells run only their
definitions, so that the worker always finishes booting well inside the runner's boot timeout.
"""

from __future__ import annotations

import ast
import contextlib
import linecache
import re
import signal
import sys
import time
import traceback
import types
from pathlib import Path

from mechgrade.notebook import Cell, read_cells

CELL_TIMEOUT_S = 20.0  # the default per-call limit of a graded function
BUDGET_S = 90.0  # well inside runner.BOOT_TIMEOUT_S (180 s), which also covers the model boot
DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)
MODULE_NAME = "__notebook__"


class CellTimeout(BaseException):
    """Raised into a cell by SIGALRM; a BaseException so that `except Exception` cannot swallow it."""


class _Discard:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


class NotebookNamespace:
    """The executed notebook: ``module`` holds what its cells defined, ``errors`` maps a failed
    cell's number to "cell N, line M: Type: message"."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.cells = read_cells(self.path)
        self.module = types.ModuleType(MODULE_NAME, f"The graded cells of {self.path.name}")
        sys.modules[MODULE_NAME] = self.module  # classes and dataclasses look their module up there
        self.errors: dict[int, str] = {}
        self.skipped: dict[int, str] = {}
        self._files: dict[str, int] = {}  # code filename -> cell number, for tracebacks

    def run(self) -> "NotebookNamespace":
        deadline = time.monotonic() + BUDGET_S
        previous = signal.signal(signal.SIGALRM, _alarm)
        try:
            with contextlib.redirect_stdout(_Discard()), contextlib.redirect_stderr(_Discard()):
                for cell in self.cells:
                    reason = cell.skip_reason()
                    if reason:
                        self.skipped[cell.number] = reason
                        continue
                    try:
                        self._run(cell, min(CELL_TIMEOUT_S, deadline - time.monotonic()))
                    except CellTimeout:  # the alarm went off between two statements of ours
                        self.errors.setdefault(cell.number, f"cell {cell.number}: interrupted after {CELL_TIMEOUT_S:g} s")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        return self

    def _run(self, cell: Cell, seconds: float) -> None:
        filename = f"<{self.path.name} cell {cell.number}>"
        source = cell.python()
        self._files[filename] = cell.number
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        print(f"mechgrade: running {self.path.name} cell {cell.number}", file=sys.__stderr__, flush=True)  # the boot log's last line if it dies
        try:
            tree = ast.parse(source, filename)
        except SyntaxError as err:
            self.errors[cell.number] = self._describe(err, cell.number)
            return
        definitions_only = seconds <= 0
        if not definitions_only:
            signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            for stmt in tree.body:
                if definitions_only and not isinstance(stmt, DEFINITIONS):
                    continue
                try:
                    exec(compile(ast.Module(body=[stmt], type_ignores=[]), filename, "exec"), self.module.__dict__)
                except BaseException as err:  # noqa: BLE001 - any failure of student code is recorded
                    timeout = f"the cell ran longer than {seconds:.3g} s and was interrupted" if isinstance(err, CellTimeout) else None
                    self.errors.setdefault(cell.number, self._describe(err, cell.number, timeout))
                    definitions_only = True
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    # -- messages ---------------------------------------------------------------------------------
    def where(self, exc: BaseException) -> str:
        """'cell N, line M' of the innermost notebook frame of ``exc``, if any."""
        if isinstance(exc, SyntaxError) and exc.filename in self._files:
            return f"cell {self._files[exc.filename]}, line {exc.lineno}"
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename in self._files]
        return f"cell {self._files[frames[-1].filename]}, line {frames[-1].lineno}" if frames else ""

    def _describe(self, err: BaseException, number: int, text: str | None = None) -> str:
        text = text or f"{type(err).__name__}: {err.msg if isinstance(err, SyntaxError) else err}"
        return f"{self.where(err) or f'cell {number}'}: {text}"

    def missing(self, function: str) -> str:
        """Why ``function`` is not defined: the failing or skipped cells that define it, else the
        notebook's failing cells."""
        defines = re.compile(rf"^\s*(?:async\s+)?def\s+{re.escape(function)}\s*\(", re.MULTILINE)
        own = [c.number for c in self.cells if defines.search(c.source)]
        why = [f"cell {n} is {self.skipped[n]}, so it is not graded" for n in own if n in self.skipped]
        why += [self.errors[n] for n in own if n in self.errors]
        if not own and self.errors:
            shown = list(self.errors.values())[:2]
            more = len(self.errors) - len(shown)
            why = ["failing cells: " + "; ".join(shown) + (f"; and {more} more" if more else "")]
        return f"{self.path.name} defines no function {function}" + (f" ({'; '.join(why)})" if why else "")


def _alarm(signum, frame):
    raise CellTimeout
